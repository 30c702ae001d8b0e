"""MusicBrainz's genre list ships with the package, and the default rules decide every name on it.

`genremap lint --vocabulary musicbrainz` reports the names no rule or ignore entry decides
(exit 1 when there is one); the default rules keep that at zero, and the collisions a new
vocabulary brings (`garage house`, the rave "hardcore" family, prog, grind and drum and bass
strains, classical eras) are decided by what the music is.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from genremap.cli import app
from genremap.engine import IGNORED, MAPPED, CompiledRules, default_rules_dir, load_rules
from genremap.lint import UNDECIDED, vocabulary_coverage
from genremap.normalize import normalize_genre
from genremap.vocabulary import (
    MUSICBRAINZ_GENRES_DATE,
    is_musicbrainz_genre,
    musicbrainz_genres,
    musicbrainz_genres_path,
    vocabulary,
)

REPO = Path(__file__).resolve().parent.parent
SHARED_LIST = REPO.parent / "shared" / "data" / "musicbrainz_genres.csv"
SHARED_NOTE = SHARED_LIST.with_name("MUSICBRAINZ_GENRES.md")


@pytest.fixture(scope="module")
def compiled() -> CompiledRules:
    return CompiledRules.build(load_rules(default_rules_dir()))


def _lint(runner: CliRunner, tmp_path: Path, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    """`genremap lint --vocabulary musicbrainz` without a store, as JSON."""
    result = runner.invoke(
        app, ["lint", "--vocabulary", "musicbrainz", "--db", str(tmp_path / "none.db"), *args, "--format", "json"]
    )
    return result.exit_code, json.loads(result.stdout)


# --- the shipped list ---------------------------------------------------------------------------


def test_shipped_list_is_musicbrainz_genre_list_of_its_date() -> None:
    if not SHARED_LIST.exists():
        pytest.skip(f"the shared MusicBrainz genre list is absent ({SHARED_LIST}); nothing to compare with")
    with SHARED_LIST.open(encoding="utf-8", newline="") as handle:
        shared = [row["name"] for row in csv.DictReader(handle)]
    assert musicbrainz_genres() == shared
    assert len(shared) == 2098
    assert musicbrainz_genres_path().read_bytes() == SHARED_LIST.read_bytes()  # copied unchanged
    assert MUSICBRAINZ_GENRES_DATE == "2025-12" and "as of December 2025" in SHARED_NOTE.read_text(encoding="utf-8")
    assert vocabulary("musicbrainz").title == "MusicBrainz's genre list of December 2025"


def test_genres_are_told_from_free_tags_by_name() -> None:
    assert is_musicbrainz_genre("black 'n' roll") and is_musicbrainz_genre("Chanson à texte")
    assert is_musicbrainz_genre("kasékò") and is_musicbrainz_genre("kaseko")  # two genres, one canonical form
    assert not is_musicbrainz_genre("seen live") and not is_musicbrainz_genre("chanson a texte")


def test_reading_the_list_imports_no_pandas() -> None:
    code = (
        "import sys\nfrom genremap.vocabulary import musicbrainz_genres, vocabulary\n"
        "assert len(musicbrainz_genres()) == len(vocabulary('musicbrainz').names) == 2098\n"
        "print(sorted(m for m in ('pandas', 'numpy') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"


# --- every name decided ---------------------------------------------------------------------------


def test_default_rules_decide_every_musicbrainz_genre() -> None:
    coverage = vocabulary_coverage(load_rules(default_rules_dir()), vocabulary("musicbrainz"))
    assert [f.message for f in coverage.findings] == []  # nothing undecided, no equal-priority conflict
    assert coverage.undecided == 0 and coverage.mapped + coverage.ignored == 2098
    assert coverage.mapped > 800  # in-scope names are mapped, not swept into ignore entries


def test_every_ignored_musicbrainz_genre_has_a_reason(compiled: CompiledRules) -> None:
    decisions = compiled.decide_many(normalize_genre(name) for name in musicbrainz_genres())
    ignored = [d for d in decisions.values() if d.status == IGNORED]
    assert ignored and all(d.ignored_by is not None and d.ignored_by.reason.strip() for d in ignored)


def test_lint_vocabulary_cli_reports_zero_undecided(runner: CliRunner, tmp_path: Path) -> None:
    status, report = _lint(runner, tmp_path)
    assert status == 0
    assert report["vocabulary"] == {
        "name": "musicbrainz",
        "date": "2025-12",
        "names": 2098,
        "mapped": report["vocabulary"]["mapped"],
        "ignored": 2098 - report["vocabulary"]["mapped"],
        "undecided": 0,
        "not_genres": 0,  # no MusicBrainz genre is decided "not a genre" (rules/95-not-genres.yaml)
    }
    assert [f for f in report["findings"] if f["code"] == UNDECIDED] == []
    table = runner.invoke(app, ["lint", "--vocabulary", "musicbrainz", "--db", str(tmp_path / "none.db")])
    assert table.exit_code == 0
    assert "MusicBrainz's genre list of December 2025: 2,098 names," in table.stdout
    assert table.stdout.rstrip().endswith("ignored, 0 undecided")


# --- a gap is reported, located, and fails the command ------------------------------------------


def _rules_without(tmp_path: Path, rule_name: str) -> Path:
    """A copy of the default rules with one rule removed."""
    folder = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), folder)
    for path in folder.glob("*.yaml"):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        rules = doc.get("rules") or []
        if any(rule["name"] == rule_name for rule in rules):
            doc["rules"] = [rule for rule in rules if rule["name"] != rule_name]
            path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
            return folder
    raise AssertionError(f"no rule {rule_name!r} in the default rules")


def test_lint_vocabulary_reports_each_genre_a_removed_rule_decided(runner: CliRunner, tmp_path: Path) -> None:
    folder = _rules_without(tmp_path, "rock-musicbrainz-punk")
    status, report = _lint(runner, tmp_path, "--rules", str(folder))
    assert status == 1
    undecided = [f for f in report["findings"] if f["code"] == UNDECIDED]
    names = musicbrainz_genres()
    expected = {"neocrust", "stenchcore", "thrashcore", "emoviolence", "könsrock"}
    found = {names[int(f["location"].split(":")[-2]) - 2] for f in undecided}  # located at the list's line
    assert expected <= found
    assert report["vocabulary"]["undecided"] == len(undecided) == len(found)
    # crack rock steady is spared by the reggae entry's `unless` on purpose: undecided, and says why not
    crack = next(f for f in undecided if "'crack rock steady'" in f["message"])
    assert crack["severity"] == "warning" and "musicbrainz_genres.csv:" in crack["location"]
    assert "(rule 'rock-family' vetoed by 'rock steady')" in crack["message"]
    assert "map it with a rule, or ignore it with a reason" in crack["message"]
    plain = runner.invoke(app, ["lint", "--vocabulary", "musicbrainz", "--rules", str(folder), "--db", "x.db"])
    assert plain.exit_code == 1
    assert "warning: musicbrainz genre 'könsrock' (as 'konsrock') is decided by no rule" in plain.stdout
    assert f"{len(undecided)} undecided" in plain.stdout


def test_lint_without_vocabulary_is_unchanged_by_the_gap(runner: CliRunner, tmp_path: Path) -> None:
    folder = _rules_without(tmp_path, "rock-musicbrainz-punk")
    result = runner.invoke(app, ["lint", "--rules", str(folder), "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 0 and "undecided" not in result.stdout


def test_lint_vocabulary_reports_a_tie_where_a_genre_is_decided_by_file_order(
    runner: CliRunner, tmp_path: Path
) -> None:
    folder = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), folder)
    (folder / "95-tie.yaml").write_text(
        "rules:\n  - {name: garage, target: rock, kind: keyword, patterns: [garage house], priority: 30}\n",
        encoding="utf-8",
    )
    status, report = _lint(runner, tmp_path, "--rules", str(folder))
    assert status == 0 and report["vocabulary"]["undecided"] == 0  # decided, by file order: a warning
    line = musicbrainz_genres().index("garage house") + 2
    assert [(f["code"], f["location"].rsplit(":", 2)[-2], f["message"]) for f in report["findings"]] == [
        (
            "conflict",
            str(line),
            "musicbrainz genre 'garage house': rule 'house-over-other-families' (house) ties with 'garage' (rock)"
            " at priority 30",
        )
    ]
    assert _lint(runner, tmp_path, "--rules", str(folder), "--strict")[0] == 1


def test_unknown_vocabulary_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "genremap", "lint", "--vocabulary", "musicbrains", "--db", str(tmp_path / "x.db")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: unknown vocabulary 'musicbrains' (did you mean 'musicbrainz'?): known: musicbrainz"
    ]


# --- the collisions a new vocabulary brings ----------------------------------------------------------


@pytest.mark.parametrize(
    ("genre", "expected"),
    [
        # named in the issue
        ("garage house", "house"),  # New Jersey garage, not garage rock
        ("breakbeat hardcore", "house"),  # the rave "hardcore" family, not hardcore punk
        ("industrial hardcore", "house"),
        ("freeform hardcore", "house"),
        ("avant-prog", "rock"),
        ("crossover prog", "rock"),
        ("zeuhl", "rock"),
        ("cybergrind", "metal"),
        ("mincecore", "metal"),
        ("neurofunk", "house"),  # drum and bass, not funk
        ("techstep", "house"),
        ("darkstep", "house"),
        ("jump up", "house"),
        ("ars nova", "classical"),
        ("plainchant", "classical"),
        # more of the same kind
        ("uk hardcore", "house"),
        ("hardcore breaks", "house"),
        ("digital hardcore", "house"),
        ("deathchant hardcore", "rock"),  # Japanese hardcore punk
        ("beatdown hardcore", "rock"),
        ("riddim dubstep", "house"),  # not a reggae riddim
        ("ragga jungle", "house"),
        ("liquid funk", "house"),
        ("ghetto funk", "house"),
        ("funk ostentação", IGNORED),  # Brazilian baile funk, not funk
        ("funk mandelão", IGNORED),
        ("electro-funk", "disco"),  # not electro (house)
        ("bounce beat", "disco"),  # DC go-go, not New Orleans bounce
        ("future bounce", "house"),
        ("heaven trap", "house"),  # EDM trap
        ("trap metal", "hip hop"),
        ("punk rap", "hip hop"),
        ("asian rock", "hip hop"),  # MusicBrainz: "pluggnb subgenre - not rock from Asia"
        ("tread", "hip hop"),  # Philadelphia's icy trap
        ("frapcore", "house"),  # French rap over gabber
        ("flex dance music", IGNORED),  # Brooklyn's dancehall-based battle music
        ("new jazz", "hip hop"),  # MusicBrainz: "trap subgenre"
        ("ambient plugg", "hip hop"),
        ("orchestral jazz", "jazz"),
        ("british rhythm & blues", "rock"),  # the Stones, the Animals
        ("new orleans r&b", "blues"),
        ("contemporary r&b", IGNORED),
        ("boogie rock", "rock"),
        ("crack rock steady", "rock"),  # ska punk, not rocksteady
        ("rocksteady", IGNORED),
        ("pop metal", "metal"),
        ("black 'n' roll", "metal"),  # canonical 'black and roll'
        ("death 'n' roll", "metal"),
        ("british brass band", "classical"),  # not a New Orleans brass band
        ("medieval lyric poetry", "classical"),  # troubadours, not spoken word
        ("gregorian chant", "classical"),
        ("zarzuela", "classical"),
        ("chinese classical", IGNORED),  # not Western art music
        ("beijing opera", IGNORED),
        ("post-classical", IGNORED),  # as `neo classical`
        ("scottish country dance music", IGNORED),  # not country
        ("western", "country"),  # MusicBrainz: "cowboy/western country"
        ("country yodeling", "country"),
        ("yodeling", IGNORED),  # Alpine folk's as much as country's
        ("west coast swing", IGNORED),  # a partner dance, not swing jazz
        ("techno kayō", IGNORED),  # Japanese technopop, not techno
        ("chanson à texte", IGNORED),
        ("min'yō", IGNORED),
        ("progressive", IGNORED),
        ("psychedelic", IGNORED),
    ],
)
def test_musicbrainz_collisions_are_decided_by_the_music(compiled: CompiledRules, genre: str, expected: str) -> None:
    assert genre in musicbrainz_genres()
    decision = compiled.decide(normalize_genre(genre))
    assert (decision.target if decision.status == MAPPED else decision.status) == expected, decision.reason
    assert not decision.is_conflict, decision.reason
