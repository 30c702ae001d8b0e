"""Errors that reach the user as one line and an exit status, never a traceback."""

from __future__ import annotations

from dataclasses import dataclass


class GenremapError(Exception):
    """An error with a message fit for the user and the exit status the CLI should use."""

    exit_code: int = 1

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        """The one line shown to the user (the CLI prints it after `error: `)."""
        return str(self.args[0])


class UsageError(GenremapError):
    """Bad input from the user (missing file, wrong flag value): exit status 2."""

    exit_code = 2


class StoreError(UsageError):
    """The store file cannot be used as asked (another program's file, damaged, read-only, a full
    disk, busy): one line naming it and what to do, exit status 2; the file is left as it was."""


@dataclass(frozen=True)
class Location:
    """A 1-based position in a file, printed as FILE:LINE:COL."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class RuleFileError(UsageError):
    """A problem in a rule file, located at FILE:LINE:COL."""

    def __init__(self, location: Location, problem: str) -> None:
        super().__init__(f"{location}: {problem}")
        self.location = location
        self.problem = problem


class RuleErrors(UsageError):
    """Several rule-file problems; the message is the first, `errors` holds them all."""

    def __init__(self, errors: list[RuleFileError]) -> None:
        ordered = sorted(errors, key=lambda e: (e.location.file, e.location.line, e.location.column))
        super().__init__(ordered[0].message)
        self.errors = ordered
