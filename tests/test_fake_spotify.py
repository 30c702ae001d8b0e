"""Tests of the fake Spotify Web API (tests/fakes/spotify.py): that it behaves like the real service (2026 state),
limits and faults included, for plain `requests` and for spotipy."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import spotipy
from fakes.spotify import BASE62, KINDS, STATS_PATH, Catalog, FakeSpotify, Faults, parse_query, tokens
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.oauth2 import SpotifyClientCredentials, SpotifyOauthError

CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-client-secret"
UNKNOWN_ID = "0" * 22  # valid base62, not in any catalog


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(n_artists=300, seed=7)


@pytest.fixture(scope="module")
def big_catalog() -> Catalog:
    return Catalog(n_artists=2000, seed=3)


@pytest.fixture
def dev(catalog: Catalog) -> Iterator[FakeSpotify]:
    with FakeSpotify(catalog) as fake:
        yield fake
    assert fake.errors == []


@pytest.fixture
def ext(catalog: Catalog) -> Iterator[FakeSpotify]:
    with FakeSpotify(catalog, mode="extended") as fake:
        yield fake
    assert fake.errors == []


def token_for(fake: FakeSpotify, session: Any = requests) -> str:
    answer = session.post(fake.auth_url, data={"grant_type": "client_credentials"}, auth=(CLIENT_ID, CLIENT_SECRET))
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def get(fake: FakeSpotify, path: str, token: str | None, session: Any = requests, **params: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer: requests.Response = session.get(fake.api_base + path, params=params, headers=headers, timeout=5)
    return answer


def client(fake: FakeSpotify, timeout: float = 5) -> spotipy.Spotify:
    auth = SpotifyClientCredentials(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, cache_handler=MemoryCacheHandler()
    )
    auth.OAUTH_TOKEN_URL = fake.auth_url
    sp = spotipy.Spotify(
        auth_manager=auth, requests_session=requests.Session(), retries=0, status_retries=0, requests_timeout=timeout
    )
    sp.prefix = fake.api_base
    return sp


def term_with(catalog: Catalog, low: int, high: int) -> str:
    """A one-word term with between `low` and `high` results."""
    for word in ("waltz", "tango", "sonata", "stomp", "lullaby", "serenade", "nocturne", "boogie", "anthem"):
        if low <= len(catalog.search(word)) <= high:
            return word
    raise AssertionError("no term of that size in the catalog")


def page_all(sp: spotipy.Spotify, term: str, limit: int) -> list[str]:
    """Every track id a client sees by following `next` from the first page."""
    page = sp.search(term, limit=limit, type="track")["tracks"]
    ids = [t["id"] for t in page["items"]]
    while page["next"]:
        page = sp.next(page)["tracks"]
        ids += [t["id"] for t in page["items"]]
    return ids


# -- token -------------------------------------------------------------------------------------------------------


def test_token_success_and_form_credentials(dev: FakeSpotify) -> None:
    answer = requests.post(dev.auth_url, data={"grant_type": "client_credentials"}, auth=(CLIENT_ID, CLIENT_SECRET))
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    assert requests.post(dev.auth_url, data=form).status_code == 200
    assert dev.tokens_issued == 2 and dev.requests["token"] == 2


@pytest.mark.parametrize(("client_id", "secret"), [(CLIENT_ID, "wrong"), ("wrong", CLIENT_SECRET)])
@pytest.mark.parametrize("status", [400, 401])
def test_token_invalid_client(catalog: Catalog, client_id: str, secret: str, status: int) -> None:
    with FakeSpotify(catalog, token_error_status=status) as fake:
        answer = requests.post(fake.auth_url, data={"grant_type": "client_credentials"}, auth=(client_id, secret))
        assert answer.status_code == status
        assert answer.json() == {"error": "invalid_client", "error_description": "Invalid client"}
        assert fake.tokens_issued == 0


def test_token_needs_client_credentials_grant(dev: FakeSpotify) -> None:
    answer = requests.post(dev.auth_url, data={}, auth=(CLIENT_ID, CLIENT_SECRET))
    assert answer.status_code == 400 and answer.json()["error"] == "unsupported_grant_type"


def test_spotipy_token_error(dev: FakeSpotify) -> None:
    sp = client(dev)
    sp.auth_manager.client_secret = "wrong"
    with pytest.raises(SpotifyOauthError) as caught:
        sp.search("love", limit=1)
    assert caught.value.error == "invalid_client"
    assert dev.requests == Counter({"token": 1})


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_api_needs_a_valid_token(dev: FakeSpotify, catalog: Catalog, token: str | None) -> None:
    artist = next(iter(catalog.artists))
    for path, params in [("search", {"q": "love", "type": "track"}), (f"artists/{artist}", {})]:
        answer = get(dev, path, token, **params)
        assert answer.status_code == 401
        assert answer.json() == {"error": {"status": 401, "message": "Invalid access token"}}


# -- search ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "most"), [("development", 10), ("extended", 50)])
def test_search_limits(catalog: Catalog, mode: str, most: int) -> None:
    term = term_with(catalog, 60, 999)
    with FakeSpotify(catalog, mode=mode) as fake:
        token = token_for(fake)
        ok = get(fake, "search", token, q=term, type="track", limit=most)
        assert ok.status_code == 200 and len(ok.json()["tracks"]["items"]) == most
        for bad in (most + 1, 0, -1, "ten"):
            answer = get(fake, "search", token, q=term, type="track", limit=bad)
            assert answer.status_code == 400
            assert answer.json() == {"error": {"status": 400, "message": "Invalid limit"}}


@pytest.mark.parametrize("mode", ["development", "extended"])
def test_search_offset_window(big_catalog: Catalog, mode: str) -> None:
    with FakeSpotify(big_catalog, mode=mode) as fake:
        token = token_for(fake)
        last = get(fake, "search", token, q="pop", type="track", limit=10, offset=990).json()["tracks"]
        assert last["total"] > 1000  # broad terms report more than the API will serve
        assert last["next"] is None and last["previous"] is not None
        assert [t["id"] for t in last["items"]] == big_catalog.search("pop")[990:1000]
        for offset, limit in [(991, 10), (1000, 1), (-1, 5), ("x", 5)]:
            answer = get(fake, "search", token, q="pop", type="track", limit=limit, offset=offset)
            assert answer.status_code == 400
            assert answer.json() == {"error": {"status": 400, "message": "Invalid offset"}}


def test_search_pages_with_requests(dev: FakeSpotify, catalog: Catalog) -> None:
    term = term_with(catalog, 21, 99)
    expected = catalog.search(term)
    token = token_for(dev)
    url: str | None = dev.api_base + "search?" + f"q={term.upper()}&type=track&limit=10&offset=0"
    seen: list[str] = []
    pages = 0
    while url:
        answer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
        page = answer.json()["tracks"]
        assert set(page) == {"href", "items", "limit", "next", "offset", "previous", "total"}
        assert page["limit"] == 10 and page["offset"] == pages * 10 and page["total"] == len(expected)
        assert page["href"].startswith(dev.api_base + "search?")
        assert (page["previous"] is None) == (pages == 0)
        seen += [t["id"] for t in page["items"]]
        url = page["next"]
        pages += 1
    assert seen == expected  # case-insensitive, stable order, no duplicates
    assert pages == -(-len(expected) // 10) and dev.requests["search"] == pages


def test_search_parameter_errors(dev: FakeSpotify) -> None:
    token = token_for(dev)
    cases = [
        ({"q": "love", "type": "artist"}, "Bad search type field"),
        ({"q": "love", "type": "track,artist"}, "Bad search type field"),
        ({"type": "track"}, "No search query"),
        ({"q": "love"}, "Missing parameter type"),
        ({"q": "love", "type": "track", "market": "usa"}, "Invalid market code"),
    ]
    for params, message in cases:
        answer = get(dev, "search", token, **params)
        assert answer.status_code == 400 and answer.json()["error"]["message"] == message
    assert get(dev, "search", token, q="love", type="track", market="US").status_code == 200
    empty = get(dev, "search", token, q="zzzqqq", type="track").json()["tracks"]
    assert empty["items"] == [] and empty["total"] == 0 and empty["next"] is None


@pytest.mark.parametrize(("mode", "limit"), [("development", 10), ("extended", 50)])
def test_union_of_paging_equals_expected(big_catalog: Catalog, mode: str, limit: int) -> None:
    terms = ["pop", 'genre:"hip hop"', "Love", "blues", "zzzqqq"]
    assert len(big_catalog.search("pop")) > 1000  # the cap matters
    with FakeSpotify(big_catalog, mode=mode) as fake:
        sp = client(fake)
        seen: set[str] = set()
        for term in terms:
            ids = page_all(sp, term, limit)
            assert len(ids) == len(set(ids)) == min(len(big_catalog.search(term)), 1000)
            seen.update(ids)
        assert seen == big_catalog.expected(terms)
        assert fake.requests["token"] == 1 and fake.errors == []


@pytest.mark.parametrize("mode", ["development", "extended"])
def test_track_objects_per_mode(catalog: Catalog, mode: str) -> None:
    with FakeSpotify(catalog, mode=mode) as fake:
        items = client(fake).search("love", limit=10)["tracks"]["items"]
    base = {"id", "name", "type", "uri", "href", "duration_ms", "explicit", "preview_url", "track_number"}
    base |= {"disc_number", "is_local", "external_urls", "album", "artists"}
    extended = {"popularity", "external_ids"}
    for item in items:
        assert set(item) == (base | extended if mode == "extended" else base)
        assert item["type"] == "track" and item["uri"] == f"spotify:track:{item['id']}" and item["is_local"] is False
        assert item["href"] == f"{fake.api_base}tracks/{item['id']}"
        assert set(item["album"]) >= {"id", "name", "release_date", "release_date_precision", "album_type", "artists"}
        assert item["album"]["images"] == []
        for artist in item["artists"]:
            assert set(artist) == {"id", "name", "type", "uri", "href", "external_urls"}
        if mode == "extended":
            assert re.fullmatch(r"[A-Z]{2}[A-Z0-9]{3}\d{7}", item["external_ids"]["isrc"])


# -- the catalog -------------------------------------------------------------------------------------------------


def test_catalog_is_deterministic_and_realistic(catalog: Catalog) -> None:
    again = Catalog(n_artists=300, seed=7)
    assert again.tracks == catalog.tracks and again.artists == catalog.artists
    assert Catalog(n_artists=300, seed=8).tracks.keys() != catalog.tracks.keys()
    ids = list(catalog.tracks) + list(catalog.artists)
    assert all(len(i) == 22 and set(i) <= set(BASE62) for i in ids) and len(set(ids)) == len(ids)
    known = set(json.loads(STATS_PATH.read_text(encoding="utf-8"))["genres"])
    genres = [a["genres"] for a in catalog.artists.values()]
    assert all(set(g) <= known and g == sorted(g) for g in genres)
    assert 0.15 < sum(not g for g in genres) / len(genres) < 0.4  # about a quarter have none
    tracks = list(catalog.tracks.values())
    assert 0.05 < sum(t["preview_url"] is not None for t in tracks) / len(tracks) < 0.15
    features = [t for t in tracks if len(t["artists"]) > 1]
    assert features and all("feat." in t["name"] for t in features)
    twins = catalog.isrc_twins()
    assert twins
    for original, remaster in twins:
        a, b = catalog.tracks[original], catalog.tracks[remaster]
        assert a["external_ids"] == b["external_ids"] and a["artists"] == b["artists"] and a["id"] != b["id"]
        assert b["name"].startswith(a["name"]) and "Remaster" in b["name"]
    counts = Counter(len(t) for t in catalog.artist_tracks.values())
    assert min(counts) >= 1 and max(counts) >= 12


def test_catalog_search_semantics(catalog: Catalog) -> None:
    assert catalog.search("LOVE") == catalog.search("love")
    both = set(catalog.search("love")) & set(catalog.search("song"))
    assert set(catalog.search("love song")) == both
    for track_id in catalog.search('genre:"dance pop"'):
        assert any({"dance", "pop"} <= set(tokens(g)) for g in catalog.primary_artist(track_id)["genres"])
    nineties = catalog.search("year:1990-1999")
    assert nineties and all("1990" <= catalog.tracks[t]["album"]["release_date"][:4] <= "1999" for t in nineties)
    featured = next(t for t in catalog.tracks.values() if len(t["artists"]) > 1)
    guest = featured["artists"][1]["name"]
    assert featured["id"] in catalog.search(f'artist:"{guest}"')
    assert parse_query('genre:"hip hop" love').words == {"hip", "hop", "love"}
    assert catalog.search("") == [] and catalog.search("year:soon") == []
    assert catalog.expected(["love", "song"]) == set(catalog.search("love")) | set(catalog.search("song"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_search_finds_every_track_by_its_words(catalog: Catalog, data: st.DataObject) -> None:
    track_id = data.draw(st.sampled_from(sorted(catalog.tracks)))
    track = catalog.tracks[track_id]
    words = tokens(track["name"]) + tokens(track["artists"][0]["name"])
    words += [w for g in catalog.primary_artist(track_id)["genres"] for w in tokens(g)]
    term = " ".join(data.draw(st.lists(st.sampled_from(words), min_size=1, max_size=3)))
    found = catalog.search(term)
    assert track_id in found
    for other in found[:50]:
        t = catalog.tracks[other]
        haystack = set(tokens(t["name"])) | {w for a in t["artists"] for w in tokens(a["name"])}
        haystack |= {w for g in catalog.primary_artist(other)["genres"] for w in tokens(g)}
        assert set(tokens(term)) <= haystack


def test_big_catalog_has_terms_over_the_cap(big_catalog: Catalog) -> None:
    assert len(big_catalog.search("pop")) > 1000 and len(big_catalog.search("rock")) > 1000
    assert len(big_catalog.expected(["pop"])) == 1000
    assert big_catalog.expected(["pop"], limit_cap=5) == set(big_catalog.search("pop")[:5])


# -- artists -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["development", "extended"])
def test_artist_per_mode(catalog: Catalog, mode: str) -> None:
    artist_id = next(a for a, v in catalog.artists.items() if v["genres"])
    with FakeSpotify(catalog, mode=mode) as fake:
        artist = client(fake).artist(artist_id)
    base = {"id", "name", "type", "uri", "href", "external_urls", "genres", "images"}
    assert set(artist) == (base | {"popularity", "followers"} if mode == "extended" else base)
    assert artist["genres"] == catalog.artists[artist_id]["genres"] and artist["type"] == "artist"
    if mode == "extended":
        assert artist["followers"]["total"] >= 0 and 0 <= artist["popularity"] <= 100


def test_artist_errors(dev: FakeSpotify) -> None:
    token = token_for(dev)
    missing = get(dev, f"artists/{UNKNOWN_ID}", token)
    assert missing.status_code == 404
    assert missing.json() == {"error": {"status": 404, "message": "Resource not found"}}
    bad = get(dev, "artists/not-an-id!", token)
    assert bad.status_code == 400 and bad.json()["error"]["message"] == "Invalid base62 id"


@pytest.mark.parametrize("status", [403, 404])
def test_batch_artists_removed_in_development(catalog: Catalog, status: int) -> None:
    ids = list(catalog.artists)[:3]
    with FakeSpotify(catalog, batch_artists_status=status) as fake:
        answer = get(fake, "artists", token_for(fake), ids=",".join(ids))
        assert answer.status_code == status and answer.json()["error"]["status"] == status
        with pytest.raises(spotipy.SpotifyException) as caught:
            client(fake).artists(ids)
        assert caught.value.http_status == status
        assert fake.requests["artists"] == 2


def test_batch_artists_extended(ext: FakeSpotify, catalog: Catalog) -> None:
    ids = list(catalog.artists)[:4]
    found = client(ext).artists([*ids[:2], UNKNOWN_ID, *ids[2:]])["artists"]
    assert [a["id"] if a else None for a in found] == [*ids[:2], None, *ids[2:]]
    assert all("popularity" in a and "genres" in a for a in found if a)
    token = token_for(ext)
    too_many = get(ext, "artists", token, ids=",".join(list(catalog.artists)[:51]))
    assert too_many.status_code == 400 and too_many.json()["error"]["message"] == "Too many ids requested"
    assert get(ext, "artists", token, ids=",".join(list(catalog.artists)[:50])).status_code == 200


# -- audio features and analysis ---------------------------------------------------------------------------------


def test_audio_endpoints_forbidden_in_development(dev: FakeSpotify, catalog: Catalog) -> None:
    token = token_for(dev)
    track_id = next(iter(catalog.tracks))
    for path, params in [("audio-features", {"ids": track_id}), (f"audio-analysis/{track_id}", {})]:
        answer = get(dev, path, token, **params)
        assert answer.status_code == 403
        assert answer.json() == {"error": {"status": 403, "message": "Forbidden"}}


def test_audio_features_extended(ext: FakeSpotify, catalog: Catalog) -> None:
    ids = list(catalog.tracks)[:3]
    with pytest.warns(DeprecationWarning):
        features = client(ext).audio_features([*ids, UNKNOWN_ID])
    assert features[3] is None
    keys = {"danceability", "energy", "key", "loudness", "mode", "speechiness", "acousticness", "instrumentalness"}
    keys |= {"liveness", "valence", "tempo", "duration_ms", "time_signature", "id", "uri", "track_href"}
    keys |= {"analysis_url", "type"}
    for track_id, item in zip(ids, features, strict=False):
        assert set(item) == keys and item["id"] == track_id and item["type"] == "audio_features"
        assert item["duration_ms"] == catalog.tracks[track_id]["duration_ms"]
        assert 0 <= item["danceability"] <= 1 and item["analysis_url"].startswith(ext.api_base)
    token = token_for(ext)
    too_many = get(ext, "audio-features", token, ids=",".join(list(catalog.tracks)[:101]))
    assert too_many.status_code == 400 and too_many.json()["error"]["message"] == "Too many ids requested"
    assert get(ext, f"audio-features/{ids[0]}", token).json() == json.loads(
        json.dumps(catalog.audio_features(ids[0])).replace("https://api.spotify.com/v1/", ext.api_base)
    )


def test_audio_analysis_extended(catalog: Catalog) -> None:
    missing = sorted(catalog.tracks)[5]
    with FakeSpotify(catalog, mode="extended", missing_analysis={missing}) as fake:
        sp = client(fake)
        present = next(t for t in sorted(catalog.tracks) if t != missing)
        with pytest.warns(DeprecationWarning):
            analysis = sp.audio_analysis(present)
        assert set(analysis) == {"meta", "track", "bars", "beats", "sections", "segments", "tatums"}
        segment = analysis["segments"][0]
        assert set(segment) == {
            "start",
            "duration",
            "confidence",
            "loudness_start",
            "loudness_max",
            "loudness_max_time",
            "loudness_end",
            "pitches",
            "timbre",
        }
        assert all(len(s["pitches"]) == 12 and all(0 <= p <= 1 for p in s["pitches"]) for s in analysis["segments"])
        assert all(len(s["timbre"]) == 12 for s in analysis["segments"])
        answer = get(fake, f"audio-analysis/{missing}", token_for(fake))
        assert answer.status_code == 404
        assert answer.json() == {"error": {"status": 404, "message": "analysis not found"}}
        assert get(fake, f"audio-analysis/{UNKNOWN_ID}", token_for(fake)).status_code == 404
    default = FakeSpotify(catalog).missing_analysis
    assert 0 < len(default) <= len(catalog.tracks) // 50 and default <= set(catalog.tracks)
    short = long = 0
    for track_id in sorted(catalog.tracks)[:80]:  # segment counts vary; some tracks have fewer than 125
        n = len(catalog.audio_analysis(track_id)["segments"])
        short, long = short + (n < 125), long + (n >= 125)
        if short and long:
            break
    assert short and long


# -- faults ------------------------------------------------------------------------------------------------------


def test_script_429_carries_retry_after(catalog: Catalog) -> None:
    faults = Faults(retry_after=7, script={("search", 1): "429", ("search", 3): "429"})
    with FakeSpotify(catalog, faults=faults) as fake:
        token = token_for(fake)
        answer = get(fake, "search", token, q="love", type="track")
        assert answer.status_code == 429 and answer.headers["Retry-After"] == "7"
        assert get(fake, "search", token, q="love", type="track").status_code == 200
        with pytest.raises(spotipy.SpotifyException) as caught:
            client(fake).search("love")
        assert caught.value.http_status == 429 and caught.value.headers["Retry-After"] == "7"
        assert [s for _, _, s in fake.log] == [200, 429, 200, 200, 429]


@pytest.mark.parametrize("kind", ["500", "502", "503"])
def test_script_server_errors(catalog: Catalog, kind: str) -> None:
    with FakeSpotify(catalog, faults=Faults(script={("artist", 1): kind})) as fake:
        token = token_for(fake)
        artist_id = next(iter(catalog.artists))
        first, second = (get(fake, f"artists/{artist_id}", token) for _ in range(2))
        assert first.status_code == int(kind) and first.json()["error"]["status"] == int(kind)
        assert second.status_code == 200


def test_script_slow_exceeds_client_timeout(catalog: Catalog) -> None:
    faults = Faults(slow_seconds=0.5, script={("search", 1): "slow", ("search", 2): "slow"})
    with FakeSpotify(catalog, faults=faults) as fake:
        token = token_for(fake)
        with pytest.raises(requests.exceptions.Timeout):
            requests.get(
                f"{fake.api_base}search?q=love&type=track", headers={"Authorization": f"Bearer {token}"}, timeout=0.2
            )
        with pytest.raises(requests.exceptions.Timeout):
            client(fake, timeout=0.2).search("love")
        assert get(fake, "search", token, q="love", type="track").status_code == 200
        assert fake.requests["search"] == 3


def test_script_trickle_sends_the_normal_answer_one_byte_at_a_time_in_fake_time(catalog: Catalog) -> None:
    steps: list[float] = []
    faults = Faults(trickle_seconds=2.0, trickle_pause=0.0, script={("search", 1): "trickle"})
    with FakeSpotify(catalog, faults=faults, advance=steps.append) as fake:
        token = token_for(fake)
        trickled = get(fake, "search", token, q="love", type="track")
        normal = get(fake, "search", token, q="love", type="track")
    assert trickled.status_code == 200 and trickled.json() == normal.json()
    assert steps == [2.0] * len(trickled.content)  # the fake clock moved 2 s per byte


def test_script_malformed(catalog: Catalog) -> None:
    with FakeSpotify(catalog, faults=Faults(script={("search", 1): "malformed", ("search", 2): "malformed"})) as fake:
        answer = get(fake, "search", token_for(fake), q="love", type="track")
        assert answer.status_code == 200 and int(answer.headers["Content-Length"]) == len(answer.content) > 0
        with pytest.raises(ValueError):
            answer.json()
        assert client(fake).search("love") is None  # spotipy swallows the decode error
        assert client(fake).search("love") is not None


def test_script_drop(catalog: Catalog) -> None:
    with FakeSpotify(catalog, faults=Faults(script={("search", 2): "drop", ("search", 3): "drop"})) as fake:
        session = requests.Session()
        token = token_for(fake, session)
        assert get(fake, "search", token, session, q="love", type="track").status_code == 200
        with pytest.raises(requests.exceptions.ConnectionError):
            get(fake, "search", token, session, q="love", type="track")
        with pytest.raises(requests.exceptions.ConnectionError):
            client(fake).search("love")
        assert get(fake, "search", token, session, q="love", type="track").status_code == 200
        assert [s for e, _, s in fake.log if e == "search"] == [200, 0, 0, 200]


def test_script_401_expires_the_token(catalog: Catalog) -> None:
    with FakeSpotify(catalog, faults=Faults(script={("artist", 2): "401"})) as fake:
        token = token_for(fake)
        artist_id = next(iter(catalog.artists))
        assert get(fake, f"artists/{artist_id}", token).status_code == 200
        for _ in range(2):  # the expired token stays expired
            answer = get(fake, f"artists/{artist_id}", token)
            assert answer.status_code == 401
            assert answer.json() == {"error": {"status": 401, "message": "The access token expired"}}
        assert get(fake, f"artists/{artist_id}", token_for(fake)).status_code == 200
        fake.expire_tokens()
        assert get(fake, f"artists/{artist_id}", token).status_code == 401


def test_script_on_the_token_endpoint(catalog: Catalog) -> None:
    faults = Faults(script={("token", 1): "503", ("token", 2): "401"}, rate_5xx=1.0)
    with FakeSpotify(catalog, faults=faults) as fake:
        with pytest.raises(SpotifyOauthError):
            client(fake).search("love")
        refused = requests.post(
            fake.auth_url, data={"grant_type": "client_credentials"}, auth=(CLIENT_ID, CLIENT_SECRET)
        )
        assert refused.status_code == 401
        token = token_for(fake)  # rates never fault the token endpoint
        assert fake.tokens_issued == 1
        assert get(fake, "search", token, q="love", type="track").status_code in (500, 502, 503)


def test_rate_faults_are_deterministic(catalog: Catalog) -> None:
    def run(seed: int) -> list[int]:
        faults = Faults(rate_429=0.2, rate_5xx=0.2, rate_malformed=0.1, seed=seed)
        with FakeSpotify(catalog, faults=faults) as fake:
            session = requests.Session()
            token = token_for(fake, session)
            for i in range(40):
                get(fake, "search", token, session, q="love", type="track", offset=i)
            return [status for endpoint, _, status in fake.log if endpoint == "search"]

    first = run(11)
    assert first == run(11) and first != run(12)
    share = sum(s != 200 for s in first) / len(first)
    assert 0.2 < share < 0.8 and {429, 200} <= set(first)


def test_rate_faults_respect_endpoints(catalog: Catalog) -> None:
    faults = Faults(rate_5xx=1.0, endpoints=frozenset({"artist"}))
    with FakeSpotify(catalog, faults=faults) as fake:
        token = token_for(fake)
        assert get(fake, "search", token, q="love", type="track").status_code == 200
        assert get(fake, f"artists/{next(iter(catalog.artists))}", token).status_code in (500, 502, 503)


def test_bad_fault_scripts_are_rejected(catalog: Catalog) -> None:
    assert "drop" in KINDS
    for script in ({("search", 1): "teapot"}, {("nowhere", 1): "429"}, {("search", 0): "429"}):
        with pytest.raises(ValueError):
            FakeSpotify(catalog, faults=Faults(script=script))


# -- bookkeeping and plumbing ------------------------------------------------------------------------------------


def test_request_counts_and_log(catalog: Catalog) -> None:
    with FakeSpotify(catalog, mode="extended", faults=Faults(script={("artist", 1): "500"})) as fake:
        sp = client(fake)
        artist_id, track_id = next(iter(catalog.artists)), next(iter(catalog.tracks))
        sp.search("love", limit=5)
        with pytest.raises(spotipy.SpotifyException):
            sp.artist(artist_id)
        sp.artist(artist_id)
        sp.artists([artist_id])
        with pytest.warns(DeprecationWarning):
            sp.audio_features([track_id])
        with pytest.warns(DeprecationWarning):
            sp.audio_analysis(track_id)
        expected = {"token": 1, "search": 1, "artist": 2, "artists": 1, "audio-features": 1, "audio-analysis": 1}
        assert fake.requests == Counter(expected)
        assert [(e, s) for e, _, s in fake.log] == [
            ("token", 200),
            ("search", 200),
            ("artist", 500),
            ("artist", 200),
            ("artists", 200),
            ("audio-features", 200),
            ("audio-analysis", 200),
        ]
        assert fake.log[1][1].startswith("/v1/search?") and "limit=5" in fake.log[1][1]


def test_concurrent_requests_are_counted(dev: FakeSpotify) -> None:
    token = token_for(dev)
    statuses: list[int] = []

    def worker() -> None:
        with requests.Session() as session:
            for i in range(10):
                statuses.append(get(dev, "search", token, session, q="love", type="track", offset=i).status_code)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 80 and dev.requests["search"] == 80 and len(dev.log) == 81


def test_keep_alive_and_links_back_to_the_fake(dev: FakeSpotify, catalog: Catalog) -> None:
    with requests.Session() as session:
        token = token_for(dev, session)
        page = get(dev, "search", token, session, q="love", type="track").json()["tracks"]
        track = page["items"][0]
        assert get(dev, track["href"][len(dev.api_base) :], token, session).json()["id"] == track["id"]
        artist = get(dev, track["artists"][0]["href"][len(dev.api_base) :], token, session).json()
        assert artist["id"] == track["artists"][0]["id"]
    assert dev.connections == 1  # one kept-alive connection for all four requests
    with_preview = next(t for t in catalog.tracks.values() if t["preview_url"])
    url = get(dev, f"tracks/{with_preview['id']}", token).json()["preview_url"]
    assert url.startswith(dev.base_url + "/mp3-preview/")
    clip = requests.get(url, timeout=5)  # no token needed, like p.scdn.co
    assert clip.status_code == 200 and clip.headers["Content-Type"] == "audio/mpeg" and clip.content
    assert dev.requests["preview"] == 1
    assert get(dev, "browse/new-releases", token).status_code == 404 and dev.requests["unknown"] == 1
