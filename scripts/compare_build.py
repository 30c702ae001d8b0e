"""Check that `genremap build` writes the same dataset as another checkout does.

    python scripts/compare_build.py --db STORE --base /tmp/base-checkout [-- --seed 7 ...]
    python scripts/compare_build.py --sample --base /tmp/base-checkout

Runs `python -m genremap build --db STORE --out dataset --allow-short --rules rules [ARGS]` once with
this checkout's code and once with the base checkout's (PYTHONPATH), each in a folder of its
own, and compares tracks.csv and tracks.parquet byte for byte and manifest.json except its
created_at. `--sample` first loads the bundled sample into a fresh store (with this
checkout). Exit status 0 when the folders match, 1 when they differ. Both builds only read
the store (a build may save its decision cache there, which changes no dataset).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPARED = ("tracks.csv", "tracks.parquet")
RULES = ROOT / "rules"


def build(src: Path, db: Path, folder: Path, extra: list[str]) -> tuple[Path, str]:
    """The dataset folder written by `src`'s code, and the wall and CPU time of the build."""
    folder.mkdir()
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, "-m", "genremap", "build", "--db", str(db), "--out", "dataset", "--allow-short"]
    cmd += ["--rules", str(RULES), *extra]  # one rules folder: the manifest names it
    start, used = time.perf_counter(), cpu_seconds()
    subprocess.run(cmd, cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL)
    return folder / "dataset", f"{time.perf_counter() - start:.2f} s wall, {cpu_seconds() - used:.2f} s CPU"


def cpu_seconds() -> float:
    """User + system CPU time of the finished child processes (steadier than wall time on a busy machine)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def differences(new: Path, old: Path) -> list[str]:
    """What differs between two dataset folders (empty when they match)."""
    found = [name for name in COMPARED if (new / name).read_bytes() != (old / name).read_bytes()]
    manifests = []
    for folder in (new, old):
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        manifest.pop("created_at", None)
        manifests.append(manifest)
    if manifests[0] != manifests[1]:
        keys = sorted(
            k for k in manifests[0].keys() | manifests[1].keys() if manifests[0].get(k) != manifests[1].get(k)
        )
        found.append(f"manifest.json ({', '.join(keys)})")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, help="store to build from")
    parser.add_argument("--sample", action="store_true", help="build from a fresh store of the bundled sample")
    parser.add_argument("--base", type=Path, required=True, help="checkout whose build is the reference")
    parser.add_argument("extra", nargs="*", help="more build options (after --)")
    args = parser.parse_args()
    if (args.db is None) == (not args.sample):
        parser.error("give --db STORE or --sample")
    with tempfile.TemporaryDirectory(prefix="compare-build-") as tmp:
        work = Path(tmp)
        db = args.db.resolve() if args.db else work / "sample.db"
        if args.sample:
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            subprocess.run(
                [sys.executable, "-m", "genremap", "build", "--sample", "--db", str(db), "--out", str(work / "first")],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
        old, old_s = build(args.base.resolve(), db, work / "base", args.extra)
        new, new_s = build(ROOT, db, work / "new", args.extra)
        found = differences(new, old)
    print(f"build: {new_s} here; {old_s} in {args.base}")
    print("different: " + ", ".join(found) if found else "same dataset (tracks.csv, tracks.parquet, manifest.json)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
