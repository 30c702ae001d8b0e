"""Default values that the command line shows in `--help` and the library uses.

They live here, in a module that imports nothing but the standard library, so that the CLI
can declare its options without importing the stages they belong to (pandas, spotipy,
requests, librosa...): `genremap --help` and `--version` stay instant. The stages import
their defaults from here, so each value is written once.
"""

from __future__ import annotations

from pathlib import Path

# The store.
DEFAULT_DB = Path("genremap.db")

# HTTP: seconds for one whole answer: a 30 s preview (~0.5 MB) at ~4 kB/s.
DEFAULT_DEADLINE = 120.0

# Spotify.
DEFAULT_API_BASE = "https://api.spotify.com/v1/"
DEFAULT_AUTH_URL = "https://accounts.spotify.com/api/token"

# MusicBrainz.
DEFAULT_MB_API = "https://musicbrainz.org/ws/2"
DEFAULT_THRESHOLD = 90.0

# Last.fm.
DEFAULT_LASTFM_API = "https://ws.audioscrobbler.com/2.0/"
DEFAULT_LASTFM_MIN_WEIGHT = 10  # tags weigh 0-100 (the artist's top tag 100)

# Audio previews.
DEFAULT_DEEZER_API = "https://api.deezer.com"
DEFAULT_ALLOWED_HOSTS = ("api.deezer.com", "p.scdn.co", ".dzcdn.net")  # a leading dot = any subdomain
DEFAULT_MAX_BYTES = 5_000_000
DEFAULT_WORKERS = 4
DEFAULT_MIN_SCORE = 85.0
DEFAULT_DURATION_TOLERANCE = 10.0

# Audio features.
DEFAULT_SEGMENTS = 125  # the notebook's 1500 values = 125 segments × 12
DEFAULT_FRAME_SECONDS = 0.24  # 125 × 0.24 s = a 30 s preview

# `unmapped --emit-rules`: the confidence a suggestion needs to be written out; as strong as
# one artist whose other subgenres all agree.
EMIT_CONFIDENCE = 0.5
