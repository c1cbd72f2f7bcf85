"""``aigcrec benchmark ranking``: every model variant (and the peers) on the warm and cold-item splits.

Each (split, model, seed) trains once; the JSON keeps per-seed figures and mean ± std. The warm split
gives AUC / logloss / gAUC and training throughput; the cold-item split gives ``cold_auc``. Peers
(``--peers``) train in the same process, on the same encoded split, batch size and machine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from aigcrec.metrics import auc, gauc, logloss
from aigcrec.ranking.config import RankingConfig
from aigcrec.ranking.data import RankingData, cold_item_split, warm_split
from aigcrec.ranking.experiment import ABLATIONS, Prepared, prepare, run_variant, variant_config
from aigcrec.logs import progress
from aigcrec.ranking.peers import ALL_PEERS, PEERS, RUNNERS

log = logging.getLogger("aigcrec.ranking")

MOVIELENS_MODELS = ["umair_fps", "umair_fps_no_style", "umair_fps_no_image", "umair_fps_no_text",
                    "umair_fps_concat", "umair_fps_no_dcn", "dcnv2", "dcn", "deepfm", "xdeepfm", "fm", "lr",
                    "popularity"]
WORLD_MODELS = ABLATIONS + ["umair_fps_no_visual", "dcnv2", "deepfm", "popularity"]


def machine_load() -> dict[str, Any]:
    """CPU count and 1/5/15-minute load averages at the time of the call."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"cpus": os.cpu_count(), "load_1m": load[0], "load_5m": load[1], "load_15m": load[2],
            "python": platform.python_version()}


def _run_peer(name: str, prep: Prepared, cfg: RankingConfig, seed: int) -> dict[str, float]:
    _, mcfg = variant_config("dcnv2", cfg.model)
    tab = prep.spec.tabular_only()
    out = RUNNERS[name](tab, prep.parts, prep.labels, mcfg, cfg.train, seed)
    y, p = prep.labels["test"], np.clip(out["probs"], 0.0, 1.0)
    return {"auc": auc(y, p), "logloss": logloss(y, p), "gauc": gauc(prep.users["test"], y, p),
            "train_samples_per_s": out["train_samples_per_s"], "best_epoch": float(out["best_epoch"])}, p


def taste_aucs(prep: Prepared, probs: np.ndarray) -> dict[str, float]:
    """Test AUC per ground-truth taste type of the user (worlds only; empty otherwise)."""
    users = prep.data.users
    if users is None or "taste_type" not in users.columns:
        return {}
    taste = dict(zip(users["user_id"].astype(str), users["taste_type"].astype(str)))
    groups = np.array([taste.get(u, "?") for u in prep.users["test"]])
    y = prep.labels["test"]
    return {f"auc_{g}": auc(y[groups == g], probs[groups == g]) for g in sorted(set(groups))
            if 0 < y[groups == g].sum() < (groups == g).sum()}


def _summary(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def _run_key(data: RankingData, cfg: RankingConfig) -> str:
    """Runs are reused only for the same data (impressions, fields, vectors), history length and ranking config."""
    history = [[f.name, f.max_len] for f in data.fields if f.kind == "history"]
    blob = json.dumps({"data": [data.name, data.fingerprint()], "history": history,
                       "cfg": cfg.model_dump(exclude={"seeds"})}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


SPLITS = ("warm", "cold")


def run_benchmark(data: RankingData, cfg: RankingConfig, seeds: list[int], models: list[str], peers: bool | str,
                  out_dir: str | Path, split_names: tuple[str, ...] = SPLITS) -> dict[str, Any]:
    """Train every model on the splits (both by default) for every seed; write ``ranking.json`` and ``ranking.md``.

    ``peers``: False, True (``peers.PEERS``: DeepCTR-Torch DCNMix, FuxiCTR DCNv2) or "all" (``peers.ALL_PEERS``:
    also the UMAIR-FPS authors' other FuxiCTR baselines).

    Each (split, model, seed) result is kept in ``out_dir/runs/<config key>/`` and reused by a later call
    with the same data and config, so an interrupted benchmark resumes, and seeds can run in separate
    processes (``--seed K --seeds 1`` each) before one call with every seed gathers them.
    """

    if peers not in (False, True, "all"):
        raise ValueError(f"peers: expected False, True or 'all', got {peers!r}")
    peer_names = list(ALL_PEERS if peers == "all" else PEERS if peers else [])
    out = Path(out_dir)
    cache = out / "runs" / _run_key(data, cfg)
    cache.mkdir(parents=True, exist_ok=True)
    names = list(models) + [p for p in peer_names if p not in models]
    if set(split_names) - set(SPLITS) or "warm" not in split_names:
        raise ValueError(f"split_names: expected 'warm' and optionally 'cold', got {list(split_names)}")
    makers = {"warm": lambda: warm_split(data.frame),
              "cold": lambda: cold_item_split(data.frame, cfg.cold_item_fraction, cfg.split_seed)}
    splits = {name: makers[name]() for name in SPLITS if name in split_names}
    runs: dict[str, dict[str, list[dict[str, float]]]] = {n: {"warm": [], "cold": []} for n in names}
    load_before = machine_load()
    t_start = time.perf_counter()
    with progress() as bar:
        task = bar.add_task("ranking benchmark", total=len(names) * len(seeds) * len(splits))
        for split_name, rows in splits.items():
            prep = None
            # seed-major: each seed's models run back to back, so the load of a shared machine drifts less
            # between the rows whose samples/s are compared (throughput_vs_deepctr_paired)
            for seed, name in ((seed, name) for seed in seeds for name in names):
                path = cache / f"{split_name}-{name}-{seed}.json"
                if path.is_file():
                    runs[name][split_name].append(json.loads(path.read_text(encoding="utf-8")))
                    bar.advance(task)
                    continue
                bar.update(task, description=f"{split_name} {name} seed {seed}")
                prep = prep or prepare(data, rows, cfg.model.history_len)
                if name in ALL_PEERS:
                    m, probs = _run_peer(name, prep, cfg, seed)
                else:
                    r = run_variant(prep, name, cfg.model, cfg.train, seed)
                    m, probs = r.metrics, r.test_probs
                record = {"seed": seed, **m, **taste_aucs(prep, probs), "load_1m": machine_load()["load_1m"]}
                path.write_text(json.dumps(record), encoding="utf-8")
                runs[name][split_name].append(record)
                log.info("%s %s seed %d: auc %.4f", split_name, name, seed, m["auc"])
                bar.advance(task)
    result = {
        "dataset": data.name,
        "split": {"warm": "per-user temporal 80/10/10",
                  **({"cold": f"{cfg.cold_item_fraction:.0%} of items (split seed {cfg.split_seed}) and all their "
                              "impressions held out; the rest per-user temporal 90/10 train/val"}
                     if "cold" in splits else {})},
        "rows": {"impressions": len(data.frame), "warm_train": int(len(splits["warm"]["train"])),
                 "warm_test": int(len(splits["warm"]["test"])),
                 **({"cold_test": int(len(splits["cold"]["test"])), "cold_items": int(len(splits["cold"]["cold_items"]))}
                    if "cold" in splits else {})},
        "seeds": list(seeds),
        "batch_size": cfg.train.batch_size,
        "machine": {"before": load_before, "after": machine_load(),
                    "seconds": round(time.perf_counter() - t_start, 1)},
        "config": cfg.model_dump(),
        "models": {},
    }
    for name in names:
        warm, cold = runs[name]["warm"], runs[name]["cold"]
        entry: dict[str, Any] = {}
        for key in ("auc", "logloss", "gauc"):
            entry[f"{key}_mean"], entry[f"{key}_std"] = _summary([r[key] for r in warm])
        for key in ("auc", "gauc") if cold else ():
            entry[f"cold_{key}_mean"], entry[f"cold_{key}_std"] = _summary([r[key] for r in cold])
        for key in sorted(k for k in warm[0] if k.startswith("auc_")):
            entry[f"{key}_mean"], entry[f"{key}_std"] = _summary([r[key] for r in warm if key in r])
        if "train_samples_per_s" in warm[0]:
            entry["train_samples_per_s"] = float(np.median([r["train_samples_per_s"] for r in warm]))
        entry["runs"] = runs[name]
        result["models"][name] = entry
    if peers and "dcnv2" in result["models"]:
        ours = result["models"]["dcnv2"]
        result["checks"] = {
            "dcnv2_minus_peer_auc": {p: ours["auc_mean"] - result["models"][p]["auc_mean"] for p in PEERS},
            "throughput_vs_deepctr": {n: result["models"][n]["train_samples_per_s"]
                                      / result["models"]["deepctr_dcnmix"]["train_samples_per_s"]
                                      for n in names if "train_samples_per_s" in result["models"][n]},
            "throughput_vs_deepctr_paired": _paired_ratios(runs, names, "deepctr_dcnmix"),
        }
    (out / "ranking.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    (out / "ranking.md").write_text(markdown_table(result), encoding="utf-8")
    return result


def _paired_ratios(runs: dict[str, dict[str, list[dict[str, float]]]], names: list[str], peer: str
                   ) -> dict[str, float]:
    """Median over seeds of ``samples/s(model, seed) / samples/s(peer, seed)`` (warm split): each ratio
    from two runs made back to back (the seed-major order of ``run_benchmark``)."""
    base = {r["seed"]: r.get("train_samples_per_s") for r in runs[peer]["warm"]}
    out = {}
    for n in names:
        ratios = [r["train_samples_per_s"] / base[r["seed"]] for r in runs[n]["warm"]
                  if r.get("train_samples_per_s") and base.get(r["seed"])]
        if ratios:
            out[n] = float(np.median(ratios))
    return out


def taste_table(result: dict[str, Any]) -> list[str]:
    """Markdown lines: warm test AUC per user taste type, and its change against the full model."""
    models = result["models"]
    tastes = sorted({k[4:-5] for m in models.values() for k in m
                     if k.startswith("auc_") and k.endswith("_mean") and k != "auc_mean"})
    if not tastes:
        return []
    full = models.get("umair_fps", {})
    lines = ["", "AUC by the user's ground-truth taste type (warm split; in brackets: change against umair_fps)", "",
             "| model | " + " | ".join(tastes) + " |", "|---" * (len(tastes) + 1) + "|"]
    for name, m in models.items():
        cells = []
        for t in tastes:
            v = m.get(f"auc_{t}_mean", float("nan"))
            ref = full.get(f"auc_{t}_mean", float("nan"))
            cells.append(f"{v:.4f}" + (f" ({v - ref:+.4f})" if name != "umair_fps" and full else ""))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def markdown_table(result: dict[str, Any]) -> str:
    """The benchmark as a Markdown table (mean ± std over seeds)."""
    lines = [f"# Ranking benchmark: {result['dataset']}", "",
             f"Seeds {result['seeds']}, batch size {result['batch_size']}. Warm split: {result['split']['warm']}. "
             + (f"Cold-item split: {result['split']['cold']}." if "cold" in result["split"] else "Cold-item split: not run."),
             "",
             "| model | AUC | logloss | gAUC | cold-item AUC | train samples/s |",
             "|---|---|---|---|---|---|"]
    for name, m in result["models"].items():
        tput = f"{m['train_samples_per_s']:.0f}" if "train_samples_per_s" in m else "-"
        cold = f"{m['cold_auc_mean']:.4f} ± {m['cold_auc_std']:.4f}" if "cold_auc_mean" in m else "-"
        lines.append(f"| {name} | {m['auc_mean']:.4f} ± {m['auc_std']:.4f} | {m['logloss_mean']:.4f} ± "
                     f"{m['logloss_std']:.4f} | {m['gauc_mean']:.4f} ± {m['gauc_std']:.4f} | {cold} | {tput} |")
    lines += taste_table(result)
    mach = result["machine"]
    loads = [r["load_1m"] for m in result["models"].values() for part in m["runs"].values() for r in part
             if "load_1m" in r]
    lines += ["", f"Machine: {mach['before']['cpus']} CPUs, shared; 1-minute load average at the end of each run "
                  f"{min(loads, default=float('nan')):.1f}-{max(loads, default=float('nan')):.1f}. Throughput is "
                  "training samples/s (median over seeds, one torch thread), comparable only within this table."]
    if "checks" in result:
        lines += ["", "Checks: " + json.dumps({k: {n: round(v, 4) for n, v in d.items()}
                                               for k, d in result["checks"].items()})]
    return "\n".join(lines) + "\n"
