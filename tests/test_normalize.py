"""Canonical genre strings: spelling variants meet."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genremap.normalize import _normalize_genre_fully, normalize_genre, normalize_name, recording_key, strip_version


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("Hip-Hop", "hip hop"),
        ("hip hop", "hip hop"),
        ("HipHop", "hip hop"),
        ("hip_hop", "hip hop"),
        ("Rock & Roll", "rock and roll"),
        ("rock 'n' roll", "rock and roll"),
        ("rock n roll", "rock and roll"),
        ("rock-and-roll", "rock and roll"),
        ("R&B", "r and b"),
        ("rnb", "r and b"),
        ("drum & bass", "drum and bass"),
        ("Música Mexicana", "musica mexicana"),
        ("électro", "electro"),
        ("  Dark   Trap ", "dark trap"),
        ("post-grunge", "post grunge"),
        ("k-pop", "k pop"),
        ("children's music", "childrens music"),
        ("lo-fi beats", "lo fi beats"),
        ("lofi beats", "lo fi beats"),
        ("synthpop", "synth pop"),
        ("øresund rock", "oresund rock"),
        ("", ""),
        ("&&", "and and"),
    ],
)
def test_normalize_genre(raw: str, canonical: str) -> None:
    assert normalize_genre(raw) == canonical


@given(st.text(alphabet="aAbBnNRZz09 &'+-_.é", max_size=14))
def test_the_shortcut_for_plain_text_gives_what_the_full_path_gives(text: str) -> None:
    """Names and genres that only need lower-casing skip the regexes: same result."""
    assert normalize_genre(text) == _normalize_genre_fully(text)


@pytest.mark.parametrize("text", ["The Paper Ensemble", "DNB", "Rock N Roll", "HipHop Heads", "AC DC 2"])
def test_the_shortcut_keeps_compounds_and_n(text: str) -> None:
    assert normalize_genre(text) == _normalize_genre_fully(text)


def test_normalize_is_idempotent() -> None:
    for raw in ["Hip-Hop", "rock 'n' roll", "R&B", "Música Mexicana", "k-pop"]:
        once = normalize_genre(raw)
        assert normalize_genre(once) == once


@pytest.mark.parametrize(
    ("title", "stripped"),
    [
        ("Heroes - 2017 Remaster", "Heroes"),
        ("Let It Be - Remastered 2009", "Let It Be"),
        ("Paint It Black (Remastered)", "Paint It Black"),
        ("Hey Jude - Remastered 2015 / Mono", "Hey Jude"),
        ("Song (feat. Drake)", "Song"),
        ("Song ft. Someone", "Song"),
        ("Song [Mono]", "Song"),
        ("Song - Single Version", "Song"),
        ("Song - Radio Edit", "Song"),
        ("Song (Deluxe Edition)", "Song"),
        ("Song - Live", "Song - Live"),
        ("Song - Remix", "Song - Remix"),
        ("Song (Live at Wembley)", "Song (Live at Wembley)"),
        ("With or Without You", "With or Without You"),
    ],
)
def test_strip_version(title: str, stripped: str) -> None:
    assert strip_version(title) == stripped


def test_recording_key_groups_releases_of_one_song() -> None:
    assert recording_key("The Beatles", "Let It Be - Remastered 2009") == recording_key("Beatles", "let it be")
    assert recording_key("The Beatles", "Let It Be") != recording_key("The Beatles", "Let It Be - Live")
    assert recording_key("A", "Song") != recording_key("B", "Song")
    assert normalize_name("The Rolling Stones") == "rolling stones"
