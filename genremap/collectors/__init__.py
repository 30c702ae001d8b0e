"""Sources that fill the store: importers of files (and, later, Spotify and MusicBrainz)."""
