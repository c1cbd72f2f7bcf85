"""Demo stage (after ``service``): a short online simulation of every policy through the real HTTP service.

Reads ``world_dir``, ``feature_store``, ``ranker_dir``, ``content_dir`` and ``mmei_dir`` of the earlier
stages; runs ``simulate.demo_sessions`` sessions on ``simulate.demo_seeds`` seed(s) in thread mode (the
models loaded once); its table, ratios and curves go to the report, its files to ``<run>/simulate/``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from aigcrec.service.artifacts import ArtifactsManifest
from aigcrec.simulate.report import BASELINE, add_to_report
from aigcrec.simulate.runner import run_simulation

log = logging.getLogger("aigcrec.simulate")


def demo_manifest(art: dict[str, Any], folder: Path) -> Path:
    """An artifacts manifest of the demo's models so far (the run's own is written after the last stage)."""
    def path(key: str) -> str | None:  # absolute: the demo's artifacts are relative to where it runs
        return str(Path(art[key]).resolve()) if art.get(key) else None

    opt = {k: path(k) for k in ("content_dir", "mmei_dir", "retrieval_dir")}
    return ArtifactsManifest(catalog_dir=path("world_dir"), layout="world", feature_store=path("feature_store"),
                             ranker_dir=path("ranker_dir"), **opt).save(folder)


def run(ctx: Any) -> None:
    cfg = ctx.config.model_copy(deep=True)
    sim = cfg.simulate
    cfg.simulate = sim.model_copy(update={"sessions": sim.demo_sessions, "seeds": sim.demo_seeds,
                                          "new_item_share": sim.demo_new_item_share, "server": "thread",
                                          "workers": 1})
    out = Path(ctx.run_dir) / "simulate"
    manifest = demo_manifest(ctx.artifacts, out / "models")
    with ctx.step("simulate", f"{len(cfg.simulate.policies)} policies x {cfg.simulate.sessions} sessions"):
        doc = run_simulation(Path(ctx.artifacts["world_dir"]), manifest.parent, cfg, out, progress=log.info)
    ctx.artifacts["simulate_dir"] = str(out)
    for name, row in doc["policies"].items():
        ctx.record("simulate", f"{name}_ctr_at_{doc['k']}", row["ctr_at_k_mean"])
    details = json.loads((out / "simulate_details.json").read_text(encoding="utf-8"))
    for policy in ("affect_mmei", "affect_oracle", "ceiling"):
        value = details["ctr_ratios"].get(f"{policy}/{BASELINE}", {}).get("mean")
        if value is not None:
            ctx.record("simulate", f"ctr_ratio_{policy}_over_blind", value, headline=policy != "ceiling")
    add_to_report(ctx.report, details, details["setting"])
