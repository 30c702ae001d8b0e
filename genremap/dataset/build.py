"""The main job: label the store, drop duplicate recordings, balance, split and export."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genremap.choices import resolve_targets
from genremap.dataset.balance import BalanceResult, DedupeResult, balance, check_split, dedupe
from genremap.dataset.export import (
    SPREADSHEET_CSV,
    ExportResult,
    formula_like,
    write_dataset,
    write_spotify_audio,
)
from genremap.dataset.folder import check_out, staged_replace
from genremap.dataset.labels import Labelling, label_store, labelled_track_rows
from genremap.engine import Policy, RuleSet
from genremap.engine.policy import ARTIST_STATUSES
from genremap.errors import UsageError
from genremap.sources import DEFAULT_GENRE_SOURCE, STORED_SOURCES, parse_genre_sources
from genremap.store import Store
from genremap.words import counted


@dataclass
class BuildOptions:
    """What `genremap build` was asked for (recorded in the manifest)."""

    out: Path
    seed: int = 42
    per_class: int | None = None
    max_per_artist: int | None = None
    allow_short: bool = False
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    targets: list[str] | None = None
    genre_source: str = DEFAULT_GENRE_SOURCE
    command: str = ""
    spreadsheet_safe: bool = False  # also write tracks_spreadsheet.csv


MAX_SEED = 2**63 - 1  # the manifest's seed stays a signed 64-bit integer, exact in every JSON reader


def check_build_options(options: BuildOptions, ruleset: RuleSet) -> None:
    """Refuse a request that cannot be met before anything is read or written."""
    check_request(options, ruleset)
    check_out(options.out)


def check_request(options: BuildOptions, ruleset: RuleSet) -> list[str]:
    """Refuse a seed, target list, cap or split that cannot be met; the targets to build."""
    if not 0 <= options.seed <= MAX_SEED:
        raise UsageError(f"--seed {options.seed}: expected a whole number from 0 to {MAX_SEED}")
    if options.targets is not None:
        if not options.targets:
            raise UsageError(f"--targets names no target (declared: {', '.join(ruleset.targets)})")
        resolve_targets(options.targets, ruleset, "--targets")
    for flag, value in (("--per-class", options.per_class), ("--max-per-artist", options.max_per_artist)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} {value}: must be at least 1")
    check_split(tuple(options.split), ",".join(map(str, options.split)))
    parse_genre_sources(options.genre_source)
    return resolve_targets(options.targets, ruleset, "--targets") if options.targets else list(ruleset.targets)


@dataclass
class Selection:
    """The tracks a build keeps: after de-duplication, and then balanced and split."""

    unique: DedupeResult
    balanced: BalanceResult


def select_tracks(tracks: pd.DataFrame, targets: list[str], options: BuildOptions, labelling: Labelling) -> Selection:
    """De-duplicate, balance and split labelled tracks (track_id, artist: position in the
    labelling's artists, dedupe_hash, isrc_hash, target). Artists are keyed by the rank of
    their artist_id for balancing, so the result depends only on the data and the seed, not
    on the order artists were stored in (the CLI and `genremap.build_dataset` agree)."""
    unique = dedupe(tracks)
    kept = unique.tracks
    position = kept["artist"].to_numpy()
    present, inverse = np.unique(position, return_inverse=True)
    ids = labelling.artists_in["artist_id"].to_numpy(dtype=object)[present]
    rank = np.empty(len(present), dtype=np.int64)
    rank[np.argsort(ids.astype(str), kind="stable")] = np.arange(len(present))
    keyed = kept.assign(artist=rank[inverse.reshape(-1)], position=position)
    balanced = balance(
        keyed,
        targets,
        seed=options.seed,
        per_class=options.per_class,
        max_per_artist=options.max_per_artist,
        allow_short=options.allow_short,
        split=options.split,
    )
    balanced.tracks["artist"] = balanced.tracks.pop("position")
    return Selection(unique, balanced)


@dataclass
class BuildResult:
    """What a build chose from, all counted among the tracks labelled with the dataset's targets:
    labelled_tracks - dropped_isrc - dropped_title - over_artist_cap == sum(class_sizes)."""

    export: ExportResult
    labelled_tracks: int
    dropped_isrc: int
    dropped_title: int
    class_sizes: dict[str, int]
    per_class: int
    warnings: list[str] = field(default_factory=list)
    over_artist_cap: int = 0

    @property
    def available(self) -> int:
        """Tracks the classes were sampled from (after duplicates and the per-artist cap)."""
        return sum(self.class_sizes.values())


def source_counts(labelling: Labelling, picked: pd.DataFrame, targets: list[str]) -> dict[str, Any]:
    """The manifest's record of the genre sources: the precedence list used (stored sources,
    first choice first), and per source the artists it labelled with the dataset's targets
    (`labelled_artists`) and the artists of the tracks the dataset holds (`dataset_artists`)."""
    names = list(labelling.ruleset.targets)
    labels = labelling.labels
    labelled = (labels.status == ARTIST_STATUSES.index("labelled")) & np.isin(
        labels.target, [names.index(t) for t in targets]
    )
    in_dataset = np.zeros(len(labelling.artists_in), dtype=bool)
    in_dataset[picked["artist"].to_numpy()] = True
    used = [s for s in STORED_SOURCES if s in labelling.sources]
    return {
        "precedence": list(labelling.sources),
        "labelled_artists": {s: n for s, n in labelling.labelled_by_source(labelled).items() if s in used},
        "dataset_artists": {s: n for s, n in labelling.labelled_by_source(in_dataset).items() if s in used},
    }


def dataset_rows(picked: pd.DataFrame, track_ids: Any, details: pd.DataFrame, labelling: Labelling) -> pd.DataFrame:
    """The rows of tracks.csv, in `picked`'s order: the balanced tracks (artist: position in the
    labelling, target, split), their ids, and their details aligned with them (track_name,
    duration_ms, preview_url, isrc; a missing column gives empty cells)."""
    about = labelling.artist_columns(picked["artist"].to_numpy())

    def detail(name: str, dtype: Any = None) -> Any:
        return details[name].to_numpy(dtype=dtype) if name in details else None

    return pd.DataFrame(
        {
            "track_id": np.asarray(track_ids, dtype=object),
            "track_name": detail("track_name", object),
            "artist_id": about["artist_id"],
            "artist_name": about["artist_name"],
            "target": picked["target"].astype(object).to_numpy(),
            "subgenre": about["subgenre"],
            "rule": about["rule"],
            "split": picked["split"].to_numpy(dtype=object),
            "duration_ms": detail("duration_ms"),
            "preview_url": detail("preview_url", object),
            "isrc": detail("isrc", object),
        }
    )


def build_dataset(
    store: Store,
    ruleset: RuleSet,
    policy: Policy,
    options: BuildOptions,
    rules_dir: Path,
    on_stage: Callable[[str], None] = lambda stage: None,
) -> BuildResult:
    """Run the whole build; raises UsageError with class sizes when the request cannot be met.

    `on_stage` is called with the name of each stage as it starts (for progress displays).
    The folder is replaced all at once (see genremap.dataset.folder): old dataset or new.
    """
    check_build_options(options, ruleset)
    targets = check_request(options, ruleset)
    on_stage("labelling subgenres and artists")
    labelling: Labelling = label_store(store, ruleset, policy, options.genre_source, with_counts=False)
    on_stage("joining tracks")
    tracks, ids_by_position = labelled_track_rows(store, labelling)
    if tracks.empty:
        summary = store.summary()
        raise UsageError(
            f"no labelled tracks in {store.path} ({counted(summary.tracks, 'track row')}, "
            f"{counted(summary.artists, 'artist')}): build needs track rows (an artist table's count "
            "column only counts tracks): import a track table (genremap import FILE), collect, or run "
            "`genremap build --sample`"
        )
    on_stage("dropping duplicate recordings and balancing")
    selection = select_tracks(tracks, targets, options, labelling)
    unique, balanced = selection.unique, selection.balanced
    on_stage("exporting")
    picked = balanced.tracks
    track_ids = ids_by_position.take(picked["track_id"].to_numpy())
    details = store.track_details(track_ids.tolist()).set_index("track_id").reindex(track_ids)
    chosen = dataset_rows(picked, track_ids, details, labelling)
    warnings = list(balanced.warnings)
    formula_cells = int(formula_like(chosen).to_numpy().sum())
    if formula_cells and not options.spreadsheet_safe:
        warnings.append(
            f"{formula_cells} cell(s) of tracks.csv begin with =, +, -, @, tab or CR and are kept exactly; "
            f"a spreadsheet may run them as formulas: --spreadsheet-safe also writes {SPREADSHEET_CSV} for people"
        )
    labelled = int(tracks["target"].isin(targets).sum())
    dropped_isrc, dropped_title = unique.dropped_among(targets)
    manifest: dict[str, Any] = {
        "command": options.command,
        "store": str(store.path),
        "rules": {"dir": str(rules_dir), "files": ruleset.files, "sha256": ruleset.source_hash},
        "policy": {
            "name": policy.name,
            "min_share": policy.min_share,
            "min_margin": policy.min_margin,
            "min_votes": policy.min_votes,
            "out_of_scope": policy.out_of_scope,
            "related": [list(group) for group in policy.related],
        },
        "genre_source": labelling.genre_source,
        "genre_sources": source_counts(labelling, picked, targets),
        "seed": options.seed,
        "per_class": balanced.per_class,
        "max_per_artist": options.max_per_artist,
        "split": dict(zip(("train", "validation", "test"), options.split, strict=True)),
        "targets": targets,
        # Counted among the tracks labelled with `targets`: labelled_tracks - duplicates_dropped
        # - over_max_per_artist == available_tracks == the sum of class_sizes.
        "labelled_tracks": labelled,
        "duplicates_dropped": {"isrc": dropped_isrc, "title": dropped_title},
        "over_max_per_artist": balanced.over_artist_cap,
        "available_tracks": sum(balanced.class_sizes.values()),
        "class_sizes": balanced.class_sizes,
        "formula_like_cells": formula_cells,
        "warnings": warnings,
    }
    ids = chosen["track_id"].tolist()
    with staged_replace(options.out) as staging:
        spotify_files = write_spotify_audio(
            staging.path, chosen, store.audio_features_for(ids), store.audio_analysis_for(ids)
        )
        exported = write_dataset(
            staging.path, chosen, manifest, spotify_files, spreadsheet_copy=options.spreadsheet_safe
        )
    exported.out = options.out
    return BuildResult(
        exported,
        labelled,
        dropped_isrc,
        dropped_title,
        balanced.class_sizes,
        balanced.per_class,
        warnings + staging.notes,
        balanced.over_artist_cap,
    )
