"""The rule engine: one table of rule file → subgenre → expected decision, then specifics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from genremap.engine import IGNORED, MAPPED, UNMAPPED, CompiledRules, RuleSet, load_rules
from genremap.normalize import normalize_genre

CASES = [
    # (id, rules yaml, subgenre as Spotify writes it, expected target or status, expected rule)
    (
        "keyword whole word",
        "rules: [{name: r, target: rock, kind: keyword, patterns: [rock]}]",
        "vancouver rock",
        "rock",
        "r",
    ),
    (
        "keyword not inside a word",
        "rules: [{name: r, target: rock, kind: keyword, patterns: [rock]}]",
        "rockabilly",
        UNMAPPED,
        None,
    ),
    (
        "keyword phrase",
        "rules: [{name: h, target: hip hop, kind: keyword, patterns: [hip hop]}]",
        "Southern Hip-Hop",
        "hip hop",
        "h",
    ),
    (
        "keyword phrase needs all words",
        "rules: [{name: h, target: hip hop, kind: keyword, patterns: [hip hop]}]",
        "hip house",
        UNMAPPED,
        None,
    ),
    (
        "contains substring",
        "rules: [{name: r, target: rock, kind: contains, patterns: [rock]}]",
        "rockabilly",
        "rock",
        "r",
    ),
    (
        "exact whole subgenre",
        "rules: [{name: e, target: blues, kind: exact, patterns: [quiet storm]}]",
        "Quiet Storm",
        "blues",
        "e",
    ),
    (
        "exact rejects longer",
        "rules: [{name: e, target: blues, kind: exact, patterns: [quiet storm]}]",
        "quiet storm pop",
        UNMAPPED,
        None,
    ),
    (
        "regex search",
        "rules: [{name: x, target: metal, kind: regex, patterns: ['(death|black) metal$']}]",
        "swedish death metal",
        "metal",
        "x",
    ),
    (
        "regex on canonical form",
        "rules: [{name: x, target: rock, kind: regex, patterns: ['^post grunge$']}]",
        "post-grunge",
        "rock",
        "x",
    ),
    (
        "fuzzy above threshold",
        "rules: [{name: f, target: country, kind: fuzzy, patterns: [americana], threshold: 85}]",
        "americanna",
        "country",
        "f",
    ),
    (
        "fuzzy below threshold",
        "rules: [{name: f, target: country, kind: fuzzy, patterns: [americana], threshold: 95}]",
        "americanna",
        UNMAPPED,
        None,
    ),
    (
        "fuzzy token_set scorer",
        "rules: [{name: f, target: jazz, kind: fuzzy, scorer: token_set_ratio, patterns: [jazz], threshold: 99}]",
        "jazz",
        "jazz",
        "f",
    ),
    (
        "higher priority wins",
        "rules: [{name: r, target: rock, kind: keyword, patterns: [rock]}, {name: m, target: metal, kind: keyword, patterns: [metal], priority: 10}]",
        "rap metal rock",
        "metal",
        "m",
    ),
    (
        "priority beats file order",
        "rules: [{name: m, target: metal, kind: keyword, patterns: [metal]}, {name: h, target: hip hop, kind: exact, patterns: [rap metal], priority: 1}]",
        "rap metal",
        "hip hop",
        "h",
    ),
    (
        "equal priority: first in merge order",
        "rules: [{name: j, target: jazz, kind: keyword, patterns: [jazz]}, {name: s, target: blues, kind: keyword, patterns: [soul]}]",
        "soul jazz",
        "jazz",
        "j",
    ),
    (
        "unless vetoes",
        "rules: [{name: r, target: rock, kind: keyword, patterns: [rock], unless: [rock steady]}]",
        "rock steady",
        UNMAPPED,
        None,
    ),
    (
        "unless only where it hits",
        "rules: [{name: r, target: rock, kind: keyword, patterns: [rock], unless: [rock steady]}]",
        "hard rock",
        "rock",
        "r",
    ),
    (
        "unless_kind contains",
        "rules: [{name: r, target: rock, kind: keyword, patterns: [rock], unless: [steady], unless_kind: contains}]",
        "rock steadyish",
        UNMAPPED,
        None,
    ),
    (
        "vetoed rule lets a lower one win",
        "rules: [{name: t, target: hip hop, kind: keyword, patterns: [trap], priority: 9, unless: [latino]}, {name: l, target: house, kind: keyword, patterns: [latino]}]",
        "trap latino",
        "house",
        "l",
    ),
    (
        "ignore beats every rule",
        "rules: [{name: p, target: rock, kind: keyword, patterns: [pop], priority: 99}]\nignore: [{subgenre: pop, reason: pop}]",
        "pop",
        IGNORED,
        None,
    ),
    (
        "ignore exact only",
        "rules: [{name: p, target: rock, kind: keyword, patterns: [pop]}]\nignore: [{subgenre: pop, reason: pop}]",
        "pop punk",
        "rock",
        "p",
    ),
    (
        "ignore keyword kind",
        "rules: [{name: p, target: rock, kind: keyword, patterns: [rock]}]\nignore: [{kind: keyword, patterns: [k pop], reason: k-pop}]",
        "k-pop rock",
        IGNORED,
        None,
    ),
    (
        "ignore unless spares",
        "rules: [{name: p, target: rock, kind: keyword, patterns: [punk]}]\nignore: [{kind: keyword, patterns: [pop], unless: [punk], reason: pop}]",
        "pop punk",
        "rock",
        "p",
    ),
    (
        "ignore unless elsewhere",
        "rules: [{name: p, target: rock, kind: keyword, patterns: [punk]}]\nignore: [{kind: keyword, patterns: [pop], unless: [punk], reason: pop}]",
        "swedish pop",
        IGNORED,
        None,
    ),
    (
        "pattern spelled differently",
        "rules: [{name: h, target: hip hop, kind: keyword, patterns: [Hip-Hop]}]",
        "hiphop",
        "hip hop",
        "h",
    ),
    (
        "and variants meet",
        "rules: [{name: r, target: rock, kind: exact, patterns: [rock and roll]}]",
        "Rock 'n' Roll",
        "rock",
        "r",
    ),
]


@pytest.mark.parametrize(
    ("rules_yaml", "subgenre", "expected", "rule"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_decision_table(
    write_rules: Callable[..., Path], rules_yaml: str, subgenre: str, expected: str, rule: str | None
) -> None:
    compiled = CompiledRules.build(load_rules(write_rules({"10-case.yaml": rules_yaml})))
    decision = compiled.decide(normalize_genre(subgenre))
    if expected in (UNMAPPED, IGNORED):
        assert decision.status == expected
        assert decision.target is None
    else:
        assert decision.status == MAPPED
        assert decision.target == expected
    assert (decision.rule.name if decision.rule and decision.status == MAPPED else None) == rule


def test_conflict_is_reported_and_deterministic(test_rules: RuleSet, write_rules: Callable[..., Path]) -> None:
    text = "rules: [{name: j, target: jazz, kind: keyword, patterns: [jazz]}, {name: s, target: blues, kind: keyword, patterns: [soul]}]"
    compiled = CompiledRules.build(load_rules(write_rules({"10.yaml": text})))
    decision = compiled.decide("soul jazz")
    assert decision.is_conflict
    assert [r.name for r in decision.conflicts] == ["s"]
    assert "conflict" in decision.reason
    # Same priority, same target: not a conflict.
    same = "rules: [{name: a, target: jazz, kind: keyword, patterns: [jazz]}, {name: b, target: jazz, kind: keyword, patterns: [soul]}]"
    assert not CompiledRules.build(load_rules(write_rules({"10.yaml": same}))).decide("soul jazz").is_conflict


def test_rule_files_merge_in_file_name_order(write_rules: Callable[..., Path]) -> None:
    folder = write_rules(
        {
            "20-second.yaml": "rules: [{name: second, target: blues, kind: keyword, patterns: [soul]}]",
            "10-first.yaml": "rules: [{name: first, target: jazz, kind: keyword, patterns: [jazz]}]",
        }
    )
    ruleset = load_rules(folder)
    assert [r.name for r in ruleset.rules] == ["first", "second"]
    assert CompiledRules.build(ruleset).decide("soul jazz").rule.name == "first"  # type: ignore[union-attr]


def test_explanation_lists_every_match_with_location(test_rules: RuleSet) -> None:
    decision = CompiledRules.build(test_rules).decide("soul jazz")
    names = [m.rule.name for m in decision.matches]
    assert set(names) == {"jazz", "soul", "soul jazz"}
    assert decision.rule is not None and decision.rule.name == "soul jazz"
    assert decision.rule.location.file.endswith("10-rules.yaml")
    assert decision.rule.location.line > 1
    vetoed = CompiledRules.build(test_rules).decide("trap latino")
    assert vetoed.status == UNMAPPED
    assert [m.vetoed_by for m in vetoed.matches] == ["trap latino"]


def test_fuzzy_records_score(test_rules: RuleSet) -> None:
    decision = CompiledRules.build(test_rules).decide("americanaa")
    assert decision.target == "country"
    assert decision.score is not None and 85 <= decision.score < 100


def test_each_distinct_subgenre_is_decided_once(test_rules: RuleSet) -> None:
    compiled = CompiledRules.build(test_rules)
    decisions = compiled.decide_many(["hard rock", "hard rock", "jazz", "hard rock"])
    assert list(decisions) == ["hard rock", "jazz"]


def test_rules_hash_changes_with_content(write_rules: Callable[..., Path]) -> None:
    a = load_rules(write_rules({"10.yaml": "rules: [{name: r, target: rock, kind: keyword, patterns: [rock]}]"}))
    b = load_rules(write_rules({"10.yaml": "rules: [{name: r, target: rock, kind: keyword, patterns: [rock, punk]}]"}))
    c = load_rules(write_rules({"10.yaml": "rules: [{name: r, target: rock, kind: keyword, patterns: [rock]}]"}))
    assert a.source_hash != b.source_hash
    assert a.source_hash == c.source_hash
