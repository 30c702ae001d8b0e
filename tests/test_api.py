"""The public Python API (docs/api.md): the same answers as the CLI, from DataFrames."""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import genremap
from genremap.cli import app
from genremap.sample import load_sample
from genremap.store import Store


@pytest.fixture(scope="module")
def rules() -> genremap.Rules:
    return genremap.load_rules()


def test_map_gives_each_genre_its_target_in_order(rules: genremap.Rules) -> None:
    assert rules.map(["dark trap", "bebop"]) == ["hip hop", "jazz"]
    # any spelling; strings the rules leave out are None; duplicates are answered each time
    assert rules.map(["Hip-Hop", "k-pop", "", "bebop", "bebop"]) == ["hip hop", None, None, "jazz", "jazz"]


def test_decide_and_explain_say_what_the_cli_says(rules: genremap.Rules, runner: CliRunner) -> None:
    decision = rules.decide("modern blues rock")
    assert (decision.status, decision.target, decision.rule) == ("mapped", "blues", "blues-over-other-families")
    assert decision.location is not None and decision.location.split(":")[0].endswith("40-blues-soul.yaml")
    ignored = rules.decide("dance pop")
    assert (ignored.status, ignored.target, ignored.rule) == ("ignored", None, None)
    assert ignored.location is not None and "90-ignore.yaml" in ignored.location
    for genre in ("modern blues rock", "dance pop", "zzz not a genre"):
        shown = runner.invoke(app, ["explain", genre, "--rules", str(rules.path)])
        assert shown.exit_code == 0, shown.output
        assert str(rules.explain(genre)) == shown.output.rstrip("\n")


def test_rules_describe_themselves(rules: genremap.Rules, runner: CliRunner, tmp_path: Path) -> None:
    assert rules.targets[:3] == ["rock", "metal", "jazz"] and len(rules.targets) == 9
    copy = shutil.copytree(rules.path, tmp_path / "rules")
    assert genremap.load_rules(copy).hash == rules.hash  # names and bytes, not the folder
    (copy / "10-rock.yaml").write_text((copy / "10-rock.yaml").read_text() + "\n# edited\n")
    assert genremap.load_rules(copy).hash != rules.hash


def test_a_broken_rule_file_raises_the_cli_line(runner: CliRunner, tmp_path: Path) -> None:
    folder = shutil.copytree(genremap.load_rules().path, tmp_path / "rules")
    (folder / "20-metal.yaml").write_text(
        "rules:\n  - name: x\n    target: metal\n    kind: keyword\n    patterns: [a\n"
    )
    with pytest.raises(genremap.RulesError) as raised:
        genremap.load_rules(folder)
    cli = runner.invoke(app, ["explain", "metal", "--rules", str(folder)])
    assert cli.exit_code == 2
    assert str(raised.value) == cli.output.strip().removeprefix("error: ")
    assert "20-metal.yaml:" in str(raised.value) and raised.value.errors[0] == str(raised.value)
    with pytest.raises(genremap.RulesError, match="no such rules folder"):
        genremap.load_rules(tmp_path / "missing")


def test_label_artists_reads_lists_and_their_string_form(rules: genremap.Rules) -> None:
    frame = pd.DataFrame(
        {
            "artist": ["Trap Lord", "Bop Quartet", "Nobody", "Pop Star", "Split"],
            "genres": [
                "['dark trap', 'trap']",
                ["bebop", "cool jazz"],
                None,
                "['dance pop', 'pop']",
                ["bebop", "dark trap"],
            ],
        },
        index=[10, 11, 12, 13, 14],
    )
    out = genremap.label_artists(frame, rules=rules)
    assert list(out.columns) == [*frame.columns, *genremap.LABEL_COLUMNS]
    assert out.index.tolist() == [10, 11, 12, 13, 14]
    assert out["status"].tolist() == ["labelled", "labelled", "unlabelled", "ignored", "ambiguous"]
    assert out["target"].tolist()[:2] == ["hip hop", "jazz"]
    assert out["subgenre"].tolist()[:2] == ["dark trap", "bebop"]
    assert "genres" in frame.columns and "status" not in frame.columns  # a copy: the input is untouched


def test_label_artists_takes_the_first_source_that_has_genres(rules: genremap.Rules) -> None:
    frame = pd.DataFrame(
        {
            "name": ["Both", "Only MB", "Neither"],
            "spotify": [["death metal"], [], None],
            "mb": [["bebop"], ["bebop"], []],
        }
    )
    out = genremap.label_artists(frame, name="name", sources={"spotify": "spotify", "musicbrainz": "mb"})
    assert out["target"].tolist() == ["metal", "jazz", None]
    reversed_order = genremap.label_artists(frame, name="name", sources={"musicbrainz": "mb", "spotify": "spotify"})
    assert reversed_order["target"].tolist() == ["jazz", "jazz", None]
    with pytest.raises(genremap.GenremapError, match="no column 'genres'"):
        genremap.label_artists(frame, name="name")
    with pytest.raises(genremap.GenremapError, match=r"column 'mb', row 2: cannot parse list"):
        genremap.label_artists(frame.assign(mb=["", "", "['x' * 3]"]), name="name", sources={"musicbrainz": "mb"})


def test_label_artists_on_the_corpus_matches_the_store_labels(corpus: Path, tmp_path: Path) -> None:
    db = tmp_path / "corpus.db"
    imported = CliRunner().invoke(app, ["import", str(corpus), "--db", str(db)])
    assert imported.exit_code == 0, imported.output
    frame = pd.read_csv(corpus, usecols=["artists", "genres", "count"])
    frame["artists"] = frame["artists"].str.strip()  # as the importer reads names
    labelled = genremap.label_artists(frame, name="artists")
    with genremap.open_store(db) as store:
        stored = store.artists()
    # the importer merges the rows that share a name ('Robert Smith' twice): compare the others
    unique = ~frame["artists"].duplicated(keep=False)
    assert len(stored) == frame["artists"].nunique() and unique.sum() == len(frame) - 2
    by_name = stored.drop_duplicates("artist", keep=False).rename(columns={"artist": "artists"})
    joined = labelled[unique].merge(by_name, on="artists", suffixes=("", "_store"))
    assert len(joined) == unique.sum()
    for column in ("status", "target", "subgenre", "rule"):
        mine, theirs = joined[column].fillna("-"), joined[f"{column}_store"].fillna("-")
        assert (mine == theirs).all(), joined.loc[mine != theirs, ["artists", column, f"{column}_store"]].head()
    assert (labelled["status"] == "labelled").sum() > 8_000  # not a vacuous match of empty labels


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("api") / "sample.db"
    with Store.open(path) as store:
        load_sample(store)
    return path


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ([], {}),
        (["--seed", "7", "--max-per-artist", "5"], {"seed": 7, "max_per_artist": 5}),
        (
            ["--seed", "3", "--per-class", "20", "--targets", "rock,jazz", "--split", "0.6,0.2,0.2"],
            {"seed": 3, "per_class": 20, "targets": ["rock", "jazz"], "split": (0.6, 0.2, 0.2)},
        ),
    ],
)
def test_build_dataset_equals_the_cli_tracks_csv(
    sample_store: Path, tmp_path: Path, args: list[str], kwargs: dict[str, object]
) -> None:
    out = tmp_path / "ds"
    built = CliRunner().invoke(app, ["build", "--db", str(sample_store), "--out", str(out), *args])
    assert built.exit_code == 0, built.output
    with genremap.open_store(sample_store) as store:
        rows = genremap.build_dataset(store.tracks(), **kwargs)  # type: ignore[arg-type]
    assert list(rows.columns) == list(genremap.TRACK_COLUMNS)
    written = tmp_path / "api.csv"
    rows.to_csv(written, index=False, lineterminator="\n")
    assert written.read_bytes() == (out / "tracks.csv").read_bytes()


def test_builds_do_not_depend_on_the_order_artists_were_stored_in(sample_store: Path, tmp_path: Path) -> None:
    with genremap.open_store(sample_store) as store:
        tracks = store.tracks()
    shuffled = tracks.sample(frac=1.0, random_state=1).reset_index(drop=True)
    first, second = genremap.build_dataset(tracks, seed=5), genremap.build_dataset(shuffled, seed=5)
    pd.testing.assert_frame_equal(first, second)
    assert set(first["split"]) == {"train", "validation", "test"}
    # artist-disjoint splits, balanced classes
    assert first.groupby("artist_id")["split"].nunique().max() == 1
    assert first["target"].value_counts().nunique() == 1


def test_build_dataset_from_a_plain_table(rules: genremap.Rules) -> None:
    rows = [
        {
            "track_id": f"t{i:03d}",
            "track_name": f"Song {i}",
            "artist_id": f"a{i % 12}",
            "artist_name": f"Artist {i % 12}",
        }
        for i in range(120)
    ]
    frame = pd.DataFrame(rows)
    frame["genres"] = [["bebop"] if int(a[1:]) % 2 else ["death metal"] for a in frame["artist_id"]]
    frame.loc[frame["track_id"] == "t013", "track_name"] = "Song 1"  # same artist as t001: a duplicate
    out = genremap.build_dataset(frame, rules=rules, targets=["jazz", "metal"], seed=1)
    assert sorted(out["target"].value_counts().to_dict().items()) == [("jazz", 59), ("metal", 59)]
    assert "t013" not in set(out["track_id"])
    with pytest.raises(genremap.GenremapError, match="track_id 't001' twice"):
        genremap.build_dataset(pd.concat([frame, frame.iloc[[1]]]), rules=rules, targets=["jazz", "metal"])
    with pytest.raises(genremap.GenremapError, match="a blank track_id"):
        genremap.build_dataset(frame.assign(track_id=frame["track_id"].where(frame.index != 5)), rules=rules)
    with pytest.raises(genremap.GenremapError, match="not reachable"):
        genremap.build_dataset(frame, rules=rules, targets=["jazz", "metal"], per_class=100)


def test_store_reports_are_the_cli_reports(sample_store: Path, runner: CliRunner) -> None:
    import json

    with genremap.open_store(sample_store) as store:
        report, unmapped, subgenres, artists = store.report(), store.unmapped(), store.subgenres(), store.artists()
    cli = json.loads(runner.invoke(app, ["report", "--db", str(sample_store), "--format", "json"]).output)
    assert report.to_dict("records") == cli["targets"]
    cli_unmapped = json.loads(runner.invoke(app, ["unmapped", "--db", str(sample_store), "--format", "json"]).output)
    assert unmapped["subgenre"].tolist()[: len(cli_unmapped)] == [r["subgenre"] for r in cli_unmapped]
    assert len(subgenres) >= len(unmapped)
    assert list(artists.columns) == list(genremap.ARTIST_COLUMNS)
    cli_artists = json.loads(runner.invoke(app, ["artists", "--db", str(sample_store), "--format", "json"]).output)
    assert artists.astype(object).where(artists.notna(), None).to_dict("records") == cli_artists
    assert artists["tracks"].is_monotonic_decreasing
    assert set(artists["status"]) <= {"labelled", "ambiguous", "unlabelled", "ignored"}


def test_open_store_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(genremap.GenremapError, match="no genremap store"):
        genremap.open_store(tmp_path / "nope.db")
    assert not (tmp_path / "nope.db").exists()


def test_every_public_name_is_documented() -> None:
    docs = (Path(__file__).parents[1] / "docs" / "api.md").read_text(encoding="utf-8")
    for name in genremap.__all__:
        if name == "__version__":
            continue
        value = getattr(genremap, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"genremap.{name} has no docstring"
            for member, item in vars(value).items() if inspect.isclass(value) else []:
                if not member.startswith("_") and (inspect.isfunction(item) or isinstance(item, property)):
                    assert inspect.getdoc(item), f"genremap.{name}.{member} has no docstring"
        assert f"`{name}" in docs, f"docs/api.md does not document genremap.{name}"


def test_import_genremap_stays_light() -> None:
    import subprocess
    import sys

    code = "import sys, genremap; print('pandas' in sys.modules, 'numpy' in sys.modules)"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert shown.stdout.split() == ["False", "False"]


def test_the_public_module_is_mypy_strict_clean() -> None:
    """`mypy --strict genremap/api.py` (the dev extra has mypy; the test extra alone skips)."""
    import subprocess
    import sys

    pytest.importorskip("mypy", reason="mypy is in the dev extra: pip install -e '.[dev]'")
    root = Path(__file__).parents[1]
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--follow-imports=silent",
            "genremap/api.py",
            "genremap/__init__.py",
        ],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
