"""Genre sources and the `--genre-source` precedence list.

The store keeps each source's genres apart (artist_genres.source): `spotify` (collected from
the Web API), `import` (read from a file by `genremap import`), `musicbrainz` and `lastfm`
(enrichment). A precedence list names sources in order; an artist's genres come from the first
of them that has any. `spotify` stands for Spotify's genres however they arrived: the API's,
else an imported file's (imported files are Spotify dumps, and stores written before `import`
was a source of its own hold them as `spotify`), unless the list names `import` itself.

No heavy imports here: the CLI checks the option before it reads anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from genremap.errors import UsageError

# Stored source names; a row's source code is its index here (OTHER_SOURCE for any other name).
STORED_SOURCES = ("spotify", "import", "musicbrainz", "lastfm")
SPOTIFY, IMPORT, MUSICBRAINZ, LASTFM = range(len(STORED_SOURCES))
OTHER_SOURCE = 7  # a source name this version does not know: kept in the store, never used
SOURCE_BITS = 3  # bits a source code takes in the store's packed genre rows
ALIASES = {"both": ("spotify", "musicbrainz")}
DEFAULT_GENRE_SOURCE = "spotify,musicbrainz,lastfm"
# Sources whose per-row weight --min-votes filters (Last.fm's are filtered when enriching).
VOTE_FILTERED = (MUSICBRAINZ,)


@dataclass(frozen=True)
class Precedence:
    """A parsed --genre-source: the names as given (aliases expanded) and the stored sources
    they stand for, first choice first."""

    names: tuple[str, ...]
    stored: tuple[str, ...]

    @property
    def spec(self) -> str:
        """The list as one comma-separated string (what manifests and reports record)."""
        return ",".join(self.names)

    @property
    def codes(self) -> tuple[int, ...]:
        """The stored sources' codes, first choice first."""
        return tuple(STORED_SOURCES.index(s) for s in self.stored)


def parse_genre_sources(spec: str) -> Precedence:
    """Parse `spotify,musicbrainz,lastfm`, `both` or one name; unknown or no names are refused
    with the valid ones named."""
    names: list[str] = []
    for word in spec.split(","):
        name = word.strip().lower()
        if name not in STORED_SOURCES and name not in ALIASES:
            shown = word.strip() or "(empty)"
            raise UsageError(
                f"unknown genre source '{shown}' in --genre-source {spec!r} (expected a comma-separated "
                f"list of {', '.join(STORED_SOURCES)}, or both = spotify,musicbrainz)"
            )
        names.extend(ALIASES.get(name, (name,)))
    names = list(dict.fromkeys(names))
    stored: list[str] = []
    for name in names:
        stored.append(name)
        if name == "spotify" and "import" not in names:
            stored.append("import")
    return Precedence(tuple(names), tuple(stored))
