"""A fast check that a rule file's data satisfies rules.schema.json, without jsonschema.

Importing jsonschema and validating every file costs more than the rest of loading rules.
Almost every file is valid, so the loader asks `surely_valid` first: True only when the data
certainly satisfies the schema (plain strings, integers and finite numbers, nothing unusual);
anything else, valid or not, goes through jsonschema, whose errors are the ones reported.

It is written for one version of the schema, pinned by its SHA-256: when the schema changes,
`surely_valid` answers False (every file is validated by jsonschema) until it is brought up to
date (tests/test_rules_quickcheck.py says so, and checks it against jsonschema).
"""

from __future__ import annotations

import hashlib
import math
from functools import lru_cache
from importlib import resources
from typing import Any

SCHEMA_SHA256 = "8328eb8afc07edccca41381cfbc2e528a8f5a0e8f5abda63d5e9709f0977953d"

RULE_KINDS = frozenset(("keyword", "contains", "exact", "regex", "fuzzy"))
MATCH_KINDS = frozenset(("keyword", "contains", "exact", "regex"))
SCORERS = frozenset(("ratio", "partial_ratio", "token_sort_ratio", "token_set_ratio", "WRatio"))
POLICY_NAMES = frozenset(("vote", "first", "priority"))
SCOPES = frozenset(("abstain", "vote"))
RULE_REQUIRED = frozenset(("name", "target", "kind", "patterns"))
RULE_KEYS = RULE_REQUIRED | {"priority", "unless", "unless_kind", "threshold", "scorer", "weight", "note"}
IGNORE_KEYS = frozenset(("subgenre", "subgenres", "patterns", "kind", "unless", "unless_kind", "weight", "reason"))
POLICY_KEYS = frozenset(("name", "min_share", "min_margin", "out_of_scope", "related"))
TOP_KEYS = frozenset(("targets", "rules", "ignore", "not_genres", "policy"))


@lru_cache(maxsize=1)
def schema_matches() -> bool:
    """Whether the shipped schema is the one this check was written for."""
    data = resources.files("genremap.engine").joinpath("rules.schema.json").read_bytes()
    return hashlib.sha256(data).hexdigest() == SCHEMA_SHA256


def _text(value: Any) -> bool:
    return type(value) is str and len(value) >= 1


def _integer(value: Any) -> bool:
    return type(value) is int


def _number(value: Any, low: float, high: float, *, low_open: bool = False) -> bool:
    if type(value) is int:
        number = float(value) if abs(value) < 2**53 else math.nan
    elif type(value) is float:
        number = value
    else:
        return False
    if not math.isfinite(number):
        return False
    return (number > low if low_open else number >= low) and number <= high


def _patterns(value: Any) -> bool:
    if type(value) is str:
        return len(value) >= 1
    return type(value) is list and len(value) >= 1 and all(_text(p) for p in value)


def _target(value: Any) -> bool:
    if type(value) is str:
        return True
    return type(value) is dict and value.keys() <= {"description"} and all(type(v) is str for v in value.values())


def _rule(rule: Any) -> bool:
    if type(rule) is not dict or not (rule.keys() >= RULE_REQUIRED and rule.keys() <= RULE_KEYS):
        return False
    checks = {
        "name": _text,
        "target": _text,
        "kind": lambda v: type(v) is str and v in RULE_KINDS,
        "patterns": _patterns,
        "priority": _integer,
        "unless": _patterns,
        "unless_kind": lambda v: type(v) is str and v in MATCH_KINDS,
        "threshold": lambda v: _number(v, 0, 100),
        "scorer": lambda v: type(v) is str and v in SCORERS,
        "weight": lambda v: _number(v, 0, math.inf, low_open=True),
        "note": lambda v: type(v) is str,
    }
    return all(checks[key](value) for key, value in rule.items())


def _ignore(entry: Any) -> bool:
    if type(entry) is not dict or "reason" not in entry or not entry.keys() <= IGNORE_KEYS:
        return False
    if not entry.keys() & {"subgenre", "subgenres", "patterns"}:
        return False
    checks = {
        "subgenre": _text,
        "subgenres": _patterns,
        "patterns": _patterns,
        "kind": lambda v: type(v) is str and v in MATCH_KINDS,
        "unless": _patterns,
        "unless_kind": lambda v: type(v) is str and v in MATCH_KINDS,
        "reason": _text,
        "weight": lambda v: _number(v, 0, math.inf),
    }
    return all(checks[key](value) for key, value in entry.items())


def _policy(policy: Any) -> bool:
    if type(policy) is str:
        return policy in POLICY_NAMES
    if type(policy) is not dict or "name" not in policy or not policy.keys() <= POLICY_KEYS:
        return False
    name_ok = type(policy["name"]) is str and policy["name"] in POLICY_NAMES
    return (
        name_ok
        and all(_number(policy[k], 0, 1) for k in ("min_share", "min_margin") if k in policy)
        and ("out_of_scope" not in policy or (type(policy["out_of_scope"]) is str and policy["out_of_scope"] in SCOPES))
        and ("related" not in policy or _groups(policy["related"]))
    )


def _groups(value: Any) -> bool:
    """A list of lists of two or more non-empty strings (the policy's related targets)."""
    return type(value) is list and all(type(g) is list and len(g) >= 2 and all(_text(t) for t in g) for g in value)


def surely_valid(data: Any) -> bool:
    """True only when `data` (one rule file, as loaded) certainly satisfies the schema."""
    if not schema_matches() or type(data) is not dict or not data.keys() <= TOP_KEYS:
        return False
    targets, rules, ignore = data.get("targets", {}), data.get("rules", []), data.get("ignore", [])
    not_genres = data.get("not_genres", [])
    return (
        type(targets) is dict
        and all(type(k) is str and _target(v) for k, v in targets.items())
        and type(rules) is list
        and all(_rule(r) for r in rules)
        and type(ignore) is list
        and all(_ignore(e) for e in ignore)
        and type(not_genres) is list
        and all(_ignore(e) for e in not_genres)
        and ("policy" not in data or _policy(data["policy"]))
    )
