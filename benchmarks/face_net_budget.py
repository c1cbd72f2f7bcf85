"""How much face-net training the world's faces need: test accuracy against training cost, one run.

Detects and crops the faces of a world's sessions once (as the face encoder does, in memory only), then trains
``face-net`` (``aigcrec.affect.face_train.train_face_net``) at each ``width:epochs`` budget on one torch thread
(CPU seconds on one thread are comparable on a busy machine) and reports the test accuracy on the test
sessions' faces. The demo's budget (``configs/demo.yaml``) and the benchmarks' (``benchmarks/affect_world.yaml``)
are read from this table.

    .venv/bin/python benchmarks/face_net_budget.py --world worlds/default-0 --budgets 16:8 16:12 32:8 32:30 \
        --out benchmarks/results/affect-face-net-budget
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from aigcrec.affect.config import AffectConfig
from aigcrec.affect.face_train import face_net_probs, train_face_net
from aigcrec.affect.tasks import load_world_sessions, world_face_splits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", type=Path, required=True)
    ap.add_argument("--budgets", nargs="+", default=["16:8", "16:12", "32:8", "32:30"], help="width:epochs")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    cfg = AffectConfig()
    splits = world_face_splits(load_world_sessions(args.world), args.world, cfg)
    torch.set_num_threads(1)
    rows = []
    for budget in args.budgets:
        width, epochs = (int(v) for v in budget.split(":"))
        ft = cfg.encoders.face_train.model_copy(update={"enabled": True, "width": width, "epochs": epochs,
                                                         "batch_size": args.batch_size, "threads": 1})
        t0, c0 = time.perf_counter(), time.process_time()
        net, history = train_face_net(*splits["train"], *splits["dev"], ft, args.seed)
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        test_x, test_y = splits["test"]
        rows.append({"width": width, "epochs": epochs, "cpu_s": round(cpu, 1), "wall_s": round(wall, 1),
                     "best_dev_accuracy": round(max(h["dev_accuracy"] for h in history), 4),
                     "test_accuracy": round(float(np.mean(face_net_probs(net, test_x).argmax(1) == test_y)), 4)})
        print(json.dumps(rows[-1]), flush=True)
    result = {"world": args.world.name, "seed": args.seed, "batch_size": args.batch_size, "threads": 1,
              "faces": {s: len(y) for s, (_, y) in splits.items()}, "load_average_1m": round(os.getloadavg()[0], 2),
              "budgets": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "face_net_budget.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    lines = ["# face-net training budget on the world's faces", "",
             f"World {result['world']}, faces {result['faces']}, seed {args.seed}, batch {args.batch_size}, one torch "
             f"thread; load average {result['load_average_1m']} at the end (CPU seconds are the comparable figure).", "",
             "| width | epochs | CPU s | wall s | best dev accuracy | test accuracy |", "|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['width']} | {r['epochs']} | {r['cpu_s']} | {r['wall_s']} | {r['best_dev_accuracy']} | "
              f"{r['test_accuracy']} |" for r in rows]
    (args.out / "face_net_budget.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
