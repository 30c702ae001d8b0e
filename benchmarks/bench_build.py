"""Benchmark `genremap build` on a large synthetic store, beside a naive seed-style mapping.

Run from the repository root (the full-size run takes a few minutes, mostly generation):

    python benchmarks/bench_build.py                  # 1M tracks, 100k artists, 5k+ subgenres
    python benchmarks/bench_build.py --tracks 100000 --artists 10000 --subgenres 2000   # quick
    python benchmarks/bench_build.py --workdir /tmp/gmbench --keep     # keep the store afterwards
    python benchmarks/bench_build.py --workdir /tmp/gmbench --reuse    # time again, same store

What it does, each phase in its own child process (so the peak RSS of one phase is not the
high-water mark of another):

1. generate: a synthetic SQLite store (schema from `genremap.store.Store`, rows bulk-inserted
   with `executemany` in one transaction). Genre names are the real Spotify genres of
   genremap/data/sample_stats.json (frequency-weighted, coherent lists built from their
   co-occurrences) plus generated variants ("<city> <genre>", "<genre> revival", "deep
   <genre>", "<country adjective> <genre>", ...) up to --subgenres distinct names. Artists get
   0-8 genres (about a quarter none; some genre-less ones get MusicBrainz genres instead);
   tracks go to artists with a heavy-tailed (log-normal) distribution; 5% of tracks are
   duplicate recordings (remaster/mono/single-version suffixes, half of them with the same
   ISRC). Not part of the build timing, but its time is printed.
2. build: `python -m genremap build` end to end, as a user runs it, once with default options
   and once with `--max-per-artist 50`: wall time and the child's peak RSS (os.wait4).
3. stages: the same `build_dataset` in-process, with the library functions it calls wrapped
   by timers (store reads, labelling and its engine steps, join, dedupe, balance, details
   fetch, export), so the bottleneck is visible; peak RSS of that process.
4. mapping: genremap's mapping alone (normalise → CompiledRules.decide_many on the distinct
   subgenres → decisions_frame → resolve_artists → join onto every track) against a naive
   implementation of the seed notebook's approach on the same in-memory data (per track:
   loop over the artist's genres, per genre loop over the seed keywords with `keyword in
   subgenre`, build a {track_id: {track_name, track_artists, genre}} dict). Also timed: the
   seed notebook as literally written (substring map over the distinct subgenres, then a
   per-track dict lookup); both naive variants must give the same result.

Targets (from the issue): full build <= 10 s, mapping >= 20x faster than the naive baseline,
peak memory <= 2 GB. Each is printed PASS or MISS; the exit status is non-zero only on errors.
Timings are wall-clock on a shared machine: expect noise when other jobs run (use --repeat).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
STATS = ROOT / "genremap" / "data" / "sample_stats.json"

BUILD_TARGET_S = 10.0
MAPPING_TARGET_RATIO = 20.0
MEMORY_TARGET_MB = 2048.0
NAIVE_PROBE = 100_000  # tracks timed first when deciding whether the full naive run is affordable

# The seed notebook's keyword list (`genresAugmented`) and how it folds them into its 9 genres.
# fmt: off
SEED_KEYWORDS = [
    "rock", "metal", "jazz", "blues", "disco", "house", "classical", "hip hop", "country",
    "romantic", "baroque", "funk", "dance", "electro", "edm", "techno", "trance", "roots", "soul",
    "bluegrass", "americana",
]
SEED_PARENT = {
    **{k: k for k in SEED_KEYWORDS},
    "romantic": "classical", "baroque": "classical",
    "bluegrass": "country", "americana": "country",
    "soul": "blues", "roots": "blues",
    "electro": "house", "edm": "house", "techno": "house", "trance": "house",
    "funk": "disco", "dance": "disco",
}
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CITIES = [
    "vancouver", "london", "berlin", "chicago", "detroit", "nashville", "austin", "seattle",
    "melbourne", "sydney", "toronto", "montreal", "paris", "lyon", "marseille", "milan", "rome",
    "madrid", "barcelona", "lisbon", "stockholm", "oslo", "helsinki", "copenhagen", "reykjavik",
    "dublin", "glasgow", "manchester", "liverpool", "bristol", "leeds", "brighton", "birmingham",
    "memphis", "atlanta", "houston", "dallas", "denver", "portland", "boston", "baltimore",
    "minneapolis", "louisville", "omaha", "tucson", "tokyo", "osaka", "seoul", "taipei", "manila",
    "jakarta", "bangkok", "mumbai", "delhi", "lagos", "nairobi", "accra", "santiago", "lima",
    "bogota", "monterrey", "guadalajara", "havana", "kingston", "auckland", "wellington", "perth",
    "brisbane", "adelaide", "hamburg", "munich", "cologne", "vienna", "zurich", "prague", "warsaw",
    "krakow", "budapest", "bucharest", "athens", "istanbul", "cairo", "new orleans", "bay area",
    "cape town", "sao paulo", "buenos aires", "mexico city",
]
COUNTRY_ADJECTIVES = [
    "german", "french", "italian", "spanish", "swedish", "norwegian", "finnish", "danish", "dutch",
    "belgian", "polish", "czech", "russian", "ukrainian", "turkish", "greek", "portuguese",
    "brazilian", "argentine", "chilean", "mexican", "colombian", "peruvian", "cuban", "japanese",
    "korean", "chinese", "taiwanese", "indonesian", "thai", "vietnamese", "indian", "australian",
    "canadian", "irish", "scottish", "welsh", "british", "american", "nigerian", "kenyan",
    "israeli", "icelandic", "estonian", "latvian", "lithuanian", "hungarian", "romanian",
    "serbian", "croatian", "slovak", "austrian", "swiss", "south african", "new zealand",
]
VARIANT_TEMPLATES = (
    "{city} {g}", "{city} {g}", "{city} {g}", "{adj} {g}", "{adj} {g}", "{adj} {g}", "{g} revival",
    "modern {g}", "deep {g}", "classic {g}", "new {g}", "underground {g}", "experimental {g}",
    "progressive {g}", "indie {g}", "vintage {g}", "dark {g}", "melodic {g}", "instrumental {g}",
    "{g} fusion", "traditional {g}", "minimal {g}",
)
FIRST = [
    "Alex", "Ana", "Ben", "Carla", "Dana", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jade", "Kai",
    "Lena", "Milo", "Nia", "Omar", "Pia", "Quinn", "Rosa", "Sam", "Tess", "Uma", "Vic", "Wes",
    "Xena", "Yuri", "Zoe", "Abe", "Bea", "Cole", "Dee", "Finn", "Gia", "Hal", "Ida", "Jon", "Kim",
    "Lou", "Max", "Noor",
]
LAST = [
    "Adams", "Berg", "Cruz", "Dale", "Ennis", "Ford", "Gray", "Hale", "Ives", "Jones", "Kerr",
    "Lowe", "Marsh", "Nash", "Ortiz", "Price", "Reyes", "Stone", "Tate", "Vance", "Wells", "Young",
    "Zane", "Moreau", "Silva", "Novak", "Lind", "Okafor", "Tanaka", "Rossi", "Müller", "Ødegård",
]
WORDS = [
    "Velvet", "Iron", "Midnight", "Golden", "Electric", "Silver", "Broken", "Wild", "Crystal",
    "Neon", "Hollow", "Burning", "Lonely", "Crimson", "Paper", "Rolling", "Sacred", "Northern",
    "Southern", "Echo", "Static", "Satellite", "Desert", "River", "Thunder", "Glass", "Shadow",
    "Honey", "Copper", "Ocean", "Falcon", "Wolf", "Raven", "Tiger", "Lotus", "Ember", "Atlas",
    "Comet", "Harbor",
]
NOUNS = [
    "Kings", "Foxes", "Riders", "Saints", "Machines", "Lights", "Hearts", "Ghosts", "Brothers",
    "Sisters", "Engines", "Dreams", "Rebels", "Drifters", "Wolves", "Prophets", "Pilots",
    "Orchestra", "Collective", "Ensemble", "Trio", "Quartet", "Band",
]
TITLE_A = [
    "Love", "Night", "Heart", "Road", "Fire", "Rain", "Summer", "Dream", "Light", "Time", "Home",
    "Money", "City", "Blue", "Gold", "Soul", "Moon", "Sun", "River", "Shadow", "Stone", "Wind",
    "Sky", "Dance", "Heaven", "Devil", "Baby", "Sugar", "Highway", "Thunder",
]
TITLE_B = [
    "Song", "Blues", "Waltz", "Boogie", "Prelude", "Anthem", "Serenade", "Ride", "Lullaby",
    "Groove", "Shuffle", "Nocturne", "Story", "Letter", "Train", "Jam", "Fever", "Party", "Prayer",
    "Ballad", "Rhapsody", "Tango", "Stomp", "Sonata", "Mix",
]
DUP_SUFFIXES = (
    " - Remastered 2011", " - 2009 Remaster", " - Single Version", " (Mono)", " - Radio Edit",
    " - Remastered", "",
)
# fmt: on


# --------------------------------------------------------------------------------------------
# small helpers


def peak_rss_mb_self() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclass
class ChildRun:
    """A finished child process: exit code, wall time, peak RSS of that child alone."""

    returncode: int
    seconds: float
    cpu_seconds: float  # user + system time of the child: less sensitive to other jobs than wall
    peak_rss_mb: float
    log: Path


def run_child(cmd: Sequence[str], log: Path, cwd: Path | None = None) -> ChildRun:
    """Run `cmd`, output to `log`; os.wait4 gives this child's own rusage (not a running max).

    This process stays small (it never loads the data), so the exec'd child's high-water mark
    is its own.
    """
    with log.open("wb") as handle:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=handle, stderr=subprocess.STDOUT, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return ChildRun(proc.returncode, seconds, cpu, usage.ru_maxrss / 1024.0, log)


class StageTimer:
    """Nested wall-clock timings of wrapped functions: (depth, name, seconds) in call order."""

    def __init__(self) -> None:
        self.records: list[tuple[int, str, float]] = []
        self._depth = 0

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        index = len(self.records)
        self.records.append((self._depth, name, 0.0))
        self._depth += 1
        start = time.perf_counter()
        try:
            yield
        finally:
            self._depth -= 1
            self.records[index] = (self._depth, name, time.perf_counter() - start)

    def wrap(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self(name):
                return func(*args, **kwargs)

        return timed

    def rows(self) -> list[dict[str, Any]]:
        """Records with each parent's self time (its own code, outside the wrapped children)."""
        out: list[dict[str, Any]] = []
        for i, (depth, name, seconds) in enumerate(self.records):
            children = 0.0
            for d, _, s in self.records[i + 1 :]:
                if d <= depth:
                    break
                if d == depth + 1:
                    children += s
            out.append({"depth": depth, "name": name, "seconds": seconds, "self": seconds - children})
        return out


def print_stage_rows(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        label = "  " * row["depth"] + row["name"]
        own = f"   (own code {row['self']:6.2f} s)" if row["self"] < row["seconds"] - 1e-3 else ""
        print(f"    {label:<58} {row['seconds']:7.2f} s{own}")


# --------------------------------------------------------------------------------------------
# phase 1: generation


def base62_ids(rng: np.random.Generator, n: int, length: int = 22) -> list[str]:
    alphabet = np.frombuffer(BASE62.encode(), dtype=np.uint8)
    codes = np.ascontiguousarray(alphabet[rng.integers(0, 62, size=(n, length))])
    return cast(list[str], codes.view(f"S{length}").ravel().astype(f"U{length}").tolist())


def hex_strings(rng: np.random.Generator, n: int, length: int) -> list[str]:
    alphabet = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    codes = np.ascontiguousarray(alphabet[rng.integers(0, 16, size=(n, length))])
    return cast(list[str], codes.view(f"S{length}").ravel().astype(f"U{length}").tolist())


def subgenre_vocabulary(
    real: dict[str, int], wanted: int, rnd: random.Random
) -> tuple[list[str], dict[str, list[str]]]:
    """Real genre names plus generated variants: `wanted` names distinct after normalisation.

    Returns the vocabulary and, per real genre, its variants.
    """
    from genremap.normalize import normalize_genre

    names = sorted(real, key=lambda g: (-real[g], g))[: max(wanted, 0)] if wanted < len(real) else list(real)
    seen = {normalize_genre(g) for g in names}
    variants: dict[str, list[str]] = {}
    bases = list(real)
    weights = [real[g] ** 0.5 for g in bases]  # popular genres get more variants, not all of them
    attempts = 0
    while len(names) < wanted:
        attempts += 1
        if attempts > wanted * 50:
            raise RuntimeError(f"could not generate {wanted} distinct subgenres")
        base = rnd.choices(bases, weights=weights, k=1)[0]
        template = rnd.choice(VARIANT_TEMPLATES)
        name = template.format(g=base, city=rnd.choice(CITIES), adj=rnd.choice(COUNTRY_ADJECTIVES))
        canonical = normalize_genre(name)
        if canonical in seen:
            continue
        seen.add(canonical)
        names.append(name)
        variants.setdefault(base, []).append(name)
    return names, variants


def artist_names(n: int, rnd: random.Random) -> list[str]:
    names: list[str] = []
    count: dict[str, int] = {}
    for _ in range(n):
        style = rnd.random()
        if style < 0.4:
            base = f"{rnd.choice(FIRST)} {rnd.choice(LAST)}"
        elif style < 0.75:
            base = f"The {rnd.choice(WORDS)} {rnd.choice(NOUNS)}"
        elif style < 0.9:
            base = f"{rnd.choice(WORDS)} {rnd.choice(NOUNS)}"
        else:
            base = f"DJ {rnd.choice(WORDS)} {rnd.choice(LAST)}"
        k = count.get(base, 0)
        count[base] = k + 1
        names.append(base if k == 0 else f"{base} {k + 1}")
    return names


@dataclass
class GeneratedGenres:
    spotify: list[list[str]]  # per artist, alphabetical like Spotify
    musicbrainz: list[list[str]]  # per artist (only some genre-less artists have any)


def artist_genre_lists(
    stats: dict[str, Any],
    vocab: list[str],
    variants: dict[str, list[str]],
    n_artists: int,
    rnd: random.Random,
    nprng: np.random.Generator,
) -> GeneratedGenres:
    """Coherent genre lists: a seed genre, genres that co-occur with it, some as variants."""
    real: dict[str, int] = stats["genres"]
    cooccurs: dict[str, list[list[Any]]] = stats["cooccurs"]
    in_vocab = set(vocab)
    real_names = [g for g in real if g in in_vocab]
    real_weights = np.array([real[g] for g in real_names], dtype=float)
    lengths_raw = {int(k): int(v) for k, v in stats["genre_list_lengths"].items()}
    lengths = np.arange(9)
    # 0-8 genres; longer lists of the corpus are folded into 8. About a quarter get none.
    length_w = np.array([lengths_raw.get(k, 0) for k in range(9)], dtype=float)
    length_w[8] += sum(v for k, v in lengths_raw.items() if k > 8)
    length_w[0] = 0.25 / 0.75 * length_w[1:].sum()
    sizes = nprng.choice(lengths, size=n_artists, p=length_w / length_w.sum())
    seeds = nprng.choice(len(real_names), size=n_artists, p=real_weights / real_weights.sum())
    neighbours: dict[str, tuple[list[str], list[float]]] = {}
    for g, pairs in cooccurs.items():
        names = [str(o) for o, _ in pairs if o in in_vocab]
        if names:
            cum: list[float] = []
            total = 0.0
            for o, n in pairs:
                if o in in_vocab:
                    total += float(n)
                    cum.append(total)
            neighbours[g] = (names, cum)
    spotify: list[list[str]] = []
    seed_of: list[str | None] = []
    for i in range(n_artists):
        size = int(sizes[i])
        if size == 0:
            spotify.append([])
            seed_of.append(None)
            continue
        seed = real_names[int(seeds[i])]
        chosen = [seed]
        near = neighbours.get(seed)
        tries = 0
        while len(chosen) < size and tries < 3 * size:
            tries += 1
            if near is not None and rnd.random() < 0.85:
                pick = rnd.choices(near[0], cum_weights=near[1], k=1)[0]
            else:
                pick = real_names[int(nprng.integers(len(real_names)))]
            if pick not in chosen:
                chosen.append(pick)
        out: list[str] = []
        for g in chosen:
            options = variants.get(g)
            if options and rnd.random() < 0.3:
                g = rnd.choice(options)
            if g not in out:
                out.append(g)
        out.sort()
        spotify.append(out)
        seed_of.append(seed)
    # Every name of the vocabulary is carried by at least one artist (the distinct-subgenre
    # count is the point of the benchmark): unused variants go to an artist of their base genre.
    used = {g for genres in spotify for g in genres}
    by_seed: dict[str, list[int]] = {}
    for i, s in enumerate(seed_of):
        if s is not None and len(spotify[i]) < 8:
            by_seed.setdefault(s, []).append(i)
    with_genres = [i for i, s in enumerate(seed_of) if s is not None]
    base_of = {v: b for b, vs in variants.items() for v in vs}
    for name in vocab:
        if name in used:
            continue
        candidates = by_seed.get(base_of.get(name, name)) or with_genres
        i = rnd.choice(candidates)
        spotify[i] = sorted([*spotify[i], name])
        used.add(name)
    # MusicBrainz genres for some artists Spotify leaves without any (genre source `both`).
    musicbrainz: list[list[str]] = [[] for _ in range(n_artists)]
    top = real_names[:200]
    for i in range(n_artists):
        if not spotify[i] and rnd.random() < 0.2:
            musicbrainz[i] = list(dict.fromkeys(rnd.choices(top, k=rnd.randint(1, 3))))
    return GeneratedGenres(spotify, musicbrainz)


@dataclass
class Synthetic:
    """Synthetic artists and tracks (before any store or file is written)."""

    names: list[str]  # per artist
    artist_ids: list[str]
    genres: GeneratedGenres
    artist_list: list[int]  # per track: index of its artist
    titles: list[str]
    isrcs: list[str | None]
    durations: list[int]
    track_ids: list[str]
    dates: list[str]
    popularity: list[int]
    previews: list[str | None]
    albums: list[str]
    album_idx: list[int]
    counts: np.ndarray  # original tracks per artist
    n_dup: int
    rnd: random.Random  # the generator, to continue the same random stream
    timings: dict[str, float]


def synthesize(n_tracks: int, n_artists: int, n_subgenres: int, seed: int) -> Synthetic:
    """Artists with coherent genre lists and heavy-tailed track counts; 5% duplicate recordings."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    rnd = random.Random(seed)
    nprng = np.random.default_rng(seed)
    stats = json.loads(STATS.read_text(encoding="utf-8"))
    vocab, variants = subgenre_vocabulary(stats["genres"], n_subgenres, rnd)
    names = artist_names(n_artists, rnd)
    artist_ids = base62_ids(nprng, n_artists)
    genres = artist_genre_lists(stats, vocab, variants, n_artists, rnd, nprng)
    timings["artists and genres"] = time.perf_counter() - t0

    # Tracks: heavy-tailed counts per artist; 5% of tracks re-release another one.
    t1 = time.perf_counter()
    n_dup = round(n_tracks * 0.05)
    n_orig = n_tracks - n_dup
    weights = nprng.lognormal(0.0, 1.6, size=n_artists)
    counts = nprng.multinomial(n_orig, weights / weights.sum())
    artist_of = np.repeat(np.arange(n_artists), counts)
    starts = np.cumsum(counts) - counts
    ordinal = np.arange(n_orig) - np.repeat(starts, counts)
    combos = [f"{a} {b}" for a in TITLE_A for b in TITLE_B]
    shifted = ordinal + np.repeat(nprng.integers(0, len(combos), size=n_artists), counts)
    title_idx = (shifted % len(combos)).tolist()
    part = (shifted // len(combos)).tolist()
    titles = [combos[t] if p == 0 else f"{combos[t]} No. {p + 1}" for t, p in zip(title_idx, part, strict=True)]
    has_isrc = nprng.random(n_orig) < 0.7
    isrc_codes = nprng.integers(0, 10**7, size=n_tracks)
    isrc_all = [f"US{'ABCDEF'[c % 6]}{'XYZ'[c % 3]}{c % 97:02d}{c % 100000:05d}" for c in isrc_codes.tolist()]
    isrcs: list[str | None] = [s if h else None for s, h in zip(isrc_all[:n_orig], has_isrc.tolist(), strict=True)]
    durations = nprng.integers(90_000, 480_000, size=n_orig).tolist()
    # duplicates: same artist, title with a version suffix, same duration; half keep the ISRC
    src = nprng.choice(n_orig, size=n_dup, replace=False)
    suffix = nprng.integers(0, len(DUP_SUFFIXES), size=n_dup).tolist()
    same_isrc = (nprng.random(n_dup) < 0.5).tolist()
    artist_list = artist_of.tolist()
    for j, (s, k, same) in enumerate(zip(src.tolist(), suffix, same_isrc, strict=True)):
        artist_list.append(artist_list[s])
        titles.append(titles[s] + DUP_SUFFIXES[k])
        isrcs.append(isrcs[s] if same and isrcs[s] is not None else isrc_all[n_orig + j])
        durations.append(durations[s])
    track_ids = base62_ids(nprng, n_tracks)
    if len(set(track_ids)) != n_tracks:
        raise RuntimeError("track id collision; change --seed")
    years = nprng.integers(1950, 2024, size=n_tracks).tolist()
    months = nprng.integers(1, 13, size=n_tracks).tolist()
    days = nprng.integers(1, 29, size=n_tracks).tolist()
    dates = [f"{y}-{m:02d}-{d:02d}" for y, m, d in zip(years, months, days, strict=True)]
    popularity = nprng.integers(0, 101, size=n_tracks).tolist()
    has_preview = (nprng.random(n_tracks) < 0.6).tolist()
    hexes = hex_strings(nprng, n_tracks, 40)
    previews = [f"https://p.scdn.co/mp3-preview/{h}" if p else None for h, p in zip(hexes, has_preview, strict=True)]
    albums = [f"{rnd.choice(WORDS)} {rnd.choice(NOUNS)}" for _ in range(4096)]
    album_idx = nprng.integers(0, len(albums), size=n_tracks).tolist()
    timings["tracks"] = time.perf_counter() - t1

    return Synthetic(
        names,
        artist_ids,
        genres,
        artist_list,
        titles,
        isrcs,
        durations,
        track_ids,
        dates,
        popularity,
        previews,
        albums,
        album_idx,
        counts,
        n_dup,
        rnd,
        timings,
    )


def generate_store(db: Path, n_tracks: int, n_artists: int, n_subgenres: int, seed: int) -> dict[str, Any]:
    from genremap.normalize import normalize_genre, normalize_name, recording_key, strip_version
    from genremap.store import Store, now, stable_hash

    t0 = time.perf_counter()
    data = synthesize(n_tracks, n_artists, n_subgenres, seed)
    timings, rnd = data.timings, data.rnd
    names, artist_ids, genres, artist_list, titles = (
        data.names,
        data.artist_ids,
        data.genres,
        data.artist_list,
        data.titles,
    )
    isrcs, durations, track_ids, dates, popularity = (
        data.isrcs,
        data.durations,
        data.track_ids,
        data.dates,
        data.popularity,
    )
    previews, albums, album_idx, counts, n_dup = data.previews, data.albums, data.album_idx, data.counts, data.n_dup

    # dedupe_key = recording_key(artist_name, title), computed with caches (same function parts).
    t2 = time.perf_counter()
    artist_key = [normalize_name(n) for n in names]
    title_cache: dict[str, str] = {}
    keys: list[str] = []
    for a, title in zip(artist_list, titles, strict=True):
        tk = title_cache.get(title)
        if tk is None:
            tk = title_cache[title] = normalize_genre(strip_version(title))
        keys.append(f"{artist_key[a]}\x1f{tk}")
    check = rnd.sample(range(n_tracks), min(2000, n_tracks))
    bad = [i for i in check if keys[i] != recording_key(names[artist_list[i]], titles[i])]
    if bad:
        raise RuntimeError(f"cached dedupe_key differs from recording_key for {len(bad)} sampled tracks")
    timings["dedupe keys"] = time.perf_counter() - t2

    t3 = time.perf_counter()
    if db.exists():
        db.unlink()
    stamp = now()
    origin = "bench"
    n_genre_rows = 0
    with Store.open(db) as store:
        conn = store.conn
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-400000")
        with store.transaction():
            # artist_key = position + 1, genre_key = position in `genre_names` + 1 (the store's
            # integer keys; the library reads them back, it never assumes this numbering)
            conn.executemany(
                "INSERT INTO artists(artist_key, artist_id, name, track_count, origin, updated_at) "
                "VALUES (?, ?, ?, NULL, ?, ?)",
                ((k + 1, a, n, origin, stamp) for k, (a, n) in enumerate(zip(artist_ids, names, strict=True))),
            )
            genre_names = sorted(
                {g for gs in genres.spotify for g in gs} | {g for gs in genres.musicbrainz for g in gs}
            )
            genre_key = {g: k + 1 for k, g in enumerate(genre_names)}
            conn.executemany(
                "INSERT INTO genres(genre_key, name) VALUES (?, ?)", [(k, g) for g, k in genre_key.items()]
            )
            conn.executemany(
                "INSERT INTO artist_genre_sources(artist_key, source, origin, fetched_at) VALUES (?, ?, ?, ?)",
                [(k + 1, "spotify", origin, stamp) for k in range(len(artist_ids))]
                + [(k + 1, "musicbrainz", origin, stamp) for k, mb in enumerate(genres.musicbrainz) if mb],
            )
            genre_rows = [
                (k + 1, "spotify", p, genre_key[g], None)
                for k, gs in enumerate(genres.spotify)
                for p, g in enumerate(gs)
            ] + [
                (k + 1, "musicbrainz", p, genre_key[g], 10 - p)
                for k, gs in enumerate(genres.musicbrainz)
                for p, g in enumerate(gs)
            ]
            n_genre_rows = len(genre_rows)
            conn.executemany(
                "INSERT INTO artist_genres(artist_key, source, position, genre_key, votes) VALUES (?, ?, ?, ?, ?)",
                genre_rows,
            )
            del genre_rows
            # rows in primary-key order: the track_id index grows at its end (fast inserts)
            order = sorted(range(n_tracks), key=track_ids.__getitem__)
            conn.executemany(
                """INSERT INTO tracks(track_id, name, artist_key, album, release_date, duration_ms,
                                      preview_url, isrc, popularity, dedupe_key, dedupe_hash, isrc_hash,
                                      origin, added_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    (
                        track_ids[i],
                        titles[i],
                        int(artist_list[i]) + 1,
                        albums[album_idx[i]],
                        dates[i],
                        durations[i],
                        previews[i],
                        isrcs[i],
                        popularity[i],
                        keys[i],
                        stable_hash(keys[i]),
                        stable_hash(isrc) if (isrc := isrcs[i]) else None,
                        origin,
                        stamp,
                    )
                    for i in order
                ),
            )
            conn.executemany(
                "INSERT INTO track_artists(track_id, position, artist_id) VALUES (?, 0, ?)",
                ((track_ids[i], artist_ids[artist_list[i]]) for i in order),
            )
        summary = store.summary()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    timings["write store"] = time.perf_counter() - t3
    raw_distinct = {g for gs in genres.spotify for g in gs} | {g for gs in genres.musicbrainz for g in gs}
    canonical = {normalize_genre(g) for g in raw_distinct}
    return {
        "seconds": time.perf_counter() - t0,
        "timings": timings,
        "tracks": summary.tracks,
        "artists": summary.artists,
        "artists_with_genres": summary.artists_with_genres,
        "artists_without_spotify_genres": sum(1 for gs in genres.spotify if not gs),
        "genre_rows": n_genre_rows,
        "distinct_genres_raw": len(raw_distinct),
        "distinct_subgenres_canonical": len(canonical),
        "duplicate_tracks": n_dup,
        "max_tracks_per_artist": int(counts.max()),
        "artists_without_tracks": int((counts == 0).sum()),
        "db_mb": db.stat().st_size / 2**20,
        "peak_rss_mb": peak_rss_mb_self(),
        "params": {
            "tracks": n_tracks,
            "artists": n_artists,
            "subgenres": n_subgenres,
            "seed": seed,
        },
    }


# --------------------------------------------------------------------------------------------
# phase 3: in-process stages of build_dataset


@contextlib.contextmanager
def patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    """Set `obj.name` (a module global, class attribute or instance attribute), then restore it."""
    own = vars(obj)
    had = name in own
    old = own.get(name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        if had:
            setattr(obj, name, old)
        else:
            delattr(obj, name)


def instrument(timer: StageTimer, stack: contextlib.ExitStack, store: Any | None) -> None:
    """Wrap what build_dataset calls (through the module globals it uses) with timers."""
    from genremap.dataset import balance as balance_mod
    from genremap.dataset import build as build_mod
    from genremap.dataset import labels as labels_mod
    from genremap.engine import CompiledRules

    for module, names in (
        (build_mod, ("label_store", "labelled_tracks", "dedupe", "balance", "write_dataset")),
        (labels_mod, ("label_rows", "normalize_many", "decisions_frame", "resolve")),
        (balance_mod, ("assign_splits",)),
    ):
        for name in names:
            if hasattr(module, name):
                stack.enter_context(patched(module, name, timer.wrap(name, getattr(module, name))))
    build = vars(CompiledRules)["build"].__func__
    stack.enter_context(patched(CompiledRules, "build", classmethod(timer.wrap("CompiledRules.build", build))))
    decide = vars(CompiledRules)["decide_many"]
    stack.enter_context(patched(CompiledRules, "decide_many", timer.wrap("CompiledRules.decide_many", decide)))
    if store is not None:
        for name in ("artists_frame", "genres_frame", "genre_rows", "track_keys", "track_details", "summary"):
            stack.enter_context(patched(store, name, timer.wrap(f"store.{name}", getattr(store, name))))


def run_stages(db: Path, out: Path, rules_dir: Path, seed: int, max_per_artist: int | None) -> dict[str, Any]:
    from genremap.dataset.build import BuildOptions, build_dataset
    from genremap.dataset.labels import choose_policy
    from genremap.engine import load_rules
    from genremap.store import Store

    timer = StageTimer()
    start = time.perf_counter()
    with timer("load_rules"):
        ruleset = load_rules(rules_dir)
    policy = choose_policy(ruleset, None)
    options = BuildOptions(out=out, seed=seed, max_per_artist=max_per_artist, allow_short=True, command="bench")
    with Store.open(db, create=False) as store, contextlib.ExitStack() as stack:
        instrument(timer, stack, store)
        with timer("build_dataset"):
            result = build_dataset(store, ruleset, policy, options, rules_dir)
    return {
        "seconds": time.perf_counter() - start,
        "stages": timer.rows(),
        "labelled_tracks": result.labelled_tracks,
        "dropped_isrc": result.dropped_isrc,
        "dropped_title": result.dropped_title,
        "class_sizes": result.class_sizes,
        "per_class": result.per_class,
        "exported": result.export.manifest.get("counts", {}).get("tracks"),
        "warnings": result.warnings,
        "peak_rss_mb": peak_rss_mb_self(),
    }


# --------------------------------------------------------------------------------------------
# phase 4: mapping alone, genremap vs the naive seed-style loop


def naive_map(tracks: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    """The seed notebook's labelling, done the naive way: substring loops per track.

    First genre of the artist's list that maps wins; a genre maps to the parent of the
    *last* seed keyword it contains (the notebook overwrote `subgenresToGenre` in keyword order).
    """
    out: dict[str, dict[str, str]] = {}
    for track_id, info in tracks.items():
        track_genre = ""
        for subgenre in info["genres"]:
            found = ""
            for keyword in SEED_KEYWORDS:
                if keyword in subgenre:
                    found = SEED_PARENT[keyword]
            if found:
                track_genre = found
                break
        if track_genre:
            out[track_id] = {
                "track_name": info["track_name"],
                "track_artists": info["track_artists"],
                "genre": track_genre,
            }
    return out


def seed_as_written(tracks: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    """The notebook's cells 12-16 as written: map the distinct subgenres, then look up per track."""
    subgenres_dict: dict[str, int] = {}
    for info in tracks.values():
        for subgenre in info["genres"]:
            subgenres_dict[subgenre] = subgenres_dict.setdefault(subgenre, 0) + 1
    genres_to_subgenres: dict[str, list[str]] = {g: [] for g in SEED_KEYWORDS}
    for subgenre in subgenres_dict:
        for genre in SEED_KEYWORDS:
            if genre in subgenre:
                genres_to_subgenres[genre].append(subgenre)
    subgenres_to_genre: dict[str, str] = {}
    for genre, subgenres in genres_to_subgenres.items():
        for subgenre in subgenres:
            subgenres_to_genre[subgenre] = SEED_PARENT[genre]
    out: dict[str, dict[str, str]] = {}
    for track_id, info in tracks.items():
        track_genre = ""
        for subgenre in info["genres"]:
            if subgenres_to_genre.get(subgenre):
                track_genre = subgenres_to_genre[subgenre]
                break
        if track_genre:
            out[track_id] = {
                "track_name": info["track_name"],
                "track_artists": info["track_artists"],
                "genre": track_genre,
            }
    return out


def run_mapping(db: Path, rules_dir: Path, repeat: int, naive_budget: float) -> dict[str, Any]:
    from genremap.dataset.labels import choose_policy, label_frames, track_targets
    from genremap.engine import load_rules
    from genremap.store import Store

    ruleset = load_rules(rules_dir)
    policy = choose_policy(ruleset, None)
    t_load = time.perf_counter()
    with Store.open(db, create=False) as store:
        artists = store.artists_frame()
        genre_table = store.genres_frame()
        rows = store.genre_rows()
        tracks = store.track_keys()
        names = store.tracks_frame(("track_id", "name"))
    load_seconds = time.perf_counter() - t_load
    artist_keys = tracks["artist_key"].to_numpy()

    # genremap: decide the distinct subgenres, label artists, then every track's target.
    runs: list[float] = []
    breakdown: list[dict[str, Any]] = []
    labelled = 0
    distinct = 0
    for _ in range(repeat):
        timer = StageTimer()
        with contextlib.ExitStack() as stack:
            instrument(timer, stack, None)
            start = time.perf_counter()
            with timer("mapping"):
                labelling = label_frames(ruleset, artists, genre_table, rows, policy, "both")
                with timer("track_targets (labels onto every track)"):
                    targets = track_targets(labelling, artist_keys)
            runs.append(time.perf_counter() - start)
        if not breakdown or runs[-1] <= min(runs[:-1]):
            breakdown = timer.rows()
        distinct = len(labelling.decisions)
        labelled = int((targets >= 0).sum())

    # naive: the seed's starting point is a dict of tracks carrying their artist's genre list
    # (the same genres genremap uses: Spotify's, MusicBrainz's where Spotify has none).
    ag = labelling.artist_genres
    genres_of: dict[int, list[str]] = {
        int(cast(int, a)): [str(g) for g in gs] for a, gs in ag.groupby("artist", sort=False)["genre"].agg(list).items()
    }
    artist_of = labelling.artist_of_key[artist_keys]
    name_of = artists["name"].to_numpy(dtype=object)
    name_by_track = dict(zip(names["track_id"], names["name"], strict=True))
    empty: list[str] = []
    track_dict: dict[str, dict[str, Any]] = {
        t: {"track_name": name_by_track[t], "track_artists": name_of[a], "genres": genres_of.get(int(a), empty)}
        for t, a in zip(tracks["track_id"], artist_of, strict=True)
    }
    n = len(track_dict)
    probe_n = min(n, NAIVE_PROBE)
    probe = dict(zip(list(track_dict)[:probe_n], list(track_dict.values())[:probe_n], strict=True))
    start = time.perf_counter()
    naive_map(probe)
    probe_seconds = time.perf_counter() - start
    estimate = probe_seconds * n / probe_n
    naive_runs: list[float] = []
    if estimate <= naive_budget:
        for _ in range(repeat):
            start = time.perf_counter()
            naive_result = naive_map(track_dict)
            naive_runs.append(time.perf_counter() - start)
        naive_seconds = min(naive_runs)
        naive_measured_on = n
    else:
        naive_result = naive_map(probe)
        naive_seconds = estimate
        naive_measured_on = probe_n
    written_runs: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        written = seed_as_written(track_dict if naive_measured_on == n else probe)
        written_runs.append(time.perf_counter() - start)
    written_seconds = min(written_runs)
    if naive_measured_on != n:
        written_seconds *= n / probe_n
    if written != naive_result:
        raise RuntimeError("naive per-track loop and the seed-as-written variant disagree")
    best = min(runs)
    return {
        "load_seconds": load_seconds,
        "genremap_seconds": best,
        "genremap_runs": runs,
        "genremap_breakdown": breakdown,
        "genremap_labelled_tracks": labelled,
        "distinct_subgenres_decided": distinct,
        "naive_seconds": naive_seconds,
        "naive_runs": naive_runs,
        "naive_measured_on": naive_measured_on,
        "naive_probe_seconds": probe_seconds,
        "naive_labelled_tracks": len(naive_result),
        "seed_as_written_seconds": written_seconds,
        "tracks": n,
        "ratio": naive_seconds / best if best else float("inf"),
        "ratio_seed_as_written": written_seconds / best if best else float("inf"),
        "peak_rss_mb": peak_rss_mb_self(),
    }


# --------------------------------------------------------------------------------------------
# orchestration


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    verdicts: list[tuple[str, bool, str]] = field(default_factory=list)

    def target(self, name: str, ok: bool, detail: str) -> None:
        self.verdicts.append((name, ok, detail))


def child(phase: str, args: argparse.Namespace, result: Path, extra: Sequence[str] = ()) -> list[str]:
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--phase",
        phase,
        "--result",
        str(result),
        "--tracks",
        str(args.tracks),
        "--artists",
        str(args.artists),
        "--subgenres",
        str(args.subgenres),
        "--seed",
        str(args.seed),
        "--workdir",
        str(args.workdir),
        "--rules",
        str(args.rules),
        "--repeat",
        str(args.repeat),
        "--naive-budget",
        str(args.naive_budget),
        *extra,
    ]


def run_phase(name: str, cmd: Sequence[str], result: Path, log: Path) -> tuple[dict[str, Any], ChildRun]:
    run = run_child(cmd, log)
    if run.returncode != 0 or not result.exists():
        sys.stderr.write(log.read_text(encoding="utf-8", errors="replace")[-4000:])
        raise SystemExit(f"phase '{name}' failed (exit {run.returncode}); log: {log}")
    data: dict[str, Any] = json.loads(result.read_text(encoding="utf-8"))
    return data, run


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        mem = f"{kb / 2**20:.1f} GiB"
    return {
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "memory": mem,
        "python": platform.python_version(),
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "sqlite": __import__("sqlite3").sqlite_version,
        "platform": platform.platform(),
    }


def load() -> str:
    """The 1/5/15-minute load averages, to judge timing noise."""
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def orchestrate(args: argparse.Namespace) -> int:
    workdir: Path = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "bench.db"
    meta_path = workdir / "generate.json"
    params = {
        "tracks": args.tracks,
        "artists": args.artists,
        "subgenres": args.subgenres,
        "seed": args.seed,
    }
    info = machine()
    print(
        f"genremap build benchmark  ({info['cpus']} CPUs, {info['cpu']}, {info['memory']}; "
        f"Python {info['python']}, pandas {info['pandas']}, numpy {info['numpy']}, "
        f"SQLite {info['sqlite']})"
    )
    # Every phase reads one frozen copy of the rules, even if someone edits them meanwhile.
    snapshot = workdir / "rules"
    if args.rules != snapshot:
        shutil.rmtree(snapshot, ignore_errors=True)
        shutil.copytree(args.rules, snapshot)
    rules_files = sorted(f for f in snapshot.iterdir() if f.suffix in (".yaml", ".yml"))
    digest = hashlib.sha256(b"".join(f.name.encode() + f.read_bytes() for f in rules_files))
    print(
        f"workdir {workdir}   rules {args.rules} ({len(rules_files)} files, "
        f"sha256 {digest.hexdigest()[:12]}, frozen copy in {snapshot})   repeat {args.repeat}"
    )
    print(f"load average at start: {load()} (other jobs on the machine make timings noisy)")
    args.rules = snapshot
    results: dict[str, Any] = {
        "machine": info,
        "params": params,
        "command": " ".join(sys.argv),
        "rules_sha256": digest.hexdigest(),
        "rules_files": [f.name for f in rules_files],
        "load_start": load(),
    }

    reuse = args.reuse and db.exists() and meta_path.exists()
    if reuse:
        gen = json.loads(meta_path.read_text(encoding="utf-8"))
        if gen.get("params") != params:
            print("  existing store was generated with other parameters: regenerating")
            reuse = False
    if reuse:
        print(f"\n[1/4] generate: reusing {db} ({gen['tracks']:,} tracks)")
    else:
        print(f"\n[1/4] generate {args.tracks:,} tracks, {args.artists:,} artists, {args.subgenres:,}+ subgenres ...")
        gen, run = run_phase("generate", child("generate", args, meta_path), meta_path, workdir / "generate.log")
        gen["peak_rss_mb"] = run.peak_rss_mb
        meta_path.write_text(json.dumps(gen, indent=2), encoding="utf-8")
        print(
            f"  generated in {gen['seconds']:.1f} s (not part of the build timings): "
            + ", ".join(f"{k} {v:.1f} s" for k, v in gen["timings"].items())
        )
    print(
        f"  store: {gen['tracks']:,} tracks, {gen['artists']:,} artists "
        f"({gen['artists_with_genres']:,} with genres, "
        f"{gen['artists_without_spotify_genres']:,} without Spotify genres), "
        f"{gen['genre_rows']:,} genre rows, {gen['distinct_genres_raw']:,} distinct genre names "
        f"({gen['distinct_subgenres_canonical']:,} canonical), "
        f"{gen['duplicate_tracks']:,} duplicate recordings, "
        f"max {gen['max_tracks_per_artist']:,} tracks/artist, {gen['db_mb']:.0f} MB"
    )
    results["generate"] = gen

    # 2. build end to end, as a user runs it
    print("\n[2/4] `python -m genremap build` end to end (wall time, peak RSS of the child)")
    startup = run_child([sys.executable, "-c", "import genremap.cli"], workdir / "import.log")
    print(
        f"  interpreter start + `import genremap.cli`: {startup.seconds:.2f} s wall, "
        f"{startup.cpu_seconds:.2f} s CPU (included below)"
    )
    builds: dict[str, dict[str, Any]] = {}
    for label, extra in (("build", []), ("build --max-per-artist 50", ["--max-per-artist", "50"])):
        walls: list[float] = []
        cpus: list[float] = []
        peaks: list[float] = []
        for i in range(args.repeat):
            out = workdir / f"dataset-{len(builds)}-{i}"
            shutil.rmtree(out, ignore_errors=True)
            cmd = [
                sys.executable,
                "-m",
                "genremap",
                "build",
                "--db",
                str(db),
                "--out",
                str(out),
                "--seed",
                "1",
                "--rules",
                str(args.rules),
                "--allow-short",
                *extra,
            ]
            before = load()
            run = run_child(cmd, workdir / f"build-{len(builds)}-{i}.log", cwd=workdir)
            if run.returncode != 0:
                sys.stderr.write(run.log.read_text(encoding="utf-8", errors="replace")[-4000:])
                raise SystemExit(f"`genremap {label}` failed (exit {run.returncode}); log: {run.log}")
            walls.append(run.seconds)
            cpus.append(run.cpu_seconds)
            peaks.append(run.peak_rss_mb)
            print(
                f"  {label:<28} run {i + 1}: {run.seconds:6.2f} s wall, {run.cpu_seconds:6.2f} s CPU, "
                f"peak RSS {run.peak_rss_mb:5.0f} MB   (load before: {before})"
            )
        manifest = json.loads((workdir / f"dataset-{len(builds)}-0" / "manifest.json").read_text(encoding="utf-8"))
        builds[label] = {
            "runs": walls,
            "median": statistics.median(walls),
            "best": min(walls),
            "cpu_runs": cpus,
            "cpu_median": statistics.median(cpus),
            "peak_rss_mb": max(peaks),
            "exported": manifest["counts"]["tracks"],
            "labelled": manifest["labelled_tracks"],
            "per_class": manifest["per_class"],
            "command": " ".join(cmd[1:]),
        }
        print(
            f"  {'':<28} → {manifest['labelled_tracks']:,} labelled tracks, "
            f"{manifest['counts']['tracks']:,} exported ({manifest['per_class']:,} per class)"
        )
    results["build"] = builds
    results["startup_seconds"] = startup.seconds

    # 3. in-process stages
    print("\n[3/4] build_dataset in-process, stage by stage (default options)")
    stages_path = workdir / "stages.json"
    stages, run = run_phase("stages", child("stages", args, stages_path), stages_path, workdir / "stages.log")
    stages["peak_rss_mb_child"] = run.peak_rss_mb
    print_stage_rows(stages["stages"])
    print(
        f"  in-process total {stages['seconds']:.2f} s, peak RSS {stages['peak_rss_mb']:.0f} MB "
        f"(labelled {stages['labelled_tracks']:,}, duplicates dropped "
        f"{stages['dropped_isrc']:,} by ISRC + "
        f"{stages['dropped_title']:,} by title)"
    )
    results["stages"] = stages

    # 4. mapping alone vs naive
    print("\n[4/4] mapping alone: genremap vs the naive seed-style loop (same in-memory data)")
    mapping_path = workdir / "mapping.json"
    mapping, run = run_phase("mapping", child("mapping", args, mapping_path), mapping_path, workdir / "mapping.log")
    mapping["peak_rss_mb_child"] = run.peak_rss_mb
    print(f"  (store → frames, untimed: {mapping['load_seconds']:.2f} s)")
    print(
        f"  genremap mapping ({mapping['distinct_subgenres_decided']:,} distinct subgenres "
        f"decided, "
        f"{mapping['genremap_labelled_tracks']:,} tracks labelled): "
        f"best {mapping['genremap_seconds']:.2f} s "
        f"of {', '.join(f'{s:.2f}' for s in mapping['genremap_runs'])}"
    )
    print_stage_rows(mapping["genremap_breakdown"])
    scope = (
        f"on all {mapping['tracks']:,} tracks"
        if mapping["naive_measured_on"] == mapping["tracks"]
        else f"EXTRAPOLATED linearly from {mapping['naive_measured_on']:,} of {mapping['tracks']:,} tracks"
    )
    print(
        f"  naive per-track substring loop: {mapping['naive_seconds']:.2f} s ({scope}; "
        f"{mapping['naive_labelled_tracks']:,} tracks labelled)"
    )
    print(
        f"  seed notebook as written (distinct-subgenre map + per-track lookup): "
        f"{mapping['seed_as_written_seconds']:.2f} s"
    )
    print(
        f"  ratio naive / genremap: {mapping['ratio']:.1f}x   "
        f"(seed-as-written / genremap: {mapping['ratio_seed_as_written']:.1f}x)"
    )
    decide = [r["seconds"] for r in mapping["genremap_breakdown"] if r["name"].endswith("decide_many")]
    if decide and decide[0] > 0:
        mapping["ratio_decide_only"] = mapping["naive_seconds"] / decide[0]
        print(
            f"  for context, not the target: the rule decisions alone (decide_many, "
            f"{decide[0]:.2f} s) are {mapping['ratio_decide_only']:.1f}x faster than the naive loop"
        )
    results["mapping"] = mapping
    results["load_end"] = load()
    print(f"\nload average at end: {results['load_end']}")

    # targets
    build_main = builds["build"]
    build_cap = builds["build --max-per-artist 50"]
    peak = max(b["peak_rss_mb"] for b in builds.values())
    checks = [
        (
            f"full build <= {BUILD_TARGET_S:.0f} s (median wall, default options)",
            build_main["median"] <= BUILD_TARGET_S,
            f"{build_main['median']:.2f} s wall ({build_main['cpu_median']:.2f} s CPU)",
        ),
        (
            f"full build <= {BUILD_TARGET_S:.0f} s (median wall, --max-per-artist 50)",
            build_cap["median"] <= BUILD_TARGET_S,
            f"{build_cap['median']:.2f} s wall ({build_cap['cpu_median']:.2f} s CPU)",
        ),
        (
            f"mapping >= {MAPPING_TARGET_RATIO:.0f}x faster than the naive baseline",
            mapping["ratio"] >= MAPPING_TARGET_RATIO,
            f"{mapping['ratio']:.1f}x",
        ),
        (
            f"peak memory <= {MEMORY_TARGET_MB / 1024:.0f} GB (build child, max of runs)",
            peak <= MEMORY_TARGET_MB,
            f"{peak:.0f} MB",
        ),
    ]
    print("\ntargets")
    for name, ok, value in checks:
        print(f"  {verdict(ok)}  {name}: {value}")
    results["targets"] = [{"target": n, "pass": ok, "value": v} for n, ok, v in checks]
    (workdir / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    if getattr(args, "temporary", False) and not args.keep:
        print("\n(temporary workdir removed; pass --keep, --json FILE or --workdir DIR to keep the results)")
    else:
        print(f"\nresults: {workdir / 'results.json'}")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    from genremap.engine import default_rules_dir

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=1_000_000)
    parser.add_argument("--artists", type=int, default=100_000)
    parser.add_argument("--subgenres", type=int, default=5_000, help="distinct genre names to generate (at least)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="folder for the store and datasets (default: a temp dir)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the workdir (a temp workdir is removed otherwise)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse the store in --workdir if generated with the same parameters",
    )
    parser.add_argument(
        "--rules",
        type=Path,
        default=default_rules_dir(),
        help="rules folder (default: the packaged rules)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="timed runs of each build and of the mapping")
    parser.add_argument(
        "--naive-budget",
        type=float,
        default=180.0,
        help="seconds the full naive run may take; beyond, it is timed on a subset and extrapolated",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this file")
    parser.add_argument("--phase", choices=("generate", "stages", "mapping"), help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--max-per-artist", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.tracks, args.artists, args.subgenres, args.repeat) < 1:
        parser.error("--tracks, --artists, --subgenres and --repeat must be positive")
    args.rules = args.rules.resolve()
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.phase is not None:
        db = args.workdir / "bench.db"
        if args.phase == "generate":
            data = generate_store(db, args.tracks, args.artists, args.subgenres, args.seed)
        elif args.phase == "stages":
            data = run_stages(db, args.workdir / "dataset-stages", args.rules, 1, args.max_per_artist)
        else:
            data = run_mapping(db, args.rules, args.repeat, args.naive_budget)
        args.result.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
        return 0
    temporary = args.workdir is None
    args.temporary = temporary
    if temporary:
        args.workdir = Path(tempfile.mkdtemp(prefix="genremap-bench-"))
    args.workdir = args.workdir.resolve()
    try:
        return orchestrate(args)
    finally:
        if temporary and not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
