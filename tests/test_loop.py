"""The rule-editing loop as a newcomer meets it: `init` gives a folder of rules to edit, `diff`
says what it compared with (and how to see a change when it cannot), and track counts read the
same in `import`, `report`, `status` and `build` whether they come from track rows or from an
artist table's `count` column."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genremap.cli import app
from genremap.collectors.spotify import load_collect_config
from genremap.engine import default_rules_dir, load_rules

REPO = Path(__file__).resolve().parent.parent

EDIT = "rules:\n  - {name: all trap is house, target: house, kind: keyword, patterns: [trap], priority: 100}\n"


def one_line_error(result: object) -> str:
    output = result.output  # type: ignore[attr-defined]
    assert result.exit_code == 2 and "Traceback" not in output, output  # type: ignore[attr-defined]
    assert len(output.strip().splitlines()) == 1, output
    return str(output)


# --- init ------------------------------------------------------------------------------------


def test_init_writes_plain_copies_of_the_rules_and_a_collect_config_that_loads(
    runner: CliRunner, tmp_path: Path
) -> None:
    folder = tmp_path / "new" / "work"
    result = runner.invoke(app, ["init", str(folder)])
    assert result.exit_code == 0, result.output
    packaged = sorted(default_rules_dir().glob("*.yaml"))
    assert f"wrote {len(packaged)} rule files" in result.output and "genremap diff" in result.output
    written = sorted((folder / "rules").iterdir())
    assert [p.name for p in written] == [p.name for p in packaged]
    assert all(p.is_file() and not p.is_symlink() for p in written)
    assert [p.read_bytes() for p in written] == [p.read_bytes() for p in packaged]
    assert load_rules(folder / "rules").source_hash == load_rules(default_rules_dir()).source_hash
    assert sorted(p.name for p in folder.iterdir()) == ["collect.yaml", "rules"]
    assert load_collect_config(folder / "collect.yaml") == load_collect_config(None)
    assert (folder / "collect.yaml").read_text(encoding="utf-8").startswith("# What `genremap collect` searches for")


@pytest.mark.parametrize("existing", ["collect.yaml", "rules/90-ignore.yaml", "rules/95-mine.yaml"])
def test_init_refuses_to_overwrite_or_mix_and_writes_nothing(runner: CliRunner, tmp_path: Path, existing: str) -> None:
    folder = tmp_path / "work"
    (folder / existing).parent.mkdir(parents=True)
    (folder / existing).write_text("mine: true\n", encoding="utf-8")
    before = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    error = one_line_error(runner.invoke(app, ["init", str(folder)]))
    assert "nothing was written" in error
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == before
    assert (folder / existing).read_text(encoding="utf-8") == "mine: true\n"


def test_init_refuses_a_file_given_as_the_folder(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "work").write_text("a file\n", encoding="utf-8")
    assert "is a file, not a folder" in one_line_error(runner.invoke(app, ["init", str(tmp_path / "work")]))
    assert (tmp_path / "work").read_text(encoding="utf-8") == "a file\n"


def test_init_that_fails_half_way_leaves_nothing(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk on the sixth file: the five written and the folders made are removed again."""
    real_open = Path.open

    def open_until_full(self: Path, mode: str = "r", *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if "x" in mode and self.name == "50-disco-funk.yaml":
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_open(self, mode, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "open", open_until_full)
    error = one_line_error(runner.invoke(app, ["init", str(tmp_path / "work")]))
    assert "No space left on device" in error and "50-disco-funk.yaml" in error
    assert list(tmp_path.iterdir()) == []


# --- diff: what it compared with ---------------------------------------------------------------


def test_diff_in_an_init_folder_compares_its_rules_with_the_packaged_ones(
    runner: CliRunner, tmp_path: Path, sample_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runner.invoke(app, ["init", str(tmp_path / "work")]).exit_code == 0
    monkeypatch.chdir(tmp_path / "work")
    same = runner.invoke(app, ["diff", "--db", str(sample_db)])
    assert same.exit_code == 0, same.output
    assert same.output.startswith("no change: rules labels the store exactly as the packaged rules (")
    Path("rules/95-mine.yaml").write_text(EDIT, encoding="utf-8")
    edited = runner.invoke(app, ["diff", "--db", str(sample_db)])
    first = edited.output.splitlines()[0]
    assert first.startswith("rules compared with the packaged rules (") and "tracks" in first, first
    assert "change label" in first and "(ignored) → house" not in first
    data = json.loads(runner.invoke(app, ["diff", "--db", str(sample_db), "-f", "json"]).stdout)
    assert data["compared_with"].startswith("the packaged rules (") and data["rules_dir"] == "rules"
    assert data["tracks_moved"] > 0


def test_diff_of_the_packaged_rules_with_themselves_says_how_to_see_a_change(
    runner: CliRunner, tmp_path: Path, sample_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)  # a checkout: ./rules is the packaged folder itself
    for given in ([], ["--rules", "rules"], ["--rules", "genremap/rules"]):
        result = runner.invoke(app, ["diff", "--db", str(sample_db), *given])
        assert result.exit_code == 0, result.output
        assert "is the packaged rules folder itself" in result.output and "genremap diff --rev HEAD" in result.output
    monkeypatch.chdir(tmp_path)  # no ./rules: an installed package in an empty folder
    result = runner.invoke(app, ["diff", "--db", str(sample_db)])
    assert "there is no ./rules here" in result.output and "genremap init ." in result.output


def test_help_suggests_a_loop_that_shows_changes(runner: CliRunner) -> None:
    top = runner.invoke(app, ["--help"]).output
    assert "genremap init" in top and "`genremap diff`" in top and "--rev HEAD" in top
    assert "--rules rules" not in top  # the old loop, which can never show a change in a checkout
    diff = runner.invoke(app, ["diff", "--help"]).output
    assert "genremap init DIR" in diff and "--rev HEAD" in diff


# --- track counts in the same words -----------------------------------------------------------

ARTIST_TABLE = """artist_name,genres,count
Rapper One,"['trap', 'hip hop']",120
Band,"['hard rock']",30
Nobody,[],7
"""


@pytest.fixture
def artist_table_db(runner: CliRunner, tmp_path: Path) -> tuple[Path, str]:
    db = tmp_path / "artists.db"
    (tmp_path / "artists.csv").write_text(ARTIST_TABLE, encoding="utf-8")
    result = runner.invoke(app, ["import", str(tmp_path / "artists.csv"), "--db", str(db)])
    assert result.exit_code == 0, result.output
    return db, result.output


def test_counted_tracks_read_the_same_in_import_report_status_and_build(
    runner: CliRunner, artist_table_db: tuple[Path, str], tmp_path: Path
) -> None:
    db, imported = artist_table_db
    words = "157 tracks (counted by an artist table; 0 track rows)"
    assert f"store: 3 artists, {words};" in imported
    assert words in runner.invoke(app, ["report", "--db", str(db)]).output
    assert runner.invoke(app, ["status", "--db", str(db)]).output.startswith(f"{db}: {words}, 3 artists")
    status = json.loads(runner.invoke(app, ["status", "--db", str(db), "-f", "json"]).stdout)
    report = json.loads(runner.invoke(app, ["report", "--db", str(db), "-f", "json"]).stdout)
    assert (
        (status["tracks"], status["track_rows"])
        == (report["totals"]["tracks"], report["totals"]["track_rows"])
        == (157, 0)
    )
    build = runner.invoke(app, ["build", "--db", str(db), "--out", str(tmp_path / "ds")])
    assert build.exit_code == 2 and "(0 track rows, 3 artists): build needs track rows" in build.output


def test_track_rows_alone_read_as_plain_tracks(runner: CliRunner, sample_db: Path) -> None:
    status = json.loads(runner.invoke(app, ["status", "--db", str(sample_db), "-f", "json"]).stdout)
    assert status["tracks"] == status["track_rows"] > 0
    line = runner.invoke(app, ["status", "--db", str(sample_db)]).output
    assert line.startswith(f"{sample_db}: {status['tracks']:,} tracks, ") and "counted by" not in line
    assert "counted by" not in runner.invoke(app, ["report", "--db", str(sample_db)]).output
