"""Report data: coverage per target, subgenres, unmapped with suggestions, explanations.

Each function returns plain data (dicts and lists) that the CLI renders as a rich table,
JSON or CSV; nothing here prints.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

import pandas as pd
from rapidfuzz import fuzz, process

from genremap.dataset.labels import Labelling
from genremap.engine import IGNORED, MAPPED, UNMAPPED, CompiledRules, SubgenreDecision
from genremap.errors import UsageError
from genremap.normalize import normalize_genre
from genremap.text import escape_unprintable

STATUS_ROWS = ("unlabelled", "ambiguous", "ignored")


def subgenre_counts(labelling: Labelling) -> dict[str, tuple[int, int]]:
    """Per subgenre: (artists carrying it, tracks those artists hold)."""
    tracks = labelling.artists.set_index("artist_id")["tracks"]
    ag = labelling.artist_genres[["artist_id", "subgenre"]].copy()
    ag["tracks"] = ag["artist_id"].map(tracks).fillna(0).astype("int64")
    counts = ag.groupby("subgenre", observed=True).agg(artists=("artist_id", "size"), tracks=("tracks", "sum"))
    return {
        str(s): (int(a), int(t))
        for s, a, t in zip(counts.index, counts["artists"].tolist(), counts["tracks"].tolist(), strict=True)
    }


def tracks_phrase(tracks: int, track_rows: int) -> str:
    """Track counts in the same words everywhere (report, status, import): the tracks counted,
    and, when some come from an artist table's `count` column rather than track rows, both."""
    if tracks == track_rows:
        return f"{tracks:,} tracks"
    return f"{tracks:,} tracks (counted by an artist table; {track_rows:,} track rows)"


def coverage(labelling: Labelling) -> dict[str, Any]:
    """Per target: artists, tracks, share of tracks, distinct subgenres; plus the other statuses."""
    artists = labelling.artists
    total_tracks = int(artists["tracks"].sum())
    total_artists = len(artists)
    present = set(labelling.artist_genres["subgenre"].unique())
    sub = labelling.subgenres[labelling.subgenres["subgenre"].isin(present)]

    def share(tracks: int) -> float:
        return round(tracks / total_tracks, 4) if total_tracks else 0.0

    targets = []
    labelled = artists[artists["status"] == "labelled"]
    by_target = labelled.groupby("target").agg(artists=("artist_id", "size"), tracks=("tracks", "sum"))
    subs_by_target = sub[sub["status"] == MAPPED].groupby("target")["subgenre"].nunique()
    from_mb = labelled[labelled["genre_source"] == "musicbrainz"].groupby("target").size()
    for name in labelling.ruleset.targets:
        a = int(by_target["artists"].get(name, 0))
        t = int(by_target["tracks"].get(name, 0))
        targets.append(
            {
                "target": name,
                "artists": a,
                "tracks": t,
                "share": share(t),
                "subgenres": int(subs_by_target.get(name, 0)),
                "artists_from_musicbrainz": int(from_mb.get(name, 0)),
            }
        )

    def status_row(status: str, subgenres: int) -> dict[str, Any]:
        rows = artists[artists["status"] == status]
        t = int(rows["tracks"].sum())
        return {"artists": len(rows), "tracks": t, "share": share(t), "subgenres": subgenres}

    ambiguous_ids = artists.loc[artists["status"] == "ambiguous", "artist_id"]
    ambiguous_subs = labelling.artist_genres.loc[
        labelling.artist_genres["artist_id"].isin(ambiguous_ids), "subgenre"
    ].nunique()
    no_genres = artists[(artists["status"] == "unlabelled") & (artists["detail"] == "no genres")]
    result: dict[str, Any] = {
        "targets": targets,
        "unlabelled": {
            **status_row("unlabelled", int((sub["status"] == UNMAPPED).sum())),
            "without_genres": {"artists": len(no_genres), "tracks": int(no_genres["tracks"].sum())},
        },
        "ambiguous": status_row("ambiguous", int(ambiguous_subs)),
        "ignored": status_row("ignored", int((sub["status"] == IGNORED).sum())),
        "totals": {
            "artists": total_artists,
            "tracks": total_tracks,
            "track_rows": int(artists["stored_tracks"].sum()) if "stored_tracks" in artists else total_tracks,
            "share": 1.0 if total_tracks else 0.0,
            "subgenres": len(present),
            "mapped_subgenres": int((sub["status"] == MAPPED).sum()),
            "conflicts": int(sub["conflict"].sum()),
        },
        "policy": labelling.policy.name,
        "genre_source": labelling.genre_source,
        "rules": labelling.ruleset.files,
    }
    return result


def subgenres(labelling: Labelling) -> list[dict[str, Any]]:
    """Every distinct subgenre in the store with its decision and counts, most tracks first."""
    counts = subgenre_counts(labelling)
    raw_forms = labelling.artist_genres.groupby("subgenre", observed=True)["genre"].agg(lambda s: sorted(set(s)))
    rows: list[dict[str, Any]] = []
    for subgenre, d in labelling.decisions.items():
        if subgenre not in counts:
            continue
        n_artists, n_tracks = counts[subgenre]
        rule = d.rule if d.status == MAPPED else None
        location = rule.location if rule else (d.ignored_by.location if d.ignored_by else None)
        rows.append(
            {
                "subgenre": subgenre,
                "target": d.target or "",
                "status": d.status,
                "rule": rule.name if rule else "",
                "location": str(location) if location else "",
                "artists": n_artists,
                "tracks": n_tracks,
                "conflict": ", ".join(f"{r.name} → {r.target}" for r in d.conflicts),
                "spellings": " | ".join(raw_forms.get(subgenre, [])),
            }
        )
    rows.sort(key=lambda r: (-r["tracks"], -r["artists"], r["subgenre"]))
    return rows


def unmapped(labelling: Labelling, top: int | None = 50, min_share: float = 0.5) -> list[dict[str, Any]]:
    """Unmapped subgenres ranked by tracks affected, each with a suggested target and its evidence.

    Evidence comes first from co-occurrence (among the artists carrying the subgenre, the share
    labelled with each target by their other subgenres), then from the nearest rule pattern.
    """
    ag = labelling.artist_genres
    artists = labelling.artists.set_index("artist_id")
    counts = subgenre_counts(labelling)
    wanted = [s for s, d in labelling.decisions.items() if d.status == UNMAPPED and s in counts]
    wanted.sort(key=lambda s: (-counts[s][1], -counts[s][0], s))
    if top is not None:
        wanted = wanted[:top]
    if not wanted:
        return []
    carriers = ag[ag["subgenre"].isin(wanted)][["subgenre", "artist_id"]].copy()
    carriers["target"] = carriers["artist_id"].map(artists["target"].where(artists["status"] == "labelled"))
    carriers["tracks"] = carriers["artist_id"].map(artists["tracks"])
    carriers["name"] = carriers["artist_id"].map(artists["name"])
    example = (
        carriers.sort_values(["subgenre", "tracks", "name"], ascending=[True, False, True], kind="stable")
        .drop_duplicates("subgenre")
        .set_index("subgenre")["name"]
    )
    votes = carriers.dropna(subset=["target"]).groupby(["subgenre", "target"], observed=True).size()
    patterns = [(p, r) for r in labelling.ruleset.rules if r.kind != "regex" for p in r.patterns]
    choices = [p for p, _ in patterns]
    rows: list[dict[str, Any]] = []
    for subgenre in wanted:
        n_artists, n_tracks = counts[subgenre]
        suggestion, evidence, source = "", "", ""
        if subgenre in votes.index.get_level_values(0):
            by_target = cast(pd.Series, votes.loc[subgenre]).sort_values(ascending=False, kind="stable")
            best, hits = str(by_target.index[0]), int(by_target.iloc[0])
            if hits / n_artists >= min_share and (hits >= 2 or n_artists == 1):
                suggestion, source = best, "co-occurrence"
                evidence = f"{hits} of {n_artists} artists carrying it are labelled {best} ({hits / n_artists:.0%})"
        if not suggestion and choices:
            found = process.extractOne(subgenre, choices, scorer=fuzz.ratio, score_cutoff=80)
            if found is not None:
                pattern, score, index = found
                rule = patterns[index][1]
                suggestion, source = rule.target, "similar rule"
                evidence = f"like '{pattern}' of rule '{rule.name}' (score {score:.0f})"
        rows.append(
            {
                "subgenre": subgenre,
                "tracks": n_tracks,
                "artists": n_artists,
                "example_artist": str(example.get(subgenre, "")),
                "suggested_target": suggestion,
                "suggestion_source": source,
                "evidence": evidence,
            }
        )
    return rows


def yaml_string(text: str) -> str:
    """`text` as a YAML double-quoted scalar that loads back to exactly `text`.

    Only printable characters other than `"` and `\\` are written as they are; everything
    else (line breaks of every kind YAML knows, controls, separators, surrogates) becomes a
    `\\x`, `\\u` or `\\U` escape, so the value can never end its line or its quotes."""
    out = ['"']
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        else:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def emit_rules_yaml(rows: list[dict[str, Any]], origin: str) -> str:
    """A commented YAML rule file of the suggestions that have a target, for a person to review.

    Store content (subgenres, example artists) only ever lands in a comment or in a quoted
    string: loaded back, the file holds exactly the suggested rules, whatever the names hold."""
    lines = [
        f"# Rules suggested by `genremap unmapped` from {escape_unprintable(origin)}.",
        "# Suggestions are evidence, not decisions: review each one (decide by what the music is),",
        "# then move the ones you accept into a file under rules/ and run `genremap diff` and `genremap lint`.",
        "rules:",
    ]
    taken: set[str] = set()
    accepted = [r for r in rows if r["suggested_target"]]
    for row in accepted:
        name = f"suggested {row['subgenre']}"
        while name in taken:
            name += "'"
        taken.add(name)
        about = f"{row['subgenre']}: {row['tracks']} tracks, {row['artists']} artists (e.g. {row['example_artist']})"
        evidence = f"evidence ({row['suggestion_source']}): {row['evidence']}"
        lines += [
            f"  # {escape_unprintable(about)}",
            f"  # {escape_unprintable(evidence)}",
            f"  - name: {yaml_string(name)}",
            f"    target: {yaml_string(row['suggested_target'])}",
            "    kind: exact",
            f"    patterns: [{yaml_string(row['subgenre'])}]",
        ]
    if not accepted:
        lines[-1] = "rules: []  # no suggestion had enough evidence"
    return "\n".join(lines) + "\n"


def check_rules_output(path: Path, force: bool) -> None:
    """Refuse, before any work, an `--emit-rules` path that cannot take a new file.

    A missing parent folder is fine (it is created); a folder, a path below a file, or an
    existing file without `force` is refused with one line."""
    shown = escape_unprintable(str(path))
    if path.is_dir():
        raise UsageError(f"--emit-rules {shown} is a folder: give a file name, e.g. {shown}/suggested.yaml")
    if path.exists() and not force:
        raise UsageError(f"--emit-rules {shown} exists; pass --force to overwrite it")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"--emit-rules {shown}: {escape_unprintable(str(parent))} is a file, not a folder")
            break


def write_rules_output(path: Path, text: str) -> None:
    """Write a generated rule file whole (a temporary file renamed into place), creating its folder."""
    shown = escape_unprintable(str(path))
    partial = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            partial.write_text(text, encoding="utf-8")
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write --emit-rules {shown}: {exc.strerror or exc}") from None


def _decision_dict(d: SubgenreDecision) -> dict[str, Any]:
    return {
        "subgenre": d.subgenre,
        "status": d.status,
        "target": d.target,
        "rule": d.rule.name if d.rule else None,
        "location": str(d.rule.location) if d.rule else None,
        "reason": d.reason,
        "conflicts": [{"rule": r.name, "target": r.target, "location": str(r.location)} for r in d.conflicts],
        "ignored_by": (
            {"reason": d.ignored_by.reason, "location": str(d.ignored_by.location)} if d.ignored_by else None
        ),
        "matches": [
            {
                "rule": m.rule.name,
                "target": m.rule.target,
                "kind": m.rule.kind,
                "pattern": m.pattern,
                "priority": m.rule.priority,
                "score": round(m.score, 1),
                "location": str(m.rule.location),
                "vetoed_by": m.vetoed_by,
                "outcome": _outcome(d, m.rule.name, m.vetoed_by),
            }
            for m in d.matches
        ],
    }


def _outcome(d: SubgenreDecision, rule_name: str, vetoed_by: str | None) -> str:
    if vetoed_by is not None:
        return f"vetoed by unless '{vetoed_by}'"
    if d.status == IGNORED:
        return "overridden by ignore"
    if d.rule is not None and d.rule.name == rule_name:
        return "winner"
    if any(r.name == rule_name for r in d.conflicts):
        return "lost conflict (same priority, earlier rule wins)"
    return "lower priority"


def explain_subgenre(compiled: CompiledRules, text: str) -> dict[str, Any]:
    """Every rule that matched or was vetoed for `text`, and the final decision."""
    canonical = normalize_genre(text)
    return {"input": text, **_decision_dict(compiled.decide(canonical))}


def explain_artist(labelling: Labelling, artist_id: str) -> dict[str, Any]:
    """An artist's subgenres, each decision, the policy's computation and the final label."""
    row = labelling.artists[labelling.artists["artist_id"] == artist_id].iloc[0].to_dict()
    genres = labelling.artist_genres[labelling.artist_genres["artist_id"] == artist_id].sort_values("position")
    items = []
    votes: dict[str, float] = {}
    for _, g in genres.iterrows():
        d = labelling.decisions[g["subgenre"]]
        if d.status == MAPPED and d.rule is not None:
            votes[d.rule.target] = votes.get(d.rule.target, 0.0) + d.rule.weight
        items.append({"genre": g["genre"], "source": g["source"], **_decision_dict(d)})
    total = sum(votes.values())
    return {
        "artist_id": artist_id,
        "name": row["name"],
        "tracks": int(row["tracks"]),
        "policy": {
            "name": labelling.policy.name,
            "min_share": labelling.policy.min_share,
            "min_margin": labelling.policy.min_margin,
        },
        "genre_source": None if pd.isna(row["genre_source"]) else row["genre_source"],
        "subgenres": items,
        "votes": [
            {"target": t, "votes": v, "share": round(v / total, 4)}
            for t, v in sorted(votes.items(), key=lambda kv: -kv[1])
        ],
        "status": row["status"],
        "target": None if pd.isna(row["target"]) else row["target"],
        "deciding_subgenre": None if pd.isna(row["subgenre"]) else row["subgenre"],
        "rule": None if pd.isna(row["rule"]) else row["rule"],
        "detail": "" if pd.isna(row["detail"]) else row["detail"],
    }
