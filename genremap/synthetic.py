"""Invented artist names and track titles for synthetic catalogs.

Shared by scripts/make_sample.py (the bundled sample in genremap/data) and the test suite's fake Spotify
(tests/fakes/spotify.py), so both draw names the same way. Only the `random.Random` passed in is used, in a fixed
order: a seed always gives the same names. Changing a list, or the order of the draws, changes the committed sample
(tests/test_sample.py regenerates it byte for byte).
"""

from __future__ import annotations

import random


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST = _words(
    """
    Alex Ana Ben Carla Dana Eli Fay Gus Hana Ivo Jade Kai Lena Milo Nia Omar Pia Quinn Rosa Sam Tess Uma
    Vic Wes Xena Yuri Zoe Abe Bea Cole Dee Finn Gia Hal Ida Jon Kim Lou Max
    """
)
LAST = _words(
    """
    Adams Berg Cruz Dale Ennis Ford Gray Hale Ives Jones Kerr Lowe Marsh Nash Ortiz Price Reyes Stone
    Tate Vance Wells Young Zane Moreau Silva Novak Lind Okafor Tanaka Rossi
    """
)
WORDS = _words(
    """
    Velvet Iron Midnight Golden Electric Silver Broken Wild Crystal Neon Hollow Burning Lonely Crimson
    Paper Rolling Sacred Northern Southern Echo Static Satellite Desert River Thunder Glass Shadow Honey
    Copper Ocean Falcon Wolf Raven Tiger Lotus Ember Atlas Comet Harbor
    """
)
NOUNS = _words(
    """
    Kings Foxes Riders Saints Machines Lights Hearts Ghosts Brothers Sisters Engines Dreams Rebels
    Drifters Wolves Prophets Pilots Orchestra Collective Ensemble Trio Quartet Band
    """
)
TITLE_A = _words(
    """
    Love Night Heart Road Fire Rain Summer Dream Light Time Home Money City Blue Gold Soul Moon Sun
    River Shadow Stone Wind Sky Dance Heaven Devil Baby Sugar Highway Thunder
    """
)
TITLE_B = _words(
    """
    Song Blues Waltz Boogie Prelude Anthem Serenade Ride Lullaby Groove Shuffle Nocturne Story Letter
    Train Jam Fever Party Prayer Ballad Rhapsody Tango Stomp Sonata Mix
    """
)


def artist_name(
    rng: random.Random, taken: set[str], first: tuple[str, ...] = FIRST, last: tuple[str, ...] = LAST
) -> str:
    """A name not yet in `taken` (and add it there): "First Last", "The Word Nouns", "Word Nouns" or "DJ Word".

    After 21 draws that were all taken, the attempt number is appended, so a large catalog still gets distinct
    names; 1000 failed attempts raise RuntimeError."""
    for attempt in range(1000):
        style = rng.random()
        if style < 0.4:
            name = f"{rng.choice(first)} {rng.choice(last)}"
        elif style < 0.75:
            name = f"The {rng.choice(WORDS)} {rng.choice(NOUNS)}"
        elif style < 0.9:
            name = f"{rng.choice(WORDS)} {rng.choice(NOUNS)}"
        else:
            name = f"DJ {rng.choice(WORDS)}"
        if attempt > 20:
            name = f"{name} {attempt}"
        if name not in taken:
            taken.add(name)
            return name
    raise RuntimeError("ran out of artist names")


def track_title(rng: random.Random, taken: set[str]) -> str:
    """A title "A B" from the two word lists, made distinct from the artist's `taken` titles (added there) with
    a "No. N" suffix."""
    title = f"{rng.choice(TITLE_A)} {rng.choice(TITLE_B)}"
    if title in taken:
        title = f"{title} No. {len(taken) + 1}"
    taken.add(title)
    return title
