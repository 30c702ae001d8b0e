"""One canonical form for genre strings, so `Hip-Hop`, `hip hop` and `hiphop` meet."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

# Spellings written as one word that the rest of the world writes as two.
COMPOUNDS: dict[str, str] = {
    "hiphop": "hip hop",
    "rnb": "r and b",
    "randb": "r and b",
    "rocknroll": "rock and roll",
    "rockandroll": "rock and roll",
    "drumnbass": "drum and bass",
    "drumandbass": "drum and bass",
    "dnb": "drum and bass",
    "lofi": "lo fi",
    "kpop": "k pop",
    "jpop": "j pop",
    "cpop": "c pop",
    "synthpop": "synth pop",
    "electropop": "electro pop",
    "nu-metal": "nu metal",
}

# Every pattern here runs on names and titles from the internet, so each takes time linear in
# the text: a run of whitespace is entered only at its start (`(?<!\s)`: a match starting inside
# the run would also start at its beginning, so results are the same), and bracket contents stop
# at the next bracket and are searched only once a closing bracket is known to follow, so no start
# position rescans the rest of the text.
_AND_VARIANTS = re.compile(
    r"(?:(?<!\s)\s+&\s*|&\s*|(?<!\s)\s+'n'\s+|(?<!\s)\s+'n\s+|(?<!\s)\s+n'\s+|(?<!\s)\s+n\s+|'n'|\+)"
)
_NON_WORD = re.compile(r"[^\w]+|_+")
_SPACES = re.compile(r"\s+")


def strip_accents(text: str) -> str:
    """`é` → `e`, `ø` → `o`: decompose, then drop the combining marks."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.replace("ø", "o").replace("ß", "ss").replace("æ", "ae").replace("œ", "oe")


_ALREADY_CANONICAL = re.compile(r"[a-z0-9]+(?: [a-z0-9]+)*")


def normalize_genre(text: str) -> str:
    """Return the canonical form of a genre string (lowercase, no accents, single spaces).

    `&`, `'n'`, `n` and `+` between words become `and`; hyphens, underscores, apostrophes
    and other punctuation become spaces; a few one-word compounds are split.
    """
    # Most Spotify genres, and most names and titles once lower-cased, need nothing else (for
    # ASCII text, casefold is lower).
    lowered = text.lower() if text.isascii() else text
    if _ALREADY_CANONICAL.fullmatch(lowered):
        words = lowered.split(" ")
        if "n" not in words and not any(w in COMPOUNDS for w in words):
            return lowered
    return _normalize_genre_fully(text)


def _normalize_genre_fully(text: str) -> str:
    """`normalize_genre` without its shortcut for text that needs no more than lower-casing."""
    text = strip_accents(text.casefold())
    text = _AND_VARIANTS.sub(" and ", f" {text} ")
    text = text.replace("'", "").replace("’", "")
    text = _NON_WORD.sub(" ", text)
    words = [COMPOUNDS.get(word, word) for word in text.split()]
    return _SPACES.sub(" ", " ".join(words)).strip()


def normalize_many(texts: Iterable[str]) -> list[str]:
    """Normalise each string, caching repeats (genre lists repeat a lot)."""
    cache: dict[str, str] = {}
    out = []
    for text in texts:
        canonical = cache.get(text)
        if canonical is None:
            canonical = cache[text] = normalize_genre(text)
        out.append(canonical)
    return out


_NAME_ARTICLE = re.compile(r"^the\s+")


def normalize_name(text: str) -> str:
    """Canonical artist/track name for matching: like genres, and a leading "The" dropped."""
    return _NAME_ARTICLE.sub("", normalize_genre(text))


# Version suffixes that name the same recording: remasters, mono/stereo, single/album
# versions, edits, featured-artist credits, edition tags. Live versions and remixes are
# different recordings and are kept.
_VERSION_TAIL = re.compile(
    r"(?<!\s)\s+-\s+(?:"
    r"(?:\d{4}\s+)?(?:digital(?:ly)?\s+)?re-?master(?:ed)?(?:\s+\d{4})?(?:\s+version)?(?:\s*/.*)?"
    r"|(?:single|album|radio|mono|stereo|original|lp|45)(?:\s+(?:version|edit|mix|mono|stereo))*"
    r"|(?:\d{4}\s+)?(?:mono|stereo)(?:\s+(?:version|mix))?"
    r"|radio edit|explicit|clean|bonus track"
    r")\s*$",
    re.IGNORECASE,
)
_VERSION_BRACKET = re.compile(
    r"(?<!\s)\s*[\(\[](?=[^\(\)\[\]]*[\)\]])(?:"
    r"[^\(\)\[\]]*re-?master(?:ed)?[^\(\)\[\]]*"
    r"|feat\.?[^\(\)\[\]]*|ft\.?\s[^\(\)\[\]]*|featuring\s[^\(\)\[\]]*|with\s[^\(\)\[\]]*"
    r"|(?:single|album|radio|mono|stereo)(?:\s+(?:version|edit|mix))?"
    r"|[^\(\)\[\]]*\b(?:deluxe|anniversary|expanded|bonus track|explicit|clean)\b[^\(\)\[\]]*"
    r")[\)\]]",
    re.IGNORECASE,
)
# Each pass removes one layer (`Song (feat. X) - Remastered 2011`); real titles need two or three.
# Bounded, so a title of thousands of stacked suffixes costs a few passes, not one per suffix.
_VERSION_PASSES = 8
_FEAT_TAIL = re.compile(r"(?<!\s)\s+(?:feat\.?|ft\.|featuring)\s+.*$", re.IGNORECASE)


def strip_version(title: str) -> str:
    """Drop version suffixes that do not change the recording: `Song - Remastered 2011` → `Song`."""
    for _ in range(_VERSION_PASSES):
        previous = title
        title = _VERSION_TAIL.sub("", title)
        title = _VERSION_BRACKET.sub("", title)
        title = _FEAT_TAIL.sub("", title)
        if title == previous:
            break
    return title.strip()


def _song_key(title: str) -> str:
    return normalize_genre(strip_version(title))


def recording_key(artist_name: str, title: str) -> str:
    """Key under which the same song released on several track ids collapses to one."""
    return f"{normalize_name(artist_name)}\x1f{_song_key(title)}"


def recording_keys(artist_names: Sequence[str], titles: Sequence[str]) -> list[str]:
    """`recording_key` of many tracks; each distinct artist name and title is normalised once."""
    artists = {name: normalize_name(name) for name in dict.fromkeys(artist_names)}
    songs = {title: _song_key(title) for title in dict.fromkeys(titles)}
    return [f"{artists[a]}\x1f{songs[t]}" for a, t in zip(artist_names, titles, strict=True)]
