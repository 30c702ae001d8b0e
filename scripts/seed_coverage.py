"""Compare the seed notebook's keyword grouping with genremap's default rules on real data.

Reads ``../shared/data/spotify_artists_genres.csv`` (relative to the repository root, or
``--data PATH``): 22,727 Spotify artists with their subgenres and track counts. Labels every
artist twice:

(a) the seed notebook's way: a subgenre belongs to a genre when one of 21 keywords is a
    *substring* of it (``'rock' in 'rock steady'``); keywords are tried in the notebook's
    order and a later keyword overwrites an earlier one (so ``soul jazz`` ends in blues);
    an artist takes the target of the *first* subgenre in its list that maps;
(b) the default rules (``genremap/rules/*.yaml``) through ``genremap.engine``, with the
    rules' own policy (weighted vote) and with ``Policy("first")`` for a like-for-like
    comparison with the seed's first-match rule.

Prints a markdown report: totals, per-target artists / tracks / subgenres, the seed-to-rules
flow of artists, and the subgenres (largest by tracks) that the two approaches label
differently. ``docs/coverage.md`` holds its output with commentary.

usage: python scripts/seed_coverage.py [--data PATH] [--top N]
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from genremap.dataset.labels import label_artist_genres  # noqa: E402
from genremap.engine import CompiledRules, Policy, load_rules  # noqa: E402
from genremap.normalize import normalize_many  # noqa: E402

Row = tuple[str, int, int, str, str]  # subgenre, artists, tracks, seed target, rules outcome
DEFAULT_DATA = REPO.parent / "shared" / "data" / "spotify_artists_genres.csv"
TARGETS = ["rock", "metal", "jazz", "blues", "disco", "house", "classical", "hip hop", "country"]

# The seed notebook's `genresAugmented`, in its order, and where each keyword sends a subgenre.
SEED_KEYWORDS = [
    *TARGETS,
    "romantic",
    "baroque",
    "funk",
    "dance",
    "electro",
    "edm",
    "techno",
    "trance",
    "roots",
    "soul",
    "bluegrass",
    "americana",
]
SEED_GROUP = {
    "romantic": "classical",
    "baroque": "classical",
    "bluegrass": "country",
    "americana": "country",
    "soul": "blues",
    "roots": "blues",
    "electro": "house",
    "edm": "house",
    "techno": "house",
    "trance": "house",
    "funk": "disco",
    "dance": "disco",
}


def seed_target(subgenre: str) -> str | None:
    """The seed's genre for one raw subgenre: the last keyword (in list order) it contains."""
    target = None
    for keyword in SEED_KEYWORDS:
        if keyword in subgenre:
            target = SEED_GROUP.get(keyword, keyword)
    return target


def parse_genres(text: object) -> list[str]:
    """A Python list literal of strings (never eval); anything else counts as no genres."""
    try:
        value = ast.literal_eval(str(text))
    except (ValueError, SyntaxError):
        return []
    return [str(g) for g in value] if isinstance(value, list) else []


def load_corpus(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Artists (artist_id, tracks) and one row per (artist, raw subgenre) with its position."""
    if not path.is_file():
        sys.exit(
            f"error: corpus not found: {path}\n"
            "It lives in the shared data folder beside the repository "
            "(../shared/data/spotify_artists_genres.csv); pass --data PATH to point elsewhere."
        )
    df = pd.read_csv(path, usecols=["artists", "count", "genres"])
    artists = pd.DataFrame({"artist_id": df["artists"].astype(str), "tracks": df["count"]})
    rows = [
        (artist, position, raw)
        for artist, genres in zip(artists["artist_id"], df["genres"], strict=True)
        for position, raw in enumerate(parse_genres(genres))
    ]
    pairs = pd.DataFrame(rows, columns=["artist_id", "position", "raw"])
    pairs["subgenre"] = normalize_many(pairs["raw"])
    return artists, pairs


def label_seed(pairs: pd.DataFrame) -> tuple[pd.Series, dict[str, str | None]]:
    """Seed label per artist (first mapped subgenre wins) and the seed's subgenre mapping."""
    mapping = {raw: seed_target(raw) for raw in pairs["raw"].unique()}
    mapped = pairs.assign(target=pairs["raw"].map(mapping)).dropna(subset=["target"])
    first = mapped.sort_values(["artist_id", "position"], kind="stable")
    return first.drop_duplicates("artist_id").set_index("artist_id")["target"], mapping


def label_rules(
    pairs: pd.DataFrame, artist_ids: Iterable[str]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str | None], dict[str, str]]:
    """Artist labels under the rules' policy and under `first`, plus per-subgenre outcomes."""
    ruleset = load_rules(REPO / "genremap" / "rules")
    compiled = CompiledRules.build(ruleset)
    decisions = compiled.decide_many(pairs["subgenre"])
    artists = pd.DataFrame({"artist_id": list(dict.fromkeys(artist_ids))})
    genres = pairs.assign(source="spotify").rename(columns={"raw": "genre"})
    genres = genres[["artist_id", "source", "position", "genre"]]
    vote = label_artist_genres(ruleset, genres, artists, ruleset.policy, compiled=compiled).artists
    first = label_artist_genres(ruleset, genres, artists, Policy("first"), compiled=compiled).artists
    vote, first = vote.set_index("artist_id"), first.set_index("artist_id")
    targets = {s: d.target for s, d in decisions.items()}
    status = {s: d.status for s, d in decisions.items()}
    return vote, first, targets, status


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A markdown table; numbers right-aligned."""
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    for row in rows:
        cells = [f"{c:,}" if isinstance(c, int) else str(c) for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def report(path: Path, top: int) -> str:
    artists, pairs = load_corpus(path)
    tracks = artists.set_index("artist_id")["tracks"]
    n_artists, n_tracks = len(artists), int(tracks.sum())
    seed, seed_map = label_seed(pairs)
    vote, first, rule_target, rule_status = label_rules(pairs, artists["artist_id"])
    vote_labels = vote.loc[vote["status"] == "labelled", "target"]
    first_labels = first.loc[first["status"] == "labelled", "target"]

    raw_tracks = pairs.drop_duplicates(["artist_id", "raw"]).assign(tracks=lambda f: f["artist_id"].map(tracks))
    sub_tracks = raw_tracks.groupby("raw")["tracks"].sum()
    sub_artists = raw_tracks.groupby("raw")["artist_id"].nunique()
    canon_of = dict(zip(pairs["raw"], pairs["subgenre"], strict=True))

    def counts(labels: pd.Series) -> tuple[pd.Series, pd.Series]:
        return labels.value_counts(), tracks.reindex(labels.index).groupby(labels).sum()

    seed_a, seed_t = counts(seed)
    first_a, first_t = counts(first_labels)
    vote_a, vote_t = counts(vote_labels)
    seed_subs = pd.Series(seed_map).value_counts()
    rule_subs = pd.Series({s: t for s, t in rule_target.items() if t}).value_counts()

    out = [
        "# Seed notebook vs default rules",
        "",
        f"Corpus: `{path.name}`: {n_artists:,} artists, {n_tracks:,} tracks, "
        f"{pairs['raw'].nunique():,} distinct subgenres "
        f"({pairs['subgenre'].nunique():,} after canonicalisation).",
        "",
        "## Totals",
        "",
        table(
            [
                "approach",
                "artists labelled",
                "share of artists",
                "tracks labelled",
                "share of tracks",
                "subgenres mapped",
            ],
            [
                [
                    "seed (substring, first match)",
                    len(seed),
                    pct(len(seed), n_artists),
                    int(seed_t.sum()),
                    pct(seed_t.sum(), n_tracks),
                    int(seed_subs.sum()),
                ],
                [
                    "rules, policy `first`",
                    len(first_labels),
                    pct(len(first_labels), n_artists),
                    int(first_t.sum()),
                    pct(first_t.sum(), n_tracks),
                    int(rule_subs.sum()),
                ],
                [
                    "rules, policy `vote` (default)",
                    len(vote_labels),
                    pct(len(vote_labels), n_artists),
                    int(vote_t.sum()),
                    pct(vote_t.sum(), n_tracks),
                    int(rule_subs.sum()),
                ],
            ],
        ),
        "",
        "Rules, `vote` policy, artists by status: "
        + ", ".join(f"{k} {v:,}" for k, v in vote["status"].value_counts().items())
        + f"; subgenres ignored on purpose: "
        f"{sum(1 for s in rule_status.values() if s == 'ignored'):,}, unmapped: "
        f"{sum(1 for s in rule_status.values() if s == 'unmapped'):,}.",
        "",
        "## Per target",
        "",
        table(
            [
                "target",
                "seed artists",
                "seed tracks",
                "seed subgenres",
                "rules-first artists",
                "rules-first tracks",
                "rules-vote artists",
                "rules-vote tracks",
                "rules subgenres",
            ],
            [
                [
                    t,
                    int(seed_a.get(t, 0)),
                    int(seed_t.get(t, 0)),
                    int(seed_subs.get(t, 0)),
                    int(first_a.get(t, 0)),
                    int(first_t.get(t, 0)),
                    int(vote_a.get(t, 0)),
                    int(vote_t.get(t, 0)),
                    int(rule_subs.get(t, 0)),
                ]
                for t in TARGETS
            ],
        ),
        "",
        "## Where the seed's artists go (seed label -> rules, `vote` policy)",
        "",
    ]
    outcome = vote["target"].where(vote["status"] == "labelled", vote["status"])
    flow = pd.crosstab(seed, outcome.reindex(seed.index))
    columns = [t for t in TARGETS if t in flow.columns] + [
        c for c in ("ambiguous", "ignored", "unlabelled") if c in flow.columns
    ]
    flow = flow.reindex(index=TARGETS, columns=columns, fill_value=0)
    cells = flow.to_numpy(dtype="int64").tolist()
    out.append(table(["seed \\ rules", *columns], [[t, *cells[i]] for i, t in enumerate(TARGETS)]))
    new = outcome.drop(seed.index, errors="ignore")
    new = new[new.isin(TARGETS)].value_counts()
    out += [
        "",
        "Artists the seed left out that the rules label: "
        + ", ".join(f"{t} {int(new.get(t, 0)):,}" for t in TARGETS)
        + f" (total {int(new.sum()):,}).",
        "",
    ]
    moved: list[Row] = []
    dropped: list[Row] = []
    added: list[Row] = []
    for raw, seed_target_ in seed_map.items():
        canonical = canon_of[raw]
        rules_target = rule_target.get(canonical)
        row: Row = (
            raw,
            int(sub_artists[raw]),
            int(sub_tracks[raw]),
            seed_target_ or "-",
            rules_target or rule_status.get(canonical, "unmapped"),
        )
        if seed_target_ and rules_target and seed_target_ != rules_target:
            moved.append(row)
        elif seed_target_ and not rules_target:
            dropped.append(row)
        elif rules_target and not seed_target_:
            added.append(row)
    header = ["subgenre", "artists", "tracks", "seed", "rules"]
    sections = [
        ("Subgenres moved to another target", moved),
        ("Subgenres the seed labelled that the rules ignore or leave unmapped", dropped),
        ("Subgenres the seed missed that the rules label", added),
    ]
    for title, rows in sections:
        rows.sort(key=lambda r: (-r[2], r[0]))
        out += [
            f"## {title} ({len(rows):,}; top {min(top, len(rows))} by tracks)",
            "",
            table(header, rows[:top]),
            "",
        ]
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help="the artists CSV (default: ../shared/data/spotify_artists_genres.csv)",
    )
    parser.add_argument("--top", type=int, default=30, help="how many subgenres to list in each difference table")
    args = parser.parse_args(argv)
    sys.stdout.write(report(args.data, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
