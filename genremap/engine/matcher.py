"""Compile a RuleSet once, then decide each distinct subgenre's target, with the reasons.

Subgenres are matched in their canonical form (see `genremap.normalize`). Each distinct
subgenre is decided once; callers join the decisions onto artists and tracks.

Resolution order (documented in docs/rules.md):
1. a `not_genres` entry that matches wins over everything (the tag is no genre at all:
   Last.fm's `seen live`), then an `ignore` entry (a genre outside the targets);
2. otherwise, among the rules that match and are not vetoed by their `unless`, the
   highest `priority` wins;
3. equal priority: the rule that comes first in merge order (file name, then position in
   the file) wins; if rules of that priority point at different targets, the decision is
   flagged as a conflict and every report shows it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from rapidfuzz import fuzz, process

from genremap.engine.model import IgnoreEntry, Rule, RuleSet
from genremap.engine.regex import RegexUnion, regex_search

MAPPED, IGNORED, UNMAPPED, NOT_GENRE = "mapped", "ignored", "unmapped", "not_genre"
T = TypeVar("T")

_SCORERS = {
    "ratio": fuzz.ratio,
    "partial_ratio": fuzz.partial_ratio,
    "token_sort_ratio": fuzz.token_sort_ratio,
    "token_set_ratio": fuzz.token_set_ratio,
    "WRatio": fuzz.WRatio,
}


@dataclass(slots=True)
class Match:
    """One rule matching one subgenre through one pattern; `vetoed_by` names the `unless` hit."""

    rule: Rule
    pattern: str
    score: float = 100.0
    vetoed_by: str | None = None

    @property
    def vetoed(self) -> bool:
        return self.vetoed_by is not None


@dataclass(slots=True)
class SubgenreDecision:
    """What the rules decided for one canonical subgenre, and why."""

    subgenre: str
    status: str
    rule: Rule | None = None
    pattern: str | None = None
    score: float | None = None
    matches: tuple[Match, ...] = ()
    conflicts: tuple[Rule, ...] = ()
    ignored_by: IgnoreEntry | None = None  # the ignore or not_genres entry that decided (IGNORED, NOT_GENRE)

    @property
    def target(self) -> str | None:
        return self.rule.target if self.rule is not None and self.status == MAPPED else None

    @property
    def rule_name(self) -> str | None:
        """The deciding rule's name, None unless mapped."""
        return self.rule.name if self.rule is not None and self.status == MAPPED else None

    @property
    def is_conflict(self) -> bool:
        return bool(self.conflicts)

    @property
    def reason(self) -> str:
        """A one-line label saying why, for tables and `explain`."""
        if self.status == IGNORED and self.ignored_by is not None:
            return f"ignored: {self.ignored_by.reason} ({self.ignored_by.location})"
        if self.status == NOT_GENRE and self.ignored_by is not None:
            return f"not a genre: {self.ignored_by.reason} ({self.ignored_by.location})"
        if self.rule is None:
            vetoed = [m for m in self.matches if m.vetoed]
            if vetoed:
                return "unmapped: " + "; ".join(f"rule '{m.rule.name}' vetoed by '{m.vetoed_by}'" for m in vetoed)
            return "unmapped: no rule matches"
        text = f"rule '{self.rule.name}' ({self.rule.kind} '{self.pattern}'"
        if self.rule.kind == "fuzzy":
            text += f", score {self.score:.0f}"
        text += f", priority {self.rule.priority}) at {self.rule.location}"
        if self.conflicts:
            text += "; conflict with " + ", ".join(f"'{r.name}' → {r.target}" for r in self.conflicts)
        return text


def _pattern_hits(subgenre: str, patterns: tuple[str, ...], kind: str) -> str | None:
    """The first pattern of `patterns` that matches `subgenre` under `kind`, else None."""
    for pattern in patterns:
        if kind == "exact" and subgenre == pattern:
            return pattern
        if kind == "contains" and pattern in subgenre:
            return pattern
        if kind == "keyword" and f" {pattern} " in f" {subgenre} ":
            return pattern
        if kind == "regex" and regex_search(pattern, subgenre):
            return pattern
    return None


class _PatternIndex(Generic[T]):
    """Exact, keyword, contains and regex patterns of many items (rules and ignore entries),
    indexed so that finding every item that matches a subgenre is a few dictionary lookups."""

    def __init__(self) -> None:
        self.exact: dict[str, list[tuple[T, str]]] = defaultdict(list)
        self.word: dict[str, list[tuple[T, str]]] = defaultdict(list)  # one-word keywords
        self.phrase: dict[str, list[tuple[tuple[str, ...], T, str]]] = defaultdict(list)  # by first word
        self.contains: list[tuple[T, str]] = []
        self.regex: list[tuple[T, str]] = []  # RE2: linear time, no pattern can hang
        self._regex_union: RegexUnion | None = None

    def add(self, item: T, kind: str, patterns: tuple[str, ...]) -> None:
        for pattern in patterns:
            if kind == "exact":
                self.exact[pattern].append((item, pattern))
            elif kind == "keyword":
                phrase = tuple(pattern.split())
                if len(phrase) == 1:
                    self.word[pattern].append((item, pattern))
                else:
                    self.phrase[phrase[0]].append((phrase, item, pattern))
            elif kind == "contains":
                self.contains.append((item, pattern))
            elif kind == "regex":
                self.regex.append((item, pattern))
                self._regex_union = None

    def hits(self, subgenre: str, words: list[str]) -> list[tuple[T, str]]:
        """Every (item, pattern) matching `subgenre` (whose words are `words`)."""
        found: list[tuple[T, str]] = []
        word_index, phrase_index = self.word, self.phrase
        for start, word in enumerate(words):
            if word in word_index:
                found += word_index[word]
            if word in phrase_index:
                for phrase, item, pattern in phrase_index[word]:
                    if tuple(words[start : start + len(phrase)]) == phrase:
                        found.append((item, pattern))
        if subgenre in self.exact:
            found += self.exact[subgenre]
        if self.contains:
            found += [(item, p) for item, p in self.contains if p in subgenre]
        if self.regex:
            if self._regex_union is None:
                self._regex_union = RegexUnion([p for _, p in self.regex])
            found += [self.regex[i] for i in self._regex_union.matching(subgenre)]
        return found


@dataclass
class CompiledRules:
    """Indexes over a RuleSet's patterns, built once, so that matching is a few lookups."""

    ruleset: RuleSet
    # Rules, and ignore entries (as their position in ruleset.ignore), in one index: one pass.
    index: _PatternIndex[Rule | int] = field(default_factory=_PatternIndex)
    fuzzy: list[Rule] = field(default_factory=list)

    @classmethod
    def build(cls, ruleset: RuleSet) -> CompiledRules:
        compiled = cls(ruleset)
        for rule in ruleset.rules:
            if rule.kind == "fuzzy":
                compiled.fuzzy.append(rule)
            else:
                compiled.index.add(rule, rule.kind, rule.patterns)
        for position, entry in enumerate(ruleset.ignore):
            compiled.index.add(position, entry.kind, entry.patterns)
        return compiled

    def _fuzzy_matches(self, subgenres: list[str]) -> dict[int, list[tuple[Rule, str, float]]]:
        """Fuzzy hits per subgenre index, computed with rapidfuzz's batch `cdist`."""
        hits: dict[int, list[tuple[Rule, str, float]]] = defaultdict(list)
        if not subgenres:
            return hits
        for rule in self.fuzzy:
            scores = process.cdist(
                list(rule.patterns), subgenres, scorer=_SCORERS[rule.scorer], score_cutoff=rule.threshold, workers=1
            )
            pattern_idx, subgenre_idx = (scores >= rule.threshold).nonzero()
            best: dict[int, tuple[str, float]] = {}
            for p, s in zip(pattern_idx.tolist(), subgenre_idx.tolist(), strict=True):
                score = float(scores[p, s])
                if score > 0 and (s not in best or score > best[s][1]):
                    best[s] = (rule.patterns[p], score)
            for s, (pattern, score) in best.items():
                hits[s].append((rule, pattern, score))
        return hits

    def _ignored_by(self, subgenre: str, positions: list[int]) -> IgnoreEntry | None:
        """The first matching entry not vetoed by its `unless`: not_genres entries first, then
        ignore entries, each in merge order."""
        entries = self.ruleset.ignore
        for position in sorted(set(positions), key=lambda p: (not entries[p].not_genre, p)):
            entry = entries[position]
            if entry.unless and _pattern_hits(subgenre, entry.unless, entry.unless_kind) is not None:
                continue
            return entry
        return None

    def decide_many(self, subgenres: Iterable[str]) -> dict[str, SubgenreDecision]:
        """Decide each distinct canonical subgenre once."""
        distinct = list(dict.fromkeys(subgenres))
        fuzzy_hits = self._fuzzy_matches(distinct) if self.fuzzy else {}
        return {s: self._decide(s, fuzzy_hits.get(i, [])) for i, s in enumerate(distinct)}

    def touched(self, subgenres: list[str]) -> set[str]:
        """The subgenres that a pattern of these rules or ignore entries hits, vetoed or not:
        the only ones whose decision these rules can take part in."""
        fuzzy_hits = self._fuzzy_matches(subgenres) if self.fuzzy else {}
        return {s for i, s in enumerate(subgenres) if i in fuzzy_hits or self.index.hits(s, s.split())}

    def decide(self, subgenre: str) -> SubgenreDecision:
        return self.decide_many([subgenre])[subgenre]

    def _decide(self, subgenre: str, fuzzy_hits: list[tuple[Rule, str, float]]) -> SubgenreDecision:
        raw: list[tuple[Rule, str, float]] = []
        ignore_hits: list[int] = []
        for item, pattern in self.index.hits(subgenre, subgenre.split()):
            if isinstance(item, int):
                ignore_hits.append(item)
            else:
                raw.append((item, pattern, 100.0))
        raw += fuzzy_hits
        if len(raw) > 1:
            raw.sort(key=lambda m: (m[0].order, -m[2]))
        seen: set[str] = set()
        matches: list[Match] = []
        winner: Match | None = None  # matches are in merge order: the first of the top priority wins
        for rule, pattern, score in raw:
            if rule.name in seen:
                continue
            seen.add(rule.name)
            veto = _pattern_hits(subgenre, rule.unless, rule.unless_kind) if rule.unless else None
            match = Match(rule, pattern, score, veto)
            matches.append(match)
            if veto is None and (winner is None or rule.priority > winner.rule.priority):
                winner = match
        ignored = self._ignored_by(subgenre, ignore_hits) if ignore_hits else None
        if ignored is not None:
            status = NOT_GENRE if ignored.not_genre else IGNORED
            return SubgenreDecision(subgenre, status, matches=tuple(matches), ignored_by=ignored)
        if winner is None:
            return SubgenreDecision(subgenre, UNMAPPED, matches=tuple(matches))
        top, target = winner.rule.priority, winner.rule.target
        conflicts = tuple(
            m.rule for m in matches if m.vetoed_by is None and m.rule.priority == top and m.rule.target != target
        )
        return SubgenreDecision(
            subgenre,
            MAPPED,
            rule=winner.rule,
            pattern=winner.pattern,
            score=winner.score,
            matches=tuple(matches),
            conflicts=conflicts,
        )
