"""Score the rules' artist labels against the hand-labelled gold set.

A dataset's label noise is decided per artist (every track takes its artist's label), so the
rules are judged on artists: ``tests/data/artists_gold.csv`` holds 350 artists of the shared
corpus labelled by hand from what their music is (see its header and docs/coverage.md). This
labels the corpus with the checkout's default rules (or ``--rules DIR``) through the library,
as ``genremap report`` would, and prints per split (dev, heldout, all):

- accuracy: known artists whose outcome (a target, or no label) is acceptable;
- precision: labelled artists whose label is acceptable (a ``none`` artist that gets a label,
  or a rock band labelled jazz, is a precision error);
- recall: artists whose gold needs a target (no ``none`` among its alternatives) that get
  an acceptable one;

each plain and weighted by the artists' tracks, then the errors with the subgenre and rule
that decided. Artists whose gold is ``unknown`` are left out of every figure.

The corpus is imported into a temporary store unless ``--db`` names a store that holds it.

usage: python scripts/score_artists.py [--rules DIR] [--db PATH] [--corpus PATH] [--gold PATH]
                                       [--format text|json] [--errors N]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from genremap.errors import UsageError  # noqa: E402

if TYPE_CHECKING:
    from genremap.engine import RuleSet

GOLD = REPO / "tests" / "data" / "artists_gold.csv"
CORPUS = REPO.parent / "shared" / "data" / "spotify_artists_genres.csv"
SPLITS = ("dev", "heldout")
NONE, UNKNOWN = "none", "unknown"
# How the gold artists were chosen (tests/test_artist_gold.py checks the file against it).
SEED, TOP, SAMPLE = 10, 150, 200


@dataclass(frozen=True)
class GoldArtist:
    """One row of the gold file: the labels a person accepts for the artist (`none` when
    no label is also right), or `unknown` when they could not judge."""

    artist_id: str  # the importer's id for a corpus artist (its name is read from the corpus)
    gold: str  # as written: `rock`, `rock|metal`, `jazz|none`, `none`, `unknown`
    note: str
    split: str

    @property
    def accepted(self) -> frozenset[str]:
        return frozenset(self.gold.split("|"))

    @property
    def known(self) -> bool:
        return self.gold != UNKNOWN

    @property
    def needs_target(self) -> bool:
        """Recall counts it: a person expects a target, and no label would be wrong."""
        return self.known and NONE not in self.accepted


@dataclass(frozen=True)
class Outcome:
    """What the rules did with one gold artist."""

    artist_id: str
    artist: str
    split: str
    gold: str
    tracks: int
    status: str  # labelled, ambiguous, unlabelled or ignored
    got: str | None  # the target when labelled
    subgenre: str | None  # what decided (as the source spells it)
    rule: str | None
    detail: str | None  # the vote's shares, as `explain` shows them

    @property
    def ok(self) -> bool:
        accepted = frozenset(self.gold.split("|"))
        return (self.got or NONE) in accepted


@dataclass(frozen=True)
class Scores:
    """Figures for one split: counts, and each ratio plain and weighted by tracks (None when
    its denominator is empty)."""

    artists: int  # known artists scored
    labelled: int
    needing_target: int
    errors: int
    accuracy: float | None
    precision: float | None
    recall: float | None
    accuracy_tracks: float | None
    precision_tracks: float | None
    recall_tracks: float | None


def read_gold(path: Path, targets: Iterable[str]) -> list[GoldArtist]:
    """The gold file's rows (lines starting with `#` are comments), checked: every label is
    one of `targets`, `none` or `unknown` (alone), every split dev or heldout, ids unique."""
    allowed = {*targets, NONE}
    rows: list[GoldArtist] = []
    seen: set[str] = set()
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the gold file ({exc.strerror}); pass --gold PATH") from exc
    numbered = [(n, line) for n, line in enumerate(lines, 1) if not line.startswith("#")]
    reader = csv.DictReader(line for _, line in numbered)
    if reader.fieldnames != ["artist_id", "gold", "note", "split"]:
        raise UsageError(f"{path}: expected the columns artist_id,gold,note,split")
    for record in reader:
        line = numbered[reader.line_num - 1][0]
        row = GoldArtist(**{k: (v or "").strip() for k, v in record.items() if k is not None})
        labels = row.gold.split("|")
        if row.gold != UNKNOWN and not set(labels) <= allowed:
            raise UsageError(f"{path}:{line}: gold '{row.gold}' is not a target, none or unknown (or a|b of them)")
        if row.split not in SPLITS:
            raise UsageError(f"{path}:{line}: split '{row.split}' is not dev or heldout")
        if row.artist_id in seen:
            raise UsageError(f"{path}:{line}: artist_id {row.artist_id} appears twice")
        seen.add(row.artist_id)
        rows.append(row)
    return rows


def label_gold(db: Path, ruleset: RuleSet, gold: Sequence[GoldArtist]) -> list[Outcome]:
    """Label the store at `db` with `ruleset` (its own policy) and return
    each gold artist's outcome."""
    from genremap.dataset.labels import label_store
    from genremap.store import Store

    with Store.open(db, create=False, readonly=True) as store:
        frame = label_store(store, ruleset, cache=False).artists
    columns = ["name", "tracks", "status", "target", "genre", "rule", "detail"]
    found = frame.set_index("artist_id")[columns].to_dict("index")
    missing = [row.artist_id for row in gold if row.artist_id not in found]
    if missing:
        raise UsageError(
            f"{db}: {len(missing)} gold artists are not in this store (first: {missing[0]}); "
            "import the shared corpus into it, or leave out --db"
        )
    outcomes = []
    for row in gold:
        cells = {name: _text(value) for name, value in found[row.artist_id].items()}
        outcomes.append(
            Outcome(
                row.artist_id,
                str(cells["name"]),
                row.split,
                row.gold,
                int(float(cells["tracks"] or 0)),
                str(cells["status"]),
                cells["target"],
                cells["genre"],
                cells["rule"],
                cells["detail"],
            )
        )
    return outcomes


def _text(value: Any) -> str | None:
    """A frame cell as text, None for a missing value (None or NaN)."""
    return None if value is None or value != value else str(value)


def score(outcomes: Sequence[Outcome]) -> Scores:
    """Accuracy, precision and recall of `outcomes`, plain and weighted by tracks; artists
    whose gold is unknown are left out."""
    known = [o for o in outcomes if o.gold != UNKNOWN]
    labelled = [o for o in known if o.got is not None]
    needing = [o for o in known if NONE not in o.gold.split("|")]

    def ratio(group: Sequence[Outcome], weighted: bool) -> float | None:
        total = sum(o.tracks if weighted else 1 for o in group)
        hits = sum(o.tracks if weighted else 1 for o in group if o.ok)
        return hits / total if total else None

    return Scores(
        len(known),
        len(labelled),
        len(needing),
        sum(not o.ok for o in known),
        ratio(known, False),
        ratio(labelled, False),
        ratio(needing, False),
        ratio(known, True),
        ratio(labelled, True),
        ratio(needing, True),
    )


def scores_by_split(outcomes: Sequence[Outcome]) -> dict[str, Scores]:
    """Scores of each split and of both together ("all")."""
    out = {split: score([o for o in outcomes if o.split == split]) for split in SPLITS}
    out["all"] = score(outcomes)
    return out


def errors(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """Known artists whose outcome is not acceptable, largest (tracks) first."""
    wrong = [o for o in outcomes if o.gold != UNKNOWN and not o.ok]
    return sorted(wrong, key=lambda o: (-o.tracks, o.artist))


def select_gold_artists(db: Path) -> list[str]:
    """The gold set's artist ids, as they were chosen: among the store's artists with at least
    one Spotify genre, the TOP largest by tracks (ties by name) plus SAMPLE more drawn with
    random.Random(SEED) from the rest (sorted by id), in tracks order."""
    from genremap.sources import IMPORT, SPOTIFY
    from genremap.store import Store

    with Store.open(db, create=False, readonly=True) as store:
        artists, rows = store.artists_frame(), store.genre_rows()
    with_genres = set(rows.loc[rows["source"].isin([SPOTIFY, IMPORT]), "artist_key"].tolist())
    ranked = artists[artists["artist_key"].isin(with_genres)]
    ranked = ranked.sort_values(["tracks", "name"], ascending=[False, True], kind="stable")
    ids = ranked["artist_id"].tolist()
    chosen = set(ids[:TOP]) | set(random.Random(SEED).sample(sorted(ids[TOP:]), SAMPLE))
    return [artist_id for artist_id in ids if artist_id in chosen]


def split_of(artist_ids: Sequence[str], top: int = TOP) -> dict[str, str]:
    """dev or heldout per id: the first `top` ids (the largest artists) and the rest are each
    shuffled with random.Random(SEED) and dealt alternately, so both splits get half of each."""
    out: dict[str, str] = {}
    for group in (list(artist_ids[:top]), list(artist_ids[top:])):
        shuffled = sorted(group)
        random.Random(SEED).shuffle(shuffled)
        out.update({artist_id: SPLITS[i % 2] for i, artist_id in enumerate(shuffled)})
    return out


def import_corpus(corpus: Path, db: Path) -> Path:
    """The shared corpus imported into a new store at `db` (as `genremap import` does)."""
    from genremap.collectors.importers import import_file
    from genremap.store import Store

    if not corpus.is_file():
        raise UsageError(f"{corpus}: the shared corpus is not there; pass --corpus PATH or --db PATH")
    with Store.open(db) as store:
        import_file(store, corpus)
    return db


def as_json(scores: dict[str, Scores], wrong: Sequence[Outcome]) -> str:
    return json.dumps(
        {"scores": {k: asdict(v) for k, v in scores.items()}, "errors": [asdict(o) for o in wrong]}, indent=2
    )


def as_text(scores: dict[str, Scores], wrong: Sequence[Outcome], limit: int) -> str:
    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    figures = ("accuracy", "precision", "recall", "accuracy_tracks", "precision_tracks", "recall_tracks")
    head = ("split", "artists", "labelled", *figures)
    lines = ["  ".join(f"{h:>{len(h)}}" if i else f"{h:<7}" for i, h in enumerate(head))]
    for name, s in scores.items():
        cells = [f"{name:<7}", f"{s.artists:>7}", f"{s.labelled:>8}"]
        cells += [f"{pct(getattr(s, figure)):>{len(figure)}}" for figure in figures]
        lines.append("  ".join(cells))
    lines.append("(*_tracks: weighted by the artists' tracks; unknown gold left out)")
    lines += ["", f"errors ({len(wrong)}, largest first):"]
    for o in wrong[:limit]:
        got = o.got or o.status
        why = f"{o.subgenre} -> rule {o.rule}" if o.subgenre else "no deciding subgenre"
        why += f" ({o.detail})" if o.detail else ""
        lines.append(f"  [{o.split}] {o.artist} ({o.tracks} tracks): gold {o.gold}, got {got}; {why}")
    if len(wrong) > limit:
        lines.append(f"  ... {len(wrong) - limit} more (--errors N)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> str:
    """Everything but printing, so errors become one line on stderr."""
    from genremap.engine import load_rules
    from genremap.engine.loader import default_rules_dir

    ruleset = load_rules(args.rules or default_rules_dir())
    gold = read_gold(args.gold, ruleset.targets)
    with tempfile.TemporaryDirectory(prefix="score-artists-") as tmp:
        db = args.db or import_corpus(args.corpus, Path(tmp) / "corpus.db")
        if not db.is_file():
            raise UsageError(f"{db}: no such store; leave out --db to import the shared corpus")
        outcomes = label_gold(db, ruleset, gold)
    scores, wrong = scores_by_split(outcomes), errors(outcomes)
    return as_json(scores, wrong) if args.format == "json" else as_text(scores, wrong, args.errors)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=Path, help="rules folder (default: the checkout's rules)")
    parser.add_argument("--db", type=Path, help="a store holding the corpus (default: import it into a temporary one)")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="the shared corpus CSV")
    parser.add_argument("--gold", type=Path, default=GOLD, help="the gold file")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--errors", type=int, default=60, help="errors to list in text (default 60)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        print(run(args))
    except UsageError as exc:
        print(f"score_artists: {exc.message}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
