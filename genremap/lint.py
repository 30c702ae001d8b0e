"""Checks of a rule set: errors (schema, regex, targets) and warnings (dead, shadowed, duplicates,
regexes that would backtrack catastrophically in a backtracking engine).

Warnings that need data (rules that never fire, shadowed rules) use the subgenres in the
store; without a store only the static checks run. Against a vocabulary (MusicBrainz's genre
list), every name that no rule or ignore entry decides is a finding (`undecided-genre`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from genremap.engine import (
    IGNORED,
    MAPPED,
    NOT_GENRE,
    UNMAPPED,
    CompiledRules,
    Rule,
    RuleSet,
    SubgenreDecision,
    load_rules,
)
from genremap.engine.loader import display_path
from genremap.engine.regex import inspect_regex
from genremap.errors import RuleErrors
from genremap.normalize import normalize_genre
from genremap.text import escape_unprintable
from genremap.vocabulary import Vocabulary


@dataclass(frozen=True)
class Finding:
    """One lint finding: severity ('error' or 'warning'), a code, where, and what to do."""

    severity: str
    code: str
    location: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def lint_rules(rules_dir: Path, subgenres: list[str] | None) -> tuple[RuleSet | None, list[Finding]]:
    """Load `rules_dir` collecting every error; with store subgenres, also find dead and shadowed rules."""
    try:
        ruleset = load_rules(rules_dir, collect_all=True)
    except RuleErrors as exc:
        return None, [Finding("error", "invalid", str(e.location), e.problem) for e in exc.errors]
    findings: list[Finding] = []
    findings += _duplicate_patterns(ruleset)
    findings += _targets_without_rules(ruleset)
    findings += _nested_repeats(ruleset)
    if subgenres is not None:
        findings += _against_store(ruleset, subgenres)
    findings.sort(key=lambda f: (f.severity != "error", _location_key(f.location), f.code))
    return ruleset, findings


def _location_key(location: str) -> tuple[str, int, int]:
    """FILE:LINE:COL sorted by file, then numerically by line and column."""
    file, _, rest = location.rpartition(":")
    file, _, line = file.rpartition(":")
    try:
        return file, int(line), int(rest)
    except ValueError:
        return location, 0, 0


def _duplicate_patterns(ruleset: RuleSet) -> list[Finding]:
    seen: dict[tuple[str, str], list[str]] = defaultdict(list)
    findings = []
    for rule in ruleset.rules:
        for pattern in dict.fromkeys(rule.patterns):
            if rule.patterns.count(pattern) > 1:
                findings.append(
                    Finding(
                        "warning",
                        "duplicate-pattern",
                        str(rule.location),
                        f"rule '{rule.name}' lists pattern '{pattern}' more than once",
                    )
                )
            seen[(rule.kind, pattern)].append(rule.name)
    for (kind, pattern), names in seen.items():
        if len(names) > 1:
            first = ruleset.rule(names[1])
            assert first is not None
            findings.append(
                Finding(
                    "warning",
                    "duplicate-pattern",
                    str(first.location),
                    f"{kind} pattern '{pattern}' appears in rules {', '.join(repr(n) for n in names)}",
                )
            )
    return findings


def _nested_repeats(ruleset: RuleSet) -> list[Finding]:
    """Regexes that repeat a repetition, like `(\\w+\\s?)+`: RE2 matches them in linear time, but
    Python's `re` (or any backtracking engine the rules are reused with) can take hours."""
    owners: list[tuple[str, str, tuple[str, ...]]] = []
    for rule in ruleset.rules:
        where = f"rule '{rule.name}'"
        if rule.kind == "regex":
            owners.append((where, str(rule.location), rule.patterns))
        if rule.unless_kind == "regex":
            owners.append((f"{where} (unless)", str(rule.location), rule.unless))
    numbers = {False: 0, True: 0}
    for entry in ruleset.ignore:
        numbers[entry.not_genre] += 1
        where = f"{'not_genres' if entry.not_genre else 'ignore'} entry #{numbers[entry.not_genre]}"
        if entry.kind == "regex":
            owners.append((where, str(entry.location), entry.patterns))
        if entry.unless_kind == "regex":
            owners.append((f"{where} (unless)", str(entry.location), entry.unless))
    findings = []
    for where, location, patterns in owners:
        for pattern in patterns:
            nested = inspect_regex(pattern).nested_repeat
            if nested is not None:
                findings.append(
                    Finding(
                        "warning",
                        "nested-quantifier",
                        location,
                        f"{where}: regex '{pattern}' repeats a repetition ('{nested}'); genremap's RE2 matches it"
                        " in linear time, but a backtracking engine (Python's re) can take hours on it:"
                        " simplify it (e.g. '(\\w+\\s?)+' → '[\\w\\s]+')",
                    )
                )
    return findings


def _targets_without_rules(ruleset: RuleSet) -> list[Finding]:
    used = {r.target for r in ruleset.rules}
    return [
        Finding(
            "warning", "target-without-rules", str(t.location), f"target '{t.name}' has no rule: it will stay empty"
        )
        for t in ruleset.targets.values()
        if t.name not in used
    ]


def _conflict(decision: SubgenreDecision, winner: Rule, location: str, subject: str) -> Finding:
    """`subject` (a subgenre) is decided by `winner` only by file order: rules of other targets tie with it."""
    others = ", ".join(f"'{r.name}' ({r.target})" for r in decision.conflicts)
    message = f"{subject}: rule '{winner.name}' ({winner.target}) ties with {others} at priority {winner.priority}"
    return Finding("warning", "conflict", location, message)


def _against_store(ruleset: RuleSet, subgenres: list[str]) -> list[Finding]:
    compiled = CompiledRules.build(ruleset)
    decisions = compiled.decide_many(subgenres)
    matched: dict[str, int] = defaultdict(int)
    won: dict[str, int] = defaultdict(int)
    beaten_by: dict[str, set[str]] = defaultdict(set)
    findings = []
    for d in decisions.values():
        for m in d.matches:
            if m.vetoed:
                continue
            matched[m.rule.name] += 1
            if d.status == MAPPED and d.rule is not None:
                if d.rule.name == m.rule.name:
                    won[m.rule.name] += 1
                else:
                    beaten_by[m.rule.name].add(d.rule.name)
        if d.is_conflict and d.rule is not None:
            findings.append(_conflict(d, d.rule, str(d.rule.location), f"'{d.subgenre}'"))
    for rule in ruleset.rules:
        if matched[rule.name] == 0:
            findings.append(
                Finding(
                    "warning", "never-fires", str(rule.location), f"rule '{rule.name}' matches no subgenre in the store"
                )
            )
        elif won[rule.name] == 0:
            by = ", ".join(sorted(beaten_by[rule.name])) or "ignore entries"
            findings.append(
                Finding(
                    "warning",
                    "shadowed",
                    str(rule.location),
                    f"rule '{rule.name}' matches {matched[rule.name]} subgenre(s) but never decides one "
                    f"(beaten by {by})",
                )
            )
    return findings


UNDECIDED = "undecided-genre"


@dataclass(frozen=True)
class VocabularyCoverage:
    """How a rule set decides every name of a vocabulary; `findings` name the undecided ones."""

    vocabulary: Vocabulary
    mapped: int
    ignored: int
    findings: tuple[Finding, ...]
    not_genres: int = 0  # names decided "not a genre" (a genre list should have none)

    @property
    def undecided(self) -> int:
        return sum(f.code == UNDECIDED for f in self.findings)

    def summary(self) -> dict[str, Any]:
        """The counts, for `lint --format json`."""
        return {
            "name": self.vocabulary.name,
            "date": self.vocabulary.date,
            "names": len(self.vocabulary.names),
            "mapped": self.mapped,
            "ignored": self.ignored,
            "not_genres": self.not_genres,
            "undecided": self.undecided,
        }


def vocabulary_coverage(ruleset: RuleSet, vocabulary: Vocabulary) -> VocabularyCoverage:
    """Decide every name of `vocabulary` (in its canonical form) and report the undecided ones,
    located at their line of the vocabulary's file, and the decided ones that are conflicts."""
    canonical = [normalize_genre(name) for name in vocabulary.names]
    decisions = CompiledRules.build(ruleset).decide_many(canonical)
    where = display_path(vocabulary.path)
    counts = {MAPPED: 0, IGNORED: 0, UNMAPPED: 0, NOT_GENRE: 0}
    findings = []
    for index, (name, form) in enumerate(zip(vocabulary.names, canonical, strict=True)):
        decision = decisions[form]
        counts[decision.status] += 1
        location = f"{where}:{vocabulary.line_of(index)}:1"
        shown = f"'{escape_unprintable(name)}'" + ("" if form == name else f" (as '{form}')")
        if decision.status == UNMAPPED:
            vetoed = [f"rule '{m.rule.name}' vetoed by '{m.vetoed_by}'" for m in decision.matches if m.vetoed]
            why = f" ({'; '.join(vetoed)})" if vetoed else ""
            findings.append(
                Finding(
                    "warning",
                    UNDECIDED,
                    location,
                    f"{vocabulary.name} genre {shown} is decided by no rule or ignore entry{why}:"
                    " map it with a rule, or ignore it with a reason",
                )
            )
        elif decision.is_conflict and decision.rule is not None:
            findings.append(_conflict(decision, decision.rule, location, f"{vocabulary.name} genre {shown}"))
    return VocabularyCoverage(vocabulary, counts[MAPPED], counts[IGNORED], tuple(findings), counts[NOT_GENRE])
