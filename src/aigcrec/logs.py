"""Logging to stderr (results go to files, never to the log)."""

from __future__ import annotations

import contextlib
import logging
import time

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

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
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=False,
        **kwargs,
    )


@contextlib.contextmanager
def timed(label: str, into: dict[str, dict[str, float]] | None = None):
    """Log how long the block took, in wall and in this process's CPU seconds (all threads), and store both
    under ``into[label]`` (``{"wall_s", "cpu_s"}``): CPU seconds say what a step costs on a busy machine too."""
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if into is not None:
            into[label] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}
        logging.getLogger("aigcrec").info("%s: %.1fs wall, %.1fs CPU", label, wall, cpu)
