"""Domain objects of the rule engine: targets, rules, ignore entries, the merged rule set."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

from genremap.errors import Location

RuleKind = Literal["keyword", "contains", "exact", "regex", "fuzzy"]
RULE_KINDS: tuple[str, ...] = ("keyword", "contains", "exact", "regex", "fuzzy")
UNLESS_KINDS: tuple[str, ...] = ("keyword", "contains", "exact", "regex")
FUZZY_SCORERS: tuple[str, ...] = ("ratio", "partial_ratio", "token_sort_ratio", "token_set_ratio", "WRatio")
POLICIES: tuple[str, ...] = ("vote", "first", "priority")
OUT_OF_SCOPE: tuple[str, ...] = ("abstain", "vote")  # what ignored (out-of-scope) subgenres do in the vote


@dataclass(frozen=True)
class Target:
    """A target genre: one class of the dataset."""

    name: str
    description: str
    location: Location


@dataclass(frozen=True)
class Rule:
    """Maps subgenres matching `patterns` (by `kind`) onto `target`, unless an `unless` pattern hits."""

    name: str
    target: str
    kind: str
    patterns: tuple[str, ...]
    location: Location
    priority: int = 0
    unless: tuple[str, ...] = ()
    unless_kind: str = "keyword"
    threshold: float = 90.0
    scorer: str = "ratio"
    weight: float = 1.0
    order: int = 0  # position in the merged rule set: the documented tie-break


@dataclass(frozen=True)
class IgnoreEntry:
    """Subgenres deliberately left unlabelled, with the reason why: genres outside the
    targets (`ignore:`), or, with `not_genre`, tags that are no genre at all (`not_genres:`,
    such as Last.fm's `seen live`), which never count for or against a label."""

    patterns: tuple[str, ...]
    reason: str
    location: Location
    kind: str = "exact"
    unless: tuple[str, ...] = ()
    unless_kind: str = "keyword"
    # Its vote for "none" when the policy counts out-of-scope votes (`out_of_scope: vote`);
    # 0: the entry abstains (subgenres ambiguous between targets, or no style at all).
    weight: float = 1.0
    not_genre: bool = False


@dataclass(frozen=True)
class Policy:
    """How an artist's several subgenres resolve to one target."""

    name: str = "vote"
    min_share: float = 0.5
    min_margin: float = 0.1
    location: Location | None = None
    min_votes: int = 1  # MusicBrainz genres with fewer votes are dropped (genres without counts stay)
    # "vote": each ignored (out-of-scope) subgenre votes for "none" in the vote policy;
    # "abstain" (the default): they cast no vote, as before this option existed.
    out_of_scope: str = "abstain"
    # Groups of related targets: an artist split between two targets of one group, the two
    # together clearly ahead, takes the larger (vote policy). Empty: no group.
    related: tuple[tuple[str, ...], ...] = ()


@dataclass
class RuleSet:
    """Every rule file of a directory, merged in file-name order."""

    targets: dict[str, Target] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    ignore: list[IgnoreEntry] = field(default_factory=list)  # `not_genres:` entries too (not_genre=True)
    policy: Policy = field(default_factory=Policy)
    files: list[str] = field(default_factory=list)
    source_hash: str = ""

    def rule(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)

    @staticmethod
    def hash_sources(sources: list[tuple[str, bytes]]) -> str:
        """A stable digest of the rule files' names and bytes (for manifests)."""
        digest = hashlib.sha256()
        for name, data in sources:
            digest.update(name.encode() + b"\0" + data + b"\0")
        return digest.hexdigest()
