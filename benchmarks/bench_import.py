"""Benchmark `genremap import` and `genremap build` of a large track CSV against simple scripts.

Run from the repository root (the 1M-row run takes a few minutes, mostly the baseline import):

    python benchmarks/bench_import.py                                   # 1M and 300k tracks
    python benchmarks/bench_import.py --sizes 100000                    # quick
    python benchmarks/bench_import.py --baseline-src /tmp/base-imp      # also time an older checkout

For each size, a synthetic track CSV (the artists, genre lists, titles and duplicates of
bench_build.py's generator; one row per track with track_id, track_name, artist_name,
artist_id, genres as a Python list literal, album, release_date, duration_ms, popularity,
isrc, preview_url) is written and synced to disk, genremap is compiled into the children's
bytecode cache (as an installed package is), then these are timed whole-process (`python ...`
as a user runs it, start-up included), one after the other in the same run:

- import: `python -m genremap import CSV --db fresh.db`;
- baseline import (with --baseline-src): the same command run from another checkout (e.g. the
  commit before the fast import: `git worktree add /tmp/base-imp a809af4`); without it, the
  stated baseline of the issue (about 60 s at 1M rows on this machine) is used;
- floor: a script that reads the CSV with pandas and bulk-inserts tracks and artists into
  SQLite in one transaction (no validation, no merging, no dedupe keys);
- build: `python -m genremap build --db fresh.db --out DIR` on the imported store;
- naive: a script that reads the same CSV with pandas, reads each genres cell (a Python list
  literal) with ast.literal_eval and maps every track with the seed notebook's keywords
  (substring loops per track, `bench_build.naive_map`); also timed, for comparison only, a
  cheaper variant that splits the cells at "', '" instead of parsing them.

Targets (issue 8): import at least 5x faster than the baseline import and within 3x of the
floor; build at most 1/8 of the naive script at 1M tracks and at most 1/5 at 300k. Each
ratio is printed with PASS or MISS; the exit status is non-zero only on errors.
Timings are wall-clock on a shared machine: the commands run in --repeat rounds (3 by default; the
baseline and the comparison-only variant in the first only), each one's best is kept.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BASELINE_1M_S = 60.0  # the figure for the import before this change, 1M rows
IMPORT_SPEEDUP_TARGET = 5.0
FLOOR_RATIO_TARGET = 3.0
BUILD_RATIO_TARGETS = {1_000_000: 1 / 8, 300_000: 1 / 5}  # build time / naive time, at most

FLOOR_SCRIPT = r"""
import sqlite3, sys
import pandas as pd

csv_path, db_path = sys.argv[1], sys.argv[2]
frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
conn = sqlite3.connect(db_path)
conn.executescript('''
CREATE TABLE artists (artist_key INTEGER PRIMARY KEY, artist_id TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
                      genres TEXT);
CREATE TABLE tracks (track_id TEXT PRIMARY KEY, name TEXT NOT NULL, artist_id TEXT NOT NULL, album TEXT,
                     release_date TEXT, duration_ms INTEGER, popularity INTEGER, isrc TEXT, preview_url TEXT);
''')
artists = frame.drop_duplicates("artist_id", keep="last")
with conn:
    conn.executemany(
        "INSERT INTO artists(artist_id, name, genres) VALUES (?, ?, ?)",
        zip(artists["artist_id"], artists["artist_name"], artists["genres"]),
    )
    conn.executemany(
        "INSERT INTO tracks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        zip(frame["track_id"], frame["track_name"], frame["artist_id"], frame["album"], frame["release_date"],
            frame["duration_ms"], frame["popularity"], frame["isrc"], frame["preview_url"]),
    )
conn.close()
"""

NAIVE_SCRIPT = r"""
import ast, sys
import pandas as pd
sys.path.insert(0, sys.argv[2])
from bench_build import naive_map

frame = pd.read_csv(sys.argv[1], dtype=str, keep_default_na=False)
tracks = {
    track_id: {"track_name": name, "track_artists": artist, "genres": ast.literal_eval(genres) if genres else []}
    for track_id, name, artist, genres in zip(frame["track_id"], frame["track_name"], frame["artist_name"],
                                              frame["genres"])
}
print(len(naive_map(tracks)))
"""

# For comparison only (no target): the same mapping without parsing the list literals, each cell
# split at "', '" (wrong for names with quotes, but what a hurried script might do).
CHEAP_NAIVE_SCRIPT = r"""
import sys
import pandas as pd
sys.path.insert(0, sys.argv[2])
from bench_build import SEED_KEYWORDS, SEED_PARENT

frame = pd.read_csv(sys.argv[1], dtype=str, keep_default_na=False)
out = {}
for track_id, name, artist, genres in zip(frame["track_id"], frame["track_name"], frame["artist_name"],
                                          frame["genres"]):
    for subgenre in genres.strip("[]").split("', '"):
        found = ""
        for keyword in SEED_KEYWORDS:
            if keyword in subgenre:
                found = SEED_PARENT[keyword]
        if found:
            out[track_id] = {"track_name": name, "track_artists": artist, "genre": found}
            break
print(len(out))
"""


@dataclass
class Timed:
    """Best wall time of a whole-process command over its runs, and the CPU time (user + system)
    of the run with the least: on a shared machine CPU time is the steadier measure."""

    seconds: float
    cpu: float
    runs: list[float] = field(default_factory=list)


def write_csv(path: Path, n_tracks: int, seed: int) -> dict[str, Any]:
    """A track CSV of n_tracks rows from bench_build's generator (artists: a tenth of the tracks)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_build import synthesize

    started = time.perf_counter()
    data = synthesize(n_tracks, max(1, n_tracks // 10), 5_000, seed)
    genres = [str(g) if g is not None else "" for g in data.genres.spotify]
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(
            [
                "track_id",
                "track_name",
                "artist_name",
                "artist_id",
                "genres",
                "album",
                "release_date",
                "duration_ms",
                "popularity",
                "isrc",
                "preview_url",
            ]
        )
        for i in range(n_tracks):
            artist = data.artist_list[i]
            writer.writerow(
                (
                    data.track_ids[i],
                    data.titles[i],
                    data.names[artist],
                    data.artist_ids[artist],
                    genres[artist],
                    data.albums[data.album_idx[i]],
                    data.dates[i],
                    data.durations[i],
                    data.popularity[i],
                    data.isrcs[i] or "",
                    data.previews[i] or "",
                )
            )
    return {"seconds": time.perf_counter() - started, "bytes": path.stat().st_size}


@dataclass
class Command:
    """A whole-process command to time: `before()` runs ahead of each run (untimed); `once`: run
    in the first round only (the slow baseline, the comparison-only variant)."""

    cmd: list[str]
    env: dict[str, str]
    before: Any = None
    once: bool = False


def run_once(command: Command) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, children included) of one run.

    Commands run in the temp folder: `python -m` and `-c` put the working folder first on the
    path, which in the repository would shadow PYTHONPATH's checkout."""
    if command.before is not None:
        command.before()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        command.cmd, env=command.env, cwd=command.env["BENCH_CWD"], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"{' '.join(command.cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return wall, after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime


def timed_in_rounds(commands: dict[str, Command], repeat: int) -> dict[str, Timed]:
    """Run the commands one after the other, `repeat` rounds of them, and keep each one's best
    wall and CPU time. Rounds rather than one command `repeat` times: a slow spell of a shared
    machine then falls on a command and on what it is compared with alike."""
    runs: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(repeat):
        for name, command in commands.items():
            if command.once and round_:
                continue
            wall, cpu = run_once(command)
            runs[name].append(wall)
            cpus[name].append(cpu)
    return {name: Timed(min(runs[name]), min(cpus[name]), runs[name]) for name in commands}


def env_for(src: Path, cwd: Path) -> dict[str, str]:
    """The environment of a child that imports genremap from `src` and runs in `cwd`, with its
    compiled bytecode kept in the work folder (as an installed package has its .pyc files, and
    as bench_startup runs them): without it every command compiles genremap's modules again."""
    env = {**os.environ, "PYTHONPATH": str(src), "BENCH_CWD": str(cwd), "PYTHONPYCACHEPREFIX": str(cwd / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def warm_up(src: Path, env: dict[str, str]) -> None:
    """Compile `src`'s genremap package into the children's bytecode cache, so that the first timed
    command does not pay for compiling modules that an installed package has compiled already."""
    cmd = [sys.executable, "-m", "compileall", "-q", str(src / "genremap")]
    subprocess.run(cmd, env=env, cwd=env["BENCH_CWD"], capture_output=True, check=True)


def removed(*paths: Path) -> Any:
    def remove() -> None:
        for path in paths:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)

    return remove


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def bench_size(work: Path, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Generate, then time import, baseline import, floor, build and naive at n tracks."""
    py = sys.executable
    data = work / f"tracks_{n}.csv"
    made = write_csv(data, n, args.seed)
    print(f"\n== {n:,} tracks: {made['bytes'] / 1e6:.0f} MB CSV, generated in {made['seconds']:.1f} s", flush=True)
    db, out = work / f"store_{n}.db", work / f"dataset_{n}"
    env = env_for(ROOT, work)
    warm_up(ROOT, env)
    if args.baseline_src:
        warm_up(args.baseline_src.resolve(), env_for(args.baseline_src.resolve(), work))
    os.sync()  # the CSV just written goes to disk now, not during the first timed command
    commands = {"import": Command([py, "-m", "genremap", "import", str(data), "--db", str(db)], env, removed(db))}
    if args.baseline_src:
        base_db = work / f"base_{n}.db"
        cmd = [py, "-m", "genremap", "import", str(data), "--db", str(base_db)]
        commands["baseline"] = Command(cmd, env_for(args.baseline_src.resolve(), work), removed(base_db), once=True)
    floor_db = work / f"floor_{n}.db"
    commands["floor"] = Command([py, "-c", FLOOR_SCRIPT, str(data), str(floor_db)], env, removed(floor_db))
    cmd = [py, "-m", "genremap", "build", "--db", str(db), "--out", str(out), "--allow-short"]
    commands["build"] = Command(cmd, env, removed(out))  # on the store the round's import made
    commands["naive"] = Command([py, "-c", NAIVE_SCRIPT, str(data), str(ROOT / "benchmarks")], env)
    cmd = [py, "-c", CHEAP_NAIVE_SCRIPT, str(data), str(ROOT / "benchmarks")]
    commands["cheap_naive"] = Command(cmd, env, once=True)
    times = timed_in_rounds(commands, args.repeat)
    for path in (db, out, data, floor_db, work / f"base_{n}.db"):
        removed(path)()
    result: dict[str, Any] = {"tracks": n, "csv_bytes": made["bytes"]}
    for name, t in times.items():
        result[f"{name}_s"], result[f"{name}_cpu_s"] = t.seconds, t.cpu
    report(result)
    return result


def report(r: dict[str, Any]) -> None:
    """Print the times and the ratios (wall and CPU) with PASS/MISS; add the ratios to `r`."""
    n = r["tracks"]
    stated = BASELINE_1M_S * n / 1_000_000
    notes = {
        "import": "python -m genremap import",
        "baseline": "the same, from --baseline-src",
        "floor": "pandas read_csv + one-transaction insert of tracks and artists",
        "build": "python -m genremap build on the imported store",
        "naive": "pandas read_csv + literal_eval + notebook keywords per track",
        "cheap_naive": "the same, cells split instead of parsed (no target; for comparison)",
    }
    print(f"{'':10} {'wall s':>8} {'cpu s':>8}")
    for name, note in notes.items():
        if f"{name}_s" in r:
            print(f"{name:10} {r[name + '_s']:8.2f} {r[name + '_cpu_s']:8.2f}  {note}")
    checks = []
    for kind, suffix in (("wall", "_s"), ("cpu", "_cpu_s")):
        base = r.get("baseline" + suffix, stated)
        checks.append(
            (f"import speed-up vs baseline ({kind})", base / r["import" + suffix], IMPORT_SPEEDUP_TARGET, ">=")
        )
        checks.append(
            (f"import / floor ({kind})", r["import" + suffix] / r["floor" + suffix], FLOOR_RATIO_TARGET, "<=")
        )
        target = BUILD_RATIO_TARGETS.get(n)
        if target is not None:
            checks.append((f"build / naive ({kind})", r["build" + suffix] / r["naive" + suffix], target, "<="))
    if "baseline_s" not in r:
        print(f"(baseline: the issue's stated {BASELINE_1M_S:.0f} s per 1M rows, scaled: {stated:.1f} s)")
    for label, value, target, sense in checks:
        ok = value >= target if sense == ">=" else value <= target
        print(f"{label:38} {value:7.3f}  (target {sense} {target:.3f})  {verdict(ok)}")
        r[label] = value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,300000", help="comma-separated track counts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the commands (each one's best is kept)")
    parser.add_argument("--baseline-src", type=Path, default=None, help="a checkout to time the baseline import from")
    parser.add_argument("--workdir", type=Path, default=None, help="folder for the temp files (default: the system's)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this file")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="gmimport", dir=args.workdir) as tmp:
        results = [bench_size(Path(tmp), n, args) for n in sizes]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
