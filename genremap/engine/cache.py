"""Decisions of a rule set for a vocabulary, kept between commands and reused.

A subgenre's decision depends only on the subgenre and on the rules and ignore entries whose
patterns hit it (vetoed or not), in their merge order. So decisions can be saved, keyed by
what the rules say (`rules_key`: names, targets, kinds, patterns, priorities, vetoes, in
order; not comments, file names, line numbers or vote weights) and by the vocabulary (the
distinct canonical subgenres), and reused:

- same rules and vocabulary: every decision is reused, none is made again;
- otherwise, from the closest saved entry (same vocabulary, else same rules): a subgenre is
  decided again only when it is new, or when the old or the new version of a changed, added
  or removed rule or ignore entry hits it; every other decision is the saved one, bound to
  the current rules (so locations and weights are always today's).

The result is the same as deciding everything afresh (tests/test_decision_cache.py). Reused
decisions name rules by name (unique across the files) and ignore entries by position; when
the rules that several keep were reordered, nothing is reused. The engine's own code and
rapidfuzz's version are part of the key (`engine_key`): another matcher never reuses them.

This module knows nothing of the store: it turns decisions into bytes and back.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import rapidfuzz

from genremap.engine.matcher import IGNORED, MAPPED, NOT_GENRE, UNMAPPED, CompiledRules, Match, SubgenreDecision
from genremap.engine.model import IgnoreEntry, Rule, RuleSet
from genremap.errors import Location

FORMAT = 2  # 2: not_genres entries and their status
_STATUSES = (MAPPED, IGNORED, UNMAPPED, NOT_GENRE)
_NOWHERE = Location("<cache>", 0, 0)
# Beyond this share of the vocabulary to decide again, deciding everything is as cheap.
_INCREMENTAL_LIMIT = 0.5


@dataclass(frozen=True)
class CacheKey:
    """What a saved set of decisions was made with: the engine, the rules, the vocabulary."""

    engine: str
    rules: str
    vocab: str


@dataclass(frozen=True)
class CacheUse:
    """How a labelling got its decisions: `reused` from a saved entry, `decided` afresh;
    `hit` when the saved entry had exactly these rules and this vocabulary."""

    hit: bool
    reused: int
    decided: int


@dataclass(frozen=True)
class Saved:
    """A saved entry as the store gives it back."""

    key: CacheKey
    payload: bytes


def _rule_signature(rule: Rule) -> list[Any]:
    """Everything about a rule that decisions depend on (its weight only matters to artists)."""
    return [
        rule.name,
        rule.target,
        rule.kind,
        list(rule.patterns),
        rule.priority,
        list(rule.unless),
        rule.unless_kind,
        rule.threshold,
        rule.scorer,
    ]


def _ignore_signature(entry: IgnoreEntry) -> list[Any]:
    """Everything about an ignore (or not_genres) entry that decisions depend on (its reason is
    shown, not used)."""
    return [list(entry.patterns), entry.kind, list(entry.unless), entry.unless_kind, entry.not_genre]


def _rule_from(signature: list[Any]) -> Rule:
    name, target, kind, patterns, priority, unless, unless_kind, threshold, scorer = signature
    return Rule(
        name=name,
        target=target,
        kind=kind,
        patterns=tuple(patterns),
        location=_NOWHERE,
        priority=priority,
        unless=tuple(unless),
        unless_kind=unless_kind,
        threshold=threshold,
        scorer=scorer,
    )


def _ignore_from(signature: list[Any]) -> IgnoreEntry:
    patterns, kind, unless, unless_kind, not_genre = signature
    return IgnoreEntry(
        tuple(patterns), "", _NOWHERE, kind=kind, unless=tuple(unless), unless_kind=unless_kind, not_genre=not_genre
    )


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()


@lru_cache(maxsize=1)
def engine_key() -> str:
    """A digest of the code that decides (matcher, regexes, this cache) and of rapidfuzz's version."""
    parts: list[str] = [str(FORMAT), rapidfuzz.__version__]
    for module in ("matcher.py", "regex.py", "cache.py"):
        try:
            parts.append(hashlib.sha256(resources.files("genremap.engine").joinpath(module).read_bytes()).hexdigest())
        except OSError:  # installed without sources: the package version stands in
            from genremap import __version__

            parts.append(__version__)
    return _digest(parts)


def rules_signature(ruleset: RuleSet) -> dict[str, Any]:
    return {
        "rules": [_rule_signature(r) for r in ruleset.rules],
        "ignore": [_ignore_signature(e) for e in ruleset.ignore],
    }


def cache_key(ruleset: RuleSet, vocab: Sequence[str]) -> CacheKey:
    return CacheKey(engine_key(), _digest(rules_signature(ruleset)), _digest(sorted(vocab)))


def encode(ruleset: RuleSet, decisions: dict[str, SubgenreDecision]) -> bytes:
    """The decisions (and the rules they were made with) as compressed JSON, one list per field
    (rules and ignore entries as positions in the saved lists): quick to read back."""
    rule_index = {r.name: i for i, r in enumerate(ruleset.rules)}
    ignore_index = {id(entry): i for i, entry in enumerate(ruleset.ignore)}
    vocab = sorted(decisions)
    columns: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
    for subgenre in vocab:
        d = decisions[subgenre]
        columns["status"].append(_STATUSES.index(d.status))
        columns["rule"].append(rule_index[d.rule.name] if d.rule is not None else -1)
        columns["pattern"].append(d.pattern)
        columns["score"].append(d.score)
        columns["ignored"].append(ignore_index[id(d.ignored_by)] if d.ignored_by is not None else -1)
        columns["matches"].append(len(d.matches))
        for m in d.matches:
            columns["m_rule"].append(rule_index[m.rule.name])
            columns["m_pattern"].append(m.pattern)
            columns["m_score"].append(m.score)
            columns["m_veto"].append(m.vetoed_by)
        columns["conflicts"].append(len(d.conflicts))
        columns["c_rule"].extend(rule_index[r.name] for r in d.conflicts)
    data = {"format": FORMAT, **rules_signature(ruleset), "vocab": vocab, **columns}
    return zlib.compress(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode(), 1)


_COLUMNS = (
    "status",
    "rule",
    "pattern",
    "score",
    "ignored",
    "matches",
    "m_rule",
    "m_pattern",
    "m_score",
    "m_veto",
    "conflicts",
    "c_rule",
)


def _decode(payload: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(zlib.decompress(payload))
    except (ValueError, zlib.error):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    return data


@dataclass
class _Delta:
    """What changed between the saved rules and the current ones."""

    rules: list[Rule | None]  # per saved rule: the current rule, None when changed or removed
    ignore: list[IgnoreEntry | None]  # per saved ignore entry: the current one, None when gone
    old_rules: list[Rule]  # the saved versions of rules changed or removed
    new_rules: list[Rule]  # the current versions of rules changed or added
    old_ignore: list[IgnoreEntry]  # saved ignore entries no longer there as they were
    new_ignore: list[IgnoreEntry]


def _same_rules(ruleset: RuleSet) -> _Delta:
    """The delta when the saved rules are the current ones (same key): nothing changed."""
    return _Delta(list(ruleset.rules), list(ruleset.ignore), [], [], [], [])


def _delta(saved: dict[str, Any], ruleset: RuleSet) -> _Delta | None:
    """The changed rules and ignore entries, or None when the rules kept were reordered."""
    old = {s[0]: s for s in saved["rules"]}
    new = {r.name: _rule_signature(r) for r in ruleset.rules}
    kept_old = [name for name in old if name in new]
    kept_new = [r.name for r in ruleset.rules if r.name in old]
    if kept_old != kept_new or len(old) != len(saved["rules"]):
        return None
    current = {r.name: r for r in ruleset.rules}
    rules = [current[s[0]] if new.get(s[0]) == s else None for s in saved["rules"]]
    old_rules = [_rule_from(s) for s in saved["rules"] if new.get(s[0]) != s]
    new_rules = [r for r in ruleset.rules if old.get(r.name) != new[r.name]]
    old_sigs = [json.dumps(s) for s in saved["ignore"]]
    new_sigs = [json.dumps(_ignore_signature(e)) for e in ruleset.ignore]
    ignore: list[IgnoreEntry | None] = [None] * len(old_sigs)
    kept: set[int] = set()
    for block in difflib.SequenceMatcher(None, old_sigs, new_sigs, autojunk=False).get_matching_blocks():
        for i in range(block.size):
            ignore[block.a + i] = ruleset.ignore[block.b + i]
            kept.add(block.b + i)
    old_ignore = [_ignore_from(s) for s, entry in zip(saved["ignore"], ignore, strict=True) if entry is None]
    new_ignore = [e for i, e in enumerate(ruleset.ignore) if i not in kept]
    return _Delta(rules, ignore, old_rules, new_rules, old_ignore, new_ignore)


def _touched(delta: _Delta, subgenres: list[str]) -> set[str]:
    """The subgenres that the old or new version of anything changed hits."""
    changed = RuleSet(rules=[*delta.old_rules, *delta.new_rules], ignore=[*delta.old_ignore, *delta.new_ignore])
    if not changed.rules and not changed.ignore:
        return set()
    return CompiledRules.build(changed).touched(subgenres)


def _rebound(data: dict[str, Any], delta: _Delta, wanted: set[str]) -> dict[str, SubgenreDecision]:
    """The saved decisions of the `wanted` subgenres, bound to the current rules' objects.
    One whose rules are not all there as they were is left out (to be decided again)."""
    rules = {i: r for i, r in enumerate(delta.rules) if r is not None}
    ignore = {i: e for i, e in enumerate(delta.ignore) if e is not None}
    rules[-1], ignore[-1] = None, None  # type: ignore[assignment]
    status, rule, pattern, score, ignored = (data[k] for k in ("status", "rule", "pattern", "score", "ignored"))
    n_matches, m_rule, m_pattern, m_score, m_veto = (
        data[k] for k in ("matches", "m_rule", "m_pattern", "m_score", "m_veto")
    )
    n_conflicts, c_rule = data["conflicts"], data["c_rule"]
    out: dict[str, SubgenreDecision] = {}
    m = c = 0
    for i, subgenre in enumerate(data["vocab"]):
        m0, c0 = m, c
        m, c = m + n_matches[i], c + n_conflicts[i]
        if subgenre not in wanted:
            continue
        try:
            matches = (
                tuple([Match(rules[m_rule[k]], m_pattern[k], m_score[k], m_veto[k]) for k in range(m0, m)])
                if m > m0
                else ()
            )
            conflicts = tuple([rules[k] for k in c_rule[c0:c]]) if c > c0 else ()
            out[subgenre] = SubgenreDecision(
                subgenre,
                _STATUSES[status[i]],
                rules[rule[i]],
                pattern[i],
                score[i],
                matches,
                conflicts,
                ignore[ignored[i]],
            )
        except KeyError:  # a rule or ignore entry that changed: decide it again
            continue
    return out


def _reuse(
    data: dict[str, Any], ruleset: RuleSet, vocab: list[str], same: bool
) -> tuple[dict[str, SubgenreDecision], list[str]] | None:
    """Decisions reusable from a saved entry, and the subgenres to decide again; None when
    the saved entry cannot serve (reordered rules, or most of the vocabulary to decide)."""
    delta = _same_rules(ruleset) if same else _delta(data, ruleset)
    if delta is None:
        return None
    saved = set(data["vocab"])
    common = [s for s in vocab if s in saved]
    redo = set(vocab) - saved | _touched(delta, common)
    if len(redo) > _INCREMENTAL_LIMIT * len(vocab):
        return None
    reused = _rebound(data, delta, set(common) - redo)
    return reused, [s for s in vocab if s not in reused]


def decide_cached(
    ruleset: RuleSet, vocab: list[str], saved: Saved | None, compiled: Callable[[], CompiledRules]
) -> tuple[dict[str, SubgenreDecision], CacheUse, bytes | None]:
    """Decide `vocab` (distinct canonical subgenres) as `compiled().decide_many` would, reusing
    what `saved` holds. Returns the decisions (in vocabulary order), how they were made, and
    the bytes to save for next time (None when `saved` already holds exactly them)."""
    key = cache_key(ruleset, vocab)
    data = _decode(saved.payload) if saved is not None and saved.key.engine == key.engine else None
    found, same_rules, same_vocab = None, False, False
    if data is not None:
        try:
            # What the entry holds is read from the payload itself, never from the key it was
            # filed under: a row copied from another store or rule set cannot pass for these rules.
            same_rules = _digest({"rules": data["rules"], "ignore": data["ignore"]}) == key.rules
            same_vocab = _digest(sorted(data["vocab"])) == key.vocab
            found = _reuse(data, ruleset, vocab, same=same_rules)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):  # a damaged entry is no entry
            found = None
    if found is None:
        decisions = compiled().decide_many(vocab)
        return decisions, CacheUse(hit=False, reused=0, decided=len(vocab)), encode(ruleset, decisions)
    reused, redo = found
    fresh = compiled().decide_many(redo) if redo else {}
    decisions = {s: reused[s] if s in reused else fresh[s] for s in vocab}
    hit = same_rules and same_vocab and not redo
    use = CacheUse(hit=hit, reused=len(reused), decided=len(redo))
    filed_right = saved is not None and saved.key == key
    return decisions, use, None if hit and filed_right else encode(ruleset, decisions)
