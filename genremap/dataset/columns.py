"""Column names of what a build writes: one definition for the CLI's export and the Python API.

No imports: `genremap.api` reads it without loading pandas.
"""

TRACK_COLUMNS = (
    "track_id",
    "track_name",
    "artist_id",
    "artist_name",
    "target",
    "subgenre",
    "rule",
    "split",
    "duration_ms",
    "preview_url",
    "isrc",
)
"""tracks.csv's columns, in order."""
