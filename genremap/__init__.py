"""genremap: balanced, genre-labelled music datasets from Spotify's micro-genres."""

__version__ = "0.1.0"
