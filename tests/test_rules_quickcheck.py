"""The loader's quick schema check never lets through what jsonschema would refuse.

`surely_valid` answers True only for rule-file data that satisfies rules.schema.json; every
other file goes through jsonschema. Hypothesis mutates the packaged rule files' data (values
of every type at every place, keys added and removed) and builds rule files of odd values:
whenever the quick check says valid, jsonschema must agree.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from genremap.engine import default_rules_dir, loader
from genremap.engine.quickcheck import (
    IGNORE_KEYS,
    POLICY_KEYS,
    RULE_KEYS,
    SCHEMA_SHA256,
    TOP_KEYS,
    schema_matches,
    surely_valid,
)

VALIDATOR = jsonschema.Draft202012Validator(loader.rule_schema())
PACKAGED = [loader._parse_file(p, p.name)[0].data for p in sorted(default_rules_dir().glob("*.yaml"))]
SETTINGS = settings(
    max_examples=int(os.environ.get("GENREMAP_FUZZ_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
KEYS = sorted({*TOP_KEYS, *RULE_KEYS, *IGNORE_KEYS, *POLICY_KEYS, "description", "Name", "pattern"})
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0, 1, -1, 0.0, 1.0, 100, 100.0, 100.5, 0.5, 1.5, 2**53, -0.0, 1e-300, 1e308])
    | st.text(max_size=6)
    | st.sampled_from(
        ["", "vote", "abstain", "first", "priority", "keyword", "exact", "regex", "fuzzy", "WRatio", "ratio"]
    )
    | st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 1, 1))
    | st.binary(max_size=3)
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


def _places(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _places(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _places(value, (*path, i))
    return out


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        node = node[step]
    return node


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """A packaged rule file's data with a few values replaced, keys dropped or added."""
    data = copy.deepcopy(draw(st.sampled_from(PACKAGED)))
    for _ in range(draw(st.integers(1, 3))):
        places = _places(data)
        path = draw(st.sampled_from(places))
        action = draw(st.sampled_from(["replace", "drop", "add", "wrap"]))
        if not path:
            if action == "replace":
                data = draw(VALUES)
            continue
        parent, last = _get(data, path[:-1]), path[-1]
        if action == "replace":
            parent[last] = draw(VALUES)
        elif action == "drop":
            del parent[last]
        elif action == "wrap":
            parent[last] = [parent[last]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(KEYS))] = draw(VALUES)
        else:
            parent.append(draw(VALUES))
    return data


def _jsonschema_valid(data: Any) -> bool:
    return not any(True for _ in VALIDATOR.iter_errors(data))


def test_written_for_the_shipped_schema() -> None:
    digest = hashlib.sha256(loader.schema_path().read_bytes()).hexdigest()
    assert digest == SCHEMA_SHA256, (
        "rules.schema.json changed: bring genremap/engine/quickcheck.py up to date with it, then pin the new "
        f"SHA-256 ({digest}); until then every rule file is validated by jsonschema (correct, but slow)"
    )
    assert schema_matches()


@pytest.mark.parametrize("data", PACKAGED, ids=[p.name for p in sorted(default_rules_dir().glob("*.yaml"))])
def test_packaged_rules_pass_the_quick_check(data: Any) -> None:
    assert _jsonschema_valid(data)
    assert surely_valid(data)


@SETTINGS
@given(data=mutated())
@example(data={"rules": [{"name": "a", "target": "rock", "kind": "exact", "patterns": ["x"], "priority": True}]})
@example(data={"rules": [{"name": "a", "target": "rock", "kind": "exact", "patterns": ["x"], "priority": 1.0}]})
@example(data={"rules": [{"name": "a", "target": "rock", "kind": "fuzzy", "patterns": "x", "threshold": math.nan}]})
@example(data={"rules": [{"name": "a", "target": "rock", "kind": "exact", "patterns": [], "weight": 0}]})
@example(data={"ignore": [{"reason": "r", "kind": "exact"}]})
@example(data={"policy": {"min_share": 0.5}})
@example(data={"targets": {"rock": {"description": 1}}})
def test_quick_check_never_passes_what_jsonschema_refuses(data: Any) -> None:
    if surely_valid(data):
        assert _jsonschema_valid(data), data


@SETTINGS
@given(data=st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=4) | VALUES)
def test_odd_documents_too(data: Any) -> None:
    if surely_valid(data):
        assert _jsonschema_valid(data), data


def test_a_changed_schema_turns_the_quick_check_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from genremap.engine import quickcheck

    monkeypatch.setattr(quickcheck, "SCHEMA_SHA256", "0" * 64)
    quickcheck.schema_matches.cache_clear()
    try:
        assert not surely_valid(PACKAGED[0])
    finally:
        monkeypatch.undo()
        quickcheck.schema_matches.cache_clear()
    assert surely_valid(PACKAGED[0])
