"""The "not a genre" kind (`not_genres:` in the rule files) and the default noise tags.

A not-genre (Last.fm's `seen live`, `female vocalists`, `80s`, `british`) is neither mapped,
nor ignored, nor unmapped: it beats rules and ignore entries, never votes, never makes an
artist "ignored", and is left out of the unmapped lists.
"""

from __future__ import annotations

import ast
import csv
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_CORPUS
from typer.testing import CliRunner

from genremap.cli import app
from genremap.engine import IGNORED, MAPPED, NOT_GENRE, UNMAPPED, CompiledRules, default_rules_dir, load_rules
from genremap.engine.cache import Saved, cache_key, decide_cached
from genremap.engine.model import Policy
from genremap.engine.policy import ARTIST_STATUSES, DecisionArrays, resolve
from genremap.errors import RuleErrors
from genremap.normalize import normalize_genre
from genremap.store import ArtistRecord, Store
from genremap.vocabulary import musicbrainz_genres

RULES = """\
rules:
  - name: rock
    target: rock
    kind: keyword
    patterns: [rock]
  - name: metal
    target: metal
    kind: keyword
    patterns: [metal]
ignore:
  - kind: keyword
    patterns: [pop]
    reason: pop is out of scope
not_genres:
  - subgenres: [seen live, female vocalists, rock legends]
    reason: a listener's words
  - kind: regex
    patterns: ['^(19|20)?[0-9]0s$']
    unless: [70s]
    unless_kind: exact
    reason: a decade alone
"""


@pytest.fixture
def rules_dir(write_rules: Callable[..., Path]) -> Path:
    return write_rules({"10-rules.yaml": RULES})


# --- loader, matcher ----------------------------------------------------------------------------


def test_not_genres_entries_load_with_their_own_kind(rules_dir: Path) -> None:
    ruleset = load_rules(rules_dir)
    assert [(e.not_genre, e.kind) for e in ruleset.ignore] == [(False, "keyword"), (True, "exact"), (True, "regex")]


@pytest.mark.parametrize(
    ("subgenre", "status", "target"),
    [
        ("seen live", NOT_GENRE, None),
        ("rock legends", NOT_GENRE, None),  # beats the rule `rock` that also matches
        ("80s", NOT_GENRE, None),
        ("1980s", NOT_GENRE, None),
        ("70s", UNMAPPED, None),  # its `unless` spares it
        ("80s rock", MAPPED, "rock"),  # a genre with a date stays a genre
        ("80s pop", IGNORED, None),
        ("pop", IGNORED, None),
        ("metal", MAPPED, "metal"),
        ("seen", UNMAPPED, None),
    ],
)
def test_a_not_genre_beats_rules_and_ignore_entries(rules_dir: Path, subgenre: str, status: str, target: str) -> None:
    decision = CompiledRules.build(load_rules(rules_dir)).decide(subgenre)
    assert (decision.status, decision.target) == (status, target)
    if status == NOT_GENRE:
        assert decision.reason.startswith("not a genre: ")


def test_a_not_genre_wins_over_an_ignore_entry_that_also_matches(write_rules: Callable[..., Path]) -> None:
    both = RULES.replace("[seen live, female vocalists, rock legends]", "[seen live, female vocalists, pop idols]")
    decision = CompiledRules.build(load_rules(write_rules({"10-rules.yaml": both}))).decide("pop idols")
    assert decision.status == NOT_GENRE and decision.ignored_by is not None and decision.ignored_by.not_genre


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("- reason: no patterns", "not_genres entry #1 needs 'subgenre', 'subgenres' or 'patterns'"),
        ("- subgenres: [x]\n  reason: r\n  target: rock", "not_genres entry #1"),
        ("- subgenres: [x]", "missing key 'reason' in not_genres entry #1"),
        ("- just a string", "not_genres entry #1 must be a mapping"),
    ],
)
def test_bad_not_genres_entries_are_located_errors(write_rules: Callable[..., Path], entry: str, message: str) -> None:
    folder = write_rules({"10-x.yaml": "not_genres:\n" + "\n".join("  " + line for line in entry.splitlines())})
    with pytest.raises(RuleErrors) as caught:
        load_rules(folder)
    assert message in caught.value.message and "10-x.yaml:" in caught.value.message


# --- the vote, the cache ---------------------------------------------------------------------------


def test_not_genres_never_vote_and_never_make_an_artist_ignored(rules_dir: Path) -> None:
    ruleset = load_rules(rules_dir)
    subgenres = ["rock", "seen live", "pop", "80s", "metal"]
    decisions = CompiledRules.build(ruleset).decide_many(subgenres)
    targets = list(ruleset.targets)
    arrays = DecisionArrays.build([decisions[s] for s in subgenres], targets)
    assert arrays.status.tolist() == [0, 3, 1, 3, 0]  # a code of its own, apart from ignored (1)
    code = {s: i for i, s in enumerate(subgenres)}
    artists = {
        "rock and noise": ["rock", "seen live", "80s"],  # labelled rock, 100 % of the votes
        "noise only": ["seen live", "80s"],  # unlabelled: nothing that is a genre
        "pop and noise": ["pop", "seen live"],  # ignored: its only genre is out of scope
        "rock, metal, noise": ["rock", "metal", "seen live", "80s"],  # a tie: ambiguous, noise does not break it
    }
    artist = np.array([a for a, subs in enumerate(artists.values()) for _ in subs])
    subgenre = np.array([code[s] for subs in artists.values() for s in subs])
    labels = resolve(len(artists), artist, subgenre, arrays, Policy(), targets)
    statuses = [ARTIST_STATUSES[s] for s in labels.status]
    assert statuses == ["labelled", "unlabelled", "ignored", "ambiguous"]
    assert targets[labels.target[0]] == "rock" and labels.share[0] == 1.0


def test_the_decision_cache_keeps_the_not_genre_status(rules_dir: Path) -> None:
    ruleset = load_rules(rules_dir)
    vocab = ["rock", "seen live", "pop", "80s", "70s", "rock legends"]
    fresh, _, payload = decide_cached(ruleset, vocab, None, lambda: CompiledRules.build(ruleset))
    assert payload is not None
    cached, use, _ = decide_cached(
        ruleset, vocab, Saved(cache_key(ruleset, vocab), payload), lambda: CompiledRules.build(ruleset)
    )
    assert use.hit and use.decided == 0
    assert {s: d.status for s, d in cached.items()} == {s: d.status for s, d in fresh.items()}
    assert cached["seen live"].status == NOT_GENRE and cached["seen live"].ignored_by is not None
    assert cached["seen live"].ignored_by.not_genre


# --- the default rules ---------------------------------------------------------------------------

NOISE = [
    "seen live", "Seen Live", "favorites", "favourite", "albums I own", "female vocalists", "male vocalists",
    "80s", "80's", "1980s", "00s", "2010s", "1999", "british", "American", "UK", "usa", "german", "awesome",
    "love", "beautiful", "guitar", "covers", "under 2000 listeners",
]  # fmt: skip
GENRES = [
    "80s pop", "90s rock", "british blues", "german metal", "chicago blues", "chill", "chillout",
    "singer-songwriter", "instrumental", "latin", "soundtrack", "violin", "sleep", "indie", "alternative",
    "2 tone", "2-step", "female fronted metal",
]  # fmt: skip


@pytest.fixture(scope="module")
def packaged() -> CompiledRules:
    return CompiledRules.build(load_rules(default_rules_dir()))


@pytest.mark.parametrize("tag", NOISE)
def test_the_default_rules_call_the_common_noise_tags_not_genres(packaged: CompiledRules, tag: str) -> None:
    assert packaged.decide(normalize_genre(tag)).status == NOT_GENRE


@pytest.mark.parametrize("name", GENRES)
def test_the_default_rules_keep_genre_names_genres(packaged: CompiledRules, name: str) -> None:
    assert packaged.decide(normalize_genre(name)).status != NOT_GENRE


def test_no_musicbrainz_genre_and_no_corpus_spotify_genre_is_a_not_genre(packaged: CompiledRules) -> None:
    names = [normalize_genre(n) for n in musicbrainz_genres()]
    assert len(names) == 2098
    if SHARED_CORPUS.is_file():
        with SHARED_CORPUS.open(encoding="utf-8", newline="") as handle:
            spotify = {normalize_genre(g) for row in csv.DictReader(handle) for g in ast.literal_eval(row["genres"])}
        assert len(spotify) > 2000
        names += sorted(spotify)
    decisions = packaged.decide_many(names)
    assert [s for s, d in decisions.items() if d.status == NOT_GENRE] == []


# --- reports: subgenres, unmapped, explain, lint --------------------------------------------------------


@pytest.fixture
def noisy_db(tmp_path: Path) -> Path:
    db = tmp_path / "noisy.db"
    with Store.open(db) as store:
        store.upsert_artists(
            [
                ArtistRecord("a1", "Band", genres=("rock", "seen live", "80s")),
                ArtistRecord("a2", "Singer", genres=("seen live", "female vocalists", "zydeco glitch")),
            ],
            origin="test",
        )
    return db


def test_subgenres_show_not_genres_and_unmapped_lists_leave_them_out(noisy_db: Path, rules_dir: Path) -> None:
    runner = CliRunner()
    common = ["--db", str(noisy_db), "--rules", str(rules_dir), "-f", "json"]
    rows = json.loads(runner.invoke(app, ["subgenres", *common]).stdout)
    assert {r["subgenre"]: r["status"] for r in rows} == {
        "rock": "mapped",
        "seen live": "not_genre",
        "80s": "not_genre",
        "female vocalists": "not_genre",
        "zydeco glitch": "unmapped",
    }
    only = json.loads(runner.invoke(app, ["subgenres", *common, "--status", "not_genre"]).stdout)
    assert sorted(r["subgenre"] for r in only) == ["80s", "female vocalists", "seen live"]
    unmapped = json.loads(runner.invoke(app, ["unmapped", *common]).stdout)
    assert [r["subgenre"] for r in unmapped] == ["zydeco glitch"]
    report = json.loads(runner.invoke(app, ["report", *common]).stdout)
    assert report["totals"]["not_genre_subgenres"] == 3 and report["totals"]["mapped_subgenres"] == 1
    assert report["ignored"]["artists"] == 0 and report["unlabelled"]["artists"] == 1
    explained = runner.invoke(app, ["explain", "seen live", "--rules", str(rules_dir)])
    assert explained.exit_code == 0 and "not a genre: a listener's words" in explained.stdout


def test_lint_names_not_genres_entries(write_rules: Callable[..., Path]) -> None:
    folder = write_rules(
        {"10-x.yaml": "not_genres:\n  - kind: regex\n    patterns: ['^(\\\\w+\\\\s?)+$']\n    reason: r\n"}
    )
    result = CliRunner().invoke(app, ["lint", "--rules", str(folder), "--db", str(folder / "none.db")])
    assert "not_genres entry #1: regex" in result.stdout, result.stdout
