"""The [audio] and [cluster] extras: checking that their packages are installed before a stage needs them."""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from genremap.errors import UsageError

INSTALL = "pip install 'genremap[audio]'"
CLUSTER_INSTALL = "pip install 'genremap[cluster]'"
PACKAGE_OF = {"sklearn": "scikit-learn"}  # import name → the name pip installs


def require(what: str, modules: Sequence[str], install: str = INSTALL) -> None:
    """Import every one of `modules`; if any is missing, a UsageError naming all the missing
    packages (not just the first) and the one command that installs them."""
    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(PACKAGE_OF.get(name, name))
    if missing:
        needed = " and ".join(PACKAGE_OF.get(name, name) for name in modules)
        raise UsageError(f"{what} needs {needed}; missing: {', '.join(missing)}. Install them with: {install}")
