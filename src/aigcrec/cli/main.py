"""Entry point of the `aigcrec` command."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Optional

import typer

from aigcrec.cli.common import (
    ConfigOpt,
    OutOpt,
    SeedOpt,
    VerboseOpt,
    app_config,
    benchmark_app,
    data_app,
    encode_app,
    evaluate_app,
    export_app,
    train_app,
)

app = typer.Typer(
    name="aigcrec",
    help="Recommend AI-generated content from what it is, what users like, and how they feel now.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for sub in (data_app, encode_app, train_app, evaluate_app, benchmark_app, export_app):
    app.add_typer(sub)

# Each stage registers its commands on the groups above (and top-level ones on `app`).
for module in (
    "aigcrec.cli.data",
    "aigcrec.cli.world",
    "aigcrec.cli.content",
    "aigcrec.cli.affect",
    "aigcrec.cli.ranking",
    "aigcrec.cli.service",
    "aigcrec.cli.topk",
    "aigcrec.cli.simulate",
    "aigcrec.cli.distributed",
):
    importlib.import_module(module).register(app)


@app.command()
def demo(config: ConfigOpt = None, seed: SeedOpt = None, out: OutOpt = None, verbose: VerboseOpt = False) -> None:
    """Run every stage on the embedded world; print a results table; write metrics.json and report.html."""
    from rich.console import Console
    from rich.table import Table

    from aigcrec.demo import run_demo

    cfg = app_config(config or _default_demo_config(), seed, out, verbose)
    ctx = run_demo(cfg)
    table = Table(title="aigcrec demo results")
    for col in ("stage", "metric", "value"):
        table.add_column(col)
    for row in ctx.summary:
        v = row["value"]
        table.add_row(row["stage"], row["metric"], f"{v:.4f}" if isinstance(v, float) else str(v))
    console = Console()
    console.print(table)
    console.print(f"metrics: {ctx.run_dir / 'metrics.json'}")
    console.print(f"report:  {ctx.run_dir / 'report.html'}")


@app.command()
def build(
    catalog: Annotated[Path, typer.Option("--catalog", help="Catalog folder: a world, MovieLens with posters, or "
                                                            "items.csv + images + interactions.csv.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Models folder to write (serve it with --models).")],
    model: Annotated[str, typer.Option(help="Ranker variant (umair_fps, dcnv2, ...).")] = "umair_fps",
    encoder: Annotated[Optional[Path], typer.Option(
        "--encoder", help="A saved ContentEncoder folder (default: the configured encoders).")] = None,
    affect: Annotated[Optional[Path], typer.Option(
        "--affect", help="A saved MMEI model to record in the manifest (default: M/mmei if present).")] = None,
    config: ConfigOpt = None, seed: SeedOpt = None, verbose: VerboseOpt = False,
) -> None:
    """Encode a catalog, train and export its ranker, and write OUT/artifacts.json for `aigcrec serve --models OUT`."""
    from aigcrec.build import BuildError
    from aigcrec.build import build as run_build
    from aigcrec.cli.common import fail
    from aigcrec.data.errors import DataError
    from aigcrec.ranking.experiment import VARIANTS

    cfg = app_config(config, seed, None, verbose)
    if model not in VARIANTS or model == "popularity":
        fail(f"--model: expected one of {sorted(set(VARIANTS) - {'popularity'})}, got {model!r}", 2)
    for opt, path in (("--encoder", encoder), ("--affect", affect)):
        if path is not None and not path.is_dir():
            fail(f"{opt} {path}: no such folder", 2)
    try:
        run_build(catalog, out, cfg, model, encoder, affect, report=lambda line: typer.echo(line, err=True))
    except (DataError, BuildError, ValueError) as exc:
        fail(str(exc))


def _default_demo_config():
    from importlib.resources import files

    return files("aigcrec").joinpath("configs/demo.yaml")


if __name__ == "__main__":  # pragma: no cover
    app()
