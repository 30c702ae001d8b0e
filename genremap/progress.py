"""Rich progress displays for the CLI (silent when output is not a terminal)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


@contextmanager
def stages(console: Console, title: str) -> Iterator[Callable[[str], None]]:
    """A spinner naming the current stage; yields a callback taking the next stage's name."""
    with Progress(
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
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task(title, total=total)
        yield lambda n: progress.advance(task, n)
