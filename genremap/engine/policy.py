"""Resolve each artist's several subgenres to one target, with integer arrays (numpy).

Policies:
- `first`: the first subgenre in the artist's list that maps decides (the seed notebook).
- `vote` (default): each mapped subgenre votes for its target with its rule's weight, times
  its vote count where the source gives one (MusicBrainz: 12 votes weigh twelve times 1); the
  top target wins when its share of the votes is at least `min_share` and it leads the
  runner-up by at least `min_margin` (as a share of all votes; a tie never passes);
  otherwise the artist is *ambiguous*.
  Two options of the rule files' `policy:` refine it:
  - `out_of_scope: vote`: each ignored (out-of-scope) subgenre votes for "none" with its
    ignore entry's weight (default 1, 0 abstains; times its vote count). "None" counts in the
    total, and the top target must also lead it by `min_margin`; an artist whose "none"
    votes are at least its top target's is *ignored* (mostly outside the targets).
    `abstain` (the default): ignored subgenres cast no vote.
  - `related: [[rock, metal], ...]`: an artist that is not decided above, whose two largest
    targets belong to one group and together pass `min_share` and lead the rest ("none" and
    the third target) by `min_margin`, takes the larger of the two; on a tie, the one its
    group lists first (the first group naming both). Unrelated splits stay ambiguous.
- `priority`: the mapped subgenre whose rule has the highest priority decides; ties go to
  the earlier subgenre in the artist's list.
Artists with no mapped subgenre are *ignored* when every subgenre they carry is ignored,
else *unlabelled* (this includes artists with no genres at all). Not-genres (`not_genres:`,
Last.fm's `seen live`) are as if absent: they never vote, and never make an artist ignored.

Inputs are rows of (artist, position, subgenre) as integer codes, sorted by artist then
position, one row per distinct subgenre of an artist; every step is a vectorised array
operation, so a million artists cost about as much as a few numpy sorts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from genremap.engine.matcher import IGNORED, MAPPED, NOT_GENRE, SubgenreDecision
from genremap.engine.model import Policy

LABELLED, AMBIGUOUS, UNLABELLED, IGNORED_ARTIST = "labelled", "ambiguous", "unlabelled", "ignored"
ARTIST_STATUSES = (LABELLED, AMBIGUOUS, UNLABELLED, IGNORED_ARTIST)  # index = status code
_MAPPED, _IGNORED, _UNMAPPED, _NOT_GENRE = 0, 1, 2, 3  # subgenre status codes


@dataclass(frozen=True)
class DecisionArrays:
    """Per subgenre code: status, target code (-1 for none), rule priority and vote weight,
    and the weight of an ignored subgenre's vote for "none" (its ignore entry's weight)."""

    status: np.ndarray
    target: np.ndarray
    priority: np.ndarray
    weight: np.ndarray
    none_weight: np.ndarray | None = None

    @classmethod
    def build(cls, decisions: Sequence[SubgenreDecision], targets: Sequence[str]) -> DecisionArrays:
        target_code = {t: i for i, t in enumerate(targets)}
        status = np.full(len(decisions), _UNMAPPED, dtype=np.int8)
        target = np.full(len(decisions), -1, dtype=np.int64)
        priority = np.zeros(len(decisions), dtype=np.int64)
        weight = np.zeros(len(decisions), dtype=np.float64)
        none_weight = np.zeros(len(decisions), dtype=np.float64)
        for i, d in enumerate(decisions):
            if d.status == MAPPED and d.rule is not None:
                status[i], target[i] = _MAPPED, target_code[d.rule.target]
                priority[i], weight[i] = d.rule.priority, d.rule.weight
            elif d.status == IGNORED:
                status[i] = _IGNORED
                none_weight[i] = d.ignored_by.weight if d.ignored_by is not None else 1.0
            elif d.status == NOT_GENRE:
                status[i] = _NOT_GENRE
        return cls(status, target, priority, weight, none_weight)


@dataclass(frozen=True)
class ArtistLabels:
    """Per artist: status code (index into ARTIST_STATUSES), target code (-1), the row that
    decided (-1), the winning target's share of the votes (NaN when unlabelled), the number of
    subgenres carried, and the votes per target (artists × targets)."""

    status: np.ndarray
    target: np.ndarray
    row: np.ndarray
    share: np.ndarray
    carried: np.ndarray
    votes: np.ndarray
    # Per artist: the out-of-scope ("none") votes, zero unless the policy counts them, and
    # whether related targets decided the label.
    none: np.ndarray | None = None
    related: np.ndarray | None = None

    @property
    def out_of_scope(self) -> np.ndarray:
        """Per artist: the "none" votes (zeros when the policy does not count them)."""
        return self.none if self.none is not None else np.zeros(len(self.status))

    @property
    def by_related(self) -> np.ndarray:
        """Per artist: whether related targets decided the label."""
        return self.related if self.related is not None else np.zeros(len(self.status), dtype=bool)

    def details(self, targets: Sequence[str]) -> np.ndarray:
        """Why each unlabelled artist is so, in words; the vote breakdown of ambiguous artists,
        of artists mostly out of scope and of those related targets decided."""
        detail = np.full(len(self.status), "", dtype=object)
        detail[(self.status == 2) & (self.carried == 0)] = "no genres"
        detail[(self.status == 2) & (self.carried > 0)] = "no subgenre maps"
        scoped = (self.status == 3) & (self.votes.sum(axis=1) > 0)
        detail[(self.status == 3) & ~scoped] = "every subgenre is ignored"
        for a in np.flatnonzero((self.status == 1) | scoped | self.by_related).tolist():
            breakdown = self.breakdown(a, targets)
            detail[a] = {1: breakdown, 3: f"mostly out of scope: {breakdown}"}.get(
                int(self.status[a]), f"related targets decided: {breakdown}"
            )
        return detail

    def breakdown(self, a: int, targets: Sequence[str]) -> str:
        """One artist's votes as shares, largest first: 'rock 45% / none 30% / metal 25%'."""
        names = [*targets, "none"]
        votes = np.r_[self.votes[a], self.out_of_scope[a]]
        shares = votes / votes.sum()
        ranked = sorted(((s, t) for t, s in enumerate(shares) if s > 0), key=lambda st: (-st[0], st[1]))
        return " / ".join(f"{names[t]} {s:.0%}" for s, t in ranked)


def _first_per_group(groups: np.ndarray) -> np.ndarray:
    """Indices of the first element of each run of equal values in a sorted array."""
    if len(groups) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])


def resolve(
    n_artists: int,
    artist: np.ndarray,
    subgenre: np.ndarray,
    decisions: DecisionArrays,
    policy: Policy,
    targets: Sequence[str],
    row_weight: np.ndarray | None = None,
) -> ArtistLabels:
    """Label `n_artists` artists from their rows (artist code, subgenre code), sorted by artist
    then by position in the artist's list. `row_weight` (per row, default 1) multiplies each
    row's rule weight in the vote: a MusicBrainz genre's vote count."""
    n_targets = len(targets)
    sub_status = decisions.status[subgenre] if len(subgenre) else np.zeros(0, dtype=np.int8)
    mapped = np.flatnonzero(sub_status == _MAPPED)
    m_artist = artist[mapped]
    m_target = decisions.target[subgenre[mapped]]
    weights = decisions.weight[subgenre[mapped]]
    if row_weight is not None:
        weights = weights * row_weight[mapped]
    votes = np.bincount(m_artist * n_targets + m_target, weights=weights, minlength=n_artists * n_targets).reshape(
        n_artists, n_targets
    )
    total = votes.sum(axis=1)
    has_vote = total > 0

    status = np.full(n_artists, 2, dtype=np.int8)  # unlabelled
    target = np.full(n_artists, -1, dtype=np.int64)
    row = np.full(n_artists, -1, dtype=np.int64)
    none: np.ndarray | None = None
    related: np.ndarray | None = None

    if policy.name == "vote":
        counts_none = policy.out_of_scope == "vote"
        none = _none_votes(n_artists, artist, subgenre, decisions, row_weight) if counts_none else None
        decided = _vote(votes, none, policy, _related_matrix(policy, targets))
        winner, ambiguous = decided.winner & has_vote, decided.ambiguous & has_vote
        top = decided.target
        # The deciding row: the artist's first subgenre (in list order) of the winning target.
        of_winner = mapped[m_target == top[m_artist]]
        firsts = of_winner[_first_per_group(artist[of_winner])]
        row[artist[firsts]] = firsts
        status[winner], target[winner] = 0, top[winner]
        status[ambiguous] = 1
        status[decided.out_of_scope & has_vote] = 3
        row[~winner] = -1
        total = decided.total
        related = decided.related & winner
    else:
        if policy.name == "priority":
            order = np.lexsort((np.arange(len(mapped)), -decisions.priority[subgenre[mapped]], m_artist))
            candidates = mapped[order]
        else:  # first
            candidates = mapped
        firsts = candidates[_first_per_group(artist[candidates])]
        row[artist[firsts]] = firsts
        target[artist[firsts]] = decisions.target[subgenre[firsts]]
        status[artist[firsts]] = 0
    winners = status == 0
    share_out = np.full(n_artists, np.nan)
    share_out[winners] = votes[winners, target[winners]] / total[winners]

    # Artists without a label: ignored when every subgenre they carry is ignored.
    carried = np.bincount(artist, minlength=n_artists)
    ignored_rows = np.bincount(artist[sub_status == _IGNORED], minlength=n_artists)
    genres = carried - np.bincount(artist[sub_status == _NOT_GENRE], minlength=n_artists)  # not-genres left out
    all_ignored = (genres > 0) & (ignored_rows == genres) & ~has_vote
    status[all_ignored] = 3

    return ArtistLabels(status, target, row, share_out, carried, votes, none, related)


@dataclass(frozen=True)
class _Vote:
    """The vote policy's outcome per artist: the target it names, whether it wins, is
    ambiguous, is mostly out of scope, or was decided by related targets; the votes in all."""

    target: np.ndarray
    winner: np.ndarray
    ambiguous: np.ndarray
    out_of_scope: np.ndarray
    related: np.ndarray
    total: np.ndarray


def _vote(votes: np.ndarray, none: np.ndarray | None, policy: Policy, related: np.ndarray) -> _Vote:
    """Decide every artist from its votes per target (artists × targets) and its "none" votes."""
    n_artists, n_targets = votes.shape
    target_total = votes.sum(axis=1)
    total = target_total if none is None else target_total + none
    # Targets by votes, largest first; a tie keeps the target declared first (stable sort).
    ranked = np.argsort(-votes, axis=1, kind="stable") if n_targets else np.zeros((n_artists, 0), dtype=np.int64)
    ordered = np.take_along_axis(votes, ranked, axis=1)
    zeros = np.zeros(n_artists)
    top_votes = ordered[:, 0] if n_targets else zeros
    second = ordered[:, 1] if n_targets > 1 else zeros
    third = ordered[:, 2] if n_targets > 2 else zeros
    rival = second if none is None else np.maximum(second, none)
    top = ranked[:, 0] if n_targets else np.zeros(n_artists, dtype=np.int64)
    winner = _passes(top_votes, rival, total, policy)
    by_related = np.zeros(n_artists, dtype=bool)
    if (related >= 0).any() and n_targets > 1:
        pair = top_votes + second
        rest = third if none is None else np.maximum(third, none)
        runner_up = ranked[:, 1]
        by_related = ~winner & (related[top, runner_up] >= 0) & (second > 0) & _passes(pair, rest, total, policy)
        # The larger of the two wins; a tie goes to the one its group lists first.
        tie = by_related & (top_votes == second)
        top = np.where(tie, related[top, runner_up], top)
    winner |= by_related
    out_of_scope = ~winner & (none >= top_votes) if none is not None else np.zeros(n_artists, dtype=bool)
    return _Vote(top, winner, ~winner & ~out_of_scope, out_of_scope, by_related, total)


def _passes(lead: np.ndarray, rival: np.ndarray, total: np.ndarray, policy: Policy) -> np.ndarray:
    """Whether `lead` votes take at least min_share of `total` and lead `rival` by at least
    min_margin of it (a tie never passes)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        share = lead / total
        margin = (lead - rival) / total
    return (share >= policy.min_share) & (margin >= policy.min_margin) & (margin > 0)


def _none_votes(
    n_artists: int, artist: np.ndarray, subgenre: np.ndarray, decisions: DecisionArrays, row_weight: np.ndarray | None
) -> np.ndarray:
    """Per artist: its out-of-scope votes, each ignored subgenre's ignore-entry weight (1
    unless the entry says otherwise) times its vote count."""
    ignored = np.flatnonzero(decisions.status[subgenre] == _IGNORED) if len(subgenre) else np.zeros(0, dtype=np.int64)
    per_subgenre = decisions.none_weight if decisions.none_weight is not None else np.ones(len(decisions.status))
    weights = per_subgenre[subgenre[ignored]]
    if row_weight is not None:
        weights = weights * row_weight[ignored]
    return np.bincount(artist[ignored], weights=weights, minlength=n_artists).astype(np.float64)


def _related_matrix(policy: Policy, targets: Sequence[str]) -> np.ndarray:
    """targets × targets: for two targets that share a group of `policy.related`, the one a
    tie between them goes to (listed first in the first group naming both); -1 elsewhere."""
    code = {t: i for i, t in enumerate(targets)}
    matrix = np.full((len(targets), len(targets)), -1, dtype=np.int64)
    for group in policy.related:
        members = list(dict.fromkeys(code[t] for t in group if t in code))
        for i, first in enumerate(members):
            for later in members[i + 1 :]:
                if matrix[first, later] < 0:
                    matrix[first, later] = matrix[later, first] = first
    return matrix


def decisions_frame(decisions: Mapping[str, SubgenreDecision]) -> pd.DataFrame:
    """One row per canonical subgenre: status, target, rule, priority, vote weight, conflict."""
    rows = [
        (
            s,
            d.status,
            d.target,
            d.rule.name if d.rule is not None and d.status == MAPPED else None,
            d.rule.priority if d.rule is not None and d.status == MAPPED else 0,
            d.rule.weight if d.rule is not None and d.status == MAPPED else 0.0,
            d.is_conflict,
        )
        for s, d in decisions.items()
    ]
    return pd.DataFrame(
        rows, columns=["subgenre", "status", "target", "rule", "priority", "weight", "conflict"]
    ).astype(
        {
            "subgenre": object,
            "status": object,
            "target": object,
            "rule": object,
            "priority": "int64",
            "weight": "float64",
            "conflict": "bool",
        }
    )
