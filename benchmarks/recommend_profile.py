"""Where one recommend request's CPU time goes (issue 24): stage CPU and wall per request, and a cProfile.

Builds the scale benchmark's recommend serving state (``scale.recommend_world``: synthetic catalog at
1/``--width-div`` content widths, UMAIR-FPS bundle on ONNX, no signals), then serves ``--requests``
sequential requests twice: once with each stage wrapped in CPU (``time.thread_time``) and wall clocks, once
under cProfile with a CPU timer. Writes ``profile-<items>.json`` and ``profile-<items>.md`` under ``--out``.

Stages: ``candidates`` (``_plain_candidates``: FAISS query, fresh / popular lists, exclusion), ``encode``
(``RankerBundle.encode_request``: the model batch), ``stacks`` (cached item stacks), ``onnx`` (the ONNX
Runtime call), ``features`` (``ServedCatalog.features_of`` of candidates and history), ``diversify``; the
rest of ``recommend`` is ``other``.

    PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/recommend_profile.py --items 100000 --out benchmarks/results/scale/profile
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale  # noqa: E402  (the benchmark next to this script)

from aigcrec.ranking import bundle as bundle_mod  # noqa: E402
from aigcrec.service import pipeline as pipeline_mod  # noqa: E402


class Clock:
    """CPU and wall seconds spent inside wrapped callables, by stage name (outermost call only per stage)."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}
        self.wall: dict[str, float] = {}

    def wrap(self, name: str, fn: Callable) -> Callable:
        def inner(*a, **kw):
            c0, w0 = time.thread_time(), time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.cpu[name] = self.cpu.get(name, 0.0) + time.thread_time() - c0
                self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - w0
        return inner


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--width-div", type=int, default=8)
    ap.add_argument("--approx-kind", default="ivf")
    ap.add_argument("--approx-param", type=int, default=32)
    ap.add_argument("--train-samples", type=int, default=4096)
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--out", type=Path, default=Path("runs/recommend-profile"))
    args = ap.parse_args()
    w = scale.recommend_world(args)
    pipe, config, asked = w["pipe"], w["config"], w["asked"]
    k = config.default_k
    for i in range(20):  # warm-up
        pipe.recommend(asked[i], k)

    clock = Clock()
    b = pipe.ranker
    saved = {"_plain_candidates": pipe._plain_candidates, "encode_request": b.encode_request,
             "_item_stacks": b._item_stacks, "features_of": pipe.catalog.features_of}
    pipe._plain_candidates = clock.wrap("candidates", pipe._plain_candidates)
    b.encode_request = clock.wrap("encode", b.encode_request)
    b._item_stacks = clock.wrap("stacks", b._item_stacks)
    pipe.catalog.features_of = clock.wrap("features", pipe.catalog.features_of)
    run_onnx, diversify = bundle_mod.run_onnx, pipeline_mod.diversify
    bundle_mod.run_onnx = clock.wrap("onnx", run_onnx)
    pipeline_mod.diversify = clock.wrap("diversify", diversify)
    total_cpu = total_wall = 0.0
    start = 20
    for i in range(start, start + args.requests):
        c0, w0 = time.thread_time(), time.perf_counter()
        pipe.recommend(asked[i], k)
        total_cpu += time.thread_time() - c0
        total_wall += time.perf_counter() - w0
    bundle_mod.run_onnx, pipeline_mod.diversify = run_onnx, diversify
    for name, fn in saved.items():
        setattr(pipe if name == "_plain_candidates" else pipe.catalog if name == "features_of" else b, name, fn)

    n = args.requests
    stages = {s: {"cpu_ms": round(clock.cpu[s] / n * 1e3, 3), "wall_ms": round(clock.wall[s] / n * 1e3, 3)}
              for s in clock.cpu}
    stages["other"] = {"cpu_ms": round((total_cpu - sum(clock.cpu.values())) / n * 1e3, 3),
                       "wall_ms": round((total_wall - sum(clock.wall.values())) / n * 1e3, 3)}
    prof = cProfile.Profile(time.thread_time)
    prof.enable()
    for i in range(start + n, start + 2 * n):
        pipe.recommend(asked[i], k)
    prof.disable()
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(25)
    # no path of this machine in the results: the repository's and the environment's prefixes dropped
    profile_text = re.sub(r"\S*/site-packages/", "site-packages/",
                          text.getvalue().replace(str(Path(__file__).resolve().parents[1]) + "/", ""))
    res: dict[str, Any] = {
        "items": args.items, "width_div": args.width_div, "index": pipe.index.kind, "requests": n,
        "load_1min": round(os.getloadavg()[0], 2),
        "request_cpu_ms": round(total_cpu / n * 1e3, 3), "request_wall_ms": round(total_wall / n * 1e3, 3),
        "stages": stages, "cprofile_top_tottime": profile_text}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"profile-{args.items}.json").write_text(json.dumps(res, indent=1), encoding="utf-8")
    rows = "\n".join(f"| {s} | {v['cpu_ms']} | {v['wall_ms']} |" for s, v in stages.items())
    md = (f"# recommend profile, {args.items:,} items (width 1/{args.width_div}, {pipe.index.kind} index)\n\n"
          f"Command: `PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/recommend_profile.py --items "
          f"{args.items} --out {args.out}`. {n} sequential requests, 1-minute load {res['load_1min']}.\n\n"
          f"Per request: CPU {res['request_cpu_ms']} ms, wall {res['request_wall_ms']} ms.\n\n"
          f"| stage | cpu_ms | wall_ms |\n|---|---|---|\n{rows}\n\n"
          f"cProfile (CPU timer), {n} further requests, top 25 by own time:\n\n```\n"
          f"{res['cprofile_top_tottime'].strip()}\n```\n")
    (args.out / f"profile-{args.items}.md").write_text(md, encoding="utf-8")
    print(md)


if __name__ == "__main__":
    main()
