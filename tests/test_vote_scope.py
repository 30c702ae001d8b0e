"""The vote hears out-of-scope genres (`out_of_scope: vote`) and resolves related targets
(`related:`): rule files → artists' Spotify genres (as the corpus spells them) → labels.

Each artist below carries its real Spotify genres from the shared corpus (the tango singer
is the issue's example: one stray `pop punk`). The table gives its label under each of four
policies: off (today's vote), out-of-scope votes only, related targets only, both.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from genremap.cli import app
from genremap.dataset.labels import label_store
from genremap.engine import load_rules
from genremap.engine.loader import RuleErrors
from genremap.store import Store

RULES = """\
rules:
  - {name: metal, target: metal, kind: keyword, patterns: [metal], priority: 20, weight: 2}
  - {name: rock, target: rock, kind: keyword, patterns: [rock, punk], priority: 10}
  - {name: country rock, target: rock, kind: exact, patterns: [country rock], priority: 30}
  - {name: jazz, target: jazz, kind: keyword, patterns: [jazz, bebop], priority: 10}
  - {name: blues, target: blues, kind: keyword, patterns: [blues, soul], priority: 10}
  - {name: funk, target: disco, kind: keyword, patterns: [funk, disco], priority: 10}
  - {name: hip hop, target: hip hop, kind: keyword, patterns: [hip hop, rap], priority: 10}
  - {name: country, target: country, kind: keyword, patterns: [country, americana], priority: 10}
ignore:
  - subgenres: [pop, dance pop, post-teen pop, talent show, neo mellow, viral pop, hip pop,
                r&b, urban contemporary, new jack swing, neo soul, quiet storm,
                tango, vintage tango, folk, traditional folk, singer-songwriter]
    reason: outside the nine targets
  - subgenres: [adult standards, lounge, torch song]
    weight: 0.4
    reason: era tags crooners share with jazz singers
  - subgenres: [jazz blues]
    weight: 0
    reason: between jazz and blues, not outside them
"""

POLICIES = {
    "off": "",
    "out_of_scope": "policy: {name: vote, out_of_scope: vote}\n",
    "related": "policy: {name: vote, related: [[rock, metal], [country, rock], [jazz, blues], [blues, disco]]}\n",
    "both": "policy:\n  name: vote\n  out_of_scope: vote\n"
    "  related: [[rock, metal], [country, rock], [jazz, blues], [blues, disco]]\n",
}

# artist: (genres, tracks, {policy: label}); a label is a target or "(status)".
ARTISTS: dict[str, tuple[list[str], int, tuple[str, str, str, str]]] = {
    # hard rock between rock and metal: 2 rock votes, one metal word of weight 2 (a tie:
    # it goes to the target its group lists first, rock)
    "Guns N' Roses": (["glam metal", "hard rock", "rock"], 172, ("(ambiguous)", "(ambiguous)", "rock", "rock")),
    # alt-country between country and rock: 4 votes each (a tie: [country, rock] → country), 3 out of scope
    "Steve Earle": (
        [
            "alternative country",
            "country rock",
            "folk",
            "folk rock",
            "heartland rock",
            "mellow gold",
            "new americana",
            "outlaw country",
            "roots rock",
            "singer-songwriter",
            "texas country",
            "traditional folk",
        ],
        57,
        ("(ambiguous)", "(ambiguous)", "country", "country"),
    ),
    # modern R&B singers with one or three hip hop tags among mostly out-of-scope ones
    "Trey Songz": (
        ["dance pop", "pop", "r&b", "southern hip hop", "urban contemporary"],
        86,
        ("hip hop", "(ignored)", "hip hop", "(ignored)"),
    ),
    "Dru Hill": (
        [
            "dance pop",
            "hip hop",
            "hip pop",
            "neo soul",
            "new jack swing",
            "pop rap",
            "quiet storm",
            "r&b",
            "southern hip hop",
            "urban contemporary",
        ],
        46,
        ("hip hop", "(ignored)", "hip hop", "(ignored)"),
    ),
    # a jazz singer: one jazz and one soul vote, weak era tags, an abstaining `jazz blues`
    "Billie Holiday": (
        ["adult standards", "jazz blues", "lounge", "soul", "torch song", "vocal jazz"],
        1095,
        ("(ambiguous)", "(ignored)", "jazz", "jazz"),
    ),
    # soul/funk between blues and disco (a tie: [blues, disco] → blues)
    "Stevie Wonder": (["funk", "motown", "quiet storm", "soul"], 543, ("(ambiguous)", "(ignored)", "blues", "blues")),
    # pop singers whose one rock-named tag made them rock
    "Maroon 5": (["pop", "pop rock"], 141, ("rock", "(ignored)", "rock", "(ignored)")),
    "Kelly Clarkson": (
        ["dance pop", "neo mellow", "pop", "pop rock", "post-teen pop", "talent show", "viral pop"],
        77,
        ("rock", "(ignored)", "rock", "(ignored)"),
    ),
    "Tango Singer": (["tango", "vintage tango", "pop punk"], 40, ("rock", "(ignored)", "rock", "(ignored)")),
    # an unrelated split stays ambiguous under every policy
    "Jazz Metal Band": (["jazz fusion", "jazz", "progressive metal"], 12, ("(ambiguous)",) * 4),
    "The Rolling Stones": (["album rock", "british invasion", "classic rock", "rock"], 1035, ("rock",) * 4),
    "Britney Spears": (["dance pop", "pop", "post-teen pop"], 90, ("(ignored)",) * 4),
    "Bebop Quartet": (["jazz blues", "bebop"], 30, ("jazz",) * 4),
    "No Genres Yet": ([], 5, ("(unlabelled)",) * 4),
}


def _write_csv(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["artist_name", "genres", "count"])
        for name, (genres, tracks, _) in ARTISTS.items():
            out.writerow([name, repr(genres), tracks])
    return path


@pytest.fixture(scope="module")
def artists_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("vote")
    db = folder / "vote.db"
    result = CliRunner().invoke(app, ["import", str(_write_csv(folder / "artists.csv")), "--db", str(db)])
    assert result.exit_code == 0, result.output
    return db


@pytest.fixture
def rules_with(write_rules: Callable[..., Path]) -> Callable[[str], Path]:
    def make(policy: str) -> Path:
        return write_rules(
            {"10-rules.yaml": RULES, **({"05-policy.yaml": POLICIES[policy]} if policy != "off" else {})}
        )

    return make


def _labels(db: Path, rules: Path) -> dict[str, str]:
    ruleset = load_rules(rules)
    with Store.open(db, create=False, readonly=True) as store:
        frame = label_store(store, ruleset).artists
    label = frame["target"].where(frame["status"] == "labelled", "(" + frame["status"] + ")")
    return dict(zip(frame["name"], label, strict=True))


@pytest.mark.parametrize("policy", list(POLICIES))
def test_each_policy_labels_the_artists_as_the_table_says(
    policy: str, artists_db: Path, rules_with: Callable[[str], Path]
) -> None:
    column = list(POLICIES).index(policy)
    expected = {name: labels[column] for name, (_, _, labels) in ARTISTS.items()}
    assert _labels(artists_db, rules_with(policy)) == expected


def test_abstain_spelled_out_is_the_default(artists_db: Path, write_rules: Callable[..., Path]) -> None:
    spelled = write_rules({"10-rules.yaml": RULES, "05-policy.yaml": "policy: {name: vote, out_of_scope: abstain}\n"})
    default = write_rules({"10-rules.yaml": RULES})
    assert _labels(artists_db, spelled) == _labels(artists_db, default)


@pytest.mark.parametrize(
    ("groups", "earle", "gnr"),
    [
        ("[[country, rock], [rock, metal]]", "country", "rock"),
        ("[[rock, country], [metal, rock]]", "rock", "metal"),
        ("[[rock, country, metal]]", "rock", "rock"),  # a group of three: every pair is related
        ("[[country, rock], [rock, country]]", "country", "(ambiguous)"),  # the first group naming both decides
    ],
)
def test_a_tie_between_related_targets_goes_to_the_one_its_group_lists_first(
    groups: str, earle: str, gnr: str, artists_db: Path, write_rules: Callable[..., Path]
) -> None:
    policy = f"policy: {{name: vote, out_of_scope: vote, related: {groups}}}\n"
    labels = _labels(artists_db, write_rules({"10-rules.yaml": RULES, "05-policy.yaml": policy}))
    assert (labels["Steve Earle"], labels["Guns N' Roses"]) == (earle, gnr)
    assert labels["Jazz Metal Band"] == "(ambiguous)"


def test_out_of_scope_weighs_musicbrainz_vote_counts(write_rules: Callable[..., Path]) -> None:
    """A MusicBrainz genre's vote count multiplies its vote for none as it does a target's."""
    import pandas as pd

    from genremap.dataset.labels import label_artist_genres

    ruleset = load_rules(write_rules({"10-rules.yaml": RULES, "05-policy.yaml": POLICIES["both"]}))
    artists = pd.DataFrame({"artist_id": ["a", "b"], "name": ["Mostly Pop", "Mostly Rock"], "tracks": [10, 10]})
    genres = pd.DataFrame(
        {
            "artist_id": ["a", "a", "b", "b"],
            "source": ["musicbrainz"] * 4,
            "position": [0, 1, 0, 1],
            "genre": ["pop", "rock", "pop", "rock"],
            "votes": [5.0, 3.0, 1.0, 3.0],
        }
    )
    frame = label_artist_genres(ruleset, genres, artists, ruleset.policy).artists
    assert frame["status"].tolist() == ["ignored", "labelled"]
    assert frame["share"].iloc[1] == pytest.approx(0.75)
    assert frame["detail"].iloc[0] == "mostly out of scope: none 62% / rock 38%"


def test_explain_says_related_targets_decided(
    runner: CliRunner, artists_db: Path, rules_with: Callable[[str], Path]
) -> None:
    rules = rules_with("both")
    out = runner.invoke(app, ["explain", "--artist", "Steve Earle", "--db", str(artists_db), "--rules", str(rules)])
    assert out.exit_code == 0, out.output
    assert "out of scope (none) 3 (27%)" in out.stdout
    assert "→ country via 'alternative country' (rule 'country')" in out.stdout
    assert "related targets decided: rock 36% / country 36% / none 27%" in out.stdout
    data = json.loads(
        runner.invoke(
            app, ["explain", "--artist", "Trey Songz", "--db", str(artists_db), "--rules", str(rules), "-f", "json"]
        ).stdout
    )
    assert (data["status"], data["related_targets_decided"], data["out_of_scope_votes"]["votes"]) == (
        "ignored",
        False,
        4.0,
    )
    assert data["detail"] == "mostly out of scope: none 80% / hip hop 20%"


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (
            "policy: {name: vote, related: [[rock, metl]]}\n",
            "05-policy.yaml:1:39: unknown target 'metl' in policy 'related' (did you mean 'metal'?)",
        ),
        (
            "policy: {name: vote, out_of_scope: none}\n",
            "05-policy.yaml:1:36: unknown out_of_scope 'none'",
        ),
        ("policy: {name: vote, related: [[rock]]}\n", "05-policy.yaml:1:32: a group of related targets in policy"),
    ],
)
def test_bad_policy_options_are_one_located_line(
    policy: str, message: str, write_rules: Callable[..., Path], runner: CliRunner
) -> None:
    folder = write_rules({"10-rules.yaml": RULES, "05-policy.yaml": policy})
    with pytest.raises(RuleErrors) as caught:
        load_rules(folder)
    assert message in str(caught.value)
    result = runner.invoke(app, ["lint", "--rules", str(folder)])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_negative_ignore_weight_is_refused(write_rules: Callable[..., Path]) -> None:
    folder = write_rules(
        {"10-rules.yaml": RULES, "20-more.yaml": "ignore:\n  - {subgenre: schlager, weight: -1, reason: out}\n"}
    )
    with pytest.raises(RuleErrors) as caught:
        load_rules(folder)
    assert "20-more.yaml:2:" in str(caught.value) and "weight" in str(caught.value)


def _reference_vote(labelling: object, n_targets: int) -> tuple[np.ndarray, np.ndarray]:
    """The vote as it was before the options (mapped subgenres only, no related targets),
    artist by artist in plain Python: the independent check that 'off' is unchanged."""
    rows, labels = labelling.rows, labelling.labels  # type: ignore[attr-defined]
    decisions = [labelling.decisions[s] for s in labelling.vocab]  # type: ignore[attr-defined]
    targets = list(labelling.ruleset.targets)  # type: ignore[attr-defined]
    policy = labelling.policy  # type: ignore[attr-defined]
    weights = rows.votes if rows.votes is not None else np.full(len(rows.artist), np.nan)
    votes: dict[int, list[float]] = {}
    for a, s, w in zip(rows.artist.tolist(), rows.subgenre.tolist(), weights.tolist(), strict=True):
        d = decisions[s]
        if d.status == "mapped" and d.rule is not None:
            tally = votes.setdefault(a, [0.0] * n_targets)
            tally[targets.index(d.rule.target)] += d.rule.weight * (1.0 if w != w else w)
    status = np.array(labels.status, copy=True)
    target = np.full(len(status), -1)
    for a, tally in votes.items():
        total, ranked = sum(tally), sorted(range(n_targets), key=lambda t: (-tally[t], t))
        share, margin = tally[ranked[0]] / total, (tally[ranked[0]] - tally[ranked[1]]) / total
        won = share >= policy.min_share and margin >= policy.min_margin and margin > 0
        status[a], target[a] = (0, ranked[0]) if won else (1, -1)
    return status, target


def test_off_reproduces_the_plain_vote_on_the_corpus(corpus: Path, tmp_path: Path) -> None:
    """With both options off, the default rules label the 22,727-artist corpus exactly as the
    plain vote does (the policy before these options), artist by artist."""
    from genremap.engine import default_rules_dir

    db = tmp_path / "corpus.db"
    assert CliRunner().invoke(app, ["import", str(corpus), "--db", str(db)]).exit_code == 0
    ruleset = load_rules(default_rules_dir())
    off = replace(ruleset.policy, out_of_scope="abstain", related=())
    with Store.open(db, create=False, readonly=True) as store:
        labelling = label_store(store, ruleset, off)
        on = label_store(store, ruleset)
    status, target = _reference_vote(labelling, len(ruleset.targets))
    labels = labelling.labels
    has_target = status == 0
    assert np.array_equal(labels.status, status)
    assert np.array_equal(labels.target[has_target], target[has_target])
    assert not labels.by_related.any() and not labels.out_of_scope.any()
    # and the default rules' options do change labels (the test would catch them ignored)
    assert (on.labels.status != labels.status).sum() > 500
    assert int(on.labels.by_related.sum()) > 50


# --- genremap artists and diff --artists ------------------------------------------------------


def _cli(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_artists_lists_every_artist_most_tracks_first_in_each_format(
    runner: CliRunner, artists_db: Path, rules_with: Callable[[str], Path]
) -> None:
    common = ("artists", "--db", str(artists_db), "--rules", str(rules_with("both")))
    rows = list(csv.DictReader(_cli(runner, *common, "-f", "csv").splitlines()))
    assert list(rows[0]) == ["artist_id", "artist", "status", "target", "subgenre", "rule", "share", "source", "tracks"]
    by_tracks = sorted(ARTISTS, key=lambda name: (-ARTISTS[name][1], name))
    assert [r["artist"] for r in rows] == by_tracks
    earle = next(r for r in rows if r["artist"] == "Steve Earle")
    assert (earle["status"], earle["target"], earle["subgenre"], earle["rule"], earle["source"]) == (
        "labelled",
        "country",
        "alternative country",
        "country",
        "import",  # genres from an imported file are kept under their own source
    )
    assert float(earle["share"]) == pytest.approx(4 / 11, abs=1e-4)  # country 4 of 11 votes (3 are "none")
    trey = next(r for r in rows if r["artist"] == "Trey Songz")
    assert (trey["status"], trey["target"], trey["share"], trey["tracks"]) == ("ignored", "", "", "86")
    data = json.loads(_cli(runner, *common, "-f", "json"))
    assert [d["artist"] for d in data] == by_tracks
    assert next(d for d in data if d["artist"] == "Trey Songz")["target"] is None
    assert next(d for d in data if d["artist"] == "No Genres Yet")["source"] is None
    table = _cli(runner, *common)
    assert table.splitlines()[0].strip() == f"{len(ARTISTS)} artists"
    assert table.index("Billie Holiday") < table.index("The Rolling Stones") < table.index("Stevie Wonder")
    top = _cli(runner, *common, "--top", "2")
    assert (
        top.splitlines()[0].strip() == f"{len(ARTISTS)} artists (top 2 of {len(ARTISTS)} by tracks; --top 0 lists all)"
    )
    assert "Billie Holiday" in top and "The Rolling Stones" in top and "Stevie Wonder" not in top


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (("--target", "Rock"), ["The Rolling Stones", "Guns N' Roses"]),
        (("--target", "country"), ["Steve Earle"]),
        (("--status", "ambiguous"), ["Jazz Metal Band"]),
        (("--status", "ignored", "--top", "2"), ["Maroon 5", "Britney Spears"]),
        (("--name", "sOnGz"), ["Trey Songz"]),
        (("--source", "none"), ["No Genres Yet"]),
        (("--source", "import", "--name", "holiday"), ["Billie Holiday"]),
    ],
)
def test_artists_filters(
    filters: tuple[str, ...],
    expected: list[str],
    runner: CliRunner,
    artists_db: Path,
    rules_with: Callable[[str], Path],
) -> None:
    out = _cli(runner, "artists", "--db", str(artists_db), "--rules", str(rules_with("both")), *filters, "-f", "json")
    assert [d["artist"] for d in json.loads(out)] == expected


@pytest.mark.parametrize(
    ("option", "words"),
    [
        (("--status", "labeled"), "--status 'labeled': expected labelled, ambiguous, unlabelled, ignored"),
        (("--target", "rokc"), "--target: unknown target 'rokc'"),
        (("--source", "lastfn"), "--source 'lastfn': expected one of"),
        (("--top", "-1"), "--top must be 0 (all) or more"),
    ],
)
def test_artists_refuses_bad_filters_in_one_line(
    option: tuple[str, ...], words: str, runner: CliRunner, artists_db: Path, rules_with: Callable[[str], Path]
) -> None:
    result = runner.invoke(app, ["artists", "--db", str(artists_db), "--rules", str(rules_with("off")), *option])
    assert result.exit_code == 2
    assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_diff_artists_lists_the_artists_that_change_label(
    runner: CliRunner, artists_db: Path, rules_with: Callable[[str], Path]
) -> None:
    before, after = rules_with("off"), rules_with("both")
    common = ("diff", "--db", str(artists_db), "--base", str(before), "--rules", str(after), "--artists")
    moved = sorted(
        (
            (name, labels[0], labels[3], tracks)
            for name, (_, tracks, labels) in ARTISTS.items()
            if labels[0] != labels[3]
        ),
        key=lambda m: (-m[3], m[0]),
    )
    assert len(moved) == 9
    data = json.loads(_cli(runner, *common, "-f", "json"))
    assert [(a["artist"], a["from"], a["to"], a["tracks"]) for a in data["artists"]] == moved
    assert data["artists_moved"] == len(moved)
    rows = list(csv.DictReader(_cli(runner, *common, "-f", "csv").splitlines()))
    assert list(rows[0]) == ["artist_id", "artist", "from", "to", "tracks"]
    assert [(r["artist"], r["from"], r["to"], int(r["tracks"])) for r in rows] == moved
    table = _cli(runner, *common)
    assert "Artists that change label" in table
    assert table.index("Billie Holiday") < table.index("Stevie Wonder") < table.index("Maroon 5")
    # without --artists, diff is as it was: the matrix and no artist list
    assert "artists" not in json.loads(_cli(runner, *common[:-1], "-f", "json"))


def test_an_ignore_weight_edit_is_heard_through_the_decision_cache(
    artists_db: Path, write_rules: Callable[..., Path], tmp_path: Path
) -> None:
    """The store's decision cache keeps decisions across commands; an edit of only an ignore
    entry's weight changes no decision, but must change the votes of the next command."""
    import shutil

    db = tmp_path / "cached.db"
    shutil.copy(artists_db, db)
    folder = write_rules({"10-rules.yaml": RULES, "05-policy.yaml": POLICIES["both"]})

    def billie() -> str:
        with Store.open(db, create=False) as store:
            frame = label_store(store, load_rules(folder)).artists
        row = frame[frame["name"] == "Billie Holiday"].iloc[0]
        return str(row["target"] if row["status"] == "labelled" else f"({row['status']})")

    assert billie() == "jazz"  # era tags at 0.4: jazz and blues together lead "none"
    text = (folder / "10-rules.yaml").read_text(encoding="utf-8")
    (folder / "10-rules.yaml").write_text(text.replace("weight: 0.4", "weight: 1"), encoding="utf-8")
    assert billie() == "(ignored)"  # at 1 the three era tags outvote her
