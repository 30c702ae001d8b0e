"""Credentials files: a `.env` of KEY=VALUE lines (`--env-file`), read without ever quoting it.

Shared by every source that needs a secret (Spotify's client id and secret, Last.fm's API key).
"""

from __future__ import annotations

from pathlib import Path

from genremap.errors import UsageError


def read_text(path: Path, what: str) -> str:
    """A UTF-8 text file, or a UsageError naming it (and the line of a byte that is not UTF-8).

    Never quotes the content: these files may hold credentials."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{what} {path}: cannot read ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8-sig")  # a leading BOM (Windows editors) is no part of the first key
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UsageError(f"{what} {path}:{line}: not valid UTF-8; save the file as UTF-8") from None


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (blank lines, comments, `export ` and quotes allowed).

    Anything else is a UsageError naming the file and line, never quoting it (a line may be
    a secret pasted on its own)."""
    if not path.is_file():
        raise UsageError(f"--env-file not found: {path}")
    values: dict[str, str] = {}
    for number, line in enumerate(read_text(path, "--env-file").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, equals, value = line.removeprefix("export ").partition("=")
        if not equals or not key.strip() or any(ch.isspace() for ch in key.strip()):
            raise UsageError(f"--env-file {path}:{number}: expected KEY=VALUE (or a # comment)")
        values[key.strip()] = value.strip().strip("'\"")
    return values
