"""The rule engine: YAML rule files → validated RuleSet → compiled matcher → artist labels.

It knows nothing of Spotify or of the store: it maps canonical subgenre strings.
"""

from genremap.engine.loader import default_rules_dir, load_rules, resolve_rules_dir
from genremap.engine.matcher import IGNORED, MAPPED, UNMAPPED, CompiledRules, Match, SubgenreDecision
from genremap.engine.model import IgnoreEntry, Policy, Rule, RuleSet, Target
from genremap.engine.policy import AMBIGUOUS, LABELLED, UNLABELLED, decisions_frame, resolve

__all__ = [
    "AMBIGUOUS",
    "IGNORED",
    "LABELLED",
    "MAPPED",
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
