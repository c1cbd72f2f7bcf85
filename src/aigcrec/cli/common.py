"""Options every command shares (--config, --seed, --out) and the shared command groups.

Each stage has its commands in ``aigcrec/cli/<stage>.py``, which decorate these groups, e.g.
``@train_app.command("ranker")``. Heavy imports stay inside the command functions so ``--help`` is fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from aigcrec.config import AppConfig, ConfigError, load_config
from aigcrec.logs import setup_logging

ConfigOpt = Annotated[
    Optional[Path], typer.Option("--config", "-c", help="YAML config file (see configs/).", show_default=False)
]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="Random seed (overrides the config).")]
OutOpt = Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (overrides the config).")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging on stderr.")]


def app_config(config: Path | None, seed: int | None = None, out: Path | None = None, verbose: bool = False,
               **overrides: Any) -> AppConfig:
    """Set up logging and load the config; a bad config exits with code 2 and names the key and file."""
    setup_logging(verbose)
    try:
        return load_config(config, seed=seed, out=out, **overrides)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None


def fail(message: str, code: int = 1) -> None:
    """Print a one-line error on stderr and exit non-zero (no traceback for user errors)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=code)


def _group(name: str, help: str) -> typer.Typer:
    return typer.Typer(name=name, help=help, no_args_is_help=True, add_completion=False)


data_app = _group("data", "Validate and inspect datasets (MovieLens, FER2013, MELD, CLINC150, worlds).")
train_app = _group("train", "Train models (ranker, MMEI, ...).")
evaluate_app = _group("evaluate", "Evaluate trained models and encoders.")
benchmark_app = _group("benchmark", "Benchmarks with seeds, peers and JSON + Markdown results.")
export_app = _group("export", "Export models for serving (ONNX).")
encode_app = typer.Typer(
    name="encode",
    help="Extract content features of a catalog into a feature store; subcommands fine-tune encoders.",
    invoke_without_command=True,
    add_completion=False,
)
