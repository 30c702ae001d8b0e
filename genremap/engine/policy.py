"""Resolve each artist's several subgenres to one target, vectorised with pandas.

Policies:
- `first`: the first subgenre in the artist's list that maps decides (the seed notebook).
- `vote` (default): each mapped subgenre votes for its target with its rule's weight; the
  top target wins when its share of the votes is at least `min_share` and it leads the
  runner-up by at least `min_margin` (as a share of all votes); otherwise the artist is
  *ambiguous*.
- `priority`: the mapped subgenre whose rule has the highest priority decides; ties go to
  the earlier subgenre in the artist's list.
Artists with no mapped subgenre are *ignored* when every subgenre they carry is ignored,
else *unlabelled* (this includes artists with no genres at all).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from genremap.engine.matcher import MAPPED, SubgenreDecision
from genremap.engine.model import Policy

LABELLED, AMBIGUOUS, UNLABELLED, IGNORED_ARTIST = "labelled", "ambiguous", "unlabelled", "ignored"

ARTIST_LABEL_COLUMNS = ["artist_id", "status", "target", "subgenre", "rule", "share", "detail"]


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


def resolve_artists(
    artist_genres: pd.DataFrame,
    decisions: pd.DataFrame,
    policy: Policy,
    artist_ids: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Label every artist.

    `artist_genres` has columns artist_id, position, subgenre (canonical); `decisions` comes
    from `decisions_frame`. Returns one row per artist (those in `artist_ids`, or every
    artist of `artist_genres`) with ARTIST_LABEL_COLUMNS.
    """
    joined = artist_genres.merge(decisions, on="subgenre", how="left")
    joined["status"] = joined["status"].fillna("unmapped")
    mapped = joined[joined["status"] == MAPPED]

    if policy.name == "vote":
        winners = _vote(mapped, policy)
    elif policy.name == "first":
        winners = _pick(mapped.sort_values(["artist_id", "position"], kind="stable"))
    elif policy.name == "priority":
        ordered = mapped.sort_values(
            ["artist_id", "priority", "position"], ascending=[True, False, True], kind="stable"
        )
        winners = _pick(ordered)
    else:  # pragma: no cover - the loader and CLI only admit the three names
        raise ValueError(f"unknown policy {policy.name!r}")

    everyone = pd.Index(
        list(dict.fromkeys(artist_ids)) if artist_ids is not None else joined["artist_id"].unique(), name="artist_id"
    )
    result = winners.set_index("artist_id").reindex(everyone)
    missing = result["status"].isna().to_numpy()
    if missing.any():
        # Whole columns are rebuilt (never assigned in place): string arrays may be read-only.
        all_ignored = (joined["status"] == "ignored").groupby(joined["artist_id"]).all()
        is_ignored = missing & result.index.isin(all_ignored[all_ignored].index)
        has_genres = result.index.isin(joined["artist_id"].unique())
        status = result["status"].to_numpy(dtype=object)
        detail = result["detail"].to_numpy(dtype=object)
        result["status"] = np.where(is_ignored, IGNORED_ARTIST, np.where(missing, UNLABELLED, status))
        result["detail"] = np.select(
            [is_ignored, missing & has_genres, missing],
            ["every subgenre is ignored", "no subgenre maps", "no genres"],
            default=detail,
        )
    return result.reset_index()[ARTIST_LABEL_COLUMNS]


def _pick(ordered: pd.DataFrame) -> pd.DataFrame:
    """First row per artist of an ordered frame of mapped subgenres, with its vote share."""
    totals = ordered.groupby("artist_id")["weight"].sum()
    first = ordered.drop_duplicates("artist_id")
    target_votes = ordered.groupby(["artist_id", "target"])["weight"].sum()
    votes = target_votes.reindex(pd.MultiIndex.from_frame(first[["artist_id", "target"]])).to_numpy()
    out = first[["artist_id", "target", "subgenre", "rule"]].copy()
    out["share"] = votes / totals.reindex(first["artist_id"]).to_numpy()
    out["status"] = LABELLED
    out["detail"] = ""
    return out


def _vote(mapped: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Weighted majority vote per artist; below the share or margin the artist is ambiguous."""
    if mapped.empty:
        return pd.DataFrame(columns=["artist_id", "target", "subgenre", "rule", "share", "status", "detail"])
    first_pos = mapped.groupby(["artist_id", "target"])["position"].min().rename("first_position")
    votes = mapped.groupby(["artist_id", "target"])["weight"].sum().rename("votes").to_frame().join(first_pos)
    votes = votes.reset_index().sort_values(
        ["artist_id", "votes", "first_position"], ascending=[True, False, True], kind="stable"
    )
    totals = votes.groupby("artist_id")["votes"].transform("sum")
    votes["share"] = votes["votes"] / totals
    rank = votes.groupby("artist_id").cumcount()
    top = votes[rank == 0].set_index("artist_id")
    second = votes[rank == 1].set_index("artist_id")["share"].reindex(top.index).fillna(0.0)
    margin = top["share"] - second
    ambiguous = (top["share"] < policy.min_share) | (margin < policy.min_margin) | (margin <= 0)

    deciding = mapped.sort_values(["artist_id", "position"], kind="stable").drop_duplicates(["artist_id", "target"])
    deciding = deciding.set_index(["artist_id", "target"])[["subgenre", "rule"]]
    keyed = pd.MultiIndex.from_arrays([top.index, top["target"]])
    amb = ambiguous.to_numpy()
    ranked = votes[votes["artist_id"].isin(top.index[amb])]
    parts = ranked["target"].astype(str) + " " + (ranked["share"] * 100).round().astype(int).astype(str) + "%"
    detail = parts.groupby(ranked["artist_id"], sort=False).agg(" / ".join).reindex(top.index)

    def unless_ambiguous(values: pd.Series) -> np.ndarray:
        out = values.to_numpy(dtype=object).copy()
        out[amb] = None
        return out

    return pd.DataFrame(
        {
            "artist_id": top.index,
            "target": unless_ambiguous(top["target"]),
            "subgenre": unless_ambiguous(deciding["subgenre"].reindex(keyed)),
            "rule": unless_ambiguous(deciding["rule"].reindex(keyed)),
            "share": top["share"].to_numpy(),
            "status": np.where(amb, AMBIGUOUS, LABELLED),
            "detail": np.where(amb, detail.fillna("").to_numpy(dtype=object), ""),
        }
    )
