"""The two request-path functions changed for issue 24, old vs new code in one process, interleaved.

``RankerBundle._live_profile`` (old: one torch row index per history item, then ``torch.stack``; new: one
gather) and ``RankerBundle._item_stacks`` on cached items (old: a membership test per item, then a lookup
per item; new: one pass for the positions). Both are timed in the same process, alternating in rounds, so a
shared machine's load hits both alike; thread CPU time per call, median over rounds. Writes
``recommend_ab.json`` under ``--out``.

    PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/recommend_ab.py --out benchmarks/results/scale/profile
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale  # noqa: E402  (the benchmark next to this script)

from aigcrec.ranking.features import split_history_key  # noqa: E402


def old_live_profile(self, key, history, features):
    """``RankerBundle._live_profile`` as of commit e5aa4f5."""
    field_name, table_name = split_history_key(key)
    max_len = next(f.max_len for f in self.spec.history if f.name == field_name)
    vf = next(f for f in self.spec.vectors if f.name == table_name)
    table = self.model.tables[table_name].weight.detach()
    keys = self.spec.state[table_name]["keys"]
    given = None if features is None or features.get(table_name) is None else np.asarray(features[table_name], np.float32)
    start = max(0, len(history) - max_len)
    rows = [table[keys[i]] for i in history[start:] if keys.get(i, 0)]
    new = [j for j in range(start, len(history)) if not keys.get(history[j], 0)]
    if given is not None and new:
        rows += list(torch.from_numpy(self.spec.prepare_vectors(vf, given[new])))
    return torch.stack(rows).mean(0, keepdim=True) if rows else torch.zeros(1, vf.dim)


def old_item_stacks(self, item_ids):
    """``RankerBundle._item_stacks`` as of commit e5aa4f5, every item cached."""
    new = [k for k, i in enumerate(item_ids) if i not in self._stacks]
    assert not new
    return self._stacks.get(item_ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--out", type=Path, default=Path("runs/recommend-ab"))
    args = ap.parse_args()
    w = scale.recommend_world(argparse.Namespace(items=args.items, width_div=8, approx_kind="ivf", approx_param=32,
                                                 train_samples=4096))
    pipe, b = w["pipe"], w["pipe"].ranker
    users = [u for u in w["asked"][:500] if pipe.users.history(u)][:50]
    cases = []
    for u in users:
        liked = np.asarray(pipe.users.history(u), np.int64)
        rows, _, _ = pipe._plain_candidates(u, pipe.config.retrieval.candidates, pipe.users.seen_rows(u))
        cases.append(([pipe.catalog.item_ids[r] for r in liked], pipe.catalog.features_of(liked),
                      [pipe.catalog.item_ids[r] for r in rows]))
    keys = b.model.history_keys
    for hid, hf, ids in cases:  # same answers first
        for key in keys:
            assert torch.equal(old_live_profile(b, key, hid, hf), b._live_profile(key, hid, hf))
        assert np.array_equal(old_item_stacks(b, ids), b._item_stacks("", ids, None))
    fns = {
        "live_profile_old": lambda c: [old_live_profile(b, k, c[0], c[1]) for k in keys],
        "live_profile_new": lambda c: [b._live_profile(k, c[0], c[1]) for k in keys],
        "item_stacks_old": lambda c: old_item_stacks(b, c[2]),
        "item_stacks_new": lambda c: b._item_stacks("", c[2], None),
    }
    per: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(args.rounds):
        for name, fn in fns.items():
            c0 = time.thread_time()
            for j in range(args.calls):
                fn(cases[j % len(cases)])
            per[name].append((time.thread_time() - c0) / args.calls * 1e6)
    res = {"items": args.items, "history_len_per_user": len(cases[0][0]), "candidates": len(cases[0][2]),
           "history_profiles": len(keys), "rounds": args.rounds, "calls_per_round": args.calls,
           "load_1min": round(os.getloadavg()[0], 2), "same_outputs": True,
           "median_us_per_request": {k: round(float(np.median(v)), 1) for k, v in per.items()}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "recommend_ab.json").write_text(json.dumps(res, indent=1), encoding="utf-8")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
