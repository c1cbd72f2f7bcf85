"""Entry point of the `aigcrec` command."""

from __future__ import annotations

import importlib

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
    "aigcrec.data.cli",
    "aigcrec.world.cli",
    "aigcrec.content.cli",
    "aigcrec.affect.cli",
    "aigcrec.ranking.cli",
    "aigcrec.service.cli",
    "aigcrec.distributed.cli",
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


def _default_demo_config():
    from importlib.resources import files

    return files("aigcrec").joinpath("configs/demo.yaml")


if __name__ == "__main__":  # pragma: no cover
    app()
