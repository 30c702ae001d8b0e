"""`evaluate_dataset`: baselines on features.csv, artist-disjoint vs mixed splits, report and plots."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from genremap.audio.evaluate import CONFUSION_PNG, EVALUATION_JSON, MODELS, PER_CLASS_PNG, evaluate_dataset
from genremap.errors import UsageError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CLASSES = ("blues", "jazz", "metal", "rock")
# Per class: 10 train artists, 2 validation, 6 test (many test artists keep the scores steady).
ARTIST_SPLITS = ("train",) * 10 + ("validation",) * 2 + ("test",) * 6


def write_dataset(
    root: Path,
    *,
    separation: float = 3.25,
    artist_spread: float = 1.5,
    noise: float = 0.3,
    n_features: int = 32,
    tracks_per_artist: int = 5,
    seed: int = 1,
) -> Path:
    """A dataset folder: tracks.csv (artist-disjoint splits, as build writes them) and features.csv.

    A track's features are its class mean (`separation` along the class's own axis) + its artist's
    offset (spread `artist_spread` on every feature, shared by all the artist's tracks) + noise.
    Tight artist clusters in many dimensions let a model memorise artists, which only pays off when
    test artists were also seen in training (the mixed split). With separation and spread 0 the
    features are pure noise: no model can beat chance."""
    rng = np.random.default_rng(seed)
    centres = np.eye(len(CLASSES), n_features) * separation
    tracks: list[dict[str, Any]] = []
    features: list[np.ndarray] = []
    artist_number = 0
    for k, target in enumerate(CLASSES):
        for split in ARTIST_SPLITS:
            artist_number += 1
            offset = rng.normal(size=n_features) * artist_spread
            for t in range(tracks_per_artist):
                tracks.append(
                    {
                        "track_id": f"tr{artist_number:03d}{t:02d}",
                        "track_name": f"Song {t}",
                        "artist_id": f"ar{artist_number:03d}",
                        "artist_name": f"Artist {artist_number}",
                        "target": target,
                        "subgenre": f"{target} sub",
                        "rule": target,
                        "split": split,
                    }
                )
                features.append(centres[k] + offset + rng.normal(size=n_features) * noise)
    root.mkdir(parents=True, exist_ok=True)
    track_frame = pd.DataFrame(tracks)
    track_frame.to_csv(root / "tracks.csv", index=False)
    names = ["tempo", "spectral_centroid_mean"] + [f"mfcc{i}_mean" for i in range(1, n_features - 1)]
    feature_frame = pd.concat(
        [track_frame[["track_id", "target", "split"]], pd.DataFrame(np.array(features), columns=names)], axis=1
    )
    feature_frame.to_csv(root / "features.csv", index=False)
    return root


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One OpenMP/BLAS thread: the same scores (checked by hand), but no thread oversubscription,
    which makes gradient boosting ten times slower on a busy machine."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def leaky(one_thread: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The leaky dataset, evaluated once with both models (shared: the fit is the slow part)."""
    root = write_dataset(tmp_path_factory.mktemp("leaky") / "ds")
    return root, evaluate_dataset(root)


def _fraction(value: Any) -> bool:
    return isinstance(value, float | int) and 0.0 <= value <= 1.0


def test_report_has_the_promised_shape(leaky: tuple[Path, dict[str, Any]]) -> None:
    root, report = leaky
    on_disk = json.loads((root / EVALUATION_JSON).read_text(encoding="utf-8"))
    assert on_disk == report
    assert report["classes"] == list(CLASSES)
    assert report["chance"] == 0.25
    assert report["counts"] == {"train": 200, "validation": 40, "test": 120}
    assert report["features"] == 32 and report["seed"] == 0
    assert report["warnings"] == []
    assert report["files"] == [EVALUATION_JSON, CONFUSION_PNG, PER_CLASS_PNG]
    assert _fraction(report["majority_baseline"]) and report["majority_baseline"] == 0.25
    for kind in ("artist_disjoint", "mixed"):
        section = report[kind]
        assert _fraction(section["accuracy"]) and _fraction(section["macro_f1"])
        assert set(section["by_model"]) == set(MODELS)
        best = section["model"]
        assert best == report["artist_disjoint"]["model"]  # the same model in both, so the gap compares like with like
        assert section["by_model"][best] == {"accuracy": section["accuracy"], "macro_f1": section["macro_f1"]}
        for scores in section["by_model"].values():
            assert _fraction(scores["accuracy"]) and _fraction(scores["macro_f1"])
        assert set(section["per_class_f1"]) == set(CLASSES)
        assert all(_fraction(v) for v in section["per_class_f1"].values())
        assert section["macro_f1"] == pytest.approx(np.mean(list(section["per_class_f1"].values())), abs=1e-5)
        matrix = np.array(section["confusion_matrix"]["matrix"])
        assert section["confusion_matrix"]["labels"] == list(CLASSES)
        assert matrix.shape == (4, 4) and matrix.sum() == 120  # mixed: same test size
        assert matrix.sum(axis=1).tolist() == [30, 30, 30, 30]  # test rows by true class (mixed: stratified)
        assert np.trace(matrix) / 120 == pytest.approx(section["accuracy"], abs=1e-5)
    best = report["artist_disjoint"]["model"]
    assert report["artist_disjoint"]["macro_f1"] == max(
        m["macro_f1"] for m in report["artist_disjoint"]["by_model"].values()
    )
    assert best in MODELS


def test_separable_classes_beat_chance_and_leakage_inflates_mixed(leaky: tuple[Path, dict[str, Any]]) -> None:
    _, report = leaky
    disjoint, mixed = report["artist_disjoint"], report["mixed"]
    assert disjoint["accuracy"] > 2 * report["chance"]
    assert disjoint["macro_f1"] > 2 * report["chance"]
    for model in MODELS:  # every model profits from having seen the test artists
        assert mixed["by_model"][model]["accuracy"] >= disjoint["by_model"][model]["accuracy"] + 0.1
    assert mixed["accuracy"] > 0.9
    assert report["leakage_gap"] == pytest.approx(mixed["accuracy"] - disjoint["accuracy"], abs=1e-5)
    assert report["leakage_gap"] > 0.1


def test_random_features_score_about_chance(tmp_path: Path) -> None:
    root = write_dataset(
        tmp_path / "ds", separation=0.0, artist_spread=0.0, noise=1.0, n_features=8, tracks_per_artist=10
    )
    report = evaluate_dataset(root, write=False)
    for kind in ("artist_disjoint", "mixed"):
        for model, scores in report[kind]["by_model"].items():
            assert abs(scores["accuracy"] - report["chance"]) < 0.1, (kind, model, scores)
    assert report["files"] == [] and not (root / EVALUATION_JSON).exists() and not (root / CONFUSION_PNG).exists()


def test_plots_are_pngs(leaky: tuple[Path, dict[str, Any]]) -> None:
    root, _ = leaky
    for name in (CONFUSION_PNG, PER_CLASS_PNG):
        data = (root / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5000


def test_deterministic_and_independent_of_row_order(leaky: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    root, report = leaky
    files = {name: (root / name).read_bytes() for name in (EVALUATION_JSON, CONFUSION_PNG, PER_CLASS_PNG)}
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    features = pd.read_csv(copy / "features.csv", dtype={"track_id": str})
    features.sample(frac=1.0, random_state=5).to_csv(copy / "features.csv", index=False)  # same rows, shuffled
    assert evaluate_dataset(copy) == report
    for name, data in files.items():
        assert (copy / name).read_bytes() == data, name


def test_warns_about_thin_or_missing_test_classes_and_imputes_gaps(
    leaky: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    root = tmp_path / "ds"
    shutil.copytree(leaky[0], root)
    features = pd.read_csv(root / "features.csv", dtype={"track_id": str})
    test = features["split"] == "test"
    drop = (test & (features["target"] == "rock")) | (test & (features["target"] == "jazz")).cumsum().gt(3) & test & (
        features["target"] == "jazz"
    )
    features = features[~drop].copy()
    features.loc[features.index[:4], "tempo"] = np.nan
    features.to_csv(root / "features.csv", index=False)
    report = evaluate_dataset(root, models=("logistic_regression",))
    text = "\n".join(report["warnings"])
    assert "class 'rock' is missing from test" in text
    assert "class 'jazz' has only 3 test track(s)" in text
    assert "4 missing or non-numeric feature value(s) in 1 column(s) (first tempo)" in text
    assert "57 of 360 tracks in tracks.csv have no row in features.csv" in text
    disjoint = report["artist_disjoint"]
    assert report["counts"]["test"] == 63
    assert disjoint["per_class_f1"]["rock"] is None  # not scored, and left out of macro-F1
    present = [v for v in disjoint["per_class_f1"].values() if v is not None]
    assert disjoint["macro_f1"] == pytest.approx(np.mean(present), abs=1e-5)
    assert disjoint["confusion_matrix"]["matrix"][CLASSES.index("rock")] == [0, 0, 0, 0]
    assert set(disjoint["by_model"]) == {"logistic_regression"}
    assert (root / CONFUSION_PNG).read_bytes().startswith(PNG_SIGNATURE)


def test_warns_when_an_artist_is_in_more_than_one_split(tmp_path: Path) -> None:
    """The artist-disjoint scores are only that if no artist crosses splits: say so when one does."""
    root = write_dataset(tmp_path / "ds", n_features=4, tracks_per_artist=2)
    for name in ("tracks.csv", "features.csv"):
        frame = pd.read_csv(root / name, dtype=str)
        frame.loc[frame["track_id"] == "tr00101", "split"] = "test"  # one track of train artist ar001
        frame.to_csv(root / name, index=False)
    report = evaluate_dataset(root, models=("logistic_regression",))
    shared = "1 artist(s) appear in more than one split (first 'ar001')"
    assert report["warnings"] == [f"{shared}: the artist-disjoint scores are not artist-disjoint"]


def _drop_split(name: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda f: f[f["split"] != name]


def _set_first(column: str, value: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(f: pd.DataFrame) -> pd.DataFrame:
        f = f.copy()
        f.loc[f.index[0], column] = value
        return f

    return change


FEATURE_ERRORS: list[tuple[str, Callable[[pd.DataFrame], pd.DataFrame] | None, str]] = [
    ("missing", None, "features.csv not found: run `genremap features --dataset"),
    ("no feature columns", lambda f: f[["track_id", "target", "split"]], "has no feature columns"),
    (
        "wrong header",
        lambda f: f[["target", "track_id", "split", "tempo"]],
        "expected it to start with columns track_id,target,split",
    ),
    ("no rows", lambda f: f.iloc[:0], "has no tracks"),
    ("one class", lambda f: f[f["target"] == "jazz"], "only 1 class (jazz)"),
    ("empty test", _drop_split("test"), "the test split is empty"),
    ("empty train", _drop_split("train"), "the train split is empty"),
    ("unknown track", _set_first("track_id", "nope"), "1 track id(s) not in tracks.csv (first 'nope')"),
    ("duplicate track", lambda f: pd.concat([f, f.iloc[:1]]), "appears more than once"),
    ("target differs", _set_first("target", "rock"), "target of 1 track(s) differs from tracks.csv"),
    ("unknown split", _set_first("split", "holdout"), "unknown split 'holdout'"),
]


@pytest.mark.parametrize(("case", "change", "expected"), FEATURE_ERRORS, ids=[c[0] for c in FEATURE_ERRORS])
def test_unusable_features_give_one_clear_line(
    tmp_path: Path, case: str, change: Callable[[pd.DataFrame], pd.DataFrame] | None, expected: str
) -> None:
    root = write_dataset(tmp_path / "ds", n_features=4, tracks_per_artist=2)
    if change is None:
        (root / "features.csv").unlink()
    else:
        change(pd.read_csv(root / "features.csv", dtype=str)).to_csv(root / "features.csv", index=False)
    with pytest.raises(UsageError) as caught:
        evaluate_dataset(root)
    message = caught.value.message
    assert "\n" not in message and caught.value.exit_code == 2
    assert expected in message
    assert str(root / "features.csv") in message and "genremap " in message
    assert not (root / EVALUATION_JSON).exists()


def test_empty_features_file_and_bad_folder_and_model(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "ds", n_features=4, tracks_per_artist=2)
    cases = [
        (tmp_path / "nowhere", MODELS, "dataset folder not found"),
        (root, ("random_forest",), "unknown model 'random_forest': choose from logistic_regression, gradient_boosting"),
        (root, (), "no models to evaluate"),
    ]
    for folder, models, expected in cases:
        with pytest.raises(UsageError, match=expected):
            evaluate_dataset(folder, models=models)
    (root / "features.csv").write_text("", encoding="utf-8")
    with pytest.raises(UsageError, match=r"features\.csv is empty: run `genremap features"):
        evaluate_dataset(root)
