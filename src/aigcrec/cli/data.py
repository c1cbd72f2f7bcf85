"""Commands of the data stage: ``aigcrec data validate``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from aigcrec.cli.common import ConfigOpt, SeedOpt, VerboseOpt, app_config, data_app, fail
from aigcrec.data.report import DatasetReport
from aigcrec.data.validate import Format

log = logging.getLogger("aigcrec.data")


def _count_table(title: str, key: str, value: str, counts: dict[str, int]):
    """A two-column rich table: each ``key`` and its count (column ``value``)."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column(key)
    table.add_column(value, justify="right")
    for k, v in counts.items():
        table.add_row(k, str(v))
    return table


def _print_report(report: DatasetReport) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{report.format}[/bold] at {report.root}: OK")
    console.print(_count_table("counts", "what", "count", report.counts))
    for name, dist in report.distributions.items():
        table = Table(title=f"distribution of {name}")
        table.add_column("value")
        table.add_column("count", justify="right")
        table.add_column("share", justify="right")
        total = sum(dist.values()) or 1
        for k, v in list(dist.items())[:30]:
            table.add_row(k, str(v), f"{v / total:.1%}")
        if len(dist) > 30:
            table.add_row(f"... {len(dist) - 30} more", "", "")
        console.print(table)
    console.print(_count_table("missing optional values (loaded, counted)", "field", "missing", report.missing))
    for note in report.notes:
        console.print(f"note: {note}")


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the CLI (top-level ones on ``app``, others on the shared groups)."""

    @data_app.command("validate")
    def validate(
        directory: Annotated[Path, typer.Argument(help="Dataset folder to check.", show_default=False)],
        fmt: Annotated[Format, typer.Option(
            "--format", "-f", help="Format of the folder.", case_sensitive=False)],
        config: ConfigOpt = None,
        seed: SeedOpt = None,
        out: Annotated[Optional[Path], typer.Option(
            "--out", "-o", help="Write the report as JSON: to this file if it ends in .json, "
                                "else to <out>/validate_<format>.json.")] = None,
        check_media: Annotated[bool, typer.Option(
            "--check-media/--no-check-media",
            help="Check that every poster/image file named exists.")] = True,
        verbose: VerboseOpt = False,
    ) -> None:
        """Load a dataset folder strictly; print counts, label distributions and missing values.

        Exits 1 with one line naming the file, row and field on bad input.
        """
        from aigcrec.data.errors import DataError
        from aigcrec.data.validate import load_report
        from aigcrec.logs import stderr

        app_config(config, seed, None, verbose)
        log.info("validating %s as %s", directory, fmt.value)
        try:
            with stderr.status(f"loading {directory} as {fmt.value} ..."):
                report = load_report(fmt, directory, check_media)
        except DataError as exc:
            fail(str(exc))
        _print_report(report)
        if out is not None:
            target = out if out.suffix == ".json" else out / f"validate_{fmt.value}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
            log.info("report written to %s", target)
