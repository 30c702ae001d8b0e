"""Suggestions for unmapped subgenres, checked against a person's judgement on the shared corpus.

The tables below were labelled by hand, by what the music is (the artists, the scene), not by
the words of the name: for each of the top unmapped subgenres of the corpus under the default
rules, the targets that would be right, or IGNORE for music outside the nine targets (most of
the long tail: regional traditions, spoken word, pop scenes). A few are genuinely two-sided
(`dusseldorf electronic`, Kraftwerk, is electro's origin or synth-pop); both answers count there.
`UNSURE` marks the few nobody could call; they count for coverage but not for precision.
TOP_50 is the requested set; NEXT_60 (ranks 51-110) was labelled before the suggester was run
on it and is held out: the suggester was never tuned on it. When the rules came to decide every
MusicBrainz genre (issue 9), 22 of these names were decided and left the tables; the 22 that
entered ranks 51-110 were labelled the same way, before the suggester was run on them.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from genremap.cli import app
from genremap.collectors.importers import check_files, import_files
from genremap.dataset.labels import Labelling, choose_policy, label_store
from genremap.engine import IGNORED, MAPPED, CompiledRules, default_rules_dir, load_rules
from genremap.report import EMIT_CONFIDENCE, IGNORE_SUGGESTION, SHOW_CONFIDENCE, emit_rules_yaml, unmapped
from genremap.store import Store

SHARED_CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "spotify_artists_genres.csv"

IGNORE = IGNORE_SUGGESTION
UNSURE = "?"

TOP_50: dict[str, set[str]] = {
    "glee club": {IGNORE},  # Glee Cast: show-tune covers
    "american primitive": {IGNORE},  # John Fahey, Leo Kottke: fingerstyle folk guitar
    "dusseldorf electronic": {"house", IGNORE},  # Kraftwerk: electro's origin, or synth-pop
    "icelandic experimental": {IGNORE},  # Björk: art pop, experimental
    "braindance": {IGNORE},  # Aphex Twin: IDM, which the rules leave out
    "musica aragonesa": {"rock", IGNORE},  # a region's scene (here Heroes del Silencio)
    "middle eastern traditional": {IGNORE},
    "mexican son": {IGNORE},
    "oratory": {IGNORE},  # speeches
    "african percussion": {IGNORE},
    "ilahiler": {IGNORE},  # Turkish hymns
    "mexican traditional": {IGNORE},
    "military cadence": {IGNORE},
    "bandoneon": {IGNORE},  # tango's instrument
    "prepared piano": {"classical"},  # Cage's sonatas
    "komedi": {IGNORE},  # Swedish comedy
    "mexican electronic": {"house", IGNORE},
    "musica potosina": {IGNORE},  # regional Mexican
    "cuatro venezolano": {IGNORE},
    "scratch": {"hip hop"},  # turntablism
    "rif": {IGNORE},
    "mallet": {"classical", "jazz"},  # marimba and vibraphone players
    "malaysian mandopop": {IGNORE},
    "canzone genovese": {IGNORE},  # Genoese singer-songwriters
    "koto": {IGNORE},
    "magyar": {IGNORE},
    "magyar alternative": {"rock", IGNORE},
    "musica jibara": {IGNORE},  # Puerto Rican folk
    "new isolationism": {IGNORE},
    "spanish invasion": {"rock", IGNORE},  # 1960s Spanish beat groups
    "modern uplift": {"country", IGNORE},
    "scandinavian r and b": {IGNORE},  # contemporary R&B, which the rules leave out
    "ethnomusicology": {IGNORE},  # field recordings
    "mollywood": {IGNORE},  # Malayalam film songs
    "sandalwood": {IGNORE},  # Kannada film songs
    "bandinhas": {IGNORE},
    "indonesian r and b": {IGNORE},
    "musica nativista": {IGNORE},
    "south african alternative": {UNSURE},  # Die Antwoord and alternative rock bands
    "francoton": {IGNORE},
    "ballet class": {"classical"},  # piano music for ballet lessons
    "audiophile vocal": {IGNORE, "jazz"},
    "chinese traditional": {IGNORE},
    "contrabass": {UNSURE},
    "indie quebecois": {IGNORE, "rock"},
    "neue deutsche todeskunst": {"rock", IGNORE},  # German darkwave
    "norsk lovsang": {IGNORE},  # worship
    "brazilian percussion": {IGNORE},
    "gothic alternative": {"rock"},
    "italian gothic": {"metal"},  # Lacuna Coil
}

NEXT_60: dict[str, set[str]] = {
    "japanese experimental": {IGNORE},
    "slovenian electronic": {"house", IGNORE},
    "solipsynthm": {UNSURE},
    "chakra": {IGNORE},
    "chinese audiophile": {IGNORE},
    "shabad": {IGNORE},
    "dutch cabaret": {IGNORE},
    "euroska": {IGNORE},
    "musica canaria": {IGNORE},
    "musica prehispanica": {IGNORE},
    "pianissimo": {IGNORE},
    "rwandan traditional": {IGNORE},
    "australian indigenous": {IGNORE, "rock"},
    "chinese instrumental": {IGNORE},
    "duduk": {IGNORE},
    "electronica argentina": {IGNORE},
    "instrumental acoustic guitar": {IGNORE},
    "irish banjo": {IGNORE},
    "music box": {IGNORE},
    "musica sarda": {IGNORE},
    "musikkorps": {IGNORE, "classical"},
    "prog quebec": {"rock"},
    "dakke dak": {"house"},
    "jamtronica": {"rock", "house"},
    "latintronica": {IGNORE},
    "bansuri": {IGNORE},
    "folclore extremeno": {IGNORE},
    "guitarra portuguesa": {IGNORE},
    "irish ballad": {IGNORE},
    "accordeon": {IGNORE},
    "circus": {IGNORE},
    "greek clarinet": {IGNORE},
    "harp": {"classical", IGNORE},
    "musical advocacy": {IGNORE},
    "nueva ola peruana": {"rock", IGNORE},
    "tzadik": {"jazz", IGNORE},
    "uzbek traditional": {IGNORE},
    "animal singing": {IGNORE},
    "clawhammer banjo": {"country"},  # Clarence Ashley: old-time banjo
    "danspunk": {"rock", IGNORE},  # Eddie Meduza: Swedish rockabilly and dansband parody
    "denpa kei": {IGNORE},  # Japanese otaku pop
    "detskie pesni": {IGNORE},  # Russian children's songs
    "egyptian traditional": {IGNORE},
    "erhu": {IGNORE},  # the Chinese fiddle
    "ghanaian traditional": {IGNORE},
    "guzheng": {IGNORE},
    "gypsy": {IGNORE},  # Romani songs (the Piatnitsky Chorus)
    "japanese electronic": {"house", IGNORE},  # Susumu Yokota: ambient and house
    "japanese idm": {IGNORE},  # IDM, which the rules leave out
    "kodomo no ongaku": {IGNORE},  # Japanese children's songs
    "musica ayacuchana": {IGNORE},  # Peruvian Andean
    "musica piemonteisa": {"jazz", IGNORE},  # Ernesto Bonino: Italian swing
    "neotango": {IGNORE},  # electronic tango
    "nubian traditional": {IGNORE},
    "ny roots": {"rock", "country"},  # Donna the Buffalo: a roots jam band
    "russian dance": {"house", IGNORE},  # Tony Igy: electro house
    "ryukyu ongaku": {IGNORE},  # Okinawan
    "sefardi": {IGNORE},  # Sephardic songs
    "singing bowl": {IGNORE},
    "swedish electronic": {"house", IGNORE},
}


@pytest.fixture(scope="module")
def corpus_labelling(tmp_path_factory: pytest.TempPathFactory) -> Labelling:
    """The shared corpus imported into a store, labelled by the default rules."""
    if not SHARED_CORPUS.exists():
        pytest.skip(f"shared corpus not found at {SHARED_CORPUS} (clone with ../shared beside the repo)")
    rules = load_rules(default_rules_dir())
    with Store.open(tmp_path_factory.mktemp("corpus") / "corpus.db") as store:
        import_files(store, check_files([SHARED_CORPUS], None, "utf-8"))
        return label_store(store, rules, choose_policy(rules, None), "both")


def judged(rows: list[dict[str, object]], truth: dict[str, set[str]]) -> tuple[int, int, int, list[str]]:
    """(suggested, right, judgeable, wrong ones) of `rows` against the hand labels."""
    suggested = [r for r in rows if r["suggested_target"]]
    judgeable = [r for r in suggested if UNSURE not in truth[str(r["subgenre"])]]
    wrong = [
        f"{r['subgenre']} → {r['suggested_target']}"
        for r in judgeable
        if r["suggested_target"] not in truth[str(r["subgenre"])]
    ]
    return len(suggested), len(judgeable) - len(wrong), len(judgeable), wrong


def test_most_of_the_top_50_get_a_suggestion_a_person_agrees_with(corpus_labelling: Labelling) -> None:
    rows = unmapped(corpus_labelling, 50)
    assert [r["subgenre"] for r in rows] == list(TOP_50)  # the table labels exactly today's top 50
    suggested, right, judgeable, wrong = judged(rows, TOP_50)
    assert suggested >= 40, f"only {suggested} of 50 have a suggestion"
    assert right / judgeable >= 0.9, f"precision {right}/{judgeable}; wrong: {wrong}"
    for row in rows:
        if row["suggested_target"]:
            assert SHOW_CONFIDENCE <= row["confidence"] <= 1 and row["evidence"] and row["suggestion_source"]
            assert (row["suggested_target"] == IGNORE) == bool(row["ignore_like"])
        else:
            assert (row["confidence"], row["evidence"]) == (0.0, "")


def test_held_out_ranks_51_to_110_are_as_precise(corpus_labelling: Labelling) -> None:
    rows = unmapped(corpus_labelling, 110)[50:]
    assert [r["subgenre"] for r in rows] == list(NEXT_60)
    suggested, right, judgeable, wrong = judged(rows, NEXT_60)
    assert suggested >= 30, f"only {suggested} of 60 have a suggestion"
    assert right / judgeable >= 0.9, f"precision {right}/{judgeable}; wrong: {wrong}"


def test_confident_suggestions_emitted_as_rules_decide_as_suggested(
    corpus_labelling: Labelling, tmp_path: Path
) -> None:
    """The file `--emit-rules` writes, dropped into a copy of the rules, maps or ignores exactly
    the confident suggestions, and they are the more precise ones."""
    rows = unmapped(corpus_labelling, 50)
    accepted = {
        r["subgenre"]: r["suggested_target"]
        for r in rows
        if r["suggested_target"] and r["confidence"] >= EMIT_CONFIDENCE
    }
    _, right, judgeable, wrong = judged([r for r in rows if r["subgenre"] in accepted], TOP_50)
    assert len(accepted) >= 25 and right / judgeable >= 0.95, wrong
    folder = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), folder)
    (folder / "95-suggested.yaml").write_text(emit_rules_yaml(rows, "corpus.db"), encoding="utf-8")
    decisions = CompiledRules.build(load_rules(folder)).decide_many(list(accepted))
    for subgenre, target in accepted.items():
        d = decisions[subgenre]
        assert (d.status, d.target) == ((IGNORED, None) if target == IGNORE else (MAPPED, target)), subgenre


# --- small stores, through the CLI -------------------------------------------------------------

LONG_TAIL = """artist_name,genres,count
Singer One,"['mandopop', 'c pop', 'zhongguo feng']",40
Singer Two,"['mandopop', 'taiwan pop', 'zhongguo feng']",30
Rapper,"['hip hop', 'rap', 'scratch']",20
"""


def test_unmapped_suggests_ignore_from_ignored_neighbours_and_emits_an_ignore_entry(
    runner: CliRunner, tmp_path: Path, write_rules: Callable[..., Path]
) -> None:
    rules = write_rules(
        {
            "10.yaml": "rules: [{name: hip hop, target: hip hop, kind: keyword, patterns: [hip hop, rap]}]\n"
            "ignore: [{subgenres: [mandopop, c pop, taiwan pop], reason: Chinese pop is not a target}]\n"
        }
    )
    db = tmp_path / "tail.db"
    (tmp_path / "tail.csv").write_text(LONG_TAIL, encoding="utf-8")
    assert runner.invoke(app, ["import", str(tmp_path / "tail.csv"), "--db", str(db)]).exit_code == 0
    out = tmp_path / "review" / "suggested.yaml"
    result = runner.invoke(
        app, ["unmapped", "--db", str(db), "--rules", str(rules), "--emit-rules", str(out), "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = {r["subgenre"]: r for r in json.loads(result.stdout)}
    feng, scratch = rows["zhongguo feng"], rows["scratch"]
    assert (feng["suggested_target"], feng["suggestion_source"]) == (IGNORE, "co-occurrence")
    assert "its 2 artists' other subgenres: 100% ignored (mandopop" in feng["evidence"]
    assert feng["confidence"] == pytest.approx(2 / 3, abs=0.01)  # two artists, unanimous: 2 / (2 + prior 1)
    assert (feng["ignore_like"], feng["ignore_reason"]) == ("mandopop", "Chinese pop is not a target")
    assert scratch["suggested_target"] == "hip hop"
    assert "1 of 1 artists carrying it are labelled hip hop" in scratch["evidence"]
    text = out.read_text(encoding="utf-8")
    assert yaml.safe_load(text)["ignore"] == [
        {
            "subgenres": ["zhongguo feng"],
            "reason": "like 'mandopop' (suggested by genremap unmapped)",
        }
    ]
    (rules / "95-suggested.yaml").write_text(text, encoding="utf-8")
    after = runner.invoke(app, ["unmapped", "--db", str(db), "--rules", str(rules), "-f", "json"])
    assert json.loads(after.stdout) == []  # both suggestions taken: nothing left unmapped


def test_min_confidence_chooses_what_is_written(
    runner: CliRunner, tmp_path: Path, write_rules: Callable[..., Path]
) -> None:
    rules = write_rules(
        {"10.yaml": "rules: [{name: hip hop, target: hip hop, kind: keyword, patterns: [hip hop, rap]}]\n"}
    )
    db = tmp_path / "tail.db"
    (tmp_path / "tail.csv").write_text(LONG_TAIL, encoding="utf-8")
    assert runner.invoke(app, ["import", str(tmp_path / "tail.csv"), "--db", str(db)]).exit_code == 0
    common = ["unmapped", "--db", str(db), "--rules", str(rules), "--emit-rules"]
    strict = runner.invoke(app, [*common, str(tmp_path / "strict.yaml"), "--min-confidence", "0.9"])
    assert strict.exit_code == 0 and "wrote 0 suggestions" in strict.output
    assert yaml.safe_load((tmp_path / "strict.yaml").read_text(encoding="utf-8")) == {"rules": []}
    for bad in ("1.5", "-0.1", "nan"):
        refused = runner.invoke(app, [*common, str(tmp_path / f"{bad}.yaml"), "--min-confidence", bad])
        assert (
            refused.exit_code == 2 and "--min-confidence" in refused.output and not (tmp_path / f"{bad}.yaml").exists()
        )
