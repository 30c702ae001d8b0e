"""The README's development-mode walkthrough runs as written against the loopback fakes.

The section "When Spotify gives no genres" shows a session against a development-mode app (artist
objects without `genres`) and MusicBrainz: here the fakes stand in for both services. This test
starts them on loopback (a Spotify catalog whose artists come without genres, a MusicBrainz whose
artists carry the MusicBrainz genres among their Spotify genres, with vote counts), writes the small
MusicBrainz dump the session reads, and runs the README's commands in order, comparing their
output with the README line by line (as tests/test_readme.py does for the rule-editing loop).
`$SPOTIFY_API`, `$SPOTIFY_AUTH` and `$MB_API` are the fakes' addresses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.musicbrainz import FakeMusicBrainz, entry
from fakes.spotify import Catalog, FakeSpotify
from test_mbdump import dump_record
from test_readme import README, _blocks, _check, _env, _run, _steps

from genremap.vocabulary import is_musicbrainz_genre

SECTION = "## When Spotify gives no genres"
NEXT_SECTION = "## Collecting from Spotify (and MusicBrainz)"
CATALOG = {"n_artists": 80, "seed": 3}
TERMS = ("rock", "jazz")
DUMP = "artist.jsonl"  # the session's offline dump: MusicBrainz's `mbdump/artist` format
IN_DUMP_ONLY = 6  # the last artists (by name) are absent from the web service, found in the dump only


def musicbrainz_entries(catalog: Catalog) -> list[tuple[str, dict[str, Any]]]:
    """A MusicBrainz artist for every primary artist the session's terms collect: its genres are
    its Spotify genres that are on MusicBrainz's genre list (at most three, votes 9, 4, 1)."""
    primary = {catalog.primary_artist(t)["id"] for t in catalog.expected(TERMS)}
    artists = sorted((catalog.artists[a] for a in primary), key=lambda a: a["name"])
    out = []
    for artist in artists:
        genres = [g for g in artist["genres"] if is_musicbrainz_genre(g)][:3]
        out.append(entry(artist["name"], list(zip(genres, (9, 4, 1), strict=False)), kind="Person"))
    return out


@pytest.fixture
def services(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """The fakes, running; a working folder holding the dump; the session's environment."""
    catalog = Catalog(**CATALOG)
    entries = musicbrainz_entries(catalog)
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / DUMP).write_text("".join(json.dumps(dump_record(k, v)) + "\n" for k, v in entries), encoding="utf-8")
    with (
        FakeSpotify(catalog, artist_genres=False) as spotify,
        FakeMusicBrainz(dict(entries[:-IN_DUMP_ONLY])) as musicbrainz,
    ):
        env = _env()
        env.update(
            SPOTIPY_CLIENT_ID=spotify.client_id,
            SPOTIPY_CLIENT_SECRET=spotify.client_secret,
            SPOTIFY_API=spotify.api_base,
            SPOTIFY_AUTH=spotify.auth_url,
            MB_API=musicbrainz.api,
        )
        yield folder, env


def test_the_development_mode_walkthrough_runs_as_written(services: tuple[Path, dict[str, str]]) -> None:
    cwd, env = services
    text = README.read_text(encoding="utf-8")
    sessions = [steps for at, lines in _blocks(text, SECTION, NEXT_SECTION) if (steps := _steps(at, lines))]
    assert sessions, f"the walkthrough of {SECTION!r} was not found in README.md"
    marker = cwd.parent / ".cwd"
    for steps in sessions:
        for step in steps:
            status, output, cwd = _run(step, cwd, env, marker)
            _check(step, status, output)


if __name__ == "__main__":  # print what the session's commands print (to write the README)
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        generator = services.__wrapped__(Path(tmp))  # type: ignore[attr-defined]
        folder, environment = next(generator)
        for command in sys.argv[1:]:
            print(f"$ {command}")
            done = subprocess.run(
                ["bash", "-c", command], cwd=folder, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            print(done.stdout.decode(), end="")
            print(f"[exit {done.returncode}]" if done.returncode else "")
