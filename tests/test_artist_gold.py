"""The artist-level gold set (tests/data/artists_gold.csv) and scripts/score_artists.py.

The rules are judged where label noise is decided: per artist. The floors are what the default
rules reached when the gold set was made (docs/coverage.md, "Artist-level accuracy"), a little
below, so that only a regression fails; raise them when the rules get better.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from conftest import REPO, SHARED_CORPUS

from genremap.engine import load_rules
from genremap.engine.loader import default_rules_dir

SCRIPT = REPO / "scripts" / "score_artists.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("score_artists", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["score_artists"] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


sa = _load_script()

# (split, figure) → floor. Reached on the base commit c989f22 (default rules): heldout
# precision 0.953, recall 0.979, weighted 0.966 / 0.980; all 0.948 / 0.958, weighted 0.967 / 0.989.
FLOORS = {  # a little below the default rules' figures (docs/coverage.md), so only a regression fails
    ("heldout", "precision"): 0.97,
    ("heldout", "recall"): 0.97,
    ("heldout", "precision_tracks"): 0.99,
    ("heldout", "recall_tracks"): 0.99,
    ("all", "precision"): 0.955,
    ("all", "recall"): 0.945,
    ("all", "precision_tracks"): 0.975,
    ("all", "recall_tracks"): 0.99,
}


def below_floors(scores: dict[str, sa.Scores]) -> list[str]:
    """The figures under their floor, as `split figure value < floor`."""
    out = []
    for (split, figure), floor in FLOORS.items():
        value = getattr(scores[split], figure)
        if value is None or value < floor:
            out.append(f"{split} {figure} {value} < {floor}")
    return out


JOHNNY_CASH = "a:efe0b14c3d160373ba12"  # the importer's id for the name (the gold file keeps ids only)


@pytest.fixture(scope="module")
def gold() -> list[sa.GoldArtist]:
    return sa.read_gold(sa.GOLD, load_rules(default_rules_dir()).targets)


@pytest.fixture(scope="module")
def corpus_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared corpus imported once, as the script imports it."""
    if not SHARED_CORPUS.exists():
        pytest.skip(f"shared corpus not found at {SHARED_CORPUS} (clone with ../shared beside the repo)")
    return sa.import_corpus(SHARED_CORPUS, tmp_path_factory.mktemp("gold") / "corpus.db")


def test_the_gold_file_has_300_known_artists_in_two_halves(gold: list[sa.GoldArtist]) -> None:
    assert len(gold) >= 300
    known = [row for row in gold if row.known]
    assert len(known) >= 300 * 0.9  # `unknown` is for the few the labeller could not judge
    assert len({row.artist_id for row in gold}) == len(gold)
    splits = [row.split for row in known]
    assert abs(splits.count("dev") - splits.count("heldout")) <= len(known) * 0.1
    targets = set(load_rules(default_rules_dir()).targets)
    needed = {label for row in known if row.needs_target for label in row.accepted}
    assert needed == targets  # every target has artists that must get it
    assert sum(row.gold == "none" for row in gold) >= 30  # and enough that must get none


def test_the_gold_artists_are_the_documented_selection_of_the_corpus(
    gold: list[sa.GoldArtist], corpus_db: Path
) -> None:
    """Ids present in the corpus, chosen and split as the file's header says (seed 10)."""
    ids = sa.select_gold_artists(corpus_db)
    assert [row.artist_id for row in gold] == ids
    assert {row.artist_id: row.split for row in gold} == sa.split_of(ids)


def test_the_gold_file_keeps_no_corpus_values(corpus_db: Path) -> None:
    """Only ids and hand labels are committed: the names come from ../shared when scoring."""
    from genremap.store import Store

    with Store.open(corpus_db, create=False, readonly=True) as store:
        names = store.artists_frame(with_counts=False).set_index("artist_id")["name"]
    cells = {cell for line in sa.GOLD.read_text(encoding="utf-8").splitlines() for cell in line.split(",")}
    gold_ids = cells & set(names.index)
    assert len(gold_ids) >= 300
    assert not cells & set(names[sorted(gold_ids)])


def test_the_default_rules_hold_the_floors(gold: list[sa.GoldArtist], corpus_db: Path) -> None:
    outcomes = sa.label_gold(corpus_db, load_rules(default_rules_dir()), gold)
    scores = sa.scores_by_split(outcomes)
    assert below_floors(scores) == [], sa.as_text(scores, sa.errors(outcomes), 40)


def test_a_regression_falls_below_the_floors(gold: list[sa.GoldArtist], corpus_db: Path, tmp_path: Path) -> None:
    """The floors have teeth: the default rules without their hip hop file fail them."""
    rules = Path(shutil.copytree(default_rules_dir(), tmp_path / "rules"))
    (hip_hop,) = rules.glob("*hip-hop*.yaml")
    hip_hop.unlink()
    scores = sa.scores_by_split(sa.label_gold(corpus_db, load_rules(rules), gold))
    assert any(line.startswith("heldout recall ") for line in below_floors(scores))


def _outcome(gold: str, got: str | None, tracks: int = 1, split: str = "dev") -> sa.Outcome:
    status = "labelled" if got else "unlabelled"
    return sa.Outcome("a:1", "Artist", split, gold, tracks, status, got, None, None, None)


def test_scores_count_none_artists_in_precision_and_only_required_targets_in_recall() -> None:
    outcomes = [
        _outcome("rock", "rock", tracks=100),  # right
        _outcome("rock|metal", "metal", tracks=10),  # right: an accepted alternative
        _outcome("none", "jazz", tracks=30),  # a pop singer labelled: precision error
        _outcome("jazz|none", None, tracks=5),  # no label is acceptable: not a recall miss
        _outcome("country", None, tracks=20),  # missed: a recall error
        _outcome("unknown", "house", tracks=1000),  # left out of everything
    ]
    s = sa.score(outcomes)
    assert (s.artists, s.labelled, s.needing_target, s.errors) == (5, 3, 3, 2)
    assert s.accuracy == pytest.approx(3 / 5)
    assert s.precision == pytest.approx(2 / 3)
    assert s.recall == pytest.approx(2 / 3)
    assert s.precision_tracks == pytest.approx(110 / 140)
    assert s.recall_tracks == pytest.approx(110 / 130)
    assert s.accuracy_tracks == pytest.approx(115 / 165)
    assert [o.gold for o in sa.errors(outcomes)] == ["none", "country"]


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120, cwd=REPO, check=False
    )


def test_the_script_prints_json_per_split_and_the_errors(corpus_db: Path) -> None:
    done = _script("--db", str(corpus_db), "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report["scores"]) == {"dev", "heldout", "all"}
    total = report["scores"]["all"]
    assert total["artists"] == report["scores"]["dev"]["artists"] + report["scores"]["heldout"]["artists"]
    assert len(report["errors"]) == total["errors"]
    for error in report["errors"]:  # each says what the rules did and why
        assert error["gold"] != "unknown" and error["status"] in ("labelled", "ambiguous", "unlabelled", "ignored")
        assert error["got"] is None or error["rule"] is not None


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda text: text.replace(f"{JOHNNY_CASH},country,", f"{JOHNNY_CASH},cuntry,"), "gold 'cuntry'"),
        (lambda text: text.replace(f"{JOHNNY_CASH},country,,heldout", f"{JOHNNY_CASH},country,,test"), "split 'test'"),
    ],
)
def test_a_bad_gold_row_is_one_line_naming_file_and_line(tmp_path: Path, edit: object, says: str) -> None:
    bad = tmp_path / "gold.csv"
    text = sa.GOLD.read_text(encoding="utf-8")
    bad.write_text(edit(text), encoding="utf-8")  # type: ignore[operator]
    line = next(n for n, row in enumerate(text.splitlines(), 1) if row.startswith(f"{JOHNNY_CASH},"))
    done = _script("--gold", str(bad), "--db", str(tmp_path / "absent.db"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert f"{bad}:{line}: " in done.stderr and says in done.stderr


def test_a_missing_store_is_one_line(tmp_path: Path) -> None:
    done = _script("--db", str(tmp_path / "absent.db"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "absent.db: no such store" in done.stderr
