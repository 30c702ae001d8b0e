"""genremap: balanced, genre-labelled music datasets from Spotify's micro-genres.

The public Python API (docs/api.md) is importable from here: `load_rules`, `label_artists`,
`build_dataset`, `open_store` and the types they return. Names load on first use (PEP 562),
so `import genremap` stays instant and the CLI's light commands never import pandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genremap.api import (
        ARTIST_COLUMNS,
        LABEL_COLUMNS,
        TRACK_COLUMNS,
        Decision,
        Explanation,
        GenremapError,
        Rules,
        RulesError,
        StoreView,
        build_dataset,
        label_artists,
        load_rules,
        open_store,
    )

__version__ = "0.1.0"

__all__ = [
    "ARTIST_COLUMNS",
    "LABEL_COLUMNS",
    "TRACK_COLUMNS",
    "Decision",
    "Explanation",
    "GenremapError",
    "Rules",
    "RulesError",
    "StoreView",
    "__version__",
    "build_dataset",
    "label_artists",
    "load_rules",
    "open_store",
]


def __getattr__(name: str) -> Any:
    """Import the public API module when one of its names is first asked for."""
    if name in __all__ and name != "__version__":
        return getattr(importlib.import_module("genremap.api"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
