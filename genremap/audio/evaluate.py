"""Quick scikit-learn baselines on DIR/features.csv: how well do the genres separate?

Two scores per model: artist-disjoint (train on the dataset's `train` split, score on `test`; no
test artist was seen in training) and mixed (a seeded random split of the same tracks that ignores
artists), so users see how much artist leakage inflates the usual numbers. Results go to
DIR/evaluation.json beside confusion_matrix.png and per_class_f1.png.

scikit-learn and matplotlib come with the `audio` extra and are imported only when needed.
"""

from __future__ import annotations

import json
import os
import warnings as pywarnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genremap.audio.dataset import SPLITS, DatasetFolder, open_dataset, read_tracks
from genremap.audio.extras import require
from genremap.dataset.files import CONFUSION_PNG, EVALUATION_JSON, FEATURES_CSV, PER_CLASS_PNG
from genremap.errors import UsageError
from genremap.words import counted

MODELS = ("logistic_regression", "gradient_boosting")
KEY_COLUMNS = ("track_id", "target", "split")
MIN_TEST_PER_CLASS = 5
DIGITS = 6  # fractions in the report are rounded to this many decimals


@dataclass
class FeatureTable:
    """features.csv joined to tracks.csv: one row per track, sorted by split then track id."""

    x: np.ndarray  # float64, (n_tracks, n_features); NaN where a value is missing
    y: np.ndarray  # target per track (str)
    split: np.ndarray  # split per track (str)
    artist: np.ndarray  # artist_id per track (str)
    feature_names: list[str]
    classes: list[str]
    path: Path  # the features.csv read
    warnings: list[str] = field(default_factory=list)

    def rows(self, split: str) -> np.ndarray:
        """Row positions of one split."""
        return np.flatnonzero(self.split == split)


def _need_sklearn() -> None:
    require("evaluate", ("sklearn", "matplotlib"))


def _rerun(folder: DatasetFolder) -> str:
    return f"run `genremap features --dataset {folder.root}`"


def load_features(folder: DatasetFolder) -> FeatureTable:
    """Read DIR/features.csv, check it against tracks.csv and attach each track's artist.

    Every column after `track_id,target,split` is a numeric feature; values that are not numbers
    (or are infinite) become NaN, to be imputed with the training median."""
    path = folder.root / FEATURES_CSV
    if not path.is_file():
        raise UsageError(f"{path} not found: {_rerun(folder)} first")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise UsageError(f"{path} is empty: {_rerun(folder)} again") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"{path}: cannot read ({first}); {_rerun(folder)} again") from None
    columns = [str(c) for c in frame.columns]
    if tuple(columns[:3]) != KEY_COLUMNS:
        raise UsageError(f"{path}: expected it to start with columns {','.join(KEY_COLUMNS)}; {_rerun(folder)} again")
    feature_names = columns[3:]
    if not feature_names:
        raise UsageError(f"{path} has no feature columns after {','.join(KEY_COLUMNS)}; {_rerun(folder)} again")
    if frame.empty:
        raise UsageError(f"{path} has no tracks; {_rerun(folder)} again")
    duplicated = frame["track_id"][frame["track_id"].duplicated()]
    if len(duplicated):
        raise UsageError(f"{path}: track id {duplicated.iloc[0]!r} appears more than once; {_rerun(folder)} again")
    bad_split = sorted(set(frame["split"]) - set(SPLITS))
    if bad_split:
        raise UsageError(
            f"{path}: unknown split {bad_split[0]!r} (expected {', '.join(SPLITS)}); {_rerun(folder)} again"
        )

    tracks = read_tracks(folder)
    if tracks["track_id"].duplicated().any():
        raise UsageError(f"{folder.tracks_csv}: track ids repeat; rebuild it with genremap build")
    known = tracks.set_index("track_id")[["artist_id", "target", "split"]]
    unknown = frame.loc[~frame["track_id"].isin(known.index), "track_id"]
    if len(unknown):
        raise UsageError(
            f"{path}: {len(unknown)} track id(s) not in tracks.csv (first {unknown.iloc[0]!r}); "
            f"features.csv belongs to another build: {_rerun(folder)} again"
        )
    meta = known.loc[frame["track_id"]]
    for column in ("target", "split"):
        differs = frame[column].to_numpy() != meta[column].to_numpy()
        if differs.any():
            first = frame["track_id"].to_numpy()[differs][0]
            raise UsageError(
                f"{path}: {column} of {int(differs.sum())} track(s) differs from tracks.csv (first {first!r}); "
                f"{_rerun(folder)} again"
            )

    rank = {s: i for i, s in enumerate(SPLITS)}
    order = np.lexsort((frame["track_id"].to_numpy(), frame["split"].map(rank).to_numpy()))
    numeric = frame[feature_names].apply(pd.to_numeric, errors="coerce").astype("float64")
    x = numeric.to_numpy(dtype=np.float64, copy=True)[order]
    x[~np.isfinite(x)] = np.nan
    y = frame["target"].astype(str).to_numpy()[order]
    split = frame["split"].astype(str).to_numpy()[order]
    artist = meta["artist_id"].astype(str).to_numpy()[order]
    classes = sorted(set(y.tolist()))
    if len(classes) < 2:
        raise UsageError(
            f"{path}: only {len(classes)} class ({', '.join(classes) or 'none'}); evaluation needs at least 2 targets: "
            f"build the folder with more (genremap build), then {_rerun(folder)}"
        )
    for name in ("train", "test"):
        if not (split == name).any():
            raise UsageError(
                f"{path}: the {name} split is empty; rebuild with `genremap build --split` giving it a share, "
                f"then {_rerun(folder)}"
            )
    train_classes = set(y[split == "train"].tolist())
    if len(train_classes) < 2:
        raise UsageError(
            f"{path}: the train split holds only {len(train_classes)} class; evaluation needs at least 2: "
            f"rebuild with genremap build, then {_rerun(folder)}"
        )

    table = FeatureTable(
        x=x,
        y=y,
        split=split,
        artist=artist,
        feature_names=feature_names,
        classes=classes,
        path=path,
    )
    _check_table(table, n_tracks=len(tracks), path=path)
    return table


def _check_table(table: FeatureTable, *, n_tracks: int, path: Path) -> None:
    """Warnings (never errors) about a table that can still be evaluated."""
    notes = table.warnings
    missing_values = int(np.isnan(table.x).sum())
    if missing_values:
        columns = [n for n, bad in zip(table.feature_names, np.isnan(table.x).any(axis=0), strict=True) if bad]
        notes.append(
            f"{missing_values} missing or non-numeric feature value(s) in {len(columns)} column(s) "
            f"(first {columns[0]}), imputed with the training median"
        )
    if len(table.y) < n_tracks:
        missing = n_tracks - len(table.y)
        notes.append(
            f"{missing:,} of {counted(n_tracks, 'track')} in tracks.csv {'has' if missing == 1 else 'have'} "
            f"no row in {path.name}"
        )
    artist_splits = pd.Series(table.split).groupby(table.artist).nunique()
    shared = artist_splits[artist_splits > 1]
    if len(shared):
        notes.append(
            f"{len(shared)} artist(s) appear in more than one split (first {shared.index[0]!r}): "
            "the artist-disjoint scores are not artist-disjoint"
        )
    train = set(table.y[table.split == "train"].tolist())
    for name in table.classes:
        if name not in train:
            notes.append(f"class '{name}' has no tracks in train: no model can predict it")
    test_counts = pd.Series(table.y[table.split == "test"]).value_counts()
    for name in table.classes:
        n = int(test_counts.get(name, 0))
        if n == 0:
            notes.append(f"class '{name}' is missing from test: its F1 is not reported and macro-F1 leaves it out")
        elif n < MIN_TEST_PER_CLASS:
            notes.append(f"class '{name}' has only {n} test track(s) (< {MIN_TEST_PER_CLASS}): its scores are noisy")


def make_model(name: str, seed: int) -> Any:
    """An unfitted scikit-learn pipeline: median imputation, then the named model.

    `logistic_regression` standard-scales first; `gradient_boosting` is a
    HistGradientBoostingClassifier (200 iterations, no early stopping). Both are seeded."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    impute = ("impute", SimpleImputer(strategy="median", keep_empty_features=True))
    if name == "logistic_regression":
        return Pipeline(
            [impute, ("scale", StandardScaler()), ("model", LogisticRegression(max_iter=2000, random_state=seed))]
        )
    if name == "gradient_boosting":
        model = HistGradientBoostingClassifier(max_iter=200, early_stopping=False, random_state=seed)
        return Pipeline([impute, ("model", model)])
    raise UsageError(f"unknown model {name!r}: choose from {', '.join(MODELS)}")


def _fraction(value: float) -> float:
    return round(float(value), DIGITS)


def score(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 (over the classes present in `y_true`), per-class F1 (None for classes
    absent from `y_true`) and the confusion matrix (counts; rows true, columns predicted)."""
    from sklearn.metrics import confusion_matrix, f1_score

    labels = list(classes)
    seen = set(y_true.tolist())
    present = [c for c in labels if c in seen]
    per_class = f1_score(y_true, y_pred, labels=present, average=None, zero_division=0)
    by_class = dict(zip(present, per_class, strict=True))
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    return {
        "accuracy": _fraction(np.mean(y_true == y_pred)),
        "macro_f1": _fraction(np.mean(per_class)) if present else 0.0,
        "per_class_f1": {c: (_fraction(by_class[c]) if c in by_class else None) for c in labels},
        "confusion_matrix": {"labels": labels, "matrix": [[int(v) for v in row] for row in matrix]},
    }


def _fit_predict(
    name: str, seed: int, table: FeatureTable, train: np.ndarray, test: np.ndarray, notes: list[str]
) -> Any:
    from sklearn.exceptions import ConvergenceWarning

    model = make_model(name, seed)
    with pywarnings.catch_warnings(record=True) as caught:
        pywarnings.simplefilter("always", ConvergenceWarning)
        model.fit(table.x[train], table.y[train])
    for warning in caught:
        if issubclass(warning.category, ConvergenceWarning):
            note = f"{name} did not converge; scores may be a little low"
            if note not in notes:
                notes.append(note)
        else:
            pywarnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return model.predict(table.x[test])


def mixed_split(table: FeatureTable, seed: int, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """A random split of the train and test tracks that ignores artists: the same test size as
    the artist-disjoint test split, stratified by target when every class allows it, seeded."""
    from sklearn.model_selection import train_test_split

    pool = np.concatenate([table.rows("train"), table.rows("test")])
    n_test = len(table.rows("test"))
    try:
        train, test = train_test_split(pool, test_size=n_test, stratify=table.y[pool], random_state=seed)
    except ValueError:
        notes.append("too few tracks per class to stratify the mixed split: it is a plain random split")
        train, test = train_test_split(pool, test_size=n_test, random_state=seed)
    if len(set(table.y[train].tolist())) < 2:
        raise UsageError(f"{table.path}: too few tracks to evaluate (the mixed training split holds a single class)")
    return np.sort(train), np.sort(test)


def plot_confusion(path: Path, report: dict[str, Any], title: str) -> None:
    """The confusion matrix normalised per true class (rows sum to 1), each cell annotated."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = report["confusion_matrix"]["labels"]
    counts = np.asarray(report["confusion_matrix"]["matrix"], dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    n = len(labels)
    side = max(4.0, 0.7 * n + 2.5)
    fig = Figure(figsize=(side + 1.0, side), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    ax.set_xticks(range(n), labels=labels, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n), labels=labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    size = 9 if n <= 10 else 7
    for i in range(n):
        for j in range(n):
            colour = "white" if share[i, j] > 0.5 else "black"
            ax.text(j, i, f"{share[i, j]:.2f}", ha="center", va="center", color=colour, fontsize=size)
    fig.tight_layout()
    fig.savefig(path, format="png")


def plot_per_class_f1(
    path: Path, classes: Sequence[str], disjoint: dict[str, Any], mixed: dict[str, Any], title: str
) -> None:
    """Per-class F1 bars, artist-disjoint next to mixed (no bar where a class is absent from a test split)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(classes)
    width = 0.4
    where = np.arange(n, dtype=np.float64)
    fig = Figure(figsize=(max(5.0, 0.8 * n + 2.0), 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for offset, label, result, colour in (
        (-width / 2, "artist-disjoint", disjoint, "#1f77b4"),
        (width / 2, "mixed (artists shared)", mixed, "#ff7f0e"),
    ):
        values = [np.nan if result["per_class_f1"][c] is None else result["per_class_f1"][c] for c in classes]
        ax.bar(where + offset, values, width=width, label=label, color=colour)
    ax.set_xticks(where, labels=list(classes), rotation=45, ha="right", rotation_mode="anchor")
    ax.set_ylim(0.0, 1.15)  # head room for the legend above the bars
    ax.set_yticks(np.linspace(0.0, 1.0, 6))
    ax.set_ylabel("F1")
    ax.set_title(title)
    ax.legend(loc="upper center", ncol=2, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def model_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per split and model of an evaluation report (split, model, accuracy, macro_f1),
    every model evaluation.json holds; the best model (the one the plots show) is marked."""
    return [
        {
            "split": kind.replace("_", "-"),
            "model": name + (" (best)" if name == report[kind]["model"] and len(report[kind]["by_model"]) > 1 else ""),
            "accuracy": scores["accuracy"],
            "macro_f1": scores["macro_f1"],
        }
        for kind in ("artist_disjoint", "mixed")
        for name, scores in report[kind]["by_model"].items()
    ]


def evaluate_dataset(
    dataset: Path,
    *,
    seed: int = 0,
    models: Sequence[str] = MODELS,
    write: bool = True,
) -> dict[str, Any]:
    """Train quick baselines on features.csv and report how well the genres separate.

    Logistic regression (standard-scaled) and gradient boosted trees are trained on the `train`
    split and scored on `test`; these artist-disjoint scores mean no test artist was seen in
    training. The same models are then scored on a random split that ignores artists (`mixed`:
    same test size, stratified by genre, seeded), to show how much artist leakage inflates
    scores. Writes evaluation.json, confusion_matrix.png and per_class_f1.png to the folder.

    The returned dict is what evaluation.json holds. `artist_disjoint` and `mixed` describe the
    model with the best artist-disjoint test macro-F1 (named in their `model`, the same model in
    both so `leakage_gap` compares like with like); each has accuracy, macro_f1, per_class_f1
    and confusion_matrix ({"labels", "matrix"}: counts, rows true, columns predicted), and
    `by_model` gives accuracy and macro_f1 of every model. Also: chance, majority_baseline,
    classes, counts per split, features, seed, leakage_gap, warnings, files (names relative to
    the folder; empty when `write` is false). The `validation` split is not used.

    Raises UsageError (one line) when features.csv is missing or unusable.
    """
    folder = open_dataset(dataset)
    chosen = list(dict.fromkeys(models))
    if not chosen:
        raise UsageError(f"no models to evaluate: choose from {', '.join(MODELS)}")
    unknown = [m for m in chosen if m not in MODELS]
    if unknown:
        raise UsageError(f"unknown model {unknown[0]!r}: choose from {', '.join(MODELS)}")
    _need_sklearn()
    table = load_features(folder)
    notes = table.warnings
    classes = table.classes

    splits = {
        "artist_disjoint": (table.rows("train"), table.rows("test")),
        "mixed": mixed_split(table, seed, notes),
    }
    results: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in splits}
    for name in chosen:
        for kind, (train, test) in splits.items():
            predicted = _fit_predict(name, seed, table, train, test, notes)
            results[kind][name] = score(table.y[test], np.asarray(predicted).astype(str), classes)

    # Best by artist-disjoint macro-F1, then accuracy; ties go to the earlier model in `models`.
    best = max(
        chosen, key=lambda m: (results["artist_disjoint"][m]["macro_f1"], results["artist_disjoint"][m]["accuracy"])
    )
    sections: dict[str, dict[str, Any]] = {}
    for kind in splits:
        sections[kind] = {
            "accuracy": results[kind][best]["accuracy"],
            "macro_f1": results[kind][best]["macro_f1"],
            "model": best,
            "per_class_f1": results[kind][best]["per_class_f1"],
            "confusion_matrix": results[kind][best]["confusion_matrix"],
            "by_model": {
                m: {"accuracy": results[kind][m]["accuracy"], "macro_f1": results[kind][m]["macro_f1"]} for m in chosen
            },
        }

    train_y = table.y[table.rows("train")]
    test_y = table.y[table.rows("test")]
    values, counts = np.unique(train_y, return_counts=True)
    majority = values[np.argmax(counts)]  # ties: alphabetically first
    report: dict[str, Any] = {
        "artist_disjoint": sections["artist_disjoint"],
        "mixed": sections["mixed"],
        "chance": _fraction(1 / len(classes)),
        "majority_baseline": _fraction(np.mean(test_y == majority)),
        "classes": classes,
        "counts": {s: len(table.rows(s)) for s in SPLITS},
        "features": len(table.feature_names),
        "seed": seed,
        "leakage_gap": _fraction(sections["mixed"]["accuracy"] - sections["artist_disjoint"]["accuracy"]),
        "warnings": notes,
        "files": [],
    }
    if write:
        title = f"{best}, artist-disjoint test (accuracy {sections['artist_disjoint']['accuracy']:.2f})"
        plot_confusion(folder.root / CONFUSION_PNG, sections["artist_disjoint"], title)
        plot_per_class_f1(
            folder.root / PER_CLASS_PNG,
            classes,
            sections["artist_disjoint"],
            sections["mixed"],
            f"per-class F1, {best}\naccuracy {sections['artist_disjoint']['accuracy']:.2f} artist-disjoint, "
            f"{sections['mixed']['accuracy']:.2f} mixed",
        )
        report["files"] = [EVALUATION_JSON, CONFUSION_PNG, PER_CLASS_PNG]
        _write_json(folder.root / EVALUATION_JSON, report)
    return report
