"""Regex rules run on RE2: no pattern can hang a command, Python-only syntax gets a located
error, and every regex the rules use decides exactly as Python's `re` did."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import genremap.engine.matcher as matcher_module
from genremap.cli import app
from genremap.engine import CompiledRules, RuleSet, default_rules_dir, load_rules
from genremap.engine import regex as regex_module
from genremap.engine.regex import RegexUnion, compile_regex, inspect_regex
from genremap.normalize import normalize_many

# Real rows of the corpus (shared/data/spotify_artists_genres.csv), trimmed to the columns
# an artist table needs. Python's re takes most of a minute on `^(\w+\s?)+ pop$` and
# 'historically informed performance': each extra letter doubles to quadruples the work.
CORPUS_ROWS = """artists,genres,count
Academy of Ancient Music,"['baroque ensemble', 'choral', 'classical performance', 'historically informed performance']",11
Katy Perry,"['dance pop', 'pop', 'post-teen pop']",111
Madonna,"['dance pop', 'pop']",236
"""
CATASTROPHIC = r"^(\w+\s?)+ pop$"
ANY_POP = f"{{name: any pop, target: disco, kind: regex, patterns: ['{CATASTROPHIC}']}}"


@pytest.fixture
def corpus_rows_db(tmp_path: Path, runner: CliRunner) -> Path:
    (tmp_path / "artists.csv").write_text(CORPUS_ROWS, encoding="utf-8")
    db = tmp_path / "store.db"
    result = runner.invoke(app, ["import", str(tmp_path / "artists.csv"), "--db", str(db)])
    assert result.exit_code == 0, result.output
    return db


def run_genremap(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a real process, with a timeout far above the seconds it takes."""
    return subprocess.run(
        [sys.executable, "-m", "genremap", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "120"},
        check=False,
    )


def test_a_catastrophic_pattern_cannot_hang_a_command(write_rules: Callable[..., Path]) -> None:
    """`explain` decides one subgenre with the issue's pattern. Python's re needs most of a
    minute for 'historically informed performance' and about twice as long per extra letter:
    on this 70-letter phrase it would run for ages, and the process would be killed at the
    timeout. RE2 answers at once."""
    rules = write_rules({"10.yaml": f"rules: [{ANY_POP}]\n"})
    phrase = "historically informed baroque performance practice on period instruments"
    for subgenre, target in ((phrase, None), (f"{phrase} pop", "disco")):
        result = run_genremap("explain", subgenre, "--rules", str(rules), "--format", "json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["target"] == target


def test_the_issues_pattern_labels_the_corpus(corpus: Path, tmp_path: Path, write_rules: Callable[..., Path]) -> None:
    """The issue's reproduction: every corpus subgenre ending in ' pop' is decided by the rule,
    and no other (Python's re took minutes here; RE2 a fraction of a second)."""
    db = tmp_path / "corpus.db"
    assert run_genremap("import", str(corpus), "--db", str(db)).returncode == 0
    rules = write_rules({"10.yaml": f"rules: [{ANY_POP}]\n"})
    result = run_genremap("subgenres", "--db", str(db), "--rules", str(rules), "--format", "json")
    assert result.returncode == 0, result.stderr
    decided = {row["subgenre"]: row["rule"] for row in json.loads(result.stdout)}
    ends_in_pop = {s for s in decided if s.endswith(" pop")}
    assert len(ends_in_pop) > 100
    assert {s for s, rule in decided.items() if rule == "any pop"} == ends_in_pop


def test_a_catastrophic_pattern_labels_as_written(
    runner: CliRunner, corpus_rows_db: Path, write_rules: Callable[..., Path]
) -> None:
    rules = write_rules(
        {"10.yaml": f"rules: [{ANY_POP}, {{name: early music, target: classical, kind: keyword, patterns: [choral]}}]"}
    )
    common = ["--db", str(corpus_rows_db), "--rules", str(rules), "--format", "json"]
    result = runner.invoke(app, ["explain", "--artist", "Academy of Ancient Music", *common])
    assert result.exit_code == 0, result.output
    academy = json.loads(result.stdout)
    assert (academy["status"], academy["target"]) == ("labelled", "classical")
    by_genre = {s["subgenre"]: s["status"] for s in academy["subgenres"]}
    assert by_genre["historically informed performance"] == "unmapped"
    report = runner.invoke(app, ["report", *common])
    assert report.exit_code == 0, report.output
    targets = {t["target"]: t["artists"] for t in json.loads(report.stdout)["targets"]}
    assert (targets["disco"], targets["classical"]) == (2, 1)  # Katy Perry and Madonna: 'dance pop', 'post teen pop'


def test_lint_warns_about_nested_repetition_but_not_the_shipped_rules(
    runner: CliRunner, corpus_rows_db: Path, write_rules: Callable[..., Path]
) -> None:
    rules = write_rules(
        {
            "10.yaml": f"""
            rules:
              - {ANY_POP}
              - {{name: plain, target: rock, kind: regex, patterns: ['^(post )?grunge$'], unless: ['(a+)*b'], unless_kind: regex}}
            ignore:
              - {{kind: regex, patterns: ['^(x|y+)+$'], reason: test}}
            """
        }
    )
    result = runner.invoke(app, ["lint", "--db", str(corpus_rows_db), "--rules", str(rules), "--format", "json"])
    assert result.exit_code == 0, result.output
    nested = [f for f in json.loads(result.stdout)["findings"] if f["code"] == "nested-quantifier"]
    assert [(f["location"].rsplit(":", 2)[-2], f["message"].split(":")[0]) for f in nested] == [
        ("3", "rule 'any pop'"),
        ("4", "rule 'plain' (unless)"),
        ("6", "ignore entry #1"),
    ]
    assert "(\\w+\\s?)+" in nested[0]["message"]
    shipped = runner.invoke(
        app, ["lint", "--db", str(corpus_rows_db), "--rules", str(default_rules_dir()), "-f", "json"]
    )
    assert not [f for f in json.loads(shipped.stdout)["findings"] if f["code"] == "nested-quantifier"]


@pytest.mark.parametrize(
    ("pattern", "nested"),
    [
        (r"^(\w+\s?)+ pop$", r"(\w+\s?)+"),
        (r"((a+)b)*", "((a+)b)*"),
        (r"(?:a|b+){2,}", "(?:a|b+){2,}"),
        (r"(a*)?", None),  # repeats at most once
        (r"(ab)+c*", None),
        (r"[(a+)]+", None),  # a class, not a group
        (r"\(a+\)+", None),  # escaped parentheses
        (r"\Q(a+)+\E", None),  # quoted text
        (r"^(classical|baroque|opera)$", None),
    ],
)
def test_nested_repetition_is_found_exactly(pattern: str, nested: str | None) -> None:
    assert inspect_regex(pattern).nested_repeat == nested


# --- the same decisions as Python's re ------------------------------------------------------


@contextmanager
def python_re() -> Iterator[None]:
    """Match rule regexes with Python's `re`, as genremap did before RE2 (a reference only)."""
    saved = matcher_module.RegexUnion, matcher_module.regex_search

    class PythonUnion:
        def __init__(self, patterns: list[str]) -> None:
            self.compiled = [re.compile(p) for p in patterns]

        def matching(self, text: str) -> list[int]:
            return [i for i, rx in enumerate(self.compiled) if rx.search(text)]

    matcher_module.RegexUnion = PythonUnion  # type: ignore[assignment,misc]
    matcher_module.regex_search = lambda pattern, text: re.search(pattern, text) is not None
    try:
        yield
    finally:
        matcher_module.RegexUnion, matcher_module.regex_search = saved


def decisions(ruleset: RuleSet, subgenres: list[str]) -> dict[str, Any]:
    made = CompiledRules.build(ruleset).decide_many(subgenres)
    return {
        s: (d.status, d.rule_name, d.ignored_by.reason if d.ignored_by else None, [m.rule.name for m in d.matches])
        for s, d in made.items()
    }


def test_shipped_and_test_rules_decide_the_corpus_as_python_re_did(corpus: Path, test_rules: RuleSet) -> None:
    import ast

    import pandas as pd

    genres = pd.read_csv(corpus, usecols=["genres"])["genres"]
    subgenres = sorted(set(normalize_many([g for cell in genres for g in ast.literal_eval(cell)])))
    assert len(subgenres) > 2500
    for ruleset in (load_rules(default_rules_dir()), test_rules):
        ours = decisions(ruleset, subgenres)
        with python_re():
            reference = decisions(ruleset, subgenres)
        assert ours == reference
    regex_hits = [s for s, d in ours.items() if "classical" in d[3]]
    assert regex_hits  # the test rules' regex rule did match corpus subgenres


# Regexes as people write them for subgenres (the shipped and test rules' among them).
PATTERNS = [
    r"\bindie$",
    r"^austindie$",
    r"^(classical|baroque|opera)$",
    r"romantic era",
    r"(?i)^ROCK",
    r"\d{2}s$",
    r"^[a-m]\w* pop$",
    r"\bhip hop\b",
    r".*core$",
    r"^(post|neo)[ -]?(punk|soul)",
    r"\s(?:and|n)\s",
    r"^\S+$",
    r"^(?:deep|dark) \w+",
    r"o{2,3}",
    r"[^aeiou ]{4}",
    r"(?s)a.c",
    r"^$",
]
WORDS = ["indie", "rock", "pop", "hip", "hop", "deep", "dark", "soul", "punk", "core", "80s", "n", "and", "baroque"]
subgenre_text = st.lists(st.sampled_from(WORDS) | st.text("abcoprsz019", min_size=1, max_size=6), max_size=5).map(
    " ".join
)


@settings(max_examples=300, deadline=None)
@given(subgenre_text)
def test_re2_matches_what_python_re_matches(text: str) -> None:
    union = RegexUnion(PATTERNS)
    expected = [i for i, p in enumerate(PATTERNS) if re.search(p, text)]
    assert union.matching(text) == expected
    assert [i for i, p in enumerate(PATTERNS) if compile_regex(p).search(text)] == expected


def test_union_falls_back_when_a_pattern_cannot_be_joined() -> None:
    union = RegexUnion([r"\Qa.b", "^x", "y$"])  # '\Q' quotes to the end: it is searched on its own
    assert union.matching("a.b") == [0]
    assert union.matching("xy") == [1, 2]
    assert union.matching("axb") == []


def test_regex_errors_name_the_construct(write_rules: Callable[..., Path]) -> None:
    assert regex_module.MAX_REPEAT == 1000
    for pattern, fragment in [
        ("(?<!dark )trap", "lookbehind '(?<!...)' is not supported"),
        ("(?=x)", "lookahead"),
        (r"(a)\1", r"backreference '\1'"),
        ("a++", "possessive quantifier"),
        (r"trap\Z", r"write '\z'"),
        ("a{,3}", "write '{0,3}'"),
        ("(?x) a", "inline flag 'x'"),
        ("(unclosed", "missing ): (unclosed; rule regexes use RE2 syntax"),
    ]:
        with pytest.raises(regex_module.RegexError, match=re.escape(fragment)):
            compile_regex(pattern)


def test_search_falls_back_to_the_public_api() -> None:
    """The yes/no fast path uses the binding's `Match`; a release without it still works."""

    class PublicOnly:
        def __init__(self, pattern: str) -> None:
            self.compiled = compile_regex(pattern)

        def search(self, text: str) -> object:
            return self.compiled.search(text)

    fast, public = regex_module._searcher(compile_regex(r"\bindie$")), regex_module._searcher(PublicOnly(r"\bindie$"))
    assert (fast.__name__, public.__name__) == ("direct", "public")
    for text in ("la indie", "austindie", "indie pop", "é indie"):
        assert fast(text) == public(text) == (re.search(r"\bindie$", text) is not None)
