"""`python -m genremap` runs the CLI."""

from genremap.cli import main

main()
