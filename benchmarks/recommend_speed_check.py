"""Old vs new request-path code on the same serving state: ranked ids, scores, sources and modality weights.

Run it twice, each time with the aigcrec source to test first on PYTHONPATH: ``--dump`` with the old source
(it builds the scale benchmark's recommend state, ``scale.recommend_world``, serves the requests and saves
what they answered), then ``--compare`` with the new source (it rebuilds the same state from the same seeds,
checks that the ranker's weights hash alike, serves the same requests and compares). Requests: the first
``--requests`` asked users of the state (about 5 % unknown, the rest with 20 clicks each), after
``--new-items`` items were added live (``add_item``: their stacks are computed on first use, they enter the
fresh list), k = ``ServiceConfig.default_k``.

    PYTHONPATH=<old>/src python benchmarks/recommend_speed_check.py --dump runs/rec-check
    PYTHONPATH=src python benchmarks/recommend_speed_check.py --compare runs/rec-check --out benchmarks/results/scale
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale  # noqa: E402  (the benchmark next to this script)

TOL = 1e-6


def weights_digest(model) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().numpy().tobytes())
    return h.hexdigest()


def serve(args) -> dict[str, Any]:
    w = scale.recommend_world(argparse.Namespace(items=args.items, width_div=args.width_div, approx_kind="ivf",
                                                 approx_param=32, train_samples=4096))
    pipe, config, asked = w["pipe"], w["config"], w["asked"]
    rng = np.random.default_rng(11)
    for j in range(args.new_items):  # items posted after the start: not in the ranker's cache yet
        vecs = {name: rng.standard_normal(m.dim).astype(np.float32) for name, m in pipe.catalog.features.items()}
        pipe.add_item({"item_id": f"live{j}", "style": f"st{j % 8}", "creator_id": f"lc{j % 3}",
                       "created_at": 2.0e9 + j}, vecs)
    out: dict[str, Any] = {"digest": weights_digest(pipe.ranker.model), "requests": []}
    for user in asked[: args.requests]:
        rec = pipe.recommend(user, config.default_k)
        out["requests"].append({
            "user": user, "cold": rec.cold_start, "ids": [r.item_id for r in rec.items],
            "sources": [r.source for r in rec.items], "scores": [r.score for r in rec.items],
            "weights": [[r.modality_weights[n] for n in rec.modality_names] for r in rec.items]})
    return out


def compare(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    same_ids = same_sources = 0
    max_score = max_weight = 0.0
    for a, b in zip(old["requests"], new["requests"]):
        if a["user"] != b["user"]:
            raise SystemExit(f"request order differs: {a['user']} vs {b['user']}")
        same_ids += a["ids"] == b["ids"] and a["cold"] == b["cold"]
        same_sources += a["sources"] == b["sources"]
        if len(a["scores"]) == len(b["scores"]):
            max_score = max(max_score, float(np.max(np.abs(np.subtract(a["scores"], b["scores"])), initial=0)))
            max_weight = max(max_weight, float(np.max(np.abs(np.subtract(a["weights"], b["weights"])), initial=0)))
    n = len(old["requests"])
    ok = (old["digest"] == new["digest"] and len(new["requests"]) == n and same_ids == n
          and same_sources == n and max_score <= TOL and max_weight <= TOL)
    return {"requests": n, "same_weights_digest": old["digest"] == new["digest"], "same_ranked_ids": same_ids,
            "same_sources": same_sources, "max_abs_score_diff": max_score,
            "max_abs_modality_weight_diff": max_weight, "tolerance": TOL, "passed": bool(ok)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--dump", type=Path, help="folder for this source's answers")
    mode.add_argument("--compare", type=Path, help="folder written by --dump with the other source")
    ap.add_argument("--out", type=Path, help="with --compare: folder for recommend_check.json / .md")
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--width-div", type=int, default=8)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--new-items", type=int, default=20)
    args = ap.parse_args()
    res = serve(args)
    if args.dump:
        args.dump.mkdir(parents=True, exist_ok=True)
        (args.dump / "answers.json").write_text(json.dumps(res), encoding="utf-8")
        print(f"wrote {args.dump / 'answers.json'} ({len(res['requests'])} requests)")
        return
    cmp = {"items": args.items, "width_div": args.width_div, "new_items": args.new_items,
           **compare(json.loads((args.compare / "answers.json").read_text()), res)}
    print(json.dumps(cmp, indent=1))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "recommend_check.json").write_text(json.dumps(cmp, indent=1), encoding="utf-8")
        md = ["# Request path: old vs new code on the same serving state", "",
              "Command: `PYTHONPATH=<old>/src python benchmarks/recommend_speed_check.py --dump runs/rec-check`, "
              "then `PYTHONPATH=src python benchmarks/recommend_speed_check.py --compare runs/rec-check --out "
              f"benchmarks/results/scale` (old: the commit before the request-path changes). {cmp['items']:,} "
              f"items (1/{cmp['width_div']} widths), {cmp['new_items']} items added live, "
              f"{cmp['requests']} requests.", "",
              "| check | value |", "|---|---|"]
        md += [f"| {k} | {v} |" for k, v in cmp.items() if k not in ("items", "width_div", "new_items")]
        (args.out / "recommend_check.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    if not cmp["passed"]:
        raise SystemExit("old and new answers differ")


if __name__ == "__main__":
    main()
