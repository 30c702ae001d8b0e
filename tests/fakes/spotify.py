"""A fake Spotify Web API (its 2026 state) served on loopback, for tests that must not touch the network.

    catalog = Catalog(n_artists=300, seed=1)
    with FakeSpotify(catalog, mode="development", faults=Faults(script={("search", 2): "429"})) as fake:
        sp = spotipy.Spotify(auth_manager=..., requests_session=requests.Session(), retries=0, status_retries=0)
        sp.prefix = fake.api_base
        sp.auth_manager.OAUTH_TOKEN_URL = fake.auth_url
        ...
        assert fake.requests["search"] == 3

What it imitates:

* ``POST /api/token`` (client credentials, HTTP Basic or form credentials);
* ``GET /v1/search?q=...&type=track`` with the development-mode limit (1..10) or the extended-quota limit (1..50),
  the ``offset + limit <= 1000`` window, ``next``/``previous`` links and totals that may exceed 1000;
* ``GET /v1/artists/{id}``, ``GET /v1/artists?ids=`` (removed for development-mode apps: 403 or 404),
  ``GET /v1/tracks/{id}`` (so a track's ``href`` can be followed);
* ``GET /v1/audio-features[?ids=|/{id}]`` and ``GET /v1/audio-analysis/{id}`` (403 in development mode);
* ``GET /mp3-preview/{hash}``: the preview clips that ``preview_url`` points at (no token needed, like p.scdn.co).

Objects carry ``popularity``, ``external_ids`` and ``followers`` only in extended mode. With ``artist_genres=False``
(what every development-mode app gets since 2026) artist objects carry exactly ``external_urls, href, id, images,
name, type, uri``: no ``genres`` key at all. ``href`` values point back at
the fake (``api_base``), ``external_urls`` keep their open.spotify.com form, as on the real service.

Faults (429 with Retry-After, 5xx, slow answers, truncated JSON, dropped connections, expired tokens) are drawn per
request from a seeded RNG or forced on the n-th request to an endpoint with ``Faults.script``.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import hashlib
import json
import random
import re
import secrets
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import accumulate
from pathlib import Path
from types import TracebackType
from typing import Any, cast
from urllib.parse import parse_qs, urlencode, urlsplit

import genremap
from fakes.loopback import trickle
from genremap import synthetic

STATS_PATH = Path(genremap.__file__).resolve().parent / "data" / "sample_stats.json"
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
REAL_API = "https://api.spotify.com/v1/"
REAL_PREVIEWS = "https://p.scdn.co/"
SEARCH_WINDOW = 1000  # the API serves only the first 1000 results of a query
MAX_LIMIT = {"development": 10, "extended": 50}
DEFAULT_LIMIT = {"development": 10, "extended": 20}
MAX_ARTIST_IDS = 50
MAX_FEATURE_IDS = 100
ARTIST_KEYS_2026 = ("external_urls", "href", "id", "images", "name", "type", "uri")  # development mode, no genres
ENDPOINTS = ("token", "search", "artist", "artists", "track", "audio-features", "audio-analysis", "preview", "unknown")
KINDS = ("429", "500", "502", "503", "slow", "malformed", "drop", "401", "trickle")

_ID = re.compile(r"^[0-9A-Za-z]{22}$")
_WORD = re.compile(r"[^\W_]+")
_TERM = re.compile(r'(?:([A-Za-z]+):)?(?:"([^"]*)"?|(\S+))')
_MARKET = re.compile(r"^[A-Z]{2}$")
SEARCH_FIELDS = ("genre", "artist", "track", "year")

# Name material: genremap.synthetic's lists (genre words such as "Blues" or "Soul" appear in titles on purpose, as
# they do for real), plus a few non-ASCII names.
FIRST = (*synthetic.FIRST, "Björk", "Zoë")
LAST = (*synthetic.LAST, "Müller", "Ångström")
REMASTER_SUFFIXES = (" - Remastered 2011", " - 2009 Remaster", " - Remastered", " - 2015 Remaster")


def tokens(text: str) -> list[str]:
    """The search tokens of `text`: runs of letters and digits, case-folded (so "Hip-Hop" → ["hip", "hop"])."""
    return _WORD.findall(text.casefold())


def _new_id(rng: random.Random, taken: set[str]) -> str:
    while True:
        value = "".join(rng.choice(BASE62) for _ in range(22))
        if value not in taken:
            taken.add(value)
            return value


def _simplified_artist(artist_id: str, name: str) -> dict[str, Any]:
    return {
        "external_urls": {"spotify": f"https://open.spotify.com/artist/{artist_id}"},
        "href": f"{REAL_API}artists/{artist_id}",
        "id": artist_id,
        "name": name,
        "type": "artist",
        "uri": f"spotify:artist:{artist_id}",
    }


@dataclass(frozen=True)
class _Query:
    words: frozenset[str]
    fields: tuple[tuple[str, frozenset[str]], ...]
    years: tuple[int, int] | None
    impossible: bool = False


def parse_query(term: str) -> _Query:
    """Parse a search term: plain words, and the field filters ``genre:``, ``artist:``, ``track:`` (a word or a
    quoted phrase) and ``year:YYYY`` / ``year:YYYY-YYYY``. Unknown fields count as plain words."""
    words: set[str] = set()
    fields: list[tuple[str, frozenset[str]]] = []
    years: tuple[int, int] | None = None
    impossible = False
    for match in _TERM.finditer(term):
        name, quoted, bare = match.group(1), match.group(2), match.group(3)
        value = quoted if quoted is not None else (bare or "")
        key = name.lower() if name else None
        if key == "year":
            found = re.fullmatch(r"\s*(\d{4})\s*(?:-\s*(\d{4})\s*)?", value)
            if found:
                low = int(found.group(1))
                years = (low, int(found.group(2) or low))
            else:
                impossible = True
        elif key in SEARCH_FIELDS:
            phrase = frozenset(tokens(value))
            if phrase:
                fields.append((key, phrase))
                words.update(phrase)
        else:
            words.update(tokens(match.group(0)))
    return _Query(frozenset(words), tuple(fields), years, impossible)


class _GenrePicker:
    """Coherent genre lists with the corpus's frequencies: a seed genre plus genres that co-occur with it."""

    def __init__(self, stats: dict[str, Any]) -> None:
        genres: dict[str, int] = stats["genres"]
        self.names = list(genres)
        self.cum = list(accumulate(genres[name] for name in self.names))
        self.cooccurs: dict[str, list[tuple[str, int]]] = {
            name: [(str(other), int(count)) for other, count in pairs] for name, pairs in stats["cooccurs"].items()
        }
        lengths = sorted((int(k), int(v)) for k, v in stats["genre_list_lengths"].items())
        self.lengths = [k for k, _ in lengths]
        self.length_cum = list(accumulate(v for _, v in lengths))

    def pick(self, rng: random.Random) -> list[str]:
        length = rng.choices(self.lengths, cum_weights=self.length_cum)[0]
        if not length:
            return []
        chosen = [rng.choices(self.names, cum_weights=self.cum)[0]]
        neighbours = dict(self.cooccurs.get(chosen[0], []))
        while len(chosen) < length:
            pool = [(g, n) for g, n in neighbours.items() if g not in chosen]
            if pool:
                pick = rng.choices([g for g, _ in pool], weights=[n for _, n in pool])[0]
                for other, count in self.cooccurs.get(pick, []):  # widen with the new genre's neighbours
                    neighbours[other] = neighbours.get(other, 0) + max(1, count // 2)
            else:
                pick = rng.choices(self.names, cum_weights=self.cum)[0]
            if pick not in chosen:
                chosen.append(pick)
        return sorted(chosen)  # Spotify lists an artist's genres alphabetically


class Catalog:
    """A deterministic catalog: artists with real Spotify genre names (frequency-weighted, coherent lists, about a
    quarter with none) and their tracks, generated from genremap/data/sample_stats.json. Track and artist ids are
    22-character base62 strings from a seeded RNG; the same arguments always give the same catalog.

    Some tracks have several artists (features: ``(feat. X)`` in the name, X among the track's artists), about 10%
    have a ``preview_url``, and some recordings appear twice (a remaster: another track id, album and name suffix,
    the same ISRC). With ``n_artists >= 2000`` broad words such as ``pop`` and ``rock`` match over 1000 tracks.
    """

    tracks: dict[str, dict[str, Any]]
    artists: dict[str, dict[str, Any]]

    def __init__(self, n_artists: int = 300, tracks_per_artist: tuple[int, int] = (1, 12), seed: int = 0) -> None:
        low, high = tracks_per_artist
        if n_artists < 1 or low < 1 or high < low:
            raise ValueError("need n_artists >= 1 and 1 <= tracks_per_artist[0] <= tracks_per_artist[1]")
        self.seed = seed
        self.tracks = {}
        self.artists = {}
        self.artist_tracks: dict[str, list[str]] = {}
        """Artist id → ids of the tracks it is the primary (first) artist of."""
        self._lock = threading.Lock()
        self._index: dict[str, set[str]] | None = None
        self._search_cache: dict[str, list[str]] = {}
        self._previews: dict[str, str] = {}
        self._rank: dict[str, int] = {}
        self._fields: dict[str, dict[str, list[frozenset[str]]]] = {}
        self._years: dict[str, int] = {}
        self._generate(json.loads(STATS_PATH.read_text(encoding="utf-8")), n_artists, low, high)

    # -- generation ----------------------------------------------------------------------------------------------

    def _generate(self, stats: dict[str, Any], n_artists: int, low: int, high: int) -> None:
        rng = random.Random(self.seed)
        picker = _GenrePicker(stats)
        taken: set[str] = set()
        names: set[str] = set()
        for _ in range(n_artists):
            artist_id = _new_id(rng, taken)
            name = synthetic.artist_name(rng, names, FIRST, LAST)
            popularity = min(100, int(rng.betavariate(2, 4) * 100))
            followers = int(10 ** (popularity / 20) * rng.uniform(0.5, 5))
            self.artists[artist_id] = {
                "external_urls": {"spotify": f"https://open.spotify.com/artist/{artist_id}"},
                "followers": {"href": None, "total": followers},
                "genres": picker.pick(rng),
                "href": f"{REAL_API}artists/{artist_id}",
                "id": artist_id,
                "images": [],
                "name": name,
                "popularity": popularity,
                "type": "artist",
                "uri": f"spotify:artist:{artist_id}",
            }
            self.artist_tracks[artist_id] = []
        artist_ids = list(self.artists)
        for artist_id in artist_ids:
            self._make_tracks(rng, taken, artist_id, artist_ids, rng.randint(low, high))

    def _album(self, rng: random.Random, taken: set[str], artist: dict[str, Any], name: str, kind: str) -> dict:
        album_id = _new_id(rng, taken)
        year = rng.randint(1955, 2025)
        precision = rng.choices(["day", "month", "year"], weights=[80, 5, 15])[0]
        date = {
            "day": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "month": f"{year}-{rng.randint(1, 12):02d}",
        }
        return {
            "album_type": kind,
            "artists": [_simplified_artist(artist["id"], artist["name"])],
            "external_urls": {"spotify": f"https://open.spotify.com/album/{album_id}"},
            "href": f"{REAL_API}albums/{album_id}",
            "id": album_id,
            "images": [],
            "name": name,
            "release_date": date.get(precision, str(year)),
            "release_date_precision": precision,
            "total_tracks": 0,
            "type": "album",
            "uri": f"spotify:album:{album_id}",
        }

    def _make_tracks(
        self, rng: random.Random, taken: set[str], artist_id: str, artist_ids: list[str], count: int
    ) -> None:
        artist = self.artists[artist_id]
        albums = [
            self._album(rng, taken, artist, f"{rng.choice(synthetic.WORDS)} {rng.choice(synthetic.TITLE_A)}", kind)
            for kind in rng.choices(["album", "single", "compilation"], weights=[6, 3, 1], k=max(1, count // 4))
        ]
        titles: set[str] = set()
        for _ in range(count):
            title = synthetic.track_title(rng, titles)
            artists = [artist]
            if len(artist_ids) > 1 and rng.random() < 0.15:  # a feature
                others = [a for a in rng.sample(artist_ids, min(3, len(artist_ids))) if a != artist_id]
                artists += [self.artists[a] for a in others[: rng.choice([1, 1, 2])]]
                title = f"{title} (feat. {' & '.join(a['name'] for a in artists[1:])})"
            album = rng.choice(albums)
            album["total_tracks"] += 1
            track_id = _new_id(rng, taken)
            isrc = f"{rng.choice(['US', 'GB', 'DE', 'SE', 'FR'])}{''.join(rng.choices(BASE62[:36], k=3))}"
            isrc += f"{rng.randint(0, 99):02d}{rng.randint(0, 99999):05d}"
            short = rng.random() < 0.08  # interludes and intros
            duration = rng.randint(20_000, 90_000) if short else rng.randint(120_000, 420_000)
            track = {
                "album": album,
                "artists": [_simplified_artist(a["id"], a["name"]) for a in artists],
                "disc_number": 1,
                "duration_ms": duration,
                "explicit": rng.random() < 0.15,
                "external_ids": {"isrc": isrc.upper()},
                "external_urls": {"spotify": f"https://open.spotify.com/track/{track_id}"},
                "href": f"{REAL_API}tracks/{track_id}",
                "id": track_id,
                "is_local": False,
                "name": title,
                "popularity": max(0, min(100, artist["popularity"] + rng.randint(-25, 15))),
                "preview_url": None,
                "track_number": album["total_tracks"],
                "type": "track",
                "uri": f"spotify:track:{track_id}",
            }
            if rng.random() < 0.1:
                digest = f"{rng.getrandbits(160):040x}"
                track["preview_url"] = f"{REAL_PREVIEWS}mp3-preview/{digest}?cid=fake"
                self._previews[digest] = track_id
            self.tracks[track_id] = track
            self.artist_tracks[artist_id].append(track_id)
            if rng.random() < 0.04:  # the same recording re-released: same ISRC, new id, album and name
                self._remaster(rng, taken, artist, track)

    def _remaster(self, rng: random.Random, taken: set[str], artist: dict[str, Any], original: dict) -> None:
        album = self._album(rng, taken, artist, f"{original['album']['name']} (Remastered)", "album")
        album["release_date"] = f"{rng.randint(2005, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        album["release_date_precision"] = "day"
        album["total_tracks"] = 1
        track_id = _new_id(rng, taken)
        twin = dict(original)
        twin.update(
            album=album,
            external_ids=dict(original["external_ids"]),
            external_urls={"spotify": f"https://open.spotify.com/track/{track_id}"},
            href=f"{REAL_API}tracks/{track_id}",
            id=track_id,
            name=original["name"] + rng.choice(REMASTER_SUFFIXES),
            popularity=max(0, original["popularity"] - rng.randint(0, 20)),
            preview_url=None,
            track_number=1,
            uri=f"spotify:track:{track_id}",
        )
        self.tracks[track_id] = twin
        self.artist_tracks[artist["id"]].append(track_id)

    # -- search --------------------------------------------------------------------------------------------------

    def _ensure_index(self) -> dict[str, set[str]]:
        with self._lock:
            if self._index is None:
                order = sorted(self.tracks, key=lambda t: (-self.tracks[t]["popularity"], t))
                self._rank = {track_id: i for i, track_id in enumerate(order)}
                index: dict[str, set[str]] = collections.defaultdict(set)
                for track_id, track in self.tracks.items():
                    primary = self.artists[track["artists"][0]["id"]]
                    fields = {
                        "track": [frozenset(tokens(track["name"]))],
                        "artist": [frozenset(tokens(a["name"])) for a in track["artists"]],
                        "genre": [frozenset(tokens(g)) for g in primary["genres"]],
                    }
                    self._fields[track_id] = fields
                    self._years[track_id] = int(track["album"]["release_date"][:4])
                    for word in set().union(*(s for group in fields.values() for s in group)):
                        index[word].add(track_id)
                self._index = dict(index)
            return self._index

    def search(self, term: str) -> list[str]:
        """Track ids matching `term` in a stable order (popularity, then id). Case-insensitive: every word of the term
        must be a word of the track name, of one of its artists' names or of its primary artist's genres. Field
        filters narrow further: ``genre:"dance pop"`` (all words within one genre of the primary artist),
        ``artist:NAME`` (within one artist's name), ``track:NAME`` (the track name), ``year:1990`` or
        ``year:1990-1999`` (album release year). Deterministic."""
        cached = self._search_cache.get(term)
        if cached is not None:
            return list(cached)
        index = self._ensure_index()
        query = parse_query(term)
        if query.impossible or (not query.words and query.years is None):
            found: list[str] = []
        else:
            candidates: set[str] | None = None
            for word in sorted(query.words, key=lambda w: len(index.get(w, ()))):
                hits = index.get(word, set())
                candidates = set(hits) if candidates is None else candidates & hits
                if not candidates:
                    break
            pool = set(self.tracks) if candidates is None else candidates
            found = sorted((t for t in pool if self._matches(t, query)), key=self._rank.__getitem__)
        with self._lock:
            self._search_cache[term] = found
        return list(found)

    def _matches(self, track_id: str, query: _Query) -> bool:
        fields = self._fields[track_id]
        for name, phrase in query.fields:
            if not any(phrase <= words for words in fields[name]):
                return False
        if query.years is not None:
            return query.years[0] <= self._years[track_id] <= query.years[1]
        return True

    def expected(self, terms: Iterable[str], limit_cap: int = SEARCH_WINDOW) -> set[str]:
        """The track ids a complete collection of `terms` can see: the first min(total, `limit_cap`) results of each
        term, unioned (what the API lets a client page through)."""
        seen: set[str] = set()
        for term in terms:
            seen.update(self.search(term)[:limit_cap])
        return seen

    # -- helpers for tests ---------------------------------------------------------------------------------------

    def primary_artist(self, track_id: str) -> dict[str, Any]:
        """The full artist object of a track's first artist."""
        return self.artists[self.tracks[track_id]["artists"][0]["id"]]

    def isrc_twins(self) -> list[tuple[str, str]]:
        """Pairs of track ids sharing an ISRC (original, remaster)."""
        by_isrc: dict[str, list[str]] = collections.defaultdict(list)
        for track_id, track in self.tracks.items():
            by_isrc[track["external_ids"]["isrc"]].append(track_id)
        return [(ids[0], ids[1]) for ids in by_isrc.values() if len(ids) == 2]

    def preview_track(self, digest: str) -> str | None:
        """The track whose preview clip has this hash, if any."""
        return self._previews.get(digest)

    def audio_features(self, track_id: str) -> dict[str, Any]:
        """The (deterministic) audio-features object of a track."""
        rng = random.Random(f"features:{self.seed}:{track_id}")
        return {
            "acousticness": round(rng.random() ** 2, 4),
            "analysis_url": f"{REAL_API}audio-analysis/{track_id}",
            "danceability": round(rng.uniform(0.1, 0.98), 3),
            "duration_ms": self.tracks[track_id]["duration_ms"],
            "energy": round(rng.uniform(0.02, 1.0), 3),
            "id": track_id,
            "instrumentalness": round(rng.random() ** 4, 6),
            "key": rng.randint(-1, 11) if rng.random() < 0.02 else rng.randint(0, 11),
            "liveness": round(rng.uniform(0.02, 0.9) ** 1.5, 4),
            "loudness": round(rng.uniform(-30.0, -1.5), 3),
            "mode": int(rng.random() < 0.65),
            "speechiness": round(rng.uniform(0.022, 0.5) ** 1.3, 4),
            "tempo": round(rng.uniform(55.0, 200.0), 3),
            "time_signature": rng.choices([3, 4, 5, 1], weights=[8, 88, 3, 1])[0],
            "track_href": f"{REAL_API}tracks/{track_id}",
            "type": "audio_features",
            "uri": f"spotify:track:{track_id}",
            "valence": round(rng.uniform(0.03, 0.97), 3),
        }

    def audio_analysis(self, track_id: str) -> dict[str, Any]:
        """The (deterministic) audio-analysis object of a track. Segment counts vary: about one track in ten has
        fewer than 125 segments."""
        rng = random.Random(f"analysis:{self.seed}:{track_id}")
        features = self.audio_features(track_id)
        duration = features["duration_ms"] / 1000
        n_segments = rng.randint(20, 124) if rng.random() < 0.1 else max(125, int(duration * rng.uniform(1.5, 3.5)))
        tempo = features["tempo"]
        beat = 60.0 / tempo

        def spans(step: float, jitter: float) -> list[dict[str, float]]:
            out, start = [], 0.0
            while start < duration:
                length = min(duration - start, step * rng.uniform(1 - jitter, 1 + jitter))
                out.append(
                    {"start": round(start, 5), "duration": round(length, 5), "confidence": round(rng.random(), 3)}
                )
                start += length
            return out

        beats = spans(beat, 0.02)
        bars = spans(beat * features["time_signature"], 0.02)
        tatums = spans(beat / 2, 0.02)
        sections = []
        for span in spans(duration / rng.randint(3, 12), 0.3):
            span.update(
                loudness=round(features["loudness"] + rng.uniform(-6, 3), 3),
                tempo=round(tempo + rng.uniform(-2, 2), 3),
                tempo_confidence=round(rng.random(), 3),
                key=rng.randint(0, 11),
                key_confidence=round(rng.random(), 3),
                mode=rng.randint(0, 1),
                mode_confidence=round(rng.random(), 3),
                time_signature=features["time_signature"],
                time_signature_confidence=round(rng.random(), 3),
            )
            sections.append(span)
        segments = []
        step = duration / n_segments
        for i in range(n_segments):
            pitches = [rng.random() for _ in range(12)]
            top = max(pitches)
            start_loudness = rng.uniform(-60, -5)
            segments.append(
                {
                    "start": round(i * step, 5),
                    "duration": round(step, 5),
                    "confidence": round(rng.random(), 3),
                    "loudness_start": round(start_loudness, 3),
                    "loudness_max": round(start_loudness + rng.uniform(0, 15), 3),
                    "loudness_max_time": round(rng.uniform(0, step), 5),
                    "loudness_end": 0.0 if i < n_segments - 1 else round(rng.uniform(-60, -20), 3),
                    "pitches": [round(p / top, 3) for p in pitches],
                    "timbre": [round(rng.uniform(0, 60), 3)] + [round(rng.uniform(-150, 150), 3) for _ in range(11)],
                }
            )
        return {
            "meta": {
                "analyzer_version": "4.0.0",
                "platform": "Linux",
                "detailed_status": "OK",
                "status_code": 0,
                "timestamp": 1_500_000_000 + rng.randint(0, 200_000_000),
                "analysis_time": round(rng.uniform(1, 20), 5),
                "input_process": "libvorbisfile L+R 44100->22050",
            },
            "track": {
                "num_samples": int(duration * 22050),
                "duration": round(duration, 5),
                "sample_md5": "",
                "offset_seconds": 0,
                "window_seconds": 0,
                "analysis_sample_rate": 22050,
                "analysis_channels": 1,
                "end_of_fade_in": round(rng.uniform(0, 2), 5),
                "start_of_fade_out": round(duration - rng.uniform(0, 8), 5),
                "loudness": features["loudness"],
                "tempo": tempo,
                "tempo_confidence": round(rng.random(), 3),
                "time_signature": features["time_signature"],
                "time_signature_confidence": round(rng.random(), 3),
                "key": features["key"],
                "key_confidence": round(rng.random(), 3),
                "mode": features["mode"],
                "mode_confidence": round(rng.random(), 3),
                "codestring": "",
                "code_version": 3.15,
                "echoprintstring": "",
                "echoprint_version": 4.12,
                "synchstring": "",
                "synch_version": 1,
                "rhythmstring": "",
                "rhythm_version": 1,
            },
            "bars": bars,
            "beats": beats,
            "sections": sections,
            "segments": segments,
            "tatums": tatums,
        }


@dataclass
class Faults:
    """Fault injection. Rates are probabilities per request, drawn from a seeded RNG (deterministic for a given seed
    and request sequence). `script` forces faults on specific requests: {(endpoint, n): kind} where n is the 1-based
    count of requests to that endpoint, kind one of the KINDS below.

    Kinds: "429" (with Retry-After: `retry_after`), "500"/"502"/"503", "slow" (sleep `slow_seconds`, then answer
    normally), "malformed" (the normal answer with its JSON body cut in half, Content-Length matching the cut body),
    "drop" (close the connection without answering), "401" (the presented token is expired for good and the request
    answered 401 "The access token expired": the client must fetch a new token; on the token endpoint, a 401
    invalid_client), "trickle" (the normal answer, its body one byte every `trickle_seconds` of fake time: before
    each byte the fake calls its `advance`, e.g. a fake clock's, and pauses `trickle_pause` real seconds; script
    only). Rate-based faults never hit the token endpoint; `script` can.
    """

    rate_429: float = 0.0
    retry_after: int = 1  # seconds sent in Retry-After
    rate_5xx: float = 0.0  # 500/502/503 chosen at random
    rate_slow: float = 0.0  # answer after `slow_seconds` (tests set the client timeout below it)
    slow_seconds: float = 1.0
    rate_malformed: float = 0.0  # 200 with a truncated JSON body
    rate_drop: float = 0.0  # close the connection without answering
    trickle_seconds: float = 2.0  # fake seconds per byte of a "trickle" answer
    trickle_pause: float = 0.003  # real seconds between two bytes of it
    seed: int = 0
    script: dict[tuple[str, int], str] = field(default_factory=dict)
    endpoints: frozenset[str] | None = None  # restrict rate-based faults to these endpoints (None = all but token)


@dataclass
class _Answer:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def _error(status: int, message: str) -> _Answer:
    return _Answer(status, json.dumps({"error": {"status": status, "message": message}}).encode())


class FakeSpotify:
    """The fake server. Counts every request per endpoint (`requests`, faulty answers included) and logs
    (endpoint, path-with-query, status) in arrival order (status 0 for a dropped connection).

    Endpoint names: "token", "search", "artist" (/artists/{id}), "artists" (batch), "track" (/tracks/{id}),
    "audio-features", "audio-analysis", "preview" (/mp3-preview/...), "unknown" (anything else).
    `errors` collects tracebacks of bugs inside the fake itself (answered 500); tests may assert it stays empty.

    `missing_analysis`: track ids whose audio analysis answers 404 "analysis not found"; None picks about 1% of the
    catalog deterministically, set() none. `batch_artists_status`: the development-mode answer of GET /v1/artists
    (403 or 404). `token_error_status`: the status of a wrong client id/secret (400, or 401).
    `artist_genres`: False serves artist objects (``/artists/{id}``, ``/artists?ids=``) as development-mode apps get
    them since 2026, with only ARTIST_KEYS_2026 (no ``genres`` key, not ``genres: []``); search results' simplified
    artists are the same either way. A plain attribute: a test may flip it between requests (an app that gets, or
    loses, extended quota).
    """

    def __init__(
        self,
        catalog: Catalog | None = None,
        *,
        mode: str = "development",
        client_id: str = "test-client-id",
        client_secret: str = "test-client-secret",
        faults: Faults | None = None,
        batch_artists_status: int = 403,
        missing_analysis: set[str] | None = None,
        token_error_status: int = 400,
        artist_genres: bool = True,
        advance: Callable[[float], None] = lambda seconds: None,
    ) -> None:
        if mode not in MAX_LIMIT:
            raise ValueError(f"mode must be 'development' or 'extended', not {mode!r}")
        self.catalog = catalog if catalog is not None else Catalog()
        self.mode = mode
        self.client_id = client_id
        self.client_secret = client_secret
        self.faults = faults if faults is not None else Faults()
        for (endpoint, n), kind in self.faults.script.items():
            if kind not in KINDS or endpoint not in ENDPOINTS or n < 1:
                raise ValueError(f"bad fault script entry {(endpoint, n)!r}: {kind!r}")
        self.batch_artists_status = batch_artists_status
        if missing_analysis is None:  # about 1% of the tracks, chosen deterministically
            ids = sorted(self.catalog.tracks)
            missing_analysis = set(random.Random(f"missing:{self.catalog.seed}").sample(ids, max(1, len(ids) // 100)))
        self.missing_analysis = set(missing_analysis)
        self.token_error_status = token_error_status
        self.artist_genres = artist_genres
        self.advance = advance  # moves the client's fake clock while a "trickle" answer is sent
        self.requests: collections.Counter[str] = collections.Counter()
        self.log: list[tuple[str, str, int]] = []
        self.tokens_issued = 0
        self.errors: list[str] = []
        self.connections = 0
        """Connections accepted so far (keep-alive clients reuse one)."""
        self.api_base = ""
        self.auth_url = ""
        self.base_url = ""
        self._tokens: set[str] = set()
        self._expired: set[str] = set()
        self._lock = threading.Lock()
        self._rng = random.Random(self.faults.seed)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    # -- lifecycle -----------------------------------------------------------------------------------------------

    def start(self) -> FakeSpotify:
        """Bind 127.0.0.1 on a free port and serve on daemon threads."""
        if self._server is not None:
            return self
        self.catalog._ensure_index()  # build the search index before the first (possibly time-limited) request
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        port = server.server_address[1]
        self.base_url = f"http://127.0.0.1:{port}"
        self.api_base = f"{self.base_url}/v1/"
        self.auth_url = f"{self.base_url}/api/token"
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"fake-spotify-{port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeSpotify:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def expire_tokens(self) -> None:
        """Expire every token issued so far (the next API call with one answers 401 "The access token expired")."""
        with self._lock:
            self._expired |= self._tokens
            self._tokens.clear()

    # -- bookkeeping -----------------------------------------------------------------------------------------------

    def _admit(self, endpoint: str, path: str) -> tuple[int, str | None]:
        """Count and log the request, then decide its fault. Returns (log slot, fault kind or None)."""
        with self._lock:
            self.requests[endpoint] += 1
            n = self.requests[endpoint]
            self.log.append((endpoint, path, -1))
            slot = len(self.log) - 1
            kind = self.faults.script.get((endpoint, n))
            if kind is None:
                kind = self._draw(endpoint)
            return slot, kind

    def _draw(self, endpoint: str) -> str | None:
        f = self.faults
        if endpoint == "token" or (f.endpoints is not None and endpoint not in f.endpoints):
            return None
        rates = [("429", f.rate_429), ("5xx", f.rate_5xx), ("slow", f.rate_slow), ("malformed", f.rate_malformed)]
        rates.append(("drop", f.rate_drop))
        if not any(rate > 0 for _, rate in rates):
            return None
        roll, pick = self._rng.random(), self._rng.random()
        for kind, rate in rates:
            if roll < rate:
                return ("500", "502", "503")[int(pick * 3)] if kind == "5xx" else kind
            roll -= rate
        return None

    def _finish(self, slot: int, status: int) -> None:
        with self._lock:
            endpoint, path, _ = self.log[slot]
            self.log[slot] = (endpoint, path, status)

    # -- answers -------------------------------------------------------------------------------------------------

    @staticmethod
    def endpoint_of(path: str) -> str:
        """The endpoint name of a request path (without the query)."""
        parts = [p for p in path.split("/") if p]
        if parts == ["api", "token"]:
            return "token"
        if len(parts) == 2 and parts[0] == "mp3-preview":
            return "preview"
        if not parts or parts[0] != "v1":
            return "unknown"
        rest = parts[1:]
        if rest == ["search"]:
            return "search"
        if rest == ["artists"]:
            return "artists"
        if len(rest) == 2 and rest[0] == "artists":
            return "artist"
        if len(rest) == 2 and rest[0] == "tracks":
            return "track"
        if rest[:1] == ["audio-features"] and len(rest) <= 2:
            return "audio-features"
        if len(rest) == 2 and rest[0] == "audio-analysis":
            return "audio-analysis"
        return "unknown"

    def _json(self, payload: Any, status: int = 200) -> _Answer:
        text = json.dumps(payload, ensure_ascii=False)
        text = text.replace(REAL_API, self.api_base).replace(REAL_PREVIEWS, f"{self.base_url}/")
        return _Answer(status, text.encode())

    def answer(self, method: str, endpoint: str, target: str, headers: dict[str, str], body: bytes) -> _Answer:
        """The normal (fault-free) answer to a request."""
        split = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        if endpoint == "token":
            return self._token(method, headers, body) if method == "POST" else _error(405, "Method not allowed")
        if endpoint == "preview":
            return self._preview(split.path)
        if endpoint == "unknown":
            return _error(404, "Service not found")
        if method != "GET":
            return _error(405, "Method not allowed")
        denied = self._check_token(headers.get("authorization", ""))
        if denied is not None:
            return denied
        last = split.path.rstrip("/").rsplit("/", 1)[-1]
        if endpoint == "search":
            return self._search(query)
        if endpoint == "artist":
            return self._artist(last)
        if endpoint == "artists":
            return self._artists(query)
        if endpoint == "track":
            return self._track(last)
        if endpoint == "audio-features":
            return self._features(query, None if last == "audio-features" else last)
        return self._analysis(last)

    def _token(self, method: str, headers: dict[str, str], body: bytes) -> _Answer:
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        auth = headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                client_id, _, client_secret = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                client_id = client_secret = None
        if client_id != self.client_id or client_secret != self.client_secret:
            return self._invalid_client(self.token_error_status)
        grant = form.get("grant_type")
        if grant != "client_credentials":
            text = "grant_type parameter is missing" if not grant else f"unsupported grant_type: {grant}"
            payload = {"error": "unsupported_grant_type", "error_description": text}
            return _Answer(400, json.dumps(payload).encode())
        token = "BQ" + secrets.token_urlsafe(60)
        with self._lock:
            self._tokens.add(token)
            self.tokens_issued += 1
        return _Answer(200, json.dumps({"access_token": token, "token_type": "Bearer", "expires_in": 3600}).encode())

    @staticmethod
    def _invalid_client(status: int) -> _Answer:
        return _Answer(status, json.dumps({"error": "invalid_client", "error_description": "Invalid client"}).encode())

    def _check_token(self, auth: str) -> _Answer | None:
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        with self._lock:
            if token in self._tokens:
                return None
            expired = token in self._expired
        return _error(401, "The access token expired" if expired else "Invalid access token")

    def _expire(self, auth: str) -> None:
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        with self._lock:
            if token in self._tokens:
                self._tokens.discard(token)
                self._expired.add(token)

    def _search(self, query: dict[str, str]) -> _Answer:
        term = query.get("q", query.get("query", ""))
        if not term.strip():
            return _error(400, "No search query")
        kinds = query.get("type")
        if not kinds:
            return _error(400, "Missing parameter type")
        if {k.strip() for k in kinds.split(",")} != {"track"}:
            return _error(400, "Bad search type field")  # only tracks are imitated
        try:
            limit = int(query.get("limit", DEFAULT_LIMIT[self.mode]))
        except ValueError:
            return _error(400, "Invalid limit")
        if not 1 <= limit <= MAX_LIMIT[self.mode]:
            return _error(400, "Invalid limit")
        try:
            offset = int(query.get("offset", 0))
        except ValueError:
            return _error(400, "Invalid offset")
        if offset < 0 or offset + limit > SEARCH_WINDOW:
            return _error(400, "Invalid offset")
        market = query.get("market")
        if market is not None and market != "from_token" and not _MARKET.match(market):
            return _error(400, "Invalid market code")
        found = self.catalog.search(term)
        reachable = min(len(found), SEARCH_WINDOW)

        def link(at: int) -> str:
            params = [("query", term), ("type", kinds)] + ([("market", market)] if market else [])
            return f"{REAL_API}search?" + urlencode([*params, ("offset", at), ("limit", limit)])

        items = [self._track_view(t) for t in found[offset : offset + limit]]
        return self._json(
            {
                "tracks": {
                    "href": link(offset),
                    "items": items,
                    "limit": limit,
                    "next": link(offset + limit) if offset + limit < reachable else None,
                    "offset": offset,
                    "previous": link(max(0, offset - limit)) if offset > 0 else None,
                    "total": len(found),
                }
            }
        )

    def _track_view(self, track_id: str) -> dict[str, Any]:
        track = self.catalog.tracks[track_id]
        if self.mode == "extended":
            return track
        return {k: v for k, v in track.items() if k not in ("popularity", "external_ids")}

    def _artist_view(self, artist_id: str) -> dict[str, Any] | None:
        artist = self.catalog.artists.get(artist_id)
        if artist is not None and not self.artist_genres:
            return {k: artist[k] for k in ARTIST_KEYS_2026}
        if artist is None or self.mode == "extended":
            return artist
        return {k: v for k, v in artist.items() if k not in ("popularity", "followers")}

    def _artist(self, artist_id: str) -> _Answer:
        if not _ID.match(artist_id):
            return _error(400, "Invalid base62 id")
        artist = self._artist_view(artist_id)
        return _error(404, "Resource not found") if artist is None else self._json(artist)

    def _track(self, track_id: str) -> _Answer:
        if not _ID.match(track_id):
            return _error(400, "Invalid base62 id")
        if track_id not in self.catalog.tracks:
            return _error(404, "Resource not found")
        return self._json(self._track_view(track_id))

    def _ids(self, query: dict[str, str], most: int) -> list[str] | _Answer:
        ids = [i.strip() for i in query.get("ids", "").split(",") if i.strip()]
        if not ids:
            return _error(400, "Missing required parameter ids")
        if len(ids) > most:
            return _error(400, "Too many ids requested")
        if not all(_ID.match(i) for i in ids):
            return _error(400, "Invalid base62 id")
        return ids

    def _artists(self, query: dict[str, str]) -> _Answer:
        if self.mode == "development":
            status = self.batch_artists_status
            return _error(status, {403: "Forbidden", 404: "Resource not found"}.get(status, "Forbidden"))
        ids = self._ids(query, MAX_ARTIST_IDS)
        if isinstance(ids, _Answer):
            return ids
        return self._json({"artists": [self._artist_view(i) for i in ids]})

    def _features(self, query: dict[str, str], single: str | None) -> _Answer:
        if self.mode == "development":
            return _error(403, "Forbidden")
        if single is not None:
            if not _ID.match(single):
                return _error(400, "Invalid base62 id")
            if single not in self.catalog.tracks:
                return _error(404, "Resource not found")
            return self._json(self.catalog.audio_features(single))
        ids = self._ids(query, MAX_FEATURE_IDS)
        if isinstance(ids, _Answer):
            return ids
        known = self.catalog.tracks
        return self._json({"audio_features": [self.catalog.audio_features(i) if i in known else None for i in ids]})

    def _analysis(self, track_id: str) -> _Answer:
        if self.mode == "development":
            return _error(403, "Forbidden")
        if not _ID.match(track_id):
            return _error(400, "Invalid base62 id")
        if track_id not in self.catalog.tracks:
            return _error(404, "Resource not found")
        if track_id in self.missing_analysis:
            return _error(404, "analysis not found")
        return self._json(self.catalog.audio_analysis(track_id))

    def _preview(self, path: str) -> _Answer:
        digest = path.rstrip("/").rsplit("/", 1)[-1]
        if self.catalog.preview_track(digest) is None:
            return _Answer(404, b"Not found", "text/plain")
        seed = hashlib.sha256(digest.encode()).digest()
        return _Answer(200, b"ID3\x04\x00\x00\x00\x00\x00\x00" + seed * 64, "audio/mpeg")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeSpotify

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: clients that time out or hang up are part of the tests."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeSpotify/1.0"
    sys_version = ""
    timeout = 60  # idle keep-alive connections are closed after this long
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

    @property
    def fake(self) -> FakeSpotify:
        return cast(_Server, self.server).fake

    def setup(self) -> None:
        super().setup()
        with self.fake._lock:
            self.fake._connections.add(self.connection)
            self.fake.connections += 1

    def finish(self) -> None:
        with self.fake._lock:
            self.fake._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Print nothing."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        fake = self.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        endpoint = fake.endpoint_of(urlsplit(self.path).path)
        slot, kind = fake._admit(endpoint, self.path)
        if kind == "drop":
            fake._finish(slot, 0)
            self.close_connection = True
            return
        if kind == "slow":
            time.sleep(fake.faults.slow_seconds)
        if kind == "429":
            answer = _error(429, "Too many requests")
            answer.headers["Retry-After"] = str(fake.faults.retry_after)
        elif kind in ("500", "502", "503"):
            status = int(kind)
            answer = _error(status, {500: "Server error", 502: "Bad gateway", 503: "Service unavailable"}[status])
        elif kind == "401":
            if endpoint == "token":
                answer = FakeSpotify._invalid_client(401)
            else:
                fake._expire(headers.get("authorization", ""))
                answer = _error(401, "The access token expired")
        else:
            try:
                answer = fake.answer(method, endpoint, self.path, headers, body)
            except Exception:  # a bug in the fake: answer 500 and keep the traceback for the test to see
                with fake._lock:
                    fake.errors.append(traceback.format_exc())
                answer = _error(500, "Fake server error")
            if kind == "malformed":
                answer.body = answer.body[: len(answer.body) // 2]
        fake._finish(slot, answer.status)
        self._send(answer, trickled=kind == "trickle")

    def _send(self, answer: _Answer, trickled: bool = False) -> None:
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if trickled:
                faults = self.fake.faults
                self.wfile.flush()
                trickle(self.wfile, answer.body, step=faults.trickle_seconds, advance=self.fake.advance,
                        pause=faults.trickle_pause)  # fmt: skip
                self.close_connection = True
                return
            self.wfile.write(answer.body)
            self.wfile.flush()
        except OSError:  # the client gave up (a timeout) or hung up
            self.close_connection = True
