"""Start-up stays light: commands that need no data never import the heavy stages.

`genremap --version`, `--help`, every command's `--help`, `schema` and `lint` of a rules
folder (no store) run in a fresh interpreter; after each one, none of pandas, numpy, spotipy,
requests, librosa, scikit-learn, matplotlib, pyarrow or watchfiles may have been imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from genremap.cli import app

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("pandas", "numpy", "spotipy", "requests", "librosa", "sklearn", "matplotlib", "pyarrow", "watchfiles")
COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)  # type: ignore[union-attr]

# Runs each invocation in turn in one fresh interpreter and reports, per invocation, its exit
# status and the heavy modules loaded so far (the first invocation that loads one is the culprit).
PROBE = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from genremap.cli import main
    heavy, report = {heavy!r}, []
    for args in {invocations!r}:
        sys.argv = ["genremap", *args]
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                main()
                code = 0
            except SystemExit as exc:
                code = exc.code or 0
        report.append({{"args": args, "code": code, "output": out.getvalue(),
                       "heavy": sorted(m for m in heavy if m in sys.modules)}})
    print(json.dumps(report))
    """
)


def _probe(invocations: list[list[str]], cwd: Path) -> list[dict[str, object]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    script = PROBE.format(heavy=HEAVY, invocations=invocations)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    report: list[dict[str, object]] = json.loads(done.stdout.splitlines()[-1])
    return report


def _assert_light(report: list[dict[str, object]]) -> None:
    for item in report:
        assert item["code"] == 0, item
        assert item["heavy"] == [], f"`genremap {' '.join(item['args'])}` imported {item['heavy']}"  # type: ignore[arg-type]


def test_version_help_and_schema_import_nothing_heavy(tmp_path: Path) -> None:
    report = _probe([["--version"], ["--help"], ["schema"], ["schema", "--path"]], tmp_path)
    _assert_light(report)
    assert str(report[0]["output"]).startswith("genremap ")
    assert json.loads(str(report[2]["output"]))["properties"]["rules"]
    assert str(report[3]["output"]).strip().endswith("rules.schema.json")


def test_every_command_help_imports_nothing_heavy(tmp_path: Path) -> None:
    report = _probe([[command, "--help"] for command in COMMANDS], tmp_path)
    _assert_light(report)
    assert len(report) == len(COMMANDS) >= 15


@pytest.mark.parametrize("rules", ["packaged", "copy"])
def test_lint_of_a_rules_folder_imports_nothing_heavy(tmp_path: Path, rules: str) -> None:
    """No store in the folder: lint checks the rules alone, with the full loader and matcher."""
    args = ["lint"]
    if rules == "copy":
        folder = tmp_path / "my-rules"
        folder.mkdir()
        for source in sorted((REPO / "genremap" / "rules").glob("*.yaml")):
            (folder / source.name).write_bytes(source.read_bytes())
        args += ["--rules", str(folder)]
    [item] = _probe([args], tmp_path)
    _assert_light([item])
    assert "0 error(s)" in str(item["output"]) and "static checks only" in str(item["output"])


def test_a_command_that_needs_data_does_import_pandas(tmp_path: Path, sample_db: Path) -> None:
    """The probe sees heavy imports when they happen (so the tests above can fail)."""
    [item] = _probe([["report", "--db", str(sample_db)]], tmp_path)
    assert item["code"] == 0, item
    assert "pandas" in item["heavy"]  # type: ignore[operator]


def test_only_the_command_s_own_process_freezes_the_garbage_collector(sample_db: Path) -> None:
    """`main` freezes the objects imported so far (later collections skip them); a program that
    calls `app` itself, like this test, keeps its collector as it was."""
    import gc

    from typer.testing import CliRunner

    before = gc.get_freeze_count()
    result = CliRunner().invoke(app, ["report", "--db", str(sample_db)])
    assert result.exit_code == 0, result.output
    assert gc.get_freeze_count() == before
    probe = "import gc, sys; from genremap import cli; sys.argv = ['genremap', 'report', '--db', sys.argv[1]]\n"
    probe += "try:\n    cli.main()\nexcept SystemExit:\n    pass\nprint(gc.get_freeze_count() > 0)"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    frozen = subprocess.run([sys.executable, "-c", probe, str(sample_db)], capture_output=True, text=True, env=env)
    assert frozen.stdout.strip().splitlines()[-1] == "True", frozen.stderr


def test_build_loads_no_audio_stage(tmp_path: Path) -> None:
    """`build` writes a dataset folder without the audio stages' modules (their file names live in
    genremap.dataset.files): a tenth of its start-up."""
    heavy = ("genremap.audio", "librosa", "sklearn", "matplotlib", "spotipy", "requests", "watchfiles")
    script = PROBE.format(heavy=heavy, invocations=[["build", "--sample", "--out", str(tmp_path / "out")]])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    (report,) = json.loads(done.stdout.splitlines()[-1])
    assert report["code"] == 0, report["output"]
    assert report["heavy"] == []
    assert (tmp_path / "out" / "tracks.csv").is_file()
