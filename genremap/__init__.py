"""genremap: balanced, genre-labelled music datasets from Spotify's micro-genres.

The public Python API (docs/api.md) is importable from here: `load_rules`, `label_artists`,
`build_dataset`, `open_store` and the types they return. `genremap.api` imports only the
standard library at load time (pandas comes with the first call that needs it), so `import
genremap` stays instant and the CLI's light commands never import pandas.
"""

from __future__ import annotations

__version__ = "0.1.0"

from genremap import api  # after __version__, which the modules it loads may read
from genremap.api import *  # noqa: F403

__all__ = [*api.__all__, "__version__"]
