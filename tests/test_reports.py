"""Reports through the CLI: report, subgenres, unmapped (+ --emit-rules), explain; JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genremap.cli import app
from genremap.engine import load_rules

SMALL = """artist_name,genres,count
Rapper One,"['dark trap', 'underground hip hop']",10
Rapper Two,"['dark trap', 'trap']",20
Rapper Three,"['dark trap', 'southern hip hop']",5
Emo Kid,"['dark trap', 'emo']",1
Metal Head,"['vancouver metal', 'metalcore']",7
Pop Star,"['dance pop', 'pop']",100
Quiet Person,[],3
Rock Jazz,"['hard rock', 'bebop']",4
Americana Act,"['americanna']",2
"""


@pytest.fixture
def small_db(tmp_path: Path, runner: CliRunner) -> Path:
    db = tmp_path / "small.db"
    (tmp_path / "small.csv").write_text(SMALL, encoding="utf-8")
    result = runner.invoke(app, ["import", str(tmp_path / "small.csv"), "--db", str(db)])
    assert result.exit_code == 0, result.output
    return db


def _json(runner: CliRunner, *args: str) -> object:
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_report_json_totals_add_up(runner: CliRunner, small_db: Path, test_rules_dir: Path) -> None:
    data = _json(runner, "report", "--db", str(small_db), "--rules", str(test_rules_dir))
    assert isinstance(data, dict)
    assert set(data) >= {"targets", "unlabelled", "ambiguous", "ignored", "totals"}
    targets = {t["target"]: t for t in data["targets"]}
    assert set(targets["hip hop"]) >= {"target", "artists", "tracks", "share", "subgenres"}
    assert targets["hip hop"]["artists_from_musicbrainz"] == 0
    assert targets["hip hop"]["artists"] == 4 and targets["hip hop"]["tracks"] == 36  # Emo Kid: 1 hip hop vote
    assert targets["metal"]["tracks"] == 7
    assert targets["country"]["artists"] == 1  # fuzzy americana
    assert data["ignored"]["artists"] == 1 and data["ignored"]["tracks"] == 100
    assert data["ambiguous"]["artists"] == 1  # rock vs jazz tie
    assert data["unlabelled"]["artists"] == 1 and data["unlabelled"]["without_genres"]["artists"] == 1
    rows = data["targets"] + [data["unlabelled"], data["ambiguous"], data["ignored"]]
    assert sum(r["artists"] for r in rows) == data["totals"]["artists"] == 9
    assert sum(r["tracks"] for r in rows) == data["totals"]["tracks"] == 152
    assert sum(r["share"] for r in rows) == pytest.approx(1.0, abs=1e-3)


def test_report_table_and_csv(runner: CliRunner, small_db: Path, test_rules_dir: Path) -> None:
    table = runner.invoke(app, ["report", "--db", str(small_db), "--rules", str(test_rules_dir)])
    assert table.exit_code == 0
    assert "hip hop" in table.stdout and "(ambiguous)" in table.stdout and "total" in table.stdout
    out = runner.invoke(app, ["report", "--db", str(small_db), "--rules", str(test_rules_dir), "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert list(rows[0]) == ["target", "artists", "tracks", "share", "subgenres"] + [
        f"artists_from_{s}" for s in ("spotify", "import", "musicbrainz", "lastfm")
    ]
    assert rows[-1]["target"] == "total" and rows[-1]["tracks"] == "152"


def test_subgenres_csv_starts_with_subgenre_target(runner: CliRunner, small_db: Path, test_rules_dir: Path) -> None:
    out = runner.invoke(app, ["subgenres", "--db", str(small_db), "--rules", str(test_rules_dir), "--format", "csv"])
    assert out.exit_code == 0
    header = out.stdout.splitlines()[0]
    assert header.startswith("subgenre,target,")
    rows = {r["subgenre"]: r for r in csv.DictReader(io.StringIO(out.stdout))}
    assert rows["dark trap"]["target"] == "hip hop"
    assert rows["dark trap"]["rule"] == "hip hop" and ":" in rows["dark trap"]["location"]
    assert rows["emo"]["target"] == "" and rows["emo"]["status"] == "unmapped"
    assert rows["pop"]["status"] == "ignored"
    assert rows["dark trap"]["artists"] == "4" and rows["dark trap"]["tracks"] == "36"


def test_unmapped_ranks_by_tracks_and_suggests_from_cooccurrence(
    runner: CliRunner, tmp_path: Path, write_rules
) -> None:  # type: ignore[no-untyped-def]
    rules = write_rules(
        {
            "10.yaml": "rules: [{name: hip hop, target: hip hop, kind: keyword, patterns: [hip hop]},"
            " {name: metal, target: metal, kind: keyword, patterns: [metalcore]}]\n"
        }
    )
    db = tmp_path / "u.db"
    (tmp_path / "small.csv").write_text(SMALL)
    runner.invoke(app, ["import", str(tmp_path / "small.csv"), "--db", str(db)])
    rows = _json(runner, "unmapped", "--db", str(db), "--rules", str(rules), "--top", "0")
    assert isinstance(rows, list)
    by_name = {r["subgenre"]: r for r in rows}
    assert [r["tracks"] for r in rows] == sorted((r["tracks"] for r in rows), reverse=True)
    dark = by_name["dark trap"]
    assert (dark["tracks"], dark["artists"], dark["example_artist"]) == (36, 4, "Rapper Two")
    assert dark["suggested_target"] == "hip hop" and dark["suggestion_source"] == "co-occurrence"
    assert "2 of 4 artists carrying it are labelled hip hop" in dark["evidence"]
    assert by_name["vancouver metal"]["suggested_target"] == "metal"
    assert by_name["pop"]["tracks"] == 100
    top2 = _json(runner, "unmapped", "--db", str(db), "--rules", str(rules), "--top", "2")
    assert len(top2) == 2  # type: ignore[arg-type]


def test_emit_rules_writes_reviewable_yaml_that_loads(
    runner: CliRunner, small_db: Path, test_rules_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "suggested.yaml"
    result = runner.invoke(
        app, ["unmapped", "--db", str(small_db), "--rules", str(test_rules_dir), "--emit-rules", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("# Rules suggested by `genremap unmapped`")
    trial = tmp_path / "trial"
    trial.mkdir()
    for f in test_rules_dir.iterdir():
        (trial / f.name).write_bytes(f.read_bytes())
    (trial / "99-suggested.yaml").write_text(text)
    loaded = load_rules(trial)
    assert any(r.name.startswith("suggested ") for r in loaded.rules)
    again = runner.invoke(
        app, ["unmapped", "--db", str(small_db), "--rules", str(test_rules_dir), "--emit-rules", str(out)]
    )
    assert again.exit_code == 2 and "--force" in again.output


def test_explain_subgenre_json(runner: CliRunner, test_rules_dir: Path) -> None:
    data = _json(runner, "explain", "Soul-Jazz", "--rules", str(test_rules_dir))
    assert isinstance(data, dict)
    assert data["subgenre"] == "soul jazz" and data["target"] == "jazz" and data["rule"] == "soul jazz"
    outcomes = {m["rule"]: m["outcome"] for m in data["matches"]}
    assert outcomes == {"soul jazz": "winner", "jazz": "lower priority", "soul": "lower priority"}
    assert all(":" in m["location"] for m in data["matches"])
    vetoed = _json(runner, "explain", "trap latino", "--rules", str(test_rules_dir))
    assert vetoed["status"] == "unmapped"  # type: ignore[index]
    assert vetoed["matches"][0]["outcome"] == "vetoed by unless 'trap latino'"  # type: ignore[index]


def test_explain_text_output(runner: CliRunner, test_rules_dir: Path) -> None:
    result = runner.invoke(app, ["explain", "pop", "--rules", str(test_rules_dir)])
    assert result.exit_code == 0
    assert "'pop': ignored" in result.stdout and "mainstream pop is not a target" in result.stdout


def test_explain_artist_and_track(runner: CliRunner, small_db: Path, test_rules_dir: Path, tmp_path: Path) -> None:
    data = _json(runner, "explain", "--artist", "rock jazz", "--db", str(small_db), "--rules", str(test_rules_dir))
    assert isinstance(data, dict)
    assert data["status"] == "ambiguous" and data["target"] is None
    assert [v["target"] for v in data["votes"]] == ["rock", "jazz"]
    assert [s["subgenre"] for s in data["subgenres"]] == ["hard rock", "bebop"]
    first = _json(
        runner,
        "explain",
        "--artist",
        "Rock Jazz",
        "--policy",
        "first",
        "--db",
        str(small_db),
        "--rules",
        str(test_rules_dir),
    )
    assert first["target"] == "rock"  # type: ignore[index]
    text = runner.invoke(
        app, ["explain", "--artist", "Rapper Two", "--db", str(small_db), "--rules", str(test_rules_dir)]
    )
    assert "→ hip hop via 'dark trap'" in text.stdout
    missing = runner.invoke(
        app, ["explain", "--artist", "Nobody Known", "--db", str(small_db), "--rules", str(test_rules_dir)]
    )
    assert missing.exit_code == 2 and "no artist named" in missing.output


def test_explain_track(runner: CliRunner, sample_db: Path, test_rules_dir: Path) -> None:
    import sqlite3

    track_id = sqlite3.connect(sample_db).execute("SELECT track_id FROM tracks ORDER BY track_id LIMIT 1").fetchone()[0]
    data = _json(runner, "explain", "--track", track_id, "--db", str(sample_db), "--rules", str(test_rules_dir))
    assert data["track"]["track_id"] == track_id  # type: ignore[index]
    assert data["artists"][0]["artist_id"] == data["track"]["artist_id"]  # type: ignore[index]


def test_explain_needs_exactly_one_subject(runner: CliRunner, test_rules_dir: Path) -> None:
    result = runner.invoke(app, ["explain", "--rules", str(test_rules_dir)])
    assert result.exit_code == 2 and "exactly one" in result.output


def test_reports_need_an_existing_store(runner: CliRunner, tmp_path: Path, test_rules_dir: Path) -> None:
    result = runner.invoke(app, ["report", "--db", str(tmp_path / "nope.db"), "--rules", str(test_rules_dir)])
    assert result.exit_code == 2 and "store not found" in result.output
    assert not (tmp_path / "nope.db").exists()


def test_explain_csv_has_one_row_per_match(runner: CliRunner, small_db: Path, test_rules_dir: Path) -> None:
    out = runner.invoke(app, ["explain", "soul jazz", "--rules", str(test_rules_dir), "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert {r["rule"]: r["outcome"] for r in rows} == {
        "soul jazz": "winner",
        "jazz": "lower priority",
        "soul": "lower priority",
    }
    artist = runner.invoke(
        app, ["explain", "--artist", "Pop Star", "--db", str(small_db), "--rules", str(test_rules_dir), "-f", "csv"]
    )
    rows = list(csv.DictReader(io.StringIO(artist.stdout)))
    assert [(r["artist"], r["subgenre"], r["status"]) for r in rows] == [
        ("Pop Star", "dance pop", "ignored"),
        ("Pop Star", "pop", "ignored"),
    ]


def test_subgenres_json(runner: CliRunner, small_db: Path, test_rules_dir: Path) -> None:
    rows = _json(runner, "subgenres", "--db", str(small_db), "--rules", str(test_rules_dir))
    assert isinstance(rows, list)
    by_name = {r["subgenre"]: r for r in rows}
    assert set(rows[0]) >= {"subgenre", "target", "status", "rule", "location", "artists", "tracks", "conflict"}
    assert by_name["vancouver metal"]["target"] == "metal" and by_name["vancouver metal"]["tracks"] == 7
    assert by_name["americanna"]["rule"] == "americana"  # fuzzy
    only = _json(runner, "subgenres", "--db", str(small_db), "--rules", str(test_rules_dir), "--status", "ignored")
    assert {r["subgenre"] for r in only} == {"pop", "dance pop"}  # type: ignore[union-attr]


def test_emit_rules_creates_a_missing_folder_and_refuses_a_folder_or_a_file_parent(
    runner: CliRunner, small_db: Path, test_rules_dir: Path, tmp_path: Path
) -> None:
    common = ["unmapped", "--db", str(small_db), "--rules", str(test_rules_dir), "--emit-rules"]
    nested = tmp_path / "review" / "2024" / "suggested.yaml"
    made = runner.invoke(app, [*common, str(nested)])
    assert made.exit_code == 0, made.output
    assert nested.read_text(encoding="utf-8").startswith("# Rules suggested by")
    assert [p.name for p in nested.parent.iterdir()] == ["suggested.yaml"]  # no partial file left
    for target, fragment in [
        (tmp_path / "review", "is a folder: give a file name"),
        (nested / "sub.yaml", f"{nested} is a file, not a folder"),
    ]:
        for force in ([], ["--force"]):
            refused = runner.invoke(app, [*common, str(target), *force])
            assert refused.exit_code == 2, refused.output
            assert refused.stdout == "" and refused.stderr.count("\n") == 1, refused.output
            assert fragment in refused.stderr and "Traceback" not in refused.output
