"""`aigcrec demo`: every stage end to end on the embedded world, a results table and an HTML report.

Each stage is a function ``run(ctx: DemoContext) -> None`` in ``aigcrec.<stage>.demo``. It reads what
earlier stages left in ``ctx.artifacts``, records metrics with ``ctx.record`` and adds report sections.
Reusable artifacts (the generated world, trained models) go under ``ctx.cache_dir`` keyed by their
config, so a second demo run reuses them.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aigcrec.config import AppConfig
from aigcrec.logs import timed
from aigcrec.report import Report
from aigcrec.seeding import seed_everything
from aigcrec import __version__
from aigcrec.service.artifacts import ArtifactsManifest, StepRecord

log = logging.getLogger("aigcrec.demo")

# Stage modules in data-flow order (DESIGN.md section 3).
STAGES: list[str] = [
    "aigcrec.demo.world",
    "aigcrec.demo.data",
    "aigcrec.demo.content",
    "aigcrec.demo.affect",
    "aigcrec.demo.ranking",
    "aigcrec.demo.retrieval",
    "aigcrec.demo.service",
    "aigcrec.demo.simulate",
]


@dataclass
class DemoContext:
    """What the stages share: the config, where to write, artifacts of earlier stages, results."""

    config: AppConfig
    run_dir: Path
    cache_dir: Path
    report: Report
    artifacts: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    summary: list[dict[str, Any]] = field(default_factory=list)
    steps: dict[str, dict[str, float]] = field(default_factory=dict)

    def record(self, stage: str, name: str, value: Any, headline: bool = False) -> None:
        """Store a metric under ``metrics[stage][name]``; headline ones also go in the printed table."""
        self.metrics.setdefault(stage, {})[name] = value
        if headline:
            self.summary.append({"stage": stage, "metric": name, "value": value})

    def step(self, stage: str, name: str):
        """``with ctx.step("affect", "face-net training"):`` times a step (wall and CPU seconds) for the
        report's timing table."""
        return timed(f"{stage}: {name}", self.steps)


def _point_latest(out: Path, run_dir: Path) -> None:
    latest = out / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(run_dir.name, target_is_directory=True)


def stage_name(module_name: str) -> str:
    """The stage a demo module runs: ``aigcrec.demo.<stage>`` -> ``<stage>`` (the key of its timings)."""
    return module_name.rsplit(".", 1)[1]


def run_demo(config: AppConfig) -> DemoContext:
    """Run every stage; return the context (metrics and where the report is)."""
    seed_everything(config.seed)
    out = Path(config.out)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = out / stamp
    run_dir.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(config=config, run_dir=run_dir, cache_dir=out / "cache", report=Report("aigcrec demo"))
    ctx.cache_dir.mkdir(parents=True, exist_ok=True)
    ctx.report.text(
        f"Run {stamp} · seed {config.seed} · Python {platform.python_version()} · "
        f"{os.cpu_count()} CPU cores · HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', 'unset')}"
    )
    stages: dict[str, dict[str, float]] = {}
    t_start = time.perf_counter()
    for k, module_name in enumerate(STAGES, 1):
        stage = stage_name(module_name)
        log.info("stage %d/%d: %s (%.0fs so far)", k, len(STAGES), stage, time.perf_counter() - t_start)
        with timed(f"stage {stage}", stages):
            importlib.import_module(module_name).run(ctx)
    timings = {name.removeprefix("stage "): t["wall_s"] for name, t in stages.items()}
    ctx.metrics["timings_s"] = timings
    ctx.metrics["cpu_s"] = {name.removeprefix("stage "): t["cpu_s"] for name, t in stages.items()}
    ctx.metrics["steps_s"] = ctx.steps
    installs = install_seconds()
    if installs is not None:
        ctx.metrics["install_s"] = installs
    (run_dir / "metrics.json").write_text(json.dumps(ctx.metrics, indent=2, default=_jsonable), encoding="utf-8")
    _manifest(ctx, timings).save(run_dir)  # what `aigcrec serve` (no arguments) loads
    ctx.report.section("Stage timings (seconds)",
                       "Wall-clock and CPU seconds (this process, all threads) of each stage and of its main steps; a "
                       "stage served from the cache (runs/cache) takes a second or two. "
                       + (f"The installs of the virtualenv took {installs:.0f} s (not included)."
                          if installs is not None else "Install time not recorded (no make-built virtualenv)."))
    rows = [{"stage": k, "wall_s": v["wall_s"], "cpu_s": v["cpu_s"]} for k, v in stages.items()]
    rows.append({"stage": "total", "wall_s": round(sum(timings.values()), 2),
                 "cpu_s": round(sum(ctx.metrics["cpu_s"].values()), 2)})
    rows += [{"stage": f"· {k}", **v} for k, v in ctx.steps.items()]
    ctx.report.table(rows)
    ctx.report.write(run_dir / "report.html")
    _point_latest(out, run_dir)
    return ctx


def install_seconds() -> float | None:
    """How long ``make`` took to install this virtualenv (``<venv>/.install-seconds``, written by the Makefile)."""
    path = Path(sys.prefix) / ".install-seconds"
    try:
        return float(path.read_text(encoding="utf-8").split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _manifest(ctx: DemoContext, timings: dict[str, float]):
    """The typed artifacts manifest of a demo run: the world as the catalog, the stages' models and figures."""

    art = dict(ctx.artifacts)
    rel = {k: ArtifactsManifest.relative(art.pop(k), ctx.run_dir)
           for k in ("feature_store", "ranker_dir", "content_dir", "mmei_dir", "retrieval_dir") if art.get(k)}
    catalog = ArtifactsManifest.relative(art.pop("world_dir"), ctx.run_dir)
    steps = [StepRecord(name=stage, seconds=seconds,
                        figures={r["metric"]: r["value"] if isinstance(r["value"], (int, float, str, bool)) else
                                 str(r["value"]) for r in ctx.summary if r["stage"] == stage})
             for stage, seconds in timings.items()]
    return ArtifactsManifest(catalog_dir=catalog, layout="world", **rel, versions={"aigcrec": __version__},
                             steps=steps, extra={k: str(v) if isinstance(v, Path) else v for k, v in art.items()})


def _jsonable(v: Any) -> Any:
    if hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, Path):
        return str(v)
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")
