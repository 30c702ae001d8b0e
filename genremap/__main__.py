"""`python -m genremap` runs the CLI."""

from genremap.cli import run

run()
