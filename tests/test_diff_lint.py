"""`diff` (what an edit moves, before it is applied) and `lint` (dead, shadowed, duplicate rules)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genremap.cli import app

SMALL = """artist_name,genres,count
Rapper One,"['dark trap', 'underground hip hop']",10
Rapper Two,"['dark trap', 'trap']",20
Emo Kid,"['emo', 'pop punk']",6
Metal Head,"['vancouver metal', 'metalcore']",7
Swing Band,"['swing', 'big band']",9
"""


@pytest.fixture
def small_db(tmp_path: Path, runner: CliRunner) -> Path:
    db = tmp_path / "small.db"
    (tmp_path / "small.csv").write_text(SMALL, encoding="utf-8")
    assert runner.invoke(app, ["import", str(tmp_path / "small.csv"), "--db", str(db)]).exit_code == 0
    return db


def _diff(runner: CliRunner, db: Path, rules: Path, *extra: str) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(app, ["diff", "--db", str(db), "--rules", str(rules), *extra, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_unchanged_copy_gives_empty_diff(
    runner: CliRunner, small_db: Path, test_rules_dir: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(test_rules_dir, copy)
    data = _diff(runner, small_db, copy, "--base", str(test_rules_dir))
    assert (data["artists_moved"], data["tracks_moved"], data["matrix"], data["subgenres"]) == (0, 0, [], [])
    text = runner.invoke(app, ["diff", "--db", str(small_db), "--rules", str(copy), "--base", str(test_rules_dir)])
    assert "no change" in text.stdout


def test_edit_moves_tracks_and_lists_subgenres(
    runner: CliRunner, small_db: Path, test_rules_dir: Path, tmp_path: Path
) -> None:
    edited = tmp_path / "edited"
    shutil.copytree(test_rules_dir, edited)
    with (edited / "20-edit.yaml").open("w") as f:
        f.write(
            "rules:\n  - {name: emo, target: rock, kind: keyword, patterns: [emo]}\n"
            "  - {name: swing, target: jazz, kind: exact, patterns: [swing, big band]}\n"
            "ignore:\n  - {subgenre: dark trap, reason: testing}\n"
        )
    data = _diff(runner, small_db, edited, "--base", str(test_rules_dir))
    assert data["artists_moved"] == 1  # Swing Band: unlabelled → jazz (Emo Kid was already rock via pop punk)
    assert data["matrix"] == [{"from": "(unlabelled)", "to": "jazz", "artists": 1, "tracks": 9}]
    moved = {r["subgenre"]: (r["from"], r["to"]) for r in data["subgenres"]}
    assert moved == {
        "dark trap": ("hip hop", "(ignored)"),
        "swing": ("(unmapped)", "jazz"),
        "big band": ("(unmapped)", "jazz"),
        "emo": ("(unmapped)", "rock"),
    }
    assert [r["tracks"] for r in data["subgenres"]] == sorted((r["tracks"] for r in data["subgenres"]), reverse=True)


def test_diff_against_git_revision(runner: CliRunner, small_db: Path, test_rules_dir: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(test_rules_dir, repo / "rules")
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.invalid", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "rules"], check=True)
    assert _diff(runner, small_db, repo / "rules", "--rev", "HEAD")["subgenres"] == []
    (repo / "rules" / "20-edit.yaml").write_text(
        "rules: [{name: metal2, target: rock, kind: keyword, patterns: [vancouver metal], priority: 50}]\n"
    )
    data = _diff(runner, small_db, repo / "rules", "--rev", "HEAD")
    assert data["matrix"] == [{"from": "metal", "to": "(ambiguous)", "artists": 1, "tracks": 7}]  # one vote each
    bad = runner.invoke(app, ["diff", "--db", str(small_db), "--rules", str(repo / "rules"), "--rev", "nope"])
    assert bad.exit_code == 2 and "--rev nope" in bad.output


def test_diff_against_packaged_rules_by_default(runner: CliRunner, small_db: Path, tmp_path: Path) -> None:
    from genremap.engine import default_rules_dir

    copy = tmp_path / "copy"
    shutil.copytree(default_rules_dir(), copy)
    data = _diff(runner, small_db, copy)
    assert data["subgenres"] == [] and Path(data["base_dir"]).resolve() == default_rules_dir().resolve()


def test_lint_finds_dead_shadowed_duplicate_and_empty_targets(
    runner: CliRunner, small_db: Path, write_rules: Callable[..., Path]
) -> None:
    rules = write_rules(
        {
            "10.yaml": """
            rules:
              - {name: trap, target: hip hop, kind: keyword, patterns: [trap, trap], priority: 5}
              - {name: dark, target: metal, kind: exact, patterns: [dark trap]}
              - {name: polka, target: rock, kind: keyword, patterns: [polka]}
              - {name: metal, target: metal, kind: keyword, patterns: [metal, metalcore]}
              - {name: metal again, target: metal, kind: keyword, patterns: [metal]}
            """
        }
    )
    result = runner.invoke(app, ["lint", "--db", str(small_db), "--rules", str(rules), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    codes = {(f["code"], f["message"].split("'")[1] if "'" in f["message"] else "") for f in data["findings"]}
    assert ("never-fires", "polka") in codes
    assert ("shadowed", "dark") in codes
    assert ("shadowed", "metal again") in codes
    assert any(c == "duplicate-pattern" for c, _ in codes)
    assert ("target-without-rules", "jazz") in codes
    assert data["errors"] == 0 and data["warnings"] == len(data["findings"])
    strict = runner.invoke(app, ["lint", "--db", str(small_db), "--rules", str(rules), "--strict"])
    assert strict.exit_code == 1


def test_lint_without_store_runs_static_checks(runner: CliRunner, tmp_path: Path, test_rules_dir: Path) -> None:
    result = runner.invoke(app, ["lint", "--db", str(tmp_path / "none.db"), "--rules", str(test_rules_dir)])
    assert result.exit_code == 0
    assert "static checks only" in result.stdout
    assert not (tmp_path / "none.db").exists()


def test_lint_conflicts(runner: CliRunner, small_db: Path, write_rules: Callable[..., Path]) -> None:
    rules = write_rules(
        {
            "10.yaml": "rules: [{name: a, target: rock, kind: keyword, patterns: [emo]}, {name: b, target: metal, kind: keyword, patterns: [emo]}]"
        }
    )
    result = runner.invoke(app, ["lint", "--db", str(small_db), "--rules", str(rules), "--format", "json"])
    findings = json.loads(result.stdout)["findings"]
    assert any(f["code"] == "conflict" and "'emo'" in f["message"] for f in findings)


def test_diff_rev_reads_rule_files_with_spaces_and_non_ascii_names(
    runner: CliRunner, small_db: Path, test_rules_dir: Path, tmp_path: Path
) -> None:
    """`git ls-tree -z` and blob ids: every committed file is in the base, whatever its name."""
    repo = tmp_path / "repo"
    shutil.copytree(test_rules_dir, repo / "my rules")
    rules = repo / "my rules"
    (rules / "20 swing and big band.yaml").write_text(
        "rules: [{name: swing, target: jazz, kind: exact, patterns: [swing, big band]}]\n", encoding="utf-8"
    )
    (rules / "30-émo ✓.yaml").write_text("rules: [{name: emo, target: rock, kind: keyword, patterns: [emo]}]\n")
    (rules / "notes.txt").write_text("not a rule file\n")
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.invalid", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "rules"], check=True)
    unchanged = _diff(runner, small_db, rules, "--rev", "HEAD")
    assert (unchanged["artists_moved"], unchanged["subgenres"]) == (0, [])
    (rules / "20 swing and big band.yaml").unlink()
    data = _diff(runner, small_db, rules, "--rev", "HEAD")
    assert data["matrix"] == [{"from": "jazz", "to": "(unlabelled)", "artists": 1, "tracks": 9}]
    assert {r["subgenre"] for r in data["subgenres"]} == {"swing", "big band"}
    for bad_rev, fragment in [
        ("--output=x", "cannot start with '-'"),
        ("HEAD~5", "no folder my rules at that revision"),
    ]:
        refused = runner.invoke(app, ["diff", "--db", str(small_db), "--rules", str(rules), f"--rev={bad_rev}"])
        assert refused.exit_code == 2 and fragment in refused.stderr, refused.output
        assert refused.stderr.count("\n") == 1, refused.stderr
