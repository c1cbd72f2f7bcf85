"""``aigcrec simulate``: an online A/B on a world through the real HTTP service (registered above the
stages, whose service it starts)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from aigcrec.cli.common import ConfigOpt, SeedOpt, VerboseOpt, app_config, fail
from aigcrec.simulate.config import POLICY_NAMES, SimulateConfig

log = logging.getLogger("aigcrec.simulate")

WorldOpt = Annotated[Path, typer.Option(
    "--world", help="The world folder whose users and true click model the simulation uses (aigcrec world).")]
ModelsOpt = Annotated[Optional[Path], typer.Option(
    "--models", help="An artifacts.json or a folder with one, built on that world (default: OUT/latest, the "
                     "latest aigcrec demo).")]
PoliciesOpt = Annotated[Optional[str], typer.Option(
    "--policies", help=f"Comma-separated, some of {','.join(POLICY_NAMES)} (default: the first six; "
                       "ceiling_blind, the best slate without the session's state, by name).")]


def register(app: typer.Typer) -> None:
    """Add ``simulate`` to the CLI."""

    @app.command()
    def simulate(
        world: WorldOpt,
        models: ModelsOpt = None,
        policies: PoliciesOpt = None,
        sessions: Annotated[Optional[int], typer.Option(min=1, help="Sessions per policy and seed.")] = None,
        seeds: Annotated[Optional[int], typer.Option(min=1, help="Number of seeds (SEED, SEED+1, ...).")
                         ] = None,
        k: Annotated[Optional[int], typer.Option("--k", min=1, help="Items shown per session.")] = None,
        workers: Annotated[Optional[int], typer.Option(
            min=1, help="Server processes (then `aigcrec serve` runs in a subprocess per run).")] = None,
        out: Annotated[Path, typer.Option("--out", "-o", help="Folder for simulate.json/.md/.html.")] = Path(
            "runs/simulate"),
        config: ConfigOpt = None, seed: SeedOpt = None, verbose: VerboseOpt = False,
    ) -> None:
        """Simulated users of WORLD meet each policy through the real HTTP service; the world's true click
        model decides their bookmarks (docs/simulate.md). Writes simulate.json, simulate.md, simulate.html."""
        cfg = app_config(config, seed, None, verbose)
        names = None if policies is None else [p.strip() for p in policies.split(",") if p.strip()]
        bad = [p for p in (names or []) if p not in POLICY_NAMES]
        if bad:
            fail(f"--policies: unknown {bad}; expected some of {','.join(POLICY_NAMES)}", 2)
        updates = {"sessions": sessions, "seeds": seeds, "k": k, "workers": workers, "policies": names}
        try:
            cfg.simulate = SimulateConfig.model_validate(
                {**cfg.simulate.model_dump(), **{key: v for key, v in updates.items() if v is not None}})
        except ValueError as exc:
            fail(f"simulate settings: {exc}", 2)
        if cfg.simulate.workers > 1:
            cfg.simulate.server = "process"
        if not (world / "world.json").is_file():
            fail(f"--world {world}: no world.json (generate one with `aigcrec world --out DIR`)", 2)
        # heavy: the service stack (torch, FAISS, uvicorn); --help stays fast
        from aigcrec.data.errors import DataError
        from aigcrec.simulate.runner import SimulationError, run_simulation

        try:
            doc = run_simulation(world, models or Path(cfg.out) / "latest", cfg, out,
                                 progress=lambda line: typer.echo(line, err=True))
        except (FileNotFoundError, ValueError, DataError, SimulationError, RuntimeError) as exc:
            fail(str(exc))
            return
        for name, row in doc["policies"].items():
            lo, hi = row["ctr_at_k_ci95"]
            typer.echo(f"{name:14s} CTR@{doc['k']} {row['ctr_at_k_mean']:.4f} [{lo:.4f}, {hi:.4f}]  "
                       f"ceiling share {row['ceiling_share_mean']:.3f}")
        typer.echo(f"wrote {out / 'simulate.json'}, simulate.md, simulate.html")
