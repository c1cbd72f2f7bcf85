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
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aigcrec.config import AppConfig
from aigcrec.report import Report
from aigcrec.seeding import seed_everything

log = logging.getLogger("aigcrec.demo")

# Stage modules in data-flow order (DESIGN.md section 3).
STAGES: list[str] = [
    "aigcrec.world.demo",
    "aigcrec.data.demo",
    "aigcrec.content.demo",
    "aigcrec.affect.demo",
    "aigcrec.ranking.demo",
    "aigcrec.service.demo",
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

    def record(self, stage: str, name: str, value: Any, headline: bool = False) -> None:
        """Store a metric under ``metrics[stage][name]``; headline ones also go in the printed table."""
        self.metrics.setdefault(stage, {})[name] = value
        if headline:
            self.summary.append({"stage": stage, "metric": name, "value": value})


def _point_latest(out: Path, run_dir: Path) -> None:
    latest = out / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(run_dir.name, target_is_directory=True)


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
    timings: dict[str, float] = {}
    for module_name in STAGES:
        stage = module_name.split(".")[1]
        log.info("stage %s", stage)
        t0 = time.perf_counter()
        importlib.import_module(module_name).run(ctx)
        timings[stage] = round(time.perf_counter() - t0, 2)
        log.info("stage %s done in %.1fs", stage, timings[stage])
    ctx.metrics["timings_s"] = timings
    (run_dir / "metrics.json").write_text(json.dumps(ctx.metrics, indent=2, default=_jsonable), encoding="utf-8")
    _manifest(ctx, timings).save(run_dir)  # what `aigcrec serve` (no arguments) loads
    ctx.report.section("Stage timings (seconds)")
    ctx.report.table([{"stage": k, "seconds": v} for k, v in timings.items()])
    ctx.report.write(run_dir / "report.html")
    _point_latest(out, run_dir)
    return ctx


def _manifest(ctx: DemoContext, timings: dict[str, float]):
    """The typed artifacts manifest of a demo run: the world as the catalog, the stages' models and figures."""
    from aigcrec import __version__
    from aigcrec.service.artifacts import ArtifactsManifest, StepRecord

    art = dict(ctx.artifacts)
    rel = {k: ArtifactsManifest.relative(art.pop(k), ctx.run_dir)
           for k in ("feature_store", "ranker_dir", "content_dir", "mmei_dir") if art.get(k)}
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
