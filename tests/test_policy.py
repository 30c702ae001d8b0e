"""Artist policies: first, vote (with ambiguity), priority; ignored and unlabelled artists."""

from __future__ import annotations

import pandas as pd
import pytest

from genremap.dataset.labels import choose_policy, label_artist_genres
from genremap.engine import Policy, RuleSet
from genremap.errors import UsageError

ARTISTS = {
    # artist: genres in Spotify's order
    "metal band": ["alternative metal", "industrial metal", "nu metal", "post-grunge", "rap rock"],
    "country rocker": ["country rock", "hard rock", "southern rock"],
    "mostly rock": ["hard rock", "punk", "bebop"],
    "bluegrass picker": ["bluegrass", "hard rock"],
    "split": ["hard rock", "bebop"],
    "three way": ["hard rock", "bebop", "chicago blues"],
    "soul jazz man": ["soul", "soul jazz", "hard bop"],
    "pop star": ["dance pop", "pop"],
    "nobody": [],
    "unknown": ["vapor twitch", "pop"],
    "rapper": ["dark trap", "pop", "trap latino"],
}


def _frames(artists: dict[str, list[str]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    genres = pd.DataFrame(
        [(a, "spotify", i, g) for a, gs in artists.items() for i, g in enumerate(gs)],
        columns=["artist_id", "source", "position", "genre"],
    )
    table = pd.DataFrame({"artist_id": list(artists), "name": list(artists), "tracks": 10, "stored_tracks": 10})
    return genres, table


def _labels(ruleset: RuleSet, policy: Policy) -> pd.DataFrame:
    genres, table = _frames(ARTISTS)
    return label_artist_genres(ruleset, genres, table, policy).artists.set_index("artist_id")


@pytest.mark.parametrize(
    ("policy", "artist", "status", "target"),
    [
        ("first", "metal band", "labelled", "metal"),
        ("first", "country rocker", "labelled", "rock"),
        ("first", "bluegrass picker", "labelled", "country"),
        ("vote", "bluegrass picker", "ambiguous", None),
        ("first", "split", "labelled", "rock"),
        ("first", "soul jazz man", "labelled", "blues"),
        ("vote", "metal band", "labelled", "metal"),
        ("vote", "country rocker", "labelled", "rock"),
        ("vote", "split", "ambiguous", None),
        ("vote", "three way", "ambiguous", None),
        ("vote", "soul jazz man", "labelled", "jazz"),
        ("priority", "metal band", "labelled", "metal"),
        ("priority", "soul jazz man", "labelled", "jazz"),
        ("priority", "split", "labelled", "rock"),
        ("vote", "pop star", "ignored", None),
        ("first", "pop star", "ignored", None),
        ("vote", "nobody", "unlabelled", None),
        ("vote", "unknown", "unlabelled", None),
        ("vote", "rapper", "labelled", "hip hop"),
    ],
)
def test_policies(test_rules: RuleSet, policy: str, artist: str, status: str, target: str | None) -> None:
    row = _labels(test_rules, Policy(policy)).loc[artist]
    assert row["status"] == status
    assert (None if pd.isna(row["target"]) else row["target"]) == target


def test_vote_share_and_margin_thresholds(test_rules: RuleSet) -> None:
    # mostly rock: rock 2 votes, jazz 1 → share 2/3, margin 1/3.
    strict = _labels(test_rules, Policy("vote", min_share=0.7, min_margin=0.1)).loc["mostly rock"]
    assert strict["status"] == "ambiguous"
    assert "rock 67%" in strict["detail"] and "jazz 33%" in strict["detail"]
    lenient = _labels(test_rules, Policy("vote", min_share=0.6, min_margin=0.3)).loc["mostly rock"]
    assert lenient["status"] == "labelled"
    assert lenient["share"] == pytest.approx(2 / 3)
    margin = _labels(test_rules, Policy("vote", min_share=0.5, min_margin=0.4)).loc["mostly rock"]
    assert margin["status"] == "ambiguous"


def test_deciding_subgenre_and_detail(test_rules: RuleSet) -> None:
    labels = _labels(test_rules, Policy("vote"))
    assert labels.loc["metal band", "subgenre"] == "alternative metal"
    assert labels.loc["metal band", "genre"] == "alternative metal"
    assert labels.loc["rapper", "subgenre"] == "dark trap"
    assert labels.loc["nobody", "detail"] == "no genres"
    assert labels.loc["unknown", "detail"] == "no subgenre maps"


def test_rule_weight_changes_the_vote(write_rules) -> None:  # type: ignore[no-untyped-def]
    from genremap.engine import load_rules

    heavy = write_rules(
        {
            "10.yaml": """
            rules:
              - {name: rock, target: rock, kind: keyword, patterns: [rock]}
              - {name: jazz, target: jazz, kind: keyword, patterns: [bebop], weight: 3}
            """
        }
    )
    labels = _labels(load_rules(heavy), Policy("vote"))
    assert labels.loc["split", "target"] == "jazz"
    assert labels.loc["split", "share"] == pytest.approx(0.75)


def test_choose_policy(test_rules: RuleSet) -> None:
    assert choose_policy(test_rules, None).name == "vote"
    assert choose_policy(test_rules, "first").name == "first"
    with pytest.raises(UsageError, match="unknown policy"):
        choose_policy(test_rules, "majority")


def test_duplicate_spellings_vote_once(test_rules: RuleSet) -> None:
    genres, table = _frames({"a": ["hip hop", "hip-hop", "Hip Hop", "hard rock", "punk"]})
    row = label_artist_genres(test_rules, genres, table, Policy("vote")).artists.set_index("artist_id").loc["a"]
    # Three spellings of hip hop are one subgenre: one vote against two for rock.
    assert row["status"] == "labelled"
    assert row["target"] == "rock"
    assert row["share"] == pytest.approx(2 / 3)
