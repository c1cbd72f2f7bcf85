"""Logging to stderr (results go to files, never to the log)."""

from __future__ import annotations

import logging

from rich.console import Console
from rich.logging import RichHandler

stderr = Console(stderr=True)


def setup_logging(verbose: bool = False) -> None:
    """Send aigcrec's log records to stderr through rich; idempotent."""
    level = logging.DEBUG if verbose else logging.INFO
    root = logging.getLogger("aigcrec")
    root.setLevel(level)
    if not any(isinstance(h, RichHandler) for h in root.handlers):
        root.addHandler(RichHandler(console=stderr, show_path=False, rich_tracebacks=False))
    root.propagate = False


def progress(**kwargs):
    """A rich progress bar on stderr; use as ``with progress() as p: task = p.add_task(...)``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=False,
        **kwargs,
    )
