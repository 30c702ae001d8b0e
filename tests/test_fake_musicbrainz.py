"""Tests of the MusicBrainz fake itself (tests/fakes/musicbrainz.py): that it is as strict as the
tests of genremap need it to be."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from fakes.musicbrainz import DEFAULT_CATALOG, FakeMusicBrainz

from genremap.collectors.musicbrainz import user_agent


@pytest.fixture
def fake() -> Iterator[FakeMusicBrainz]:
    with FakeMusicBrainz() as server:
        yield server


def test_fake_turns_away_clients_without_a_user_agent(fake: FakeMusicBrainz) -> None:
    answer = requests.get(f"{fake.api}/artist", params={"query": 'artist:"x"', "fmt": "json"}, timeout=5)
    assert answer.status_code == 403 and fake.statuses[403] == 1


def test_fake_refuses_unescaped_queries(fake: FakeMusicBrainz) -> None:
    answer = requests.get(
        f"{fake.api}/artist",
        params={"query": 'artist:"AC/DC"', "fmt": "json"},
        headers={"User-Agent": user_agent()},
        timeout=5,
    )
    assert answer.status_code == 400


def test_default_catalog_covers_the_documented_cases() -> None:
    names = {record["name"] for record in DEFAULT_CATALOG.values()}
    assert {"The Beatles", "The Beatles Revival Band", "Beyoncé", "Diddy", "Nirvana"} <= names
