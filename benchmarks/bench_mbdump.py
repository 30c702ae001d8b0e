"""`genremap enrich --dump` on a MusicBrainz-sized dump: lines per second, peak memory, and the
time the web service would take for the same artists at its one request per second.

    python benchmarks/bench_mbdump.py                              # 1M dump lines, 100k store artists
    python benchmarks/bench_mbdump.py --lines 100000 --artists 5000  # quicker
    python benchmarks/bench_mbdump.py --format plain --keep --workdir /tmp/mbbench

It writes a synthetic `artist.tar.xz` in the real layout (COPYING, README, TIMESTAMP, ... and
`mbdump/artist`, one JSON artist a line shaped like MusicBrainz's: aliases, genres with vote
counts, tags, life-span, area), and a store whose artists have no Spotify genres: about 70% of
them are in the dump under their own name, 10% under an alias, 20% nowhere. Then it runs
`python -m genremap enrich --dump FILE --format json` in a child process and records its wall
time and peak RSS (os.wait4), so generating the data does not count; beside them, the same
command on a store with nothing to answer (it starts and never opens the dump), the baseline.

The web service needs one search per artist and one lookup per match, at one request per
second: `artists + matched` seconds. The ratio printed is that time over the dump's.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from genremap.store import ArtistRecord, Store  # noqa: E402

GENRES = ["rock", "pop", "jazz", "hip hop", "techno", "house", "folk", "punk", "metal", "soul", "ambient", "country"]
TAGS = ["seen live", "british", "american", "female vocalists", "80s", "favorites"]
WORDS = [
    "black",
    "white",
    "red",
    "blue",
    "night",
    "day",
    "sun",
    "moon",
    "star",
    "fire",
    "ice",
    "river",
    "stone",
    "glass",
    "iron",
    "velvet",
    "golden",
    "silent",
    "electric",
    "lost",
    "wild",
    "young",
    "old",
    "broken",
    "hollow",
    "crystal",
    "neon",
    "paper",
    "ghost",
    "echo",
    "dream",
    "storm",
    "ocean",
    "city",
]
SEED = 20260523


def mbid(i: int) -> str:
    return str(uuid.UUID(int=random.Random(i).getrandbits(128), version=4))


def artist_name(rng: random.Random, i: int) -> str:
    """Distinct, name-like: two or three words and a number in words' place for uniqueness."""
    return f"{rng.choice(WORDS).title()} {rng.choice(WORDS).title()} {i}"


def dump_line(rng: random.Random, i: int, name: str, aliases: list[str]) -> bytes:
    genres = rng.sample(GENRES, rng.randint(0, 4))
    record = {
        "id": mbid(i),
        "name": name,
        "sort-name": name,
        "type": rng.choice(["Person", "Group"]),
        "type-id": "e431f5f6-b5d2-343d-8b36-72607fffb74b",
        "disambiguation": "",
        "gender": None,
        "country": "GB",
        "area": {"id": "8a754a16-0027-3a29-b6d7-2b40ea0481ed", "name": "United Kingdom", "sort-name": "United Kingdom"},
        "begin-area": None,
        "end-area": None,
        "life-span": {"begin": str(1950 + i % 70), "end": None, "ended": False},
        "ipis": [],
        "isnis": [],
        "aliases": [
            {"name": a, "sort-name": a, "type": "Artist name", "locale": None, "primary": None, "ended": False}
            for a in aliases
        ],
        "genres": [{"id": mbid(hash(g)), "name": g, "count": rng.randint(1, 30), "disambiguation": ""} for g in genres],
        "tags": [{"name": t, "count": rng.randint(1, 9)} for t in genres + rng.sample(TAGS, 2)],
        "rating": {"value": None, "votes-count": 0},
    }
    return json.dumps(record, ensure_ascii=False).encode() + b"\n"


def generate(workdir: Path, lines: int, artists: int, fmt: str) -> tuple[Path, Path]:
    """The dump (in `fmt`) and a store of `artists` artists without genres."""
    rng = random.Random(SEED)
    plain = workdir / "artist"
    store_names: list[str] = []
    in_dump = int(artists * 0.8)
    with plain.open("wb") as out:
        for i in range(lines):
            name = artist_name(rng, i)
            aliases = [f"{name} Band"] if rng.random() < 0.2 else []
            if i < in_dump:  # every 8th of these is known to the store by its alias
                store_names.append(aliases[0] if aliases and i % 8 == 0 else name)
            out.write(dump_line(rng, i, name, aliases))
    store_names += [f"Nowhere To Be Found {i}" for i in range(artists - len(store_names))]
    db = workdir / "store.db"
    db.unlink(missing_ok=True)
    with Store.open(db) as store:
        store.upsert_artists([ArtistRecord(f"sp{i}", n, genres=()) for i, n in enumerate(store_names)], "bench")
    if fmt == "plain":
        return plain, db
    dump = workdir / f"artist.{fmt}"
    if fmt == "tar.xz":
        with tarfile.open(dump, "w:xz", preset=1) as tar:
            for member, data in [("COPYING", b"CC0\n"), ("README", b"JSON dumps\n"), ("TIMESTAMP", b"2026-05-23\n")]:
                info = tarfile.TarInfo(member)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            tar.add(plain, arcname="mbdump/artist")
    else:
        subprocess.run(["xz" if fmt == "xz" else "gzip", "-1", "-k", "-f", str(plain)], check=True)
        (workdir / f"artist.{'xz' if fmt == 'xz' else 'gz'}").replace(dump)
    plain.unlink()
    return dump, db


def run_enrich(dump: Path, db: Path, workdir: Path) -> tuple[dict[str, object], float, float, int]:
    """The summary, wall seconds, CPU seconds and peak RSS (KiB) of `genremap enrich --dump`, run
    as a child process: os.wait4 gives that child's own rusage."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "genremap", "enrich", "--dump", str(dump), "--db", str(db), "--format", "json"]
    out, err = workdir / "enrich.json", workdir / "enrich.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        started = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"enrich failed: {err.read_text()[-2000:]}")
    return json.loads(out.read_text()), wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="artists in the dump")
    parser.add_argument("--artists", type=int, default=100_000, help="artists in the store")
    parser.add_argument("--format", choices=["tar.xz", "xz", "gz", "plain"], default="tar.xz")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the workdir")
    args = parser.parse_args()
    if args.artists > args.lines:
        raise SystemExit("--artists must not exceed --lines")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_mbdump_"))
    workdir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    dump, db = generate(workdir, args.lines, args.artists, args.format)
    print(f"generated {args.lines:,} dump lines ({dump.name}, {dump.stat().st_size / 1e6:,.1f} MB) and "
          f"{args.artists:,} store artists in {time.perf_counter() - started:,.1f} s")  # fmt: skip

    empty = workdir / "empty.db"
    with Store.open(empty):
        pass  # no artist to answer: the command starts, and never opens the dump
    _, base_wall, _, base_rss_kib = run_enrich(dump, empty, workdir)
    summary, wall, cpu, rss_kib = run_enrich(dump, db, workdir)
    lines = int(summary["lines"])  # type: ignore[call-overload]
    matched = int(summary["matched"])  # type: ignore[call-overload]
    api_seconds = args.artists + matched  # one search per artist, one lookup per match, 1 request/s
    print(f"enrich --dump: {wall:,.1f} s wall, {cpu:,.1f} s CPU, peak RSS {rss_kib / 1024:,.0f} MiB "
          f"(the command with nothing to do: {base_wall:,.1f} s, {base_rss_kib / 1024:,.0f} MiB)")  # fmt: skip
    print(f"  {lines / wall:,.0f} lines/s, {dump.stat().st_size / 1e6 / wall:,.1f} MB/s of {dump.name}")
    print(f"  {summary['looked_up']:,} artists answered, {matched:,} matched, {summary['no_match']:,} without a match, "
          f"{summary['requests']} requests")  # fmt: skip
    print(f"web service at 1 request/s: {api_seconds:,} requests = {api_seconds / 3600:,.1f} h; "
          f"the dump is {api_seconds / wall:,.0f}x faster")  # fmt: skip
    if not args.keep and args.workdir is None:
        for path in workdir.iterdir():
            path.unlink()
        workdir.rmdir()


if __name__ == "__main__":
    main()
