"""Generate the bundled sample: synthetic artists and tracks carrying real Spotify genre names.

    python scripts/make_sample.py                 # regenerate genremap/data/sample_*.csv
    python scripts/make_sample.py --refresh-stats # first re-derive the genre statistics
                                                  # from ../shared/data (needs that folder)

The statistics file (genremap/data/sample_stats.json) holds aggregate figures only: how
many artists carry each genre, which genres co-occur, how long genre lists are and how
many tracks artists have. No artist, track or row of the corpus is copied. From those
figures, artists get coherent genre lists (a seed genre plus genres that co-occur with it)
with the corpus's frequency distribution; names and tracks are invented. Output is
deterministic for a given seed (only `random.Random` is used).
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import random
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "genremap" / "data"
STATS = DATA / "sample_stats.json"
CORPUS = ROOT.parent / "shared" / "data" / "spotify_artists_genres.csv"
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

sys.path.insert(0, str(ROOT))  # run from a checkout, installed or not
from genremap.synthetic import artist_name, track_title  # noqa: E402


def refresh_stats(corpus: Path) -> dict[str, object]:
    """Aggregate figures of the corpus: genre frequencies, co-occurrences, list lengths, track counts."""
    genre_artists: Counter[str] = Counter()
    pairs: dict[str, Counter[str]] = defaultdict(Counter)
    lengths: Counter[int] = Counter()
    track_counts: Counter[int] = Counter()
    with corpus.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            genres = [g for g in ast.literal_eval(row["genres"]) if isinstance(g, str)]
            lengths[min(len(genres), 12)] += 1
            track_counts[min(int(float(row["count"])), 200)] += 1
            genre_artists.update(set(genres))
            for g in genres:
                for other in genres:
                    if other != g:
                        pairs[g][other] += 1
    kept = {g: n for g, n in genre_artists.items() if n >= 3}
    return {
        "note": "Aggregate statistics of a Spotify artist-genre corpus; no rows are copied.",
        "genres": dict(sorted(kept.items(), key=lambda kv: (-kv[1], kv[0]))),
        "cooccurs": {
            g: [[o, n] for o, n in sorted(pairs[g].items(), key=lambda kv: (-kv[1], kv[0])) if o in kept][:12]
            for g in sorted(kept)
        },
        "genre_list_lengths": {str(k): v for k, v in sorted(lengths.items())},
        "artist_track_counts": {str(k): v for k, v in sorted(track_counts.items())},
    }


def _weighted(rng: random.Random, table: dict[str, int]) -> str:
    keys = list(table)
    return rng.choices(keys, weights=[table[k] for k in keys], k=1)[0]


def _spotify_like_id(rng: random.Random) -> str:
    return "".join(rng.choice(BASE62) for _ in range(22))


def generate(stats: dict[str, object], artists: int, seed: int) -> tuple[list[list[str]], list[list[str]]]:
    """Artist rows (artist_id, artist_name, genres) and track rows for the sample."""
    rng = random.Random(seed)
    genres: dict[str, int] = stats["genres"]  # type: ignore[assignment]
    cooccurs: dict[str, list[list[object]]] = stats["cooccurs"]  # type: ignore[assignment]
    lengths = {int(k): v for k, v in stats["genre_list_lengths"].items()}  # type: ignore[attr-defined]
    track_counts = {int(k): v for k, v in stats["artist_track_counts"].items()}  # type: ignore[attr-defined]
    names: set[str] = set()
    artist_rows: list[list[str]] = []
    track_rows: list[list[str]] = []
    for _ in range(artists):
        artist_id = _spotify_like_id(rng)
        name = artist_name(rng, names)
        length = int(_weighted(rng, {str(k): v for k, v in lengths.items()}))
        chosen: list[str] = []
        if length:
            chosen.append(_weighted(rng, genres))
            neighbours = {str(o): int(n) for o, n in cooccurs.get(chosen[0], [])}  # type: ignore[call-overload]
            while len(chosen) < length and neighbours:
                pick = _weighted(rng, neighbours)
                neighbours.pop(pick)
                chosen.append(pick)
        rng.shuffle(chosen)
        chosen.sort()  # Spotify lists an artist's genres alphabetically
        artist_rows.append([artist_id, name, repr(chosen)])
        n_tracks = min(int(_weighted(rng, {str(k): v for k, v in track_counts.items()})), 40)
        titles: set[str] = set()
        for _ in range(n_tracks):
            title = track_title(rng, titles)
            isrc = f"US{rng.choice(['AB', 'CD', 'EF'])}{rng.randint(10, 99)}{rng.randint(10000, 99999)}"
            duration = str(rng.randint(120_000, 420_000))
            track_rows.append(
                [_spotify_like_id(rng), title, artist_id, name, duration, isrc if rng.random() < 0.7 else ""]
            )
            if rng.random() < 0.06:  # the same recording again: a remaster, a single, a compilation
                variant = rng.choice([" - Remastered 2011", " - 2009 Remaster", " - Single Version", " (Mono)", ""])
                track_rows.append(
                    [
                        _spotify_like_id(rng),
                        title + variant,
                        artist_id,
                        name,
                        duration,
                        isrc if variant and rng.random() < 0.5 else "",
                    ]
                )
    return artist_rows, track_rows


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--refresh-stats", action="store_true", help="re-derive sample_stats.json from the corpus")
    parser.add_argument("--artists", type=int, default=900)
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--out", type=Path, default=DATA)
    args = parser.parse_args(argv)
    if args.refresh_stats:
        if not CORPUS.exists():
            print(f"corpus not found: {CORPUS}", file=sys.stderr)
            return 2
        STATS.write_text(json.dumps(refresh_stats(CORPUS), indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
    stats = json.loads(STATS.read_text(encoding="utf-8"))
    artist_rows, track_rows = generate(stats, args.artists, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "sample_artists.csv", ["artist_id", "artist_name", "genres"], artist_rows)
    write_csv(
        args.out / "sample_tracks.csv",
        ["track_id", "track_name", "artist_id", "artist_name", "duration_ms", "isrc"],
        track_rows,
    )
    print(f"{len(artist_rows)} artists, {len(track_rows)} tracks → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
