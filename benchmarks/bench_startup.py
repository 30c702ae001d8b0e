"""Whole-process times of the rule-editing loop's commands, against `python -c "import pandas"`.

Run from the repository root (about a minute):

    python benchmarks/bench_startup.py                     # 7 runs of each command
    python benchmarks/bench_startup.py --runs 11 --json startup.json

It imports the shared corpus (../shared/data/spotify_artists_genres.csv, 22,727 artists) into a
store in a temporary folder, copies the packaged rules twice (`rules`, and `my-rules` for the
edits), then times every command as a user runs it (`python -m genremap ...`, a fresh process
each time, output to /dev/null), round-robin over N runs so that load from other jobs spreads
over all of them, beside `python -c "import pandas"` in the same rounds:

- `--version` (target: at most 0.5x `import pandas`);
- `report`, `unmapped`, `subgenres`, `diff`, `lint` on the corpus store with unchanged rules
  (target: at most 2x);
- after a one-rule edit: each run first changes one rule of `my-rules/95-mine.yaml` (the
  README's "electronic pioneers" rule, one more subgenre each time), then times `diff
  --rules my-rules --base rules`; then changes it again and times `report --rules my-rules`
  (target: at most 2x). Each is the first command after its edit.

- `explain --artist` of one artist on the corpus store (target: at most 2x); the issue also
  names an `artists` command, timed when the CLI has one.

For information: the interpreter alone (`python -c pass`), and `report` with the store's
decision cache emptied before each run (every subgenre decided afresh).

Children write and reuse compiled bytecode (in a `pycache` folder of the work folder) even
when PYTHONDONTWRITEBYTECODE is set here, as an installed genremap and pandas have theirs: the
warm-up round compiles, the timed rounds do not.

Medians of wall time (and of CPU time, user + system, from os.wait4) are printed with their
ratio to `import pandas`, and PASS or MISS per target (by wall time). The exit status is
non-zero only when a command fails. Without the shared corpus it prints why and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "data" / "spotify_artists_genres.csv"
GENREMAP = [sys.executable, "-m", "genremap"]
# The README's example rule; each edit adds one more subgenre to it.
MINE = """\
rules:
  - name: electronic pioneers
    target: house
    kind: exact
    patterns: [{patterns}]
    priority: 50
"""
README_PATTERNS = ["dusseldorf electronic", "braindance", "japanese idm"]


@dataclass
class Case:
    """One timed command: its arguments, the target ratio to `import pandas` (None: shown
    for information), and what to do before each run (an edit, emptying the cache)."""

    name: str
    argv: list[str]
    target: float | None
    before: Callable[[int], None] | None = None
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def timed(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one child process; raises if it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    errors = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"failed ({code}): {' '.join(argv)}\n{errors.decode(errors='replace')}")
    return wall, usage.ru_utime + usage.ru_stime


def has_command(name: str, cwd: Path, env: dict[str, str]) -> bool:
    return subprocess.run([*GENREMAP, name, "--help"], cwd=cwd, env=env, capture_output=True).returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each command (medians are reported)")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="the shared corpus CSV")
    parser.add_argument("--workdir", type=Path, help="folder for the store and rules (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if not args.corpus.exists():
        print(
            f"skipped: the shared corpus is not at {args.corpus} (it lives in ../shared/data beside the "
            "repository; pass --corpus PATH)"
        )
        return 0
    work = args.workdir or Path(tempfile.mkdtemp(prefix="genremap-startup-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return run(args, work)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> int:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("COLUMNS", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    db = work / "corpus.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    rules, mine = work / "rules", work / "my-rules"
    for folder in (rules, mine):
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(ROOT / "rules", folder)
    wall, _ = timed([*GENREMAP, "import", str(args.corpus), "--db", str(db), "--rules", str(rules)], work, env)
    print(f"imported {args.corpus.name} into {db} in {wall:.2f} s")
    unmapped = json.loads(
        subprocess.run(
            [*GENREMAP, "unmapped", "--db", str(db), "--rules", str(rules), "--top", "0", "--format", "json"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    extra = [row["subgenre"] for row in unmapped if row["subgenre"] not in README_PATTERNS]
    edits = iter(range(10**6))

    def edit(_: int) -> None:
        """One rule changed: the README's rule gains one more unmapped subgenre."""
        patterns = [*README_PATTERNS, *extra[: next(edits) % len(extra) + 1]]
        (mine / "95-mine.yaml").write_text(MINE.format(patterns=", ".join(patterns)), encoding="utf-8")

    def empty_cache(_: int) -> None:
        with sqlite3.connect(db) as conn:
            conn.execute("DELETE FROM decision_cache")

    edit(0)
    on_store = ["--db", str(db), "--rules", str(rules)]
    cases = [
        Case("python -c 'import pandas'", [sys.executable, "-c", "import pandas"], None),
        Case("python -c pass", [sys.executable, "-c", "pass"], None),
        Case("genremap --version", [*GENREMAP, "--version"], 0.5),
        Case("report", [*GENREMAP, "report", *on_store], 2.0),
        Case("unmapped", [*GENREMAP, "unmapped", *on_store], 2.0),
        Case("subgenres", [*GENREMAP, "subgenres", *on_store], 2.0),
        Case("diff", [*GENREMAP, "diff", "--rules", str(rules), "--base", str(rules), "--db", str(db)], 2.0),
        Case("lint", [*GENREMAP, "lint", *on_store], 2.0),
        Case(
            "diff after a one-rule edit",
            [*GENREMAP, "diff", "--rules", str(mine), "--base", str(rules), "--db", str(db)],
            2.0,
            before=edit,
        ),
        Case("report after a one-rule edit", [*GENREMAP, "report", "--db", str(db), "--rules", str(mine)], 2.0, edit),
        Case("report, decision cache emptied", [*GENREMAP, "report", *on_store], None, empty_cache),
    ]
    conn = sqlite3.connect(db)
    artist = conn.execute("SELECT name FROM artists ORDER BY track_count DESC LIMIT 1").fetchone()[0]
    conn.close()
    cases.insert(8, Case("explain --artist", [*GENREMAP, "explain", "--artist", artist, *on_store], 2.0))
    if has_command("artists", work, env):
        cases.insert(8, Case("artists", [*GENREMAP, "artists", "--db", str(db)], 2.0))
    else:
        print("artists: no such command, skipped (explain --artist timed instead)")
    for case in cases:  # warm the file cache once
        timed(case.argv, work, env)
    load = os.getloadavg()
    for i in range(args.runs):
        for case in cases:
            if case.before is not None:
                case.before(i)
            wall, cpu = timed(case.argv, work, env)
            case.wall.append(wall)
            case.cpu.append(cpu)
    return report(args, cases, load)


def report(args: argparse.Namespace, cases: list[Case], load: tuple[float, float, float]) -> int:
    base_wall = statistics.median(cases[0].wall)
    base_cpu = statistics.median(cases[0].cpu)
    print(
        f"\n{platform.python_implementation()} {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs; load average before the runs {load[0]:.2f}; medians of {args.runs} runs"
    )
    print(f"{'command':<32} {'wall s':>7} {'x pandas':>9} {'CPU s':>7} {'x pandas':>9}  target")
    results = []
    for case in cases:
        wall, cpu = statistics.median(case.wall), statistics.median(case.cpu)
        ratio, cpu_ratio = wall / base_wall, cpu / base_cpu
        verdict = "" if case.target is None else f"<= {case.target:g}x: {'PASS' if ratio <= case.target else 'MISS'}"
        print(f"{case.name:<32} {wall:7.3f} {ratio:9.2f} {cpu:7.3f} {cpu_ratio:9.2f}  {verdict}")
        results.append(
            {
                "command": case.name,
                "argv": case.argv[2:] if case.argv[:3] == GENREMAP else case.argv[1:],
                "wall_median_s": round(wall, 4),
                "cpu_median_s": round(cpu, 4),
                "ratio_to_import_pandas": round(ratio, 3),
                "cpu_ratio_to_import_pandas": round(cpu_ratio, 3),
                "target": case.target,
                "pass": None if case.target is None else ratio <= case.target,
                "wall_s": [round(x, 4) for x in case.wall],
            }
        )
    if args.json:
        args.json.write_text(json.dumps({"load_average": load, "runs": args.runs, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
