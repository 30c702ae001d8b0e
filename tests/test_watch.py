"""`genremap watch`: on every save of a rule file, the coverage and what moved, as plain-text
blocks when piped; broken rules show their located error and the watch goes on.

The subprocess tests run the real command on the bundled sample with watchfiles watching a
temporary rules folder, and check each block against `genremap report` and `genremap diff` run
on the same rules. They wait for the process's own status line (`watching ...`) before every
edit, so no edit can land before the folder is watched, and read with an overall time limit as
a hang guard only: nothing sleeps, nothing asserts on timing. Edits are saved the way editors
save, a hidden temporary file renamed over the rule file, so each save is one file event.
"""

from __future__ import annotations

import io
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from genremap.cli import app
from genremap.errors import UsageError
from genremap.render import SafeConsole
from genremap.watch import Session, Update, View, folder_events, read_store, run

REPO = Path(__file__).resolve().parent.parent
HANG_GUARD = 120.0  # seconds: only ever reached when something is broken

MINE = """\
rules:
  - name: new jack swing
    target: hip hop
    kind: {kind}
    patterns: [new jack swing, urban contemporary]
    priority: 20
"""
MINE_AND_DANCE = (
    MINE.format(kind="exact")
    + """\
  - name: alternative dance
    target: house
    kind: exact
    patterns: [alternative dance]
    priority: 20
"""
)


def save(path: Path, text: str) -> None:
    """Save as editors do: a hidden temporary file beside the file, renamed over it."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


# --- reading the plain-text blocks -------------------------------------------------------------


class Watching:
    """A `genremap watch` subprocess whose stdout is read line by line on a thread."""

    def __init__(self, cwd: Path, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200", "NO_COLOR": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "genremap", "watch", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def block(self) -> list[str]:
        """The next block: from its `=== ` header to its status line (`watching ...` or `done: ...`)."""
        deadline = time.monotonic() + HANG_GUARD
        block: list[str] = []
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                pytest.fail("no complete block from genremap watch in time; output so far:\n" + "\n".join(self.seen))
            if line is None:
                self.stop()
                pytest.fail(f"genremap watch ended mid-block; output:\n{chr(10).join(self.seen)}\n{self.stderr()}")
            self.seen.append(line)
            if line.startswith("=== "):
                block = []
            block.append(line)
            if line.startswith(("watching ", "done: ")) and block[0].startswith("=== "):
                return block

    def wait(self) -> int:
        return self.process.wait(timeout=HANG_GUARD)

    def stderr(self) -> str:
        assert self.process.stderr is not None
        return self.process.stderr.read() if self.process.poll() is not None else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def watching() -> Iterator[list[Watching]]:
    started: list[Watching] = []
    yield started
    for process in started:
        process.stop()


def table_rows(block: list[str], title: str) -> list[list[str]]:
    """The body rows of the rich table titled `title` in a block, as lists of cell texts (a
    title is centred over its table by some rich releases)."""
    start = [line.strip() for line in block].index(title)
    rows: list[list[str]] = []
    body = False
    for line in block[start + 1 :]:
        if line.startswith("┡"):
            body = True
        elif line.startswith(("├", "└")):
            return rows
        elif body and line.startswith("│"):
            rows.append([cell.strip() for cell in line.strip("│").split("│")])
    raise AssertionError(f"table {title!r} has no end in {block}")


def number(cell: str) -> int:
    return int(cell.replace(",", "")) if cell else 0


# --- what `report` and `diff` say about the same rules (the expectations) ------------------------


def report(runner: CliRunner, db: Path, rules: Path) -> dict[str, Any]:
    result = runner.invoke(app, ["report", "--db", str(db), "--rules", str(rules), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def diff(runner: CliRunner, db: Path, rules: Path, base: Path) -> dict[str, Any]:
    args = ["diff", "--db", str(db), "--rules", str(rules), "--base", str(base), "--format", "json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def coverage_by_row(data: dict[str, Any]) -> dict[str, tuple[int, int]]:
    rows = {t["target"]: (t["artists"], t["tracks"]) for t in data["targets"]}
    rows.update({f"({s})": (data[s]["artists"], data[s]["tracks"]) for s in ("unlabelled", "ambiguous", "ignored")})
    return rows


def assert_coverage(block: list[str], db: str, now: dict[str, Any], before: dict[str, Any]) -> None:
    """The block's coverage table is `report`'s, with each row's change in tracks since `before`."""
    rows = table_rows(block, f"Coverage of {db}")
    expected, previous = coverage_by_row(now), coverage_by_row(before)
    shown = {r[0]: (number(r[1]), number(r[2]), number(r[5])) for r in rows}
    assert shown == {k: (a, t, t - previous[k][1]) for k, (a, t) in expected.items()}


def assert_moves(block: list[str], moved: dict[str, Any]) -> None:
    """The block's moves and moved subgenres are `diff`'s."""
    matrix = [[m["from"], m["to"], f"{m['artists']:,}", f"{m['tracks']:,}"] for m in moved["matrix"]]
    assert table_rows(block, "Moves (from → to)") == matrix
    subgenres = [[s["subgenre"], s["from"], s["to"], s["to_rule"]] for s in moved["subgenres"]]
    assert [r[:4] for r in table_rows(block, "Subgenres that moved")] == subgenres


# --- the command, piped ------------------------------------------------------------------------


def test_watch_shows_each_save_survives_a_broken_file_and_exits_after_n_updates(
    sample_db: Path,
    test_rules_dir: Path,
    tmp_path: Path,
    runner: CliRunner,
    watching: list[Watching],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # paths in messages are shown relative to the working folder
    rules, db = Path(test_rules_dir.name), Path(sample_db.name)
    mine = rules / "20-mine.yaml"
    start = tmp_path / "at-start"
    shutil.copytree(rules, start)
    watch = Watching(tmp_path, "--rules", str(rules), "--db", str(db), "--max-updates", "3")
    watching.append(watch)

    first = watch.block()
    assert first[0].startswith(f"=== start · {rules} on {db} · ")
    at_start = report(runner, db, rules)
    rows = table_rows(first, f"Coverage of {db}")
    assert {r[0]: (number(r[1]), number(r[2])) for r in rows} == coverage_by_row(at_start)
    assert first[-1].startswith(f"watching {rules} ")

    # Files that are not rule files (notes, an editor's backup) never make an update.
    (rules / "notes.txt").write_text("try new jack swing\n", encoding="utf-8")
    (rules / "20-mine.yaml~").write_text("rules: [", encoding="utf-8")
    save(mine, MINE.format(kind="exact"))
    one = watch.block()
    assert one[0].startswith("=== update 1 · saved 20-mine.yaml · ") and "broken" not in one[0]
    after_one = report(runner, db, rules)
    assert_coverage(one, str(db), after_one, at_start)
    moved = diff(runner, db, rules, start)
    assert {s["subgenre"] for s in moved["subgenres"]} == {"new jack swing", "urban contemporary"}
    assert f"{moved['tracks_moved']:,} tracks ({moved['artists_moved']:,} artists) change label since the start" in one
    assert_moves(one, moved)
    good = tmp_path / "after-update-1"
    shutil.copytree(rules, good)

    save(mine, MINE.format(kind="exakt"))
    broken = watch.block()
    assert broken[0].startswith("=== update 2 · saved 20-mine.yaml · ") and broken[0].endswith(" · rules broken ===")
    refused = runner.invoke(app, ["report", "--db", str(db), "--rules", str(rules)])
    assert refused.exit_code == 2
    error = refused.stderr.strip()
    assert error.startswith(f"{mine}:4:11: unknown kind 'exakt'")  # the located one-line error
    assert broken[1] == error
    assert broken[2] == "the rules are broken: still watching; the next good save is compared with update 1"
    assert broken[-1].startswith("watching ") and watch.process.poll() is None

    save(mine, MINE_AND_DANCE)
    fixed = watch.block()
    assert fixed[0].startswith("=== update 3 · saved 20-mine.yaml · ")
    assert_coverage(fixed, str(db), report(runner, db, rules), after_one)
    since_good = diff(runner, db, rules, good)  # against the last good rules, not the broken ones
    assert [s["subgenre"] for s in since_good["subgenres"]] == ["alternative dance"]
    assert any(line.endswith("change label since update 1") for line in fixed)
    assert_moves(fixed, since_good)
    assert fixed[-1] == "done: 3 updates (--max-updates 3)"

    assert watch.wait() == 0
    assert watch.stderr() == ""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is a POSIX signal")
def test_ctrl_c_stops_watching_with_status_130_and_one_line(
    sample_db: Path, test_rules_dir: Path, tmp_path: Path, watching: list[Watching]
) -> None:
    watch = Watching(tmp_path, "--rules", str(test_rules_dir), "--db", str(sample_db))
    watching.append(watch)
    assert watch.block()[-1].startswith("watching ")
    watch.process.send_signal(signal.SIGINT)
    assert watch.wait() == 130
    assert watch.stderr() == "stopped watching\n"


def test_max_updates_0_shows_the_rules_once_without_watching(
    sample_db: Path, test_rules_dir: Path, runner: CliRunner
) -> None:
    result = runner.invoke(app, ["watch", "--db", str(sample_db), "--rules", str(test_rules_dir), "--max-updates", "0"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("=== start · ") and lines[-1] == "done: 0 updates (--max-updates 0)"
    rows = table_rows(lines, f"Coverage of {sample_db}")
    assert {r[0]: (number(r[1]), number(r[2])) for r in rows} == coverage_by_row(
        report(runner, sample_db, test_rules_dir)
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-updates", "-1"], "error: --max-updates -1: expected 0 (show the rules once) or more"),
        (["--policy", "votes"], "error: unknown policy 'votes' (expected vote, first or priority)"),
        (
            ["--genre-source", "tidal"],
            "error: unknown genre source 'tidal' in --genre-source 'tidal' (expected a comma-separated list of "
            "spotify, import, musicbrainz, lastfm, or both = spotify,musicbrainz)",
        ),
        (["--top", "-2"], "error: --top must be 0 (all) or more"),
    ],
)
def test_bad_options_are_refused_in_one_line(
    sample_db: Path, test_rules_dir: Path, runner: CliRunner, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["watch", "--db", str(sample_db), "--rules", str(test_rules_dir), *args])
    assert (result.exit_code, result.stderr.strip()) == (2, message)


def test_missing_store_or_rules_folder_is_refused_in_one_line(
    sample_db: Path, test_rules_dir: Path, runner: CliRunner, tmp_path: Path
) -> None:
    no_store = runner.invoke(app, ["watch", "--db", str(tmp_path / "none.db"), "--rules", str(test_rules_dir)])
    assert no_store.exit_code == 2 and no_store.stderr.startswith("error: store not found: ")
    assert not (tmp_path / "none.db").exists()
    no_rules = runner.invoke(app, ["watch", "--db", str(sample_db), "--rules", str(tmp_path / "nope")])
    assert no_rules.exit_code == 2 and no_rules.stderr.startswith("error: rules directory not found: ")
    assert len(no_store.stderr.splitlines()) == len(no_rules.stderr.splitlines()) == 1


# --- the loop, with events fed by the test ------------------------------------------------------


@pytest.fixture
def session(sample_db: Path, test_rules_dir: Path) -> Session:
    return Session(test_rules_dir, read_store(sample_db), None, "both")


def test_one_update_per_burst_and_only_for_rule_files(session: Session, test_rules_dir: Path) -> None:
    folder = test_rules_dir.resolve()
    mine = folder / "20-mine.yaml"

    def events() -> Iterator[set[str]]:
        yield set()  # the source is watching
        (folder / "sub").mkdir()
        (folder / "sub" / "30-x.yaml").write_text("rules: [", encoding="utf-8")
        yield {str(folder / n) for n in ("notes.txt", "20-mine.yaml~", ".#20-mine.yaml", "#20-mine.yaml#", "4913")} | {
            str(folder / "sub" / "30-x.yaml")
        }
        save(mine, MINE.format(kind="exact"))  # one save, several events
        yield {str(folder / ".20-mine.yaml.tmp"), str(mine), str(folder / "20-mine.yaml~")}

    shown: list[Update] = []
    assert run(session, events(), shown.append) == 1
    assert [(u.number, u.changed) for u in shown] == [(0, ()), (1, ("20-mine.yaml",))]
    assert shown[1].diff is not None and shown[1].since == 0
    assert {s["subgenre"] for s in shown[1].diff["subgenres"]} == {"new jack swing", "urban contemporary"}


def test_max_updates_stops_before_waiting_for_more_events(session: Session, test_rules_dir: Path) -> None:
    mine = test_rules_dir.resolve() / "20-mine.yaml"

    def events() -> Iterator[set[str]]:
        yield set()
        save(mine, MINE.format(kind="exact"))
        yield {str(mine)}
        raise AssertionError("read past --max-updates")

    shown: list[Update] = []
    assert run(session, events(), shown.append, max_updates=1) == 1
    assert [u.number for u in shown] == [0, 1]
    zero: list[Update] = []
    assert run(session, events(), zero.append, max_updates=0) == 0
    assert [u.number for u in zero] == [0]


def test_rules_broken_at_start_then_fixed(sample_db: Path, write_rules: Any) -> None:
    folder = write_rules({"20-mine.yaml": MINE.format(kind="exakt")})
    session = Session(folder, read_store(sample_db), None, "both")
    mine = folder.resolve() / "20-mine.yaml"

    def events() -> Iterator[set[str]]:
        yield set()
        save(mine, MINE.format(kind="exact"))
        yield {str(mine)}
        save(mine, MINE.format(kind="exact"))  # saved again unchanged
        yield {str(mine)}

    shown: list[Update] = []
    run(session, events(), shown.append)
    start, fixed, again = shown
    assert start.error is not None and start.error.startswith(f"{folder / '20-mine.yaml'}:4:11: unknown kind 'exakt'")
    assert start.coverage is None and start.since is None
    assert fixed.error is None and fixed.diff is None and fixed.coverage is not None
    assert again.diff is not None and again.since == 1
    assert (again.diff["matrix"], again.diff["subgenres"]) == ([], [])
    view = View(SafeConsole(file=io.StringIO(), width=200), "rules", "genremap.db")
    assert "first good rules: nothing to compare with" in view.renderables(fixed)
    assert "no label changes since update 1" in view.renderables(again)
    assert "no good rules yet" in str(view.renderables(start)[-1])


def test_a_removed_rules_folder_stops_the_watch(session: Session, test_rules_dir: Path) -> None:
    folder = test_rules_dir.resolve()

    def events() -> Iterator[set[str]]:
        yield set()
        shutil.rmtree(folder)
        yield {str(folder / "10-rules.yaml")}

    with pytest.raises(UsageError, match="was removed or renamed: stopped watching"):
        run(session, events(), lambda update: None)


def test_terminal_view_redraws_and_shows_names_as_data(session: Session) -> None:
    out = io.StringIO()
    console = SafeConsole(file=out, force_terminal=True, width=120)
    view = View(console, "rules", "genremap.db")
    start = session.update(0)
    view(start)
    hostile = Update(1, ("x\x1b]0;pwned\x07.yaml",), 0.1, start.coverage, None, None, 0, "a.yaml:1:1: bad \x1b[2J")
    view(hostile)
    text = out.getvalue()
    assert text.count("\x1b[2J\x1b[H") == 2  # the screen is cleared before each update
    assert "\x1b]0;pwned" not in text and "x\\x1b]0;pwned\\x07.yaml" in text
    assert "bad \\x1b[2J" in text
    assert "Coverage of genremap.db with the rules of the start" in text  # the last good coverage stays in view


def test_a_folder_that_cannot_be_watched_is_one_line(test_rules_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import watchfiles

    def refuse(*args: Any, **kwargs: Any) -> Iterator[set[tuple[int, str]]]:
        raise OSError(28, "No space left on device (inotify watch limit reached)")
        yield set()

    monkeypatch.setattr(watchfiles, "watch", refuse)
    with pytest.raises(UsageError) as refused:
        next(folder_events(test_rules_dir))
    assert refused.value.message == (
        f"cannot watch {test_rules_dir}: No space left on device (inotify watch limit reached); "
        "set WATCHFILES_FORCE_POLLING=1 to poll the folder instead"
    )
