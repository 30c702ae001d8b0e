"""Rich progress displays for the CLI (silent when output is not a terminal)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)


class _Progress(Progress):
    """rich's Progress, silent when disabled: rich before 14.3 prints a blank line on `stop` even
    then, which would put an empty line before every one-line error off a terminal."""

    def stop(self) -> None:
        if not self.disable:
            super().stop()


def _bars(console: Console, *, transient: bool, in_bytes: bool = False) -> Progress:
    """Bars with a spinner, a description, a count (or bytes and their speed) and the elapsed
    time; silent off a terminal."""
    counts = (DownloadColumn(), TransferSpeedColumn()) if in_bytes else (MofNCompleteColumn(),)
    return _Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        *counts,
        TimeElapsedColumn(),
        console=console,
        transient=transient,
        disable=not console.is_terminal,
    )


@contextmanager
def stages(console: Console, title: str) -> Iterator[Callable[[str], None]]:
    """A spinner naming the current stage; yields a callback taking the next stage's name."""
    with _Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task(title, total=None)

        def advance(stage: str) -> None:
            progress.update(task, description=f"{title}: {stage}")

        yield advance


@contextmanager
def counter(console: Console, title: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A bar counting items done; yields a callback taking how many more are done."""
    with _bars(console, transient=True) as progress:
        task = progress.add_task(title, total=total)
        yield lambda n: progress.advance(task, n)


@contextmanager
def tracked(console: Console, title: str) -> Iterator[Callable[[int, int], None]]:
    """A bar for callbacks of the form `on_item(done, total)` (done counts from 0)."""
    with _bars(console, transient=True) as progress:
        task = progress.add_task(title, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


@contextmanager
def bytes_read(console: Console, title: str) -> Iterator[Callable[[int, int], None]]:
    """A bar for callbacks `on_bytes(done, total)` counting bytes read, with the read speed."""
    with _bars(console, transient=True, in_bytes=True) as progress:
        task = progress.add_task(title, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


@contextmanager
def collect_progress(console: Console) -> Iterator[Any]:
    """A bar per search term and per stage, for `genremap collect` (a `Progress` of callbacks)."""
    from genremap.collectors.spotify import Progress as Callbacks

    with _bars(console, transient=False) as progress:
        tasks: dict[str, TaskID] = {}

        def update(name: str, done: int, total: int | None) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(name, total=total)
            progress.update(tasks[name], completed=done, total=total)

        yield Callbacks(
            term=lambda term, done, total: update(f"search '{term}'", done, total),
            stage=lambda stage, done, total: update(stage, done, total),
            note=lambda text: progress.console.print(f"note: {text}", markup=False),
        )
