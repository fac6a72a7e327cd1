"""The console side of the CLI: log lines and the progress bar (rich)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class ConsoleHandler(logging.Handler):
    """Log records as single console lines (rich would wrap long paths)."""

    _STYLES = {logging.WARNING: "yellow", logging.ERROR: "red", logging.INFO: "dim"}

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        style = self._STYLES.get(record.levelno, "")
        label = record.levelname.lower()
        text = f"[{style}]{label}:[/] " if style else f"{label}: "
        self.console.print(text + escape(record.getMessage()), soft_wrap=True)


def configure_logging(console: Console, *, quiet: bool, verbose: bool) -> None:
    logger = logging.getLogger("clipswap_video")
    logger.handlers[:] = [ConsoleHandler(console)]
    logger.setLevel(logging.ERROR if quiet else logging.DEBUG if verbose else logging.WARNING)
    logger.propagate = False


class _FpsColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        speed = task.finished_speed or task.speed or (task.completed / elapsed if elapsed else None)
        return Text(f"{speed:5.1f} fps" if speed else "  ... fps", style="cyan")


@contextmanager
def progress(
    console: Console, *, enabled: bool, label: str = "swapping"
) -> Iterator[tuple[Callable[[int | None], None], Callable[[int], None]]]:
    """A frames / fps / ETA bar, shown once the job has passed its checks.

    Yields the pipeline's `on_start(total_frames)` and `on_progress(n)` callbacks.
    """
    bar = Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        _FpsColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    )
    task = bar.add_task("frames", total=None, start=False)
    started = False

    def on_start(total: int | None) -> None:
        nonlocal started
        bar.update(task, total=total)
        bar.start_task(task)
        bar.start()
        started = True

    try:
        yield on_start, (lambda n: bar.advance(task, n))
        bar.update(task, total=bar.tasks[0].completed)  # the estimate may have been off
    finally:
        if started:  # a bar never shown leaves no blank line before an error
            bar.stop()


__all__ = ["ConsoleHandler", "configure_logging", "progress"]
