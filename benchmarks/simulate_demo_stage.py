"""Time the demo's simulate stage (``aigcrec.demo.simulate.run``) alone on a built models folder.

    python benchmarks/simulate_demo_stage.py --models runs/latest --out benchmarks/results/simulate-default

Runs the stage with the demo config (``configs/demo.yaml``: every policy, ``simulate.demo_sessions``
sessions, one seed) on the manifest's world and models, and writes ``OUT/demo_stage.json`` (wall and CPU
seconds, the load average, the stage's metrics) and ``OUT/demo_stage.html`` (its report section).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from importlib.resources import files
from pathlib import Path

from aigcrec.config import load_config
from aigcrec.demo import DemoContext
from aigcrec.logs import setup_logging
from aigcrec.report import Report
from aigcrec.service.assemble import ServicePaths
from aigcrec.demo.simulate import run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, required=True, help="an artifacts.json or a folder with one")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    setup_logging(False)
    cfg = load_config(files("aigcrec").joinpath("configs/demo.yaml"))
    paths = ServicePaths.from_models(args.models)
    work = Path(cfg.out) / "simulate-demo-stage"
    ctx = DemoContext(config=cfg, run_dir=work, cache_dir=Path(cfg.out) / "cache",
                      report=Report("simulate stage"))
    work.mkdir(parents=True, exist_ok=True)
    ctx.artifacts.update(world_dir=str(paths.catalog_dir), feature_store=str(paths.feature_store),
                         ranker_dir=str(paths.ranker_dir), content_dir=str(paths.content_dir or ""),
                         mmei_dir=str(paths.mmei_dir or ""))
    load, t0, c0 = os.getloadavg()[0], time.monotonic(), time.process_time()
    run(ctx)
    result = {"wall_seconds": round(time.monotonic() - t0, 1),
              "cpu_seconds": round(time.process_time() - c0, 1),
              "cpu_cores": os.cpu_count(), "load_average_1min_start": round(load, 2),
              "load_average_1min_end": round(os.getloadavg()[0], 2), "sessions": cfg.simulate.demo_sessions,
              "seeds": cfg.simulate.demo_seeds, "new_item_share": cfg.simulate.demo_new_item_share,
              "metrics": ctx.metrics["simulate"]}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "demo_stage.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    ctx.report.write(args.out / "demo_stage.html")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
