"""The rule engine: YAML rule files → validated RuleSet → compiled matcher → artist labels.

It knows nothing of Spotify or of the store: it maps canonical subgenre strings.

Names are imported from their module on first use (PEP 562), so that loading and linting
rules (`genremap lint`, `schema`) never imports numpy and pandas, which only the artist
policies (`genremap.engine.policy`) need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genremap.engine.loader import default_rules_dir, load_rules, resolve_rules_dir
    from genremap.engine.matcher import IGNORED, MAPPED, NOT_GENRE, UNMAPPED, CompiledRules, Match, SubgenreDecision
    from genremap.engine.model import IgnoreEntry, Policy, Rule, RuleSet, Target
    from genremap.engine.policy import AMBIGUOUS, LABELLED, UNLABELLED, decisions_frame, resolve

_MODULE_OF = {
    **dict.fromkeys(("default_rules_dir", "load_rules", "resolve_rules_dir"), "loader"),
    **dict.fromkeys(
        ("IGNORED", "MAPPED", "NOT_GENRE", "UNMAPPED", "CompiledRules", "Match", "SubgenreDecision"), "matcher"
    ),
    **dict.fromkeys(("IgnoreEntry", "Policy", "Rule", "RuleSet", "Target"), "model"),
    **dict.fromkeys(("AMBIGUOUS", "LABELLED", "UNLABELLED", "decisions_frame", "resolve"), "policy"),
}

__all__ = [
    "AMBIGUOUS",
    "IGNORED",
    "LABELLED",
    "MAPPED",
    "NOT_GENRE",
    "UNLABELLED",
    "UNMAPPED",
    "CompiledRules",
    "IgnoreEntry",
    "Match",
    "Policy",
    "Rule",
    "RuleSet",
    "SubgenreDecision",
    "Target",
    "decisions_frame",
    "default_rules_dir",
    "load_rules",
    "resolve",
    "resolve_rules_dir",
]


def __getattr__(name: str) -> Any:
    """Import the module that defines `name` when it is first asked for."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
