"""Genre vocabularies shipped with the package: MusicBrainz's official genre list.

MusicBrainz's genres are exactly the tags whose names are on its genre list (the web service's
`inc=genres` returns only these; `inc=tags` returns them among free-form tags). The list is
MusicBrainz data (CC0), copied unchanged into `genremap/data/musicbrainz_genres.csv`: one row per
genre, `name` as MusicBrainz spells it (lower case, accents and apostrophes kept) and its
`disambiguation`. Only the standard library is imported here, so reading the list costs
milliseconds (`genremap lint --vocabulary musicbrainz` stays cheap).
"""

from __future__ import annotations

import calendar
import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from genremap.errors import UsageError

MUSICBRAINZ = "musicbrainz"
MUSICBRAINZ_GENRES_FILE = "musicbrainz_genres.csv"
MUSICBRAINZ_GENRES_DATE = "2025-12"  # MusicBrainz's genre list as of December 2025 (2,098 names)
VOCABULARIES = (MUSICBRAINZ,)


@dataclass(frozen=True)
class Vocabulary:
    """A named list of genre names, in its source's order, with where and when it comes from."""

    name: str
    title: str  # for people: "MusicBrainz's genre list of December 2025"
    date: str  # YYYY-MM: the month the list was taken
    names: tuple[str, ...]
    path: Path  # the shipped file; names[i] is on line i + 2 (line 1 is the CSV header)

    def line_of(self, index: int) -> int:
        """The file line of `names[index]` (every row of the shipped list is one line)."""
        return index + 2


def musicbrainz_genres_path() -> Path:
    """The shipped copy of MusicBrainz's genre list."""
    return Path(str(resources.files("genremap").joinpath("data", MUSICBRAINZ_GENRES_FILE)))


@functools.cache
def _musicbrainz_names() -> tuple[str, ...]:
    text = musicbrainz_genres_path().read_text(encoding="utf-8")
    return tuple(row["name"] for row in csv.DictReader(io.StringIO(text, newline="")))


def musicbrainz_genres() -> list[str]:
    """MusicBrainz's genre names as of `MUSICBRAINZ_GENRES_DATE`, spelled and ordered as MusicBrainz does."""
    return list(_musicbrainz_names())


@functools.cache
def _musicbrainz_name_set() -> frozenset[str]:
    return frozenset(_musicbrainz_names())


def is_musicbrainz_genre(tag: str) -> bool:
    """Whether a MusicBrainz tag is one of its genres: the name, lower-cased, is on the list."""
    return tag.strip().lower() in _musicbrainz_name_set()


def vocabulary(name: str) -> Vocabulary:
    """The shipped vocabulary called `name` (case-insensitive); an unknown name is a UsageError."""
    if name.strip().lower() != MUSICBRAINZ:
        from genremap.choices import did_you_mean
        from genremap.text import escape_unprintable

        raise UsageError(
            f"unknown vocabulary '{escape_unprintable(name)}'{did_you_mean(name, VOCABULARIES)}:"
            f" known: {', '.join(VOCABULARIES)}"
        )
    year, month = MUSICBRAINZ_GENRES_DATE.split("-")
    title = f"MusicBrainz's genre list of {calendar.month_name[int(month)]} {year}"  # C locale: English
    return Vocabulary(MUSICBRAINZ, title, MUSICBRAINZ_GENRES_DATE, _musicbrainz_names(), musicbrainz_genres_path())
