"""No rule file, however broken, produces a traceback.

Hypothesis writes broken rule files (random text, random YAML documents, and mutations of a
valid file) next to a valid target declaration. Loading must either succeed or raise
RuleErrors/UsageError whose every message is one line `FILE:LINE:COL: message`, pointing
inside the file; `genremap lint` must exit 0, 1 or 2 without a traceback.
"""

from __future__ import annotations

import copy
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from genremap.cli import app
from genremap.engine import load_rules
from genremap.engine.loader import IGNORE_KEYS, POLICY_KEYS, RULE_KEYS, TOP_KEYS
from genremap.engine.model import FUZZY_SCORERS, POLICIES, RULE_KINDS
from genremap.errors import RuleErrors, UsageError

LOCATED = re.compile(r"^[^\n]+:\d+:\d+: [^\n]+$")
YAML_BREAKS = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
TARGETS = "targets:\n" + "".join(
    f"  {t}: the {t} class\n"
    for t in ("rock", "metal", "jazz", "blues", "disco", "house", "classical", "hip hop", "country")
)
VALID: dict[str, Any] = {
    "rules": [
        {
            "name": "trap",
            "target": "hip hop",
            "kind": "keyword",
            "patterns": ["trap", "drill"],
            "priority": 10,
            "unless": ["latin trap"],
            "note": "southern rap",
        },
        {
            "name": "rock-ish",
            "target": "rock",
            "kind": "fuzzy",
            "patterns": ["rock"],
            "threshold": 85,
            "scorer": "ratio",
            "weight": 2,
        },
        {
            "name": "bop",
            "target": "jazz",
            "kind": "regex",
            "patterns": ["^jazz", "bop$"],
            "unless": ["^acid"],
            "unless_kind": "regex",
        },
        {"name": "disco", "target": "Disco", "kind": "contains", "patterns": "disco"},
    ],
    "ignore": [
        {"subgenres": ["pop", "k-pop"], "reason": "out of scope"},
        {"patterns": ["^latin"], "kind": "regex", "reason": "latin music"},
        {"subgenre": "comedy", "reason": "not music"},
    ],
    "policy": {"name": "vote", "min_share": 0.5, "min_margin": 0.1},
}
ALL_KEYS = sorted({*TOP_KEYS, *RULE_KEYS, *IGNORE_KEYS, *POLICY_KEYS, "description"})
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RUNNER = CliRunner()

# --- strategies ------------------------------------------------------------------------------

# Characters that mean something to YAML, plus enough letters to make keys and words.
YAMLISH = st.sampled_from(list(":-[]{}#&*!|>'\"%@`,?. \t\n\r") + list("abcdeiklnoprstuy0129"))
# No lone surrogates in text that is dumped as YAML (a real editor cannot save them).
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXT
    | st.sampled_from(["", "rock", "hip-hop", "rok", "keywrd", "[unclosed", "?!", *RULE_KINDS, *POLICIES])
    | st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 1, 1))
)
KEYS = st.sampled_from(ALL_KEYS) | TEXT
JUNK = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=20,
)
REGEXISH = st.text(st.sampled_from(list("()[]{}*+?.^$|\\-,:<>=!PabcdwsS0123 ")), max_size=16)
# YAML's rarer syntax (tags, anchors, aliases, merge keys, directives, block scalars) and
# values that stress the checks behind the schema (regexes, huge repeats, deep nesting).
# fmt: off
TOKENS = st.sampled_from([
    "\n", "\n  ", "\n    ", "\n  - ", "- ", ": ", "? ", ", ", "[", "]", "{", "}", "'", '"', "#",
    "|\n", ">\n", "---\n", "...\n", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n",
    "&a ", "&b ", "*a", "*b", "<<: ", "<<: *a", "!!float ", "!!int ", "!!bool ", "!!timestamp ",
    "!!binary ", "!!set ", "!!omap ", "!!python/object:os.system ", "!foo ", "!!str ", "!!null ",
    "rules", "targets", "ignore", "policy", "name", "target", "kind", "patterns", "reason",
    "threshold", "weight", "priority", "min_share", "subgenre", "regex", "fuzzy", "keyword",
    "vote", "rock", "hip hop", "rok", "trap", "0", "150", "-1", ".nan", ".inf", "1e400",
    "2001-02-30", "a{4294967296}", "(" * 600, ")" * 600, "[" * 60, "\t", "\x00", "\ufeff",
    "\u2028", "\x85", "\r", "é",
])
# fmt: on
NUMBERS = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.sampled_from([0, -1, 1, 100, 101, 150, 0.5, 1.5])
)


def dump(data: Any, draw: st.DrawFn) -> str:
    return yaml.safe_dump(
        data,
        allow_unicode=draw(st.booleans()),
        default_flow_style=draw(st.sampled_from([None, True, False])),
        sort_keys=False,
        width=draw(st.sampled_from([80, 10_000])),
    )


@st.composite
def junk_documents(draw: st.DrawFn) -> str:
    """Structured but wrong: random values under the real top-level keys (or not)."""
    top = draw(st.dictionaries(st.sampled_from(TOP_KEYS) | TEXT, JUNK, max_size=4) | JUNK)
    return dump(top, draw)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*path, i))


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        doc = doc[step]
    return doc


@st.composite
def mutated_documents(draw: st.DrawFn) -> str:
    """A valid rule file with 1–4 things broken: keys deleted, renamed, duplicated, retyped,
    random kinds, regexes, thresholds and unicode."""
    doc = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, last = _parent(doc, path), path[-1]
        op = draw(
            st.sampled_from(["delete", "retype", "rename", "duplicate", "kind", "regex", "number", "unicode", "name"])
        )
        if op == "delete":
            del parent[last]
        elif op == "retype":
            parent[last] = draw(JUNK)
        elif op == "rename" and isinstance(parent, dict):
            new_key = draw(st.sampled_from(ALL_KEYS) | TEXT | st.just(str(last)[:-1]))
            parent[new_key] = parent.pop(last)
        elif op == "duplicate" and isinstance(parent, list):
            parent.insert(last, copy.deepcopy(parent[last]))
        elif op == "kind" and isinstance(parent, dict):
            parent["kind"] = draw(st.sampled_from(RULE_KINDS) | st.sampled_from(["keywrd", "Regex"]) | TEXT)
        elif op == "regex" and isinstance(parent, dict):
            parent["kind"] = "regex"
            parent["patterns"] = draw(st.lists(REGEXISH, max_size=3) | REGEXISH)
        elif op == "number" and isinstance(parent, dict):
            key = draw(st.sampled_from(["threshold", "weight", "priority", "min_share", "min_margin"]))
            parent[key] = draw(NUMBERS)
            if draw(st.booleans()):
                parent["kind"] = "fuzzy"
            if draw(st.booleans()):
                parent["scorer"] = draw(st.sampled_from(FUZZY_SCORERS) | TEXT)
        elif op == "unicode":
            parent[last] = draw(st.text(min_size=1, max_size=12))  # may hold lone surrogates
        elif op == "name" and isinstance(parent, dict):
            parent["name"] = draw(st.sampled_from(["trap", "bop", "disco"]) | TEXT)
    return dump(doc, draw)


@st.composite
def mutated_text(draw: st.DrawFn) -> str:
    """A valid rule file edited as text: characters inserted or deleted, lines duplicated,
    swapped or re-indented, tabs."""
    text = yaml.safe_dump(VALID, sort_keys=False)
    for _ in range(draw(st.integers(1, 5))):
        lines = text.split("\n")
        op = draw(st.sampled_from(["insert", "token", "delete", "dup-line", "swap", "indent", "tab"]))
        i = draw(st.integers(0, max(len(text) - 1, 0)))
        n = draw(st.integers(0, max(len(lines) - 1, 0)))
        if op == "insert":
            text = text[:i] + draw(st.text(YAMLISH, min_size=1, max_size=4)) + text[i:]
        elif op == "token":
            text = text[:i] + draw(TOKENS) + text[i:]
        elif op == "delete":
            text = text[:i] + text[i + draw(st.integers(1, 6)) :]
        elif op == "dup-line":
            lines.insert(n, lines[n])
            text = "\n".join(lines)
        elif op == "swap":
            m = draw(st.integers(0, max(len(lines) - 1, 0)))
            lines[n], lines[m] = lines[m], lines[n]
            text = "\n".join(lines)
        elif op == "indent":
            lines[n] = " " * draw(st.integers(0, 6)) + lines[n].lstrip(" ")
            text = "\n".join(lines)
        else:
            text = text[:i] + "\t" + text[i:]
    return text


RANDOM_TEXT = st.text(YAMLISH | st.characters(), max_size=200)

YAML_TOKENS = st.lists(TOKENS, max_size=40).map("".join)
ANY_FILE = st.one_of(
    RANDOM_TEXT,
    YAML_TOKENS,
    junk_documents(),
    mutated_documents(),
    mutated_text(),
    st.binary(max_size=200),
)

# --- the property ----------------------------------------------------------------------------


@contextmanager
def rules_folder(case: str | bytes) -> Iterator[Path]:
    """rules/00-targets.yaml (valid) and rules/10-case.yaml (the generated file)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "rules"
        folder.mkdir()
        (folder / "00-targets.yaml").write_text(TARGETS, encoding="utf-8")
        data = case if isinstance(case, bytes) else case.encode("utf-8", "surrogatepass")
        (folder / "10-case.yaml").write_bytes(data)
        yield folder


def line_count(data: bytes) -> int:
    text = data.decode("utf-8", "replace")
    return len(YAML_BREAKS.findall(text)) + 1


def check_loads_or_fails_cleanly(case: str | bytes) -> None:
    with rules_folder(case) as folder:
        outcomes: list[str | None] = []
        for collect_all in (False, True):
            try:
                load_rules(folder, collect_all=collect_all)
            except RuleErrors as exc:
                assert exc.errors
                lines = line_count((folder / "10-case.yaml").read_bytes())
                for error in exc.errors:
                    assert LOCATED.match(error.message), error.message
                    assert error.location.file.endswith("10-case.yaml"), error.message
                    assert 1 <= error.location.line <= lines, (error.message, lines)
                    assert error.location.column >= 1, error.message
                assert exc.message == exc.errors[0].message
                outcomes.append(exc.message)
            except UsageError as exc:  # pragma: no cover - only a missing folder raises it
                assert LOCATED.match(exc.message), exc.message
                outcomes.append(exc.message)
            else:
                outcomes.append(None)
        # the case file is the last file, so stopping at the first error changes nothing
        assert outcomes[0] == outcomes[1], outcomes


@SETTINGS
@given(RANDOM_TEXT)
def test_random_text(text: str) -> None:
    check_loads_or_fails_cleanly(text)


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    check_loads_or_fails_cleanly(data)


@settings(SETTINGS, max_examples=400)
@given(YAML_TOKENS)
def test_yaml_syntax_soup(text: str) -> None:
    check_loads_or_fails_cleanly(text)


@SETTINGS
@given(junk_documents())
def test_structured_junk(text: str) -> None:
    check_loads_or_fails_cleanly(text)


@settings(SETTINGS, max_examples=300)
@given(mutated_documents())
def test_mutated_documents(text: str) -> None:
    check_loads_or_fails_cleanly(text)


@settings(SETTINGS, max_examples=300)
@given(mutated_text())
def test_mutated_text(text: str) -> None:
    check_loads_or_fails_cleanly(text)


def test_the_unmutated_file_is_valid() -> None:
    with rules_folder(yaml.safe_dump(VALID, sort_keys=False)) as folder:
        ruleset = load_rules(folder)
    assert [r.name for r in ruleset.rules] == ["trap", "rock-ish", "bop", "disco"]


@settings(SETTINGS, max_examples=25)
@given(ANY_FILE)
def test_lint_never_shows_a_traceback(case: str | bytes) -> None:
    with rules_folder(case) as folder:
        result = RUNNER.invoke(
            app,
            ["lint", "--rules", str(folder), "--db", str(folder / "none.db")],
            env={"COLUMNS": "120"},
            catch_exceptions=False,
        )
    assert result.exit_code in (0, 1, 2), result.output
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        errors = result.stderr.splitlines()
        assert errors, result.stderr
        assert result.stdout.startswith(f"{folder}: "), result.stdout
        for line in errors:
            assert re.match(r"^[^\n]+:\d+:\d+: error: ", line), line
