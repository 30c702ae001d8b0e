"""The main job: label the store, drop duplicate recordings, balance, split and export."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from genremap.dataset.balance import balance, dedupe
from genremap.dataset.export import ExportResult, prepare_out, write_dataset, write_spotify_audio
from genremap.dataset.labels import Labelling, label_store, labelled_tracks
from genremap.engine import Policy, RuleSet
from genremap.errors import UsageError
from genremap.store import Store


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
    genre_source: str = "both"
    command: str = ""


@dataclass
class BuildResult:
    export: ExportResult
    labelled_tracks: int
    dropped_isrc: int
    dropped_title: int
    class_sizes: dict[str, int]
    per_class: int
    warnings: list[str] = field(default_factory=list)


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
    """
    targets = list(ruleset.targets)
    if options.targets:
        unknown = [t for t in options.targets if t not in ruleset.targets]
        if unknown:
            raise UsageError(f"--targets: unknown target(s) {', '.join(unknown)} (declared: {', '.join(targets)})")
        targets = list(options.targets)
    on_stage("labelling subgenres and artists")
    labelling: Labelling = label_store(store, ruleset, policy, options.genre_source, with_counts=False)
    on_stage("joining tracks")
    tracks = labelled_tracks(store, labelling)
    if tracks.empty:
        summary = store.summary()
        raise UsageError(
            f"no labelled tracks in {store.path} ({summary.tracks} tracks, {summary.artists} artists): "
            "import a track table (genremap import FILE), collect, or run `genremap build --sample`"
        )
    on_stage("dropping duplicate recordings")
    unique = dedupe(tracks)
    on_stage("balancing and splitting")
    balanced = balance(
        unique.tracks,
        targets,
        seed=options.seed,
        per_class=options.per_class,
        max_per_artist=options.max_per_artist,
        allow_short=options.allow_short,
        split=options.split,
    )
    on_stage("exporting")
    picked = balanced.tracks
    track_ids = picked["track_id"].to_numpy(dtype=object)
    details = store.track_details(track_ids.tolist()).set_index("track_id").reindex(track_ids)
    about = labelling.artist_columns(picked["artist"].to_numpy())
    chosen = pd.DataFrame(
        {
            "track_id": track_ids,
            "track_name": details["track_name"].to_numpy(dtype=object),
            "artist_id": about["artist_id"],
            "artist_name": about["artist_name"],
            "target": picked["target"].astype(object).to_numpy(),
            "subgenre": about["subgenre"],
            "rule": about["rule"],
            "split": picked["split"].to_numpy(dtype=object),
            "duration_ms": details["duration_ms"].to_numpy(),
            "preview_url": details["preview_url"].to_numpy(dtype=object),
            "isrc": details["isrc"].to_numpy(dtype=object),
        }
    )
    manifest: dict[str, Any] = {
        "command": options.command,
        "store": str(store.path),
        "rules": {"dir": str(rules_dir), "files": ruleset.files, "sha256": ruleset.source_hash},
        "policy": {"name": policy.name, "min_share": policy.min_share, "min_margin": policy.min_margin},
        "genre_source": options.genre_source,
        "seed": options.seed,
        "per_class": balanced.per_class,
        "max_per_artist": options.max_per_artist,
        "split": dict(zip(("train", "validation", "test"), options.split, strict=True)),
        "targets": targets,
        "labelled_tracks": len(tracks),
        "duplicates_dropped": {"isrc": unique.dropped_isrc, "title": unique.dropped_title},
        "class_sizes": balanced.class_sizes,
        "warnings": balanced.warnings,
    }
    prepare_out(options.out)
    ids = chosen["track_id"].tolist()
    spotify_files = write_spotify_audio(
        options.out, chosen, store.audio_features_for(ids), store.audio_analysis_for(ids)
    )
    exported = write_dataset(options.out, chosen, manifest, spotify_files)
    return BuildResult(
        exported,
        len(tracks),
        unique.dropped_isrc,
        unique.dropped_title,
        balanced.class_sizes,
        balanced.per_class,
        balanced.warnings,
    )
