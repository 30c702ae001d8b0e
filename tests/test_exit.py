"""The genremap process ends without taking its modules apart (cli._exit_now): what it printed is
all there, exit statuses are Python's, exit handlers run, and a thread still running gets the
normal exit instead."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from genremap import cli

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
ENV.pop("PYTHONUNBUFFERED", None)  # streams buffered, as a user's are

SCRIPT = """
import atexit, sys
from genremap.cli import _exit_now
atexit.register(lambda: print("handler ran", file=sys.stderr))
print("x" * 200_000)  # more than any pipe or stream buffer holds
print("last", end="")  # left in the stream's buffer
_exit_now({code!r})
print("not reached")
"""


@pytest.mark.parametrize(("code", "status", "said"), [(None, 0, ""), (0, 0, ""), (3, 3, ""), ("bye", 1, "bye\n")])
def test_output_statuses_and_handlers_are_python_s(tmp_path: Path, code: object, status: int, said: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(code=code)], cwd=tmp_path, env=ENV, capture_output=True, text=True
    )
    assert done.returncode == status
    assert done.stdout == "x" * 200_000 + "\nlast"
    assert done.stderr == said + "handler ran\n"


def test_a_running_thread_gets_the_normal_exit() -> None:
    release = threading.Event()
    worker = threading.Thread(target=release.wait)
    worker.start()
    try:
        cli._exit_now(0)  # returns: this process (pytest's) goes on
    finally:
        release.set()
        worker.join()


def test_a_command_s_output_and_status_survive(tmp_path: Path) -> None:
    """`python -m genremap` of a command that succeeds and of one that is refused."""
    run = [sys.executable, "-m", "genremap"]
    built = subprocess.run([*run, "build", "--sample", "--out", "out"], cwd=tmp_path, env=ENV, capture_output=True)
    assert built.returncode == 0, built.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["counts"]["tracks"] == len((tmp_path / "out" / "tracks.csv").read_text().splitlines()) - 1
    report = subprocess.run([*run, "report", "--format", "json"], cwd=tmp_path, env=ENV, capture_output=True)
    assert report.returncode == 0 and json.loads(report.stdout)
    refused = subprocess.run([*run, "report", "--db", "missing.db"], cwd=tmp_path, env=ENV, capture_output=True)
    assert refused.returncode == 2 and b"store not found" in refused.stderr
