"""The README's shell sessions run as written and print what the README shows.

Every fenced block of "The rule-editing loop" is a session: `$ ` lines are commands (a
heredoc runs to its terminator), the lines up to the next command are the expected output,
compared line by line (without their outer spaces); a line that is only `...` stands for any number of lines, and `/…/` inside
a line for any path (one that differs per machine). The commands run in order in one
temporary folder with the shared corpus beside it, as a user on a fresh checkout would. The
quickstart's table is checked the same way against `genremap build --sample`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "data" / "spotify_artists_genres.csv"
WIDTH = "120"  # the README's tables are shown as a 120-column terminal prints them


@dataclass
class Step:
    """One command of a README session and the output the README shows for it ([] = none shown)."""

    command: str
    expected: list[str]
    line: int  # README line of the command, for the failure message


def _blocks(text: str, start: str, end: str) -> list[tuple[int, list[str]]]:
    """The fenced blocks between the headings `start` and `end`: (line number of the first
    line inside, the lines)."""
    lines = text.splitlines()
    first = lines.index(start)
    last = lines.index(end, first)
    blocks, inside, current, at = [], False, [], 0
    for number, line in enumerate(lines[first:last], start=first + 1):
        if line.startswith("```"):
            if inside:
                blocks.append((at, current))
            inside, current, at = not inside, [], number + 1
        elif inside:
            current.append(line)
    return blocks


def _steps(at: int, lines: list[str]) -> list[Step]:
    steps: list[Step] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("$ "):
            assert steps, f"README.md:{at + i}: output before any `$ ` command"
            steps[-1].expected.append(line)
            i += 1
            continue
        command, number = line[2:], at + i
        heredoc = re.search(r"<<'?(\w+)'?\s*$", command)
        i += 1
        if heredoc:
            while lines[i] != heredoc.group(1):
                command += "\n" + lines[i]
                i += 1
            command += "\n" + lines[i]
            i += 1
        steps.append(Step(command, [], number))
    while steps and steps[-1].expected and not steps[-1].expected[-1].strip():
        steps[-1].expected.pop()
    for step in steps:
        while step.expected and not step.expected[-1].strip():
            step.expected.pop()
    return steps


def _pattern(expected: list[str]) -> re.Pattern[str]:
    """`expected` as one regex over the output: `...` lines skip lines, `/…/` any path."""
    parts = []
    for line in expected:
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append("/.*/".join(re.escape(piece) for piece in line.strip().split("/…/")) + r"\n")
    return re.compile("".join(parts))


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENREMAP_", "SPOTIPY_", "SPOTIFY_", "LASTFM_"))}
    env["COLUMNS"] = WIDTH
    env["LINES"] = "50"
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.pop("FORCE_COLOR", None)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    # Output goes to a pipe here, where Python buffers stdout in blocks; in a terminal, where a
    # reader runs the README, it goes out line by line, between the notes on stderr: as shown.
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run(step: Step, cwd: Path, env: dict[str, str], marker: Path) -> tuple[int, str, Path]:
    """Run one command with bash in `cwd`; its exit status, output (stdout then stderr lines as a
    terminal-less run interleaves them) and the folder it ended in (a `cd` carries on)."""
    script = f"{step.command}\nstatus=$?\npwd > {marker}\nexit $status\n"
    done = subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600
    )
    output = done.stdout.decode("utf-8", "replace")
    # Lines compare without their outer spaces: some rich releases centre a table's title.
    lines = "\n".join(line.strip() for line in output.splitlines()) + "\n"
    return done.returncode, lines, Path(marker.read_text().strip())


def _check(step: Step, status: int, output: str) -> None:
    where = f"README.md:{step.line}: `{step.command.splitlines()[0]}`"
    if not step.expected:
        assert status == 0, f"{where} failed (status {status}):\n{output}"
        return
    assert _pattern(step.expected).fullmatch(output), (
        f"{where} printed something else than the README shows.\n--- README\n"
        + "\n".join(step.expected)
        + f"\n--- printed (status {status})\n{output}"
    )


@pytest.fixture
def loop_folder(tmp_path: Path) -> Path:
    """A fresh working folder with the shared data beside it, as `../shared` from a checkout."""
    (tmp_path / "shared").symlink_to(SHARED, target_is_directory=True)
    (tmp_path / "checkout").mkdir()
    return tmp_path / "checkout"


@pytest.mark.skipif(not CORPUS.exists(), reason=f"the shared corpus is absent ({CORPUS}); the loop imports it")
def test_the_rule_editing_loop_runs_as_written(loop_folder: Path) -> None:
    text = README.read_text(encoding="utf-8")
    sessions = [
        steps
        for at, lines in _blocks(text, "## The rule-editing loop", "### Watch while you edit")
        if (steps := _steps(at, lines))
    ]
    assert len(sessions) >= 6, "the loop's sessions were not found in README.md"
    env, cwd, marker = _env(), loop_folder, loop_folder.parent / ".cwd"
    for steps in sessions:
        for step in steps:
            status, output, cwd = _run(step, cwd, env, marker)
            _check(step, status, output)


def test_the_quickstart_prints_what_the_readme_shows(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    (at, shown), *_ = [
        (at, lines)
        for at, lines in _blocks(text, "## Quickstart", "## What a dataset folder holds")
        if lines and lines[0].startswith("Dataset ")
    ]
    step = Step("genremap build --sample", shown, at - 1)
    status, output, _ = _run(step, tmp_path, _env(), tmp_path / ".cwd")
    assert status == 0, output
    _check(step, status, output)
