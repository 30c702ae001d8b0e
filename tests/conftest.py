"""Shared fixtures: rule folders written from YAML text, stores, a CLI runner with a fixed width."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genremap.engine import RuleSet, load_rules
from genremap.sample import load_sample
from genremap.store import Store

REPO = Path(__file__).resolve().parent.parent
SHARED_CORPUS = REPO.parent / "shared" / "data" / "spotify_artists_genres.csv"

TARGETS_YAML = """\
targets:
  rock: Rock music.
  metal: Heavy metal.
  jazz: Jazz.
  blues: Blues and soul.
  disco: Disco and funk.
  house: Electronic dance music.
  classical: Western art music.
  hip hop: Hip hop and rap.
  country: Country music.
"""

# A small, readable rule set for tests (the shipped rules are tested separately).
TEST_RULES_YAML = """\
rules:
  - name: metal
    target: metal
    kind: keyword
    patterns: [metal, metalcore]
    priority: 10
  - name: rock
    target: rock
    kind: keyword
    patterns: [rock, grunge, punk]
    unless: [rock steady]
  - name: jazz
    target: jazz
    kind: keyword
    patterns: [jazz, bebop, hard bop]
  - name: soul
    target: blues
    kind: keyword
    patterns: [blues, soul]
  - name: soul jazz
    target: jazz
    kind: exact
    patterns: [soul jazz]
    priority: 5
  - name: funk
    target: disco
    kind: keyword
    patterns: [disco, funk]
  - name: g funk
    target: hip hop
    kind: exact
    patterns: [g funk]
    priority: 5
  - name: electronic
    target: house
    kind: keyword
    patterns: [house, techno, trance, edm]
  - name: classical
    target: classical
    kind: regex
    patterns: ['^(classical|baroque|opera)$', 'romantic era']
  - name: hip hop
    target: hip hop
    kind: keyword
    patterns: [hip hop, rap, trap, drill]
    priority: 5
    unless: [trap latino]
  - name: country
    target: country
    kind: contains
    patterns: [country, bluegrass]
  - name: americana
    target: country
    kind: fuzzy
    patterns: [americana]
    threshold: 85
ignore:
  - subgenres: [pop, dance pop]
    reason: mainstream pop is not a target
"""


@pytest.fixture
def write_rules(tmp_path: Path) -> Callable[..., Path]:
    """Write rule files into a fresh folder: write_rules({"10-x.yaml": text}) → folder."""
    counter = iter(range(1000))

    def write(files: dict[str, str] | None = None, *, targets: bool = True) -> Path:
        folder = tmp_path / f"rules{next(counter)}"
        folder.mkdir()
        if targets:
            (folder / "00-targets.yaml").write_text(TARGETS_YAML, encoding="utf-8")
        for name, text in (files or {}).items():
            (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
        return folder

    return write


@pytest.fixture
def test_rules_dir(write_rules: Callable[..., Path]) -> Path:
    return write_rules({"10-rules.yaml": TEST_RULES_YAML})


@pytest.fixture
def test_rules(test_rules_dir: Path) -> RuleSet:
    return load_rules(test_rules_dir)


@pytest.fixture(scope="session")
def sample_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample loaded once per session; tests copy it."""
    path = tmp_path_factory.mktemp("sample") / "sample.db"
    with Store.open(path) as store:
        load_sample(store)
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture
def sample_db(sample_db_template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "genremap.db"
    shutil.copy(sample_db_template, target)
    return target


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store.db") as opened:
        yield opened


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})


@pytest.fixture
def corpus() -> Path:
    if not SHARED_CORPUS.exists():
        pytest.skip(f"shared corpus not found at {SHARED_CORPUS} (clone with ../shared beside the repo)")
    return SHARED_CORPUS
