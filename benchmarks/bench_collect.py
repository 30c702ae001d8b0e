"""Requests per labelled track: genremap's collector vs the original notebook vs the minimum.

    python benchmarks/bench_collect.py                  # both API modes, a 2,000-artist catalog
    python benchmarks/bench_collect.py --artists 500    # quicker

Runs against the loopback fake of the Spotify Web API used by the tests (tests/fakes/spotify.py),
so it needs no credentials and no network. For each mode (development: 10 results per search
page, no batch artists; extended quota: 50, batch artists) it counts the requests of:

- genremap: `SpotifyCollector` (detects the mode, stops each term at its last page, fetches
  each distinct primary artist once, 50 per request where the batch endpoint works);
- the notebook: its loop as written, `for offset in range(0, 2000, 50)` per term with the
  page size the app allows, stopped at the API's offset cap of 1000, and one artist request
  per returned track (no cache);
- the theoretical minimum for a client that already knows the mode: one token, every page
  that holds results, and one request per distinct primary artist (per 50 in batch mode).

A track is labelled when the default rules give its primary artist a target. Target: genremap
within 2% of the minimum.

Then MusicBrainz enrichment of the same artists (none with Spotify genres, as a development-mode
app gets them) against the loopback fake of MusicBrainz (tests/fakes/musicbrainz.py): 90% of
them known to MusicBrainz with genres among free-form tags, a tenth of those with no tag at all.
It prints requests per artist (target: about 1; the one-search-plus-one-lookup approach needs
1 + the matched share).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
import spotipy  # noqa: E402
from fakes.musicbrainz import FakeMusicBrainz, entry  # noqa: E402
from fakes.spotify import Catalog, FakeSpotify  # noqa: E402
from spotipy.cache_handler import MemoryCacheHandler  # noqa: E402
from spotipy.oauth2 import SpotifyClientCredentials  # noqa: E402

from genremap.collectors.musicbrainz import enrich_musicbrainz  # noqa: E402
from genremap.collectors.spotify import CollectConfig, SpotifyCollector  # noqa: E402
from genremap.dataset.labels import label_store, track_targets  # noqa: E402
from genremap.engine import default_rules_dir, load_rules  # noqa: E402
from genremap.http import Retrying, RetryPolicy  # noqa: E402
from genremap.store import ArtistRecord, Store  # noqa: E402
from genremap.vocabulary import musicbrainz_genres  # noqa: E402

TERMS = ["rock", "pop", "jazz", "hip hop", "metal", "country", "blues", "house", "classical", "love", "night"]
LIMITS = {"development": 10, "extended": 50}


def genremap_requests(fake: FakeSpotify, db: Path) -> tuple[int, int, float]:
    """Requests genremap sends, labelled tracks it ends with, seconds taken."""
    started = time.perf_counter()
    with Store.open(db) as store:
        retrying = Retrying("Spotify", RetryPolicy())
        SpotifyCollector(
            store, fake.client_id, fake.client_secret, CollectConfig(terms=TERMS), retrying,
            api_base=fake.api_base, auth_url=fake.auth_url,
        ).run()  # fmt: skip
        labelling = label_store(store, load_rules(default_rules_dir()))
        keys = store.track_keys()["artist_key"].to_numpy()
        labelled = int((track_targets(labelling, keys) >= 0).sum())
    return sum(fake.requests.values()), labelled, time.perf_counter() - started


def notebook_requests(fake: FakeSpotify, limit: int) -> int:
    """The notebook's loop: fixed offsets up to 2000 (cut at the API's cap) and an artist request per track."""
    auth = SpotifyClientCredentials(fake.client_id, fake.client_secret, cache_handler=MemoryCacheHandler())
    auth.OAUTH_TOKEN_URL = fake.auth_url
    sp = spotipy.Spotify(auth_manager=auth, requests_session=requests.Session(), retries=0, status_retries=0)
    sp.prefix = fake.api_base
    before = sum(fake.requests.values())
    for term in TERMS:
        for offset in range(0, 2000, limit):
            if offset + limit > 1000:
                break  # the notebook would crash here today (400 Invalid offset)
            page = sp.search(term, limit=limit, type="track", offset=offset)
            for track in page["tracks"]["items"]:
                sp.artist(track["artists"][0]["external_urls"]["spotify"].rsplit("/", 1)[-1])
    return sum(fake.requests.values()) - before


def minimum_requests(catalog: Catalog, mode: str) -> int:
    limit = LIMITS[mode]
    pages = sum(math.ceil(min(len(catalog.search(t)), 1000) / limit) for t in TERMS)
    artists = {catalog.primary_artist(t)["id"] for t in catalog.expected(TERMS)}
    artist_requests = math.ceil(len(artists) / 50) if mode == "extended" else len(artists)
    return 1 + pages + artist_requests


def enrichment_requests(catalog: Catalog, db: Path) -> tuple[int, int, int, int]:
    """(artists, matched, requests, lookups) of a MusicBrainz enrichment of the catalog's artists."""
    genres = musicbrainz_genres()
    names = [a["name"] for a in catalog.artists.values()]
    mb: dict[str, dict[str, object]] = {}
    for i, name in enumerate(names):
        if i % 10 == 9:
            continue  # not on MusicBrainz
        tagged = i % 10 != 4
        votes = [(genres[(i * 7) % len(genres)], 1 + i % 9), (genres[(i * 13) % len(genres)], 1)] if tagged else []
        key, record = entry(name, votes, key=f"bench:{i}", tags=[("seen live", 2)] if tagged else [])
        mb[key] = record
    with Store.open(db) as store, FakeMusicBrainz(mb) as fake:
        store.upsert_artists([ArtistRecord(f"b{i}", n, genres=()) for i, n in enumerate(names)], origin="bench")
        result = enrich_musicbrainz(store, api=fake.api, min_interval=0.0, retrying=Retrying("MusicBrainz"))
        return len(names), result.matched, fake.total_requests, fake.requests["lookup"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artists", type=int, default=2000, help="catalog size (artists)")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(argv)
    catalog = Catalog(n_artists=args.artists, seed=args.seed)
    print(f"catalog: {len(catalog.artists):,} artists, {len(catalog.tracks):,} tracks; terms: {', '.join(TERMS)}")
    print(f"{'mode':<12} {'approach':<10} {'requests':>9} {'labelled':>9} {'req/track':>10} {'vs min':>8}")
    for mode in ("development", "extended"):
        with tempfile.TemporaryDirectory() as tmp, FakeSpotify(catalog, mode=mode) as fake:
            ours, labelled, seconds = genremap_requests(fake, Path(tmp) / "bench.db")
            fake.requests.clear()
            naive = notebook_requests(fake, LIMITS[mode])
        minimum = minimum_requests(catalog, mode)
        for name, count in (("genremap", ours), ("notebook", naive), ("minimum", minimum)):
            print(
                f"{mode:<12} {name:<10} {count:>9,} {labelled:>9,} {count / max(labelled, 1):>10.3f} "
                f"{count / minimum - 1:>+8.1%}"
            )
        within = ours <= minimum * 1.02
        print(f"{'':<12} {'':<10} genremap took {seconds:.1f} s; {'PASS' if within else 'MISS'} (within 2% of minimum)")
    with tempfile.TemporaryDirectory() as tmp:
        artists, matched, sent, lookups = enrichment_requests(catalog, Path(tmp) / "enrich.db")
    print(
        f"enrichment (MusicBrainz): {artists:,} artists, {matched:,} matched, {sent:,} requests "
        f"({lookups:,} lookups): {sent / max(artists, 1):.3f} requests per artist "
        f"(search + lookup per match: {(artists + matched) / max(artists, 1):.3f})"
    )
    return 0  # a missed target is reported above, not an error


if __name__ == "__main__":
    sys.exit(main())
