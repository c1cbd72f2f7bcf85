"""Commands of the distributed stage."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the CLI (top-level ones on ``app``, others on the shared groups)."""
