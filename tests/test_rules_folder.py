"""The repository's `rules/` is the real folder, and the package's rules are built from it: a
checkout, an editable install, a wheel and an sdist all find the same eleven files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genremap.cli import app
from genremap.engine import default_rules_dir, load_rules

REPO = Path(__file__).resolve().parent.parent

RULE_FILES = [
    "00-targets.yaml",
    "10-rock.yaml",
    "20-metal.yaml",
    "30-jazz.yaml",
    "40-blues-soul.yaml",
    "50-disco-funk.yaml",
    "60-house-electronic.yaml",
    "70-classical.yaml",
    "80-hip-hop.yaml",
    "85-country.yaml",
    "90-ignore.yaml",
    "95-not-genres.yaml",
]


def test_rules_is_a_real_folder_that_the_package_finds() -> None:
    rules = REPO / "rules"
    assert rules.is_dir() and not rules.is_symlink()
    assert sorted(p.name for p in rules.iterdir()) == RULE_FILES
    assert all(p.is_file() and not p.is_symlink() for p in rules.iterdir())
    packaged = default_rules_dir()
    assert packaged.resolve() == rules.resolve()  # genremap/rules -> ../rules
    assert sorted(p.name for p in packaged.glob("*.yaml")) == RULE_FILES


def test_cp_r_rules_makes_a_copy_whose_edits_leave_the_packaged_rules_alone(tmp_path: Path) -> None:
    """The README's `cp -r rules my-rules`, with the real cp (it copies a link as a link)."""
    copy = tmp_path / "my-rules"
    subprocess.run(["cp", "-r", str(REPO / "rules"), str(copy)], check=True)
    assert copy.is_dir() and not copy.is_symlink()
    (copy / "95-mine.yaml").write_text("rules: [{name: mine, target: house, kind: exact, patterns: [braindance]}]\n")
    assert not (default_rules_dir() / "95-mine.yaml").exists()
    assert len(load_rules(copy).rules) == len(load_rules(default_rules_dir()).rules) + 1


@pytest.mark.parametrize("given", [["--rules", "rules"], ["--rules", "genremap/rules"], []])
def test_the_folder_the_link_and_the_default_load_the_same_rules(
    given: list[str], runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(REPO)
    result = runner.invoke(app, ["lint", *given, "--db", str(tmp_path / "none.db"), "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["errors"] == 0 and Path(data["rules"]).resolve() == (REPO / "rules").resolve()


def _checkout_copy(into: Path) -> Path:
    """The repository's files as a fresh clone holds them (links kept as links), without build leftovers."""
    ignore = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", "*.db*", "mutants")
    return Path(shutil.copytree(REPO, into, symlinks=True, ignore=ignore))


def test_a_wheel_built_from_the_checkout_holds_the_rules_as_plain_files(tmp_path: Path) -> None:
    source = _checkout_copy(tmp_path / "src")
    assert (source / "genremap" / "rules").is_symlink()
    out = tmp_path / "wheel"
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-w", str(out), "-q"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if build.returncode != 0 and ("No matching distribution" in build.stderr or "Could not find" in build.stderr):
        pytest.skip("no package index to fetch the build backend (setuptools) from")
    assert build.returncode == 0, build.stderr
    (wheel,) = out.glob("genremap-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {
            Path(info.filename).name: archive.read(info)
            for info in archive.infolist()
            if info.filename.startswith("genremap/rules/")
        }
        modes = {(info.external_attr >> 16) & 0o170000 for info in archive.infolist()}
    assert sorted(shipped) == RULE_FILES
    assert shipped == {name: (REPO / "rules" / name).read_bytes() for name in RULE_FILES}
    assert modes <= {0, 0o100000}  # regular files only, no link entries
