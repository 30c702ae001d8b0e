"""What a newcomer hit on a first run (issue 8, section 5): build's counts that did not add up,
target names that only matched one spelling, a build that made an empty store, tables that broke
`FILE:LINE:COL` at 80 columns, and the small ones (plurals, help texts, explain CSV, evaluate's
table, missing extras, misspelled artists)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

from genremap.cli import app
from genremap.engine import default_rules_dir
from genremap.errors import UsageError
from genremap.render import table

REPO = Path(__file__).resolve().parent.parent


def invoke(runner: CliRunner, *args: str | Path) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def json_of(runner: CliRunner, *args: str | Path) -> Any:
    result = invoke(runner, *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def refused(result: Any) -> str:
    """The one line of a refusal (exit status 2, no traceback)."""
    assert result.exit_code == 2, result.output
    message = result.output.strip()
    assert message.startswith("error: ") and "\n" not in message and "Traceback" not in message, message
    return message


def table_rows(text: str) -> list[list[str]]:
    """The cells of each body and footer line of a rich table (box-drawing borders)."""
    return [
        [cell.strip() for cell in line.strip("│ ").split("│")] for line in text.splitlines() if line.startswith("│")
    ]


# --- 2. build's `available` total and the manifest's counts ----------------------------------


def build(runner: CliRunner, db: Path, rules: Path, out: Path, *extra: str) -> tuple[str, dict[str, Any]]:
    result = invoke(runner, "build", "--db", db, "--rules", rules, "--out", out, *extra)
    assert result.exit_code == 0, result.output
    return result.stdout, json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def assert_counts_add_up(table_text: str, manifest: dict[str, Any]) -> None:
    rows = table_rows(table_text)
    *classes, total = rows
    assert total[0] == "total"
    available = [int(row[-1].replace(",", "")) for row in classes]
    assert int(total[-1].replace(",", "")) == sum(available) == manifest["available_tracks"]
    assert dict(zip((row[0] for row in classes), available, strict=True)) == manifest["class_sizes"]
    dropped = manifest["duplicates_dropped"]
    assert (
        manifest["labelled_tracks"] - dropped["isrc"] - dropped["title"] - manifest["over_max_per_artist"]
        == manifest["available_tracks"]
    )


@pytest.mark.parametrize(
    "options",
    [
        [],
        ["--max-per-artist", "3"],
        ["--targets", "rock,jazz"],
        ["--targets", "house,hip hop,jazz", "--max-per-artist", "2"],
    ],
)
def test_available_total_is_the_sum_of_its_column_and_the_manifest_adds_up(
    runner: CliRunner, sample_db: Path, test_rules_dir: Path, tmp_path: Path, options: list[str]
) -> None:
    text, manifest = build(runner, sample_db, test_rules_dir, tmp_path / "ds", *options)
    assert_counts_add_up(text, manifest)


def test_counts_are_those_of_the_chosen_targets_and_the_cap(
    runner: CliRunner, sample_db: Path, test_rules_dir: Path, tmp_path: Path
) -> None:
    """Each count is measured independently: one build per target adds up to the all-target
    build, and the cap's count is what the same build without the cap had more."""
    _, everything = build(runner, sample_db, test_rules_dir, tmp_path / "all")
    labelled = 0
    for target in everything["targets"]:
        _, alone = build(runner, sample_db, test_rules_dir, tmp_path / "one", "--targets", target, "--allow-short")
        assert alone["class_sizes"] == {target: everything["class_sizes"][target]}
        labelled += alone["labelled_tracks"]
    assert labelled == everything["labelled_tracks"]
    _, uncapped = build(runner, sample_db, test_rules_dir, tmp_path / "a", "--targets", "rock,jazz")
    _, capped = build(
        runner, sample_db, test_rules_dir, tmp_path / "b", "--targets", "rock,jazz", "--max-per-artist", "3"
    )
    assert uncapped["over_max_per_artist"] == 0 and capped["over_max_per_artist"] > 0
    assert capped["labelled_tracks"] == uncapped["labelled_tracks"] < everything["labelled_tracks"]
    assert capped["over_max_per_artist"] == uncapped["available_tracks"] - capped["available_tracks"]


# --- 3. target names in any spelling the rule files accept -----------------------------------


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [("House", "house"), ("hiphop", "hip hop"), ("Hip-Hop", "hip hop"), ("HIP_HOP", "hip hop"), ("Jazz", "jazz")],
)
def test_target_options_accept_every_spelling_of_a_target(
    runner: CliRunner, sample_db: Path, test_rules_dir: Path, tmp_path: Path, spelling: str, canonical: str
) -> None:
    wanted = json_of(runner, "subgenres", "--db", sample_db, "--rules", test_rules_dir, "--target", spelling)
    reference = json_of(runner, "subgenres", "--db", sample_db, "--rules", test_rules_dir, "--target", canonical)
    assert wanted == reference and wanted and {r["target"] for r in wanted} == {canonical}
    _, manifest = build(runner, sample_db, test_rules_dir, tmp_path / "ds", "--targets", f"rock,{spelling}")
    assert manifest["targets"] == ["rock", canonical]
    assert set(manifest["class_sizes"]) == {"rock", canonical}


def test_targets_declared_in_another_spelling(
    runner: CliRunner, sample_db: Path, write_rules: Callable[..., Path], tmp_path: Path
) -> None:
    """A rule file may declare `Hip-Hop:` and target it as `hiphop`: options meet it the same way."""
    rules = write_rules(
        {
            "00-targets.yaml": "targets:\n  Hip-Hop: Rap.\n  Rock: Guitars.\n",
            "10-rules.yaml": """\
                rules:
                  - {name: rap, target: hiphop, kind: keyword, patterns: [rap, hip hop]}
                  - {name: rock, target: ROCK, kind: keyword, patterns: [rock]}
                """,
        },
        targets=False,
    )
    rows = json_of(runner, "subgenres", "--db", sample_db, "--rules", rules, "--target", "HipHop")
    assert rows and {r["target"] for r in rows} == {"hip hop"}
    _, manifest = build(runner, sample_db, rules, tmp_path / "ds", "--targets", "hip-hop,Rock")
    assert manifest["targets"] == ["hip hop", "rock"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["subgenres", "--target", "jaz"], "--target: unknown target 'jaz' (did you mean 'jazz'?)"),
        (["subgenres", "--target", "metl"], "(did you mean 'metal'?)"),
        (["build", "--targets", "rock,Rok,hipop"], "unknown targets 'Rok' (did you mean 'rock'?), 'hipop' (did you"),
        (["build", "--targets", "hip hop,Hip-Hop"], "--targets: hip hop given more than once"),
        (["subgenres", "--target", "zzzz"], "--target: unknown target 'zzzz'; declared targets: rock, metal"),
    ],
)
def test_an_unknown_target_is_an_error_with_a_suggestion(
    runner: CliRunner, sample_db: Path, test_rules_dir: Path, tmp_path: Path, args: list[str], expected: str
) -> None:
    extra = ["--out", str(tmp_path / "ds")] if args[0] == "build" else []
    message = refused(invoke(runner, *args, *extra, "--db", sample_db, "--rules", test_rules_dir))
    assert expected in message
    assert not (tmp_path / "ds").exists()


# --- 4. no store: nothing created --------------------------------------------------------------

READERS = [
    ["build"],
    ["report"],
    ["subgenres"],
    ["unmapped"],
    ["explain", "--artist", "Miles Davis"],
    ["diff", "--rules", "rules"],
    ["status"],
    ["enrich"],
]


@pytest.mark.parametrize("command", READERS, ids=lambda c: c[0])
def test_a_command_that_reads_the_store_never_creates_one(tmp_path: Path, command: list[str]) -> None:
    """As a newcomer runs it, in a fresh folder (default --db genremap.db), in a real process."""
    (tmp_path / "rules").symlink_to(default_rules_dir())
    finished = subprocess.run(
        [sys.executable, "-m", "genremap", *command],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"},
        check=False,
        timeout=120,
    )
    assert finished.returncode == 2, finished.stderr
    assert finished.stdout == ""
    [line] = finished.stderr.strip().splitlines()
    assert line.startswith("error: store not found: genremap.db")
    if command == ["build"]:
        assert "genremap build --sample" in line and "genremap import FILE" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rules"]  # no store, no -wal, no dataset


def test_lint_without_a_store_checks_statically_and_creates_none(runner: CliRunner, tmp_path: Path) -> None:
    result = invoke(runner, "lint", "--db", tmp_path / "none.db")
    assert result.exit_code == 0 and "static checks only" in result.stdout
    assert list(tmp_path.iterdir()) == []


# --- 5. tables at 80 and 120 columns ----------------------------------------------------------


def wide_runner(width: int) -> CliRunner:
    return CliRunner(env={"COLUMNS": str(width), "NO_COLOR": "1", "TERM": "dumb"})


def assert_whole_and_within(text: str, tokens: set[str], width: int) -> None:
    lines = text.splitlines()
    for token in tokens:
        assert any(token in line for line in lines), f"{token!r} is broken across lines:\n{text}"
    table_lines = [line for line in lines if line[:1] in "┏┃┡│├└"]
    assert table_lines and max(len(line) for line in table_lines) <= width


@pytest.mark.parametrize("width", [80, 120])
def test_subgenres_table_keeps_every_location_whole(
    sample_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    """The packaged rules, as after `pip install` (a long absolute path): the table shows each
    `FILE:LINE:COL` relative to the rules folder, whole on one line, and names the folder."""
    monkeypatch.chdir(tmp_path)  # no ./rules here: the packaged rules
    runner = wide_runner(width)
    rows = json_of(runner, "subgenres", "--db", sample_db)
    folder = str(default_rules_dir())
    assert all(r["location"].startswith(folder) for r in rows if r["location"])  # JSON keeps full paths
    result = invoke(runner, "subgenres", "--db", sample_db)
    assert result.exit_code == 0, result.output
    locations = {r["location"][len(folder) + 1 :] for r in rows if r["location"]}
    assert len(locations) > 50
    assert_whole_and_within(result.stdout, locations | {r["target"] for r in rows if r["target"]}, width)
    assert f"locations in {folder}" in result.stdout.replace("\n", "")
    # Every subgenre is there, in order, broken only at its spaces or after a hyphen.
    column = [row[0] for row in table_rows(result.stdout)]
    assert "".join(column).replace(" ", "") == "".join(r["subgenre"] for r in rows).replace(" ", "")
    pieces = {p for r in rows for word in r["subgenre"].split() for p in (word, *re.findall(r"[^-]+-|[^-]+$", word))}
    assert {fragment for cell in column for fragment in cell.split()} <= pieces


def test_diff_table_shortens_long_ignore_reasons_and_json_keeps_them(
    sample_db: Path, tmp_path: Path, write_rules: Callable[..., Path]
) -> None:
    reason = (
        "pop in its national, teen, synth and indie-electronic forms: not one of the nine targets, "
        "and a class of its own would take a whole new rule file to describe well"
    )
    base = write_rules({"10-rules.yaml": "rules:\n  - {name: rock, target: rock, kind: keyword, patterns: [rock]}\n"})
    edited = write_rules(
        {
            "10-rules.yaml": "rules:\n  - {name: rock, target: rock, kind: keyword, patterns: [rock]}\n"
            f'ignore:\n  - subgenres: [indie rock, modern rock]\n    reason: "{reason}"\n'
        }
    )
    for width in (80, 120):
        runner = wide_runner(width)
        args = ("diff", "--db", sample_db, "--rules", edited, "--base", base)
        data = json_of(runner, *args)
        assert {r["to_rule"] for r in data["subgenres"]} == {reason}
        shown = invoke(runner, *args).stdout
        assert reason not in shown.replace("\n", " ") and "…" in shown
        assert "long text shortened: --format json or csv shows it whole" in shown.replace("\n", " ")
        assert_whole_and_within(shown, {"indie rock", "modern rock"}, width)
    rows = list(csv.DictReader(io.StringIO(invoke(runner, *args, "--format", "csv").stdout)))
    assert {r["to_rule"] for r in rows} == {reason}


def test_unmapped_table_folds_its_evidence_and_never_shortens_it(sample_db: Path) -> None:
    """The evidence is what `unmapped` is read for: folded to the width, whole, unlike other free text."""
    for width in (80, 120):
        runner = wide_runner(width)
        rows = json_of(runner, "unmapped", "--db", sample_db, "--top", "30")
        long = [r["evidence"] for r in rows if len(r["evidence"]) > 60]
        assert long, "the sample has no long evidence to show"
        shown = invoke(runner, "unmapped", "--db", sample_db, "--top", "30").stdout
        evidence = " ".join(row[-1] for row in table_rows(shown) if row[-1])
        for text in long:
            assert text in evidence
        assert "long text shortened" not in shown.replace("\n", " ")


@pytest.mark.parametrize(
    ("width", "name"),
    [(80, "spotify_artists_genres.csv"), (120, "spotify-artists-genres-snapshot-2021-02-03-with-track-counts.csv")],
)
def test_import_table_keeps_a_long_file_name_whole(tmp_path: Path, width: int, name: str) -> None:
    (tmp_path / name).write_text("artist_name,genres\nSome Band,['rock']\n", encoding="utf-8")
    result = invoke(wide_runner(width), "import", tmp_path / name, "--db", tmp_path / "s.db")
    assert result.exit_code == 0, result.output
    assert_whole_and_within(result.stdout, {name}, width)


WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=24)


@settings(max_examples=60, deadline=None)
@given(
    width=st.sampled_from([60, 80, 120]),
    rows=st.lists(
        st.fixed_dictionaries(
            {
                "subgenre": st.lists(WORD, min_size=1, max_size=4).map(" ".join),
                "rule": WORD,
                "location": st.tuples(WORD, st.integers(1, 9999), st.integers(1, 99)).map(
                    lambda t: f"{t[0]}.yaml:{t[1]}:{t[2]}"
                ),
                "tracks": st.integers(0, 10**7),
            }
        ),
        min_size=1,
        max_size=8,
    ),
)
def test_whole_columns_are_never_broken_at_any_width(width: int, rows: list[dict[str, Any]]) -> None:
    console = Console(width=width, file=io.StringIO(), soft_wrap=True, color_system=None)
    shown = table("t", rows, ["subgenre", "rule", "location", "tracks"], numeric=["tracks"], width=width)
    console.print(shown)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    for row in rows:
        assert any(row["location"] in line for line in text.splitlines()), text
        assert any(f"{row['tracks']:,}" in line for line in text.splitlines()), text


# --- 6. the small ones --------------------------------------------------------------------------

ONE_OF_EACH = """\
track_id,track_name,artist_id,artist_name,genres
t1,So What,a1,Modal Player,['jazz']
t2,Untitled,a2,Nobody Yet,[]
"""


@pytest.fixture
def tiny_db(tmp_path: Path, runner: CliRunner) -> Path:
    """Two tracks, two artists, one subgenre: every count a message can hold is 1 (or 2)."""
    (tmp_path / "tiny.csv").write_text(ONE_OF_EACH, encoding="utf-8")
    db = tmp_path / "tiny.db"
    result = invoke(runner, "import", tmp_path / "tiny.csv", "--db", db)
    assert result.exit_code == 0, result.output
    assert "store: 2 artists, 2 tracks; the rules label 1 artist (50%) and map 1 of 1 subgenre." in result.stdout
    return db


def test_counts_of_one_are_singular(
    runner: CliRunner, tiny_db: Path, test_rules_dir: Path, write_rules: Callable[..., Path]
) -> None:
    common = ("--db", tiny_db, "--rules", test_rules_dir)
    report = invoke(runner, "report", *common).stdout
    assert "1 of 1 subgenre mapped · 0 conflicts · 1 artist has no genres" in report
    assert invoke(runner, "subgenres", *common).stdout.splitlines()[0].strip() == "1 subgenre"
    assert (
        "artist Modal Player (a1), 1 track, genres from import"
        in invoke(runner, "explain", "--artist", "Modal Player", *common).stdout
    )
    status = invoke(runner, "status", "--db", tiny_db).stdout
    assert "2 tracks, 2 artists (1 with genres)" in status
    moved = write_rules({"10-rules.yaml": "rules:\n  - {name: j, target: rock, kind: exact, patterns: [jazz]}\n"})
    diff = invoke(runner, "diff", "--db", tiny_db, "--rules", moved, "--base", test_rules_dir).stdout
    assert diff.splitlines()[0].endswith(": 1 track (1 artist) changes label"), diff


def test_import_of_an_unknown_file_type_names_the_option(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "artists.dat").write_text("artist_name,genres\nA,['rock']\n", encoding="utf-8")
    message = refused(invoke(runner, "import", tmp_path / "artists.dat", "--db", tmp_path / "s.db"))
    assert "or pass --file-format" in message and "--format" not in message.replace("--file-format", "")


def test_explain_csv_shows_each_rules_own_target(runner: CliRunner, test_rules_dir: Path) -> None:
    """`soul jazz` is jazz, decided by rule 'soul jazz'; rule 'soul' (a blues rule) also matched."""
    result = invoke(runner, "explain", "soul jazz", "--rules", test_rules_dir, "--format", "csv")
    rows = {r["rule"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert {name: (r["target"], r["final_target"], r["outcome"]) for name, r in rows.items()} == {
        "soul jazz": ("jazz", "jazz", "winner"),
        "jazz": ("jazz", "jazz", "lower priority"),
        "soul": ("blues", "jazz", "lower priority"),
    }
    ignored = invoke(runner, "explain", "dance pop", "--rules", test_rules_dir, "--format", "csv").stdout
    [row] = list(csv.DictReader(io.StringIO(ignored)))
    assert (row["status"], row["rule"], row["target"], row["outcome"]) == (
        "ignored",
        "",
        "",
        "mainstream pop is not a target",
    )
    explained = json_of(runner, "explain", "dance pop", "--rules", test_rules_dir)
    assert row["location"] == explained["ignored_by"]["location"] and "10-rules.yaml:" in row["location"]


@pytest.mark.parametrize(
    ("command", "help_text"),
    [
        ("report", "never writes it"),
        ("subgenres", "never writes it"),
        ("unmapped", "never writes it"),
        ("explain", "never writes it"),
        ("diff", "never writes it"),
        ("lint", "never writes it"),
        ("status", "never writes it"),
        ("build", "--sample loads the sample into it"),
        ("import", "read and write"),
    ],
)
def test_db_help_says_whether_the_command_writes_the_store(command: str, help_text: str) -> None:
    result = invoke(wide_runner(300), command, "--help")
    text = " ".join(result.stdout.split())
    db_line = text[text.index("--db") :][:200]
    assert help_text in db_line
    if help_text != "read and write":
        assert "read and write" not in db_line


def test_evaluate_table_shows_every_model_of_evaluation_json(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    from test_evaluate import write_dataset

    dataset = write_dataset(tmp_path / "ds")
    result = invoke(wide_runner(80), "evaluate", "--dataset", dataset)
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines() if line[:1] in "┏┃┡│└") <= 80
    report = json.loads((dataset / "evaluation.json").read_text(encoding="utf-8"))
    rows = {(row[0], row[1].removesuffix(" (best)")): row for row in table_rows(result.stdout) if len(row) == 4}
    for kind in ("artist_disjoint", "mixed"):
        models = report[kind]["by_model"]
        assert len(models) == 2
        for model, scores in models.items():
            *_, accuracy, macro_f1 = rows[(kind.replace("_", "-"), model)]
            assert accuracy == f"{scores['accuracy']:.1%}" and macro_f1 == f"{scores['macro_f1']:.1%}"
        assert rows[(kind.replace("_", "-"), report[kind]["model"])][1].endswith("(best)")


@pytest.mark.parametrize(
    ("stage", "modules", "names"),
    [
        ("evaluate", ("sklearn", "matplotlib"), ("scikit-learn", "matplotlib")),
        ("features", ("librosa", "soundfile"), ("librosa", "soundfile")),
    ],
)
def test_a_missing_extra_names_every_missing_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage: str, modules: tuple[str, ...], names: tuple[str, ...]
) -> None:
    from genremap.audio.evaluate import evaluate_dataset
    from genremap.audio.features import compute_features

    (tmp_path / "tracks.csv").write_text("track_id,target,split\n", encoding="utf-8")
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "x.mp3").write_bytes(b"ID3")
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)  # as if the [audio] extra were not installed
    run = evaluate_dataset if stage == "evaluate" else compute_features
    with pytest.raises(UsageError) as caught:
        run(tmp_path)
    message = caught.value.message
    assert f"missing: {', '.join(names)}." in message and "pip install 'genremap[audio]'" in message


def test_explain_a_misspelled_artist_suggests_the_nearest_names(runner: CliRunner, sample_db: Path) -> None:
    message = refused(invoke(runner, "explain", "--artist", "the harbour machine", "--db", sample_db))
    assert message.startswith("error: no artist named 'the harbour machine' in ")
    assert "(did you mean 'The Harbor Machines'" in message
    assert "did you mean" not in refused(invoke(runner, "explain", "--artist", "qqqqqqqqqqqq", "--db", sample_db))
