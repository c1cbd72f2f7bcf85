"""``aigcrec benchmark topk``: every row on one split per seed; ``topk.json`` and ``topk.md``.

Per model: the validation grid is run once (seed 0: the split does not depend on the seed) and the best
setting by validation NDCG@10 is then fit for every seed on the test task and on the cold-item task.
Seeds can run in separate processes (``--seed K --seeds 1``); one without seed 0 waits for seed 0's grids.
Every (task, model, seed) result is kept under ``out/runs/<key>/`` and reused by a later call with the
same data and configuration, so an interrupted run resumes and finished seeds are never recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from aigcrec.ranking.benchmark import machine_load
from aigcrec.ranking.data import MODALITIES, RankingData
from aigcrec.topk import ours
from aigcrec.topk.evaluate import DEEP, metrics, top_k
from aigcrec.topk.peers import OPTIONAL_PEERS, PEERS, RECBOLE_PYTHON_ENV, TrainData, unseen_last_constant
from aigcrec.topk.protocol import TEST_SHARE, Task, describe, make_tasks, min_judged_positives
from aigcrec.data.world import load_world

log = logging.getLogger("aigcrec.ranking")

VARIANT = "umair_fps"
TUNE_SEED = 0  # every grid is run at this seed (the split does not depend on the seed)
SCORE_CHUNK = 256  # users scored at once by a peer ((chunk, n_items) float64)


# -- the catalog -------------------------------------------------------------------------------------------
def _metas(dataset: str, data_dir: Path, item_ids: list[str], frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Serving metadata per item (the re-rank reads style and creator_id, fresh candidates created_at)."""
    extra: dict[str, dict[str, Any]] = {}
    if dataset == "world":
        items = load_world(data_dir, check_files=False).items
        cols = [c for c in ("style", "creator_id", "created_at", "title") if c in items.columns]
        extra = {str(r["item_id"]): {c: r[c] for c in cols} for r in items[["item_id", *cols]].to_dict("records")}
    elif "release_year" in frame.columns:  # MovieLens: the release year orders "fresh"
        years = frame.drop_duplicates("item_id").set_index("item_id")["release_year"]
        extra = {str(i): {"created_at": float(y)} for i, y in years.items() if pd.notna(y)}
    return [{"item_id": i, **extra.get(i, {})} for i in item_ids]


def build_catalog(data: RankingData, dataset: str, data_dir: Path) -> tuple[ours.TopKCatalog, RankingData]:
    """Items with every content vector (the catalog everyone ranks) and the data restricted to them."""
    tables = {m: data.vectors[m] for m in MODALITIES if m in data.vectors}
    if len(tables) < len(MODALITIES):
        raise ValueError(f"{data.name}: the top-K benchmark needs vectors {list(MODALITIES)}, got {sorted(tables)}")
    ids = [str(i) for i in tables[MODALITIES[0]][0]]
    keep = set(ids)
    for m, (tids, _) in tables.items():
        keep &= {str(i) for i in tids}
    item_ids = [i for i in ids if i in keep]
    vectors = {}
    for m, (tids, mat) in tables.items():
        pos = {str(i): r for r, i in enumerate(tids)}
        vectors[m] = np.asarray(mat, np.float32)[[pos[i] for i in item_ids]]
    inside = data.frame["item_id"].astype(str).isin(keep).to_numpy()
    if not inside.all():
        log.warning("%s: %d of %d rows name items without content vectors: left out", data.name,
                    int((~inside).sum()), len(inside))
    frame = data.frame[inside].reset_index(drop=True)
    return ours.TopKCatalog(item_ids, _metas(dataset, data_dir, item_ids, frame), vectors), replace(data, frame=frame)


# -- peers -------------------------------------------------------------------------------------------------
class Matrices:
    """User and item positions and the training-positive matrix of each task."""

    def __init__(self, frame: pd.DataFrame, catalog: ours.TopKCatalog) -> None:
        self.frame = frame
        self.catalog = catalog
        self.users = sorted(frame["user_id"].astype(str).unique())
        self.user_pos = {u: r for r, u in enumerate(self.users)}
        self.item_pos = {i: r for r, i in enumerate(catalog.item_ids)}
        self._u = frame["user_id"].astype(str).map(self.user_pos).to_numpy(np.int64)
        self._i = frame["item_id"].astype(str).map(self.item_pos).to_numpy(np.int64)

    def train_data(self, task: Task) -> TrainData:
        rows = task.train[self.frame["label"].to_numpy()[task.train] == 1]
        x = sp.csr_matrix((np.ones(len(rows), np.float32), (self._u[rows], self._i[rows])),
                          shape=(len(self.users), len(self.item_pos)))
        x.data[:] = 1.0  # repeated positives count once
        return TrainData(x, self.catalog.vectors["e_sem"])

    def peer_lists(self, scorer: Callable[[np.ndarray], np.ndarray], task: Task, k: int = 20) -> list[list[str]]:
        ids = self.catalog.item_ids
        out: list[list[str]] = []
        for s in range(0, len(task.users), SCORE_CHUNK):
            users = task.users[s:s + SCORE_CHUNK]
            scores = scorer(np.array([self.user_pos[u] for u in users]))
            masked = [np.fromiter((self.item_pos[i] for i in task.known.get(u, ())), np.int64) for u in users]
            out += [[ids[r] for r in row if r >= 0] for row in top_k(scores, masked, k)]
        return out


def _judge(task: Task, lists: list[list[str]], n_items: int, deep: bool = False) -> dict[str, float]:
    return metrics(lists, [task.relevant[u] for u in task.users], n_items, deep=deep, cold=task.name == "cold")


# -- the run -----------------------------------------------------------------------------------------------
class Cache:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def get(self, name: str) -> dict[str, Any] | None:
        p = self.root / f"{name}.json"
        return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None

    def put(self, name: str, record: dict[str, Any]) -> dict[str, Any]:
        (self.root / f"{name}.json").write_text(json.dumps(record), encoding="utf-8")
        return record


def _key(data: RankingData, app_cfg, variant: str) -> str:
    blob = json.dumps({"data": [data.name, data.fingerprint()], "ranking": app_cfg.ranking.model_dump(),
                       "retrieval": app_cfg.retrieval.model_dump(mode="json"),
                       "service": app_cfg.service.model_dump(mode="json"), "variant": variant,
                       "peers": {n: p.grid for n, p in PEERS.items()}, "served": ours.SERVED_GRID}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _untuned(grid: list[dict[str, Any]]) -> dict[str, Any]:
    """The grid record where no user has a validation positive (too few positives per user for the split's
    10 %): the first setting, the documented default, is used untuned and the record says so."""
    return {"params": grid[0], "grid": grid, "val_ndcg_at_10": None,
            "untuned": "no user has a validation positive: the default setting, not tuned"}


def _tuned(cache: Cache, name: str, seeds: list[int]) -> dict[str, Any] | None:
    """The cached validation grid of ``name``; a process without the tuning seed waits for the one with it."""
    grid = cache.get(f"grid-{name}")
    if grid is None and TUNE_SEED not in seeds:
        log.info("waiting for the validation grid of %s (seed %d tunes it, in another process)", name, TUNE_SEED)
        while (grid := cache.get(f"grid-{name}")) is None:
            time.sleep(10)
    return grid


def run_peer(name: str, mats: Matrices, tasks: dict[str, Task], seeds: list[int], cache: Cache) -> None:
    peer = PEERS[name]
    n_items = len(mats.catalog.item_ids)
    warm_data = mats.train_data(tasks["test"])  # val and test share the training rows
    grid = _tuned(cache, name, seeds)
    best_fit = None  # (scorer, train s) of the chosen setting at the tuning seed: it is the test fit too
    if grid is None and not tasks["val"].users:
        grid = cache.put(f"grid-{name}", _untuned(peer.grid))
    if grid is None:
        val = []
        for g, params in enumerate(peer.grid):
            point = cache.get(f"gridpoint-{name}-{g}")
            if point is None:
                t0 = time.perf_counter()
                scorer = peer.fit(warm_data, params, TUNE_SEED)
                point = cache.put(f"gridpoint-{name}-{g}", {"params": params, "train_s": time.perf_counter() - t0,
                                  "ndcg_at_10": _judge(tasks["val"], mats.peer_lists(scorer, tasks["val"]),
                                                       n_items)["ndcg_at_10"]})
                if best_fit is None or point["ndcg_at_10"] > best_fit[2]:
                    best_fit = (scorer, point["train_s"], point["ndcg_at_10"], g)
            val.append(point["ndcg_at_10"])
            log.info("%s %s: validation NDCG@10 %.4f", name, params, val[-1])
        best = int(np.nanargmax(val))
        grid = cache.put(f"grid-{name}", {"params": peer.grid[best], "grid": peer.grid, "val_ndcg_at_10": val})
        best_fit = best_fit if best_fit is not None and best_fit[3] == best else None
    for seed in seeds:
        for tname in ("test", "cold"):
            if cache.get(f"{tname}-{name}-{seed}") is not None or not tasks[tname].users:
                continue
            data = warm_data if tname == "test" else mats.train_data(tasks["cold"])
            if tname == "cold" and not peer.uses_content:
                # A peer that reads no content ranks every item without training positives after all the
                # others (tests/test_topk.py checks each): its cold-item list positions, and so its cold
                # figures, are those of any such scorer, whatever it learned; no fit is needed to judge it.
                scorer, train_s = unseen_last_constant(data), 0.0
            elif tname == "test" and seed == TUNE_SEED and best_fit is not None:
                scorer, train_s = best_fit[0], best_fit[1]
            else:
                t0 = time.perf_counter()
                scorer = peer.fit(data, grid["params"], seed)
                train_s = time.perf_counter() - t0
            t1 = time.perf_counter()
            lists = mats.peer_lists(scorer, tasks[tname])
            ms = (time.perf_counter() - t1) * 1e3 / max(1, len(tasks[tname].users))
            m = _judge(tasks[tname], lists, n_items)
            cache.put(f"{tname}-{name}-{seed}", {"seed": seed, **m, "train_s": train_s, "ms_per_user": ms})
            log.info("%s %s seed %d: %s", tname, name, seed, {k: round(v, 4) for k, v in m.items()})


def run_ours(data: RankingData, catalog: ours.TopKCatalog, tasks: dict[str, Task], app_cfg, seeds: list[int],
             cache: Cache, variant: str = VARIANT, dataset: str = "movielens", data_dir: Path | None = None,
             served_only: bool = False) -> None:
    """``served_only``: the served and retrieval rows on the test task only (no ranker over every item, no
    cold-item task): a cheaper run of the served figures; a later full run adds the rest to the same cache."""
    n_items = len(catalog.item_ids)
    svc = app_cfg.service
    wanted = ("aigcrec_served", "aigcrec_retrieval") if served_only else ours.OURS
    for seed in seeds:
        for tname in ("test",) if served_only else ("test", "cold"):
            if all(cache.get(f"{tname}-{row}-{seed}") is not None for row in wanted) or not tasks[tname].users:
                continue
            task = tasks[tname]
            ranker = ours.TrainedRanker(data, task, variant, app_cfg.ranking, svc, seed)
            log.info("%s ranker seed %d: trained in %.0f s, CTR %s", tname, seed, ranker.train_s,
                     {k: round(v, 4) for k, v in ranker.ctr.items()})
            retriever = ours.TrainedRetriever(data, dataset, data_dir, task, app_cfg.retrieval, seed,
                                              catalog.item_ids)
            grid = cache.get("grid-aigcrec_served")
            if grid is None and not tasks["val"].users:
                grid = cache.put("grid-aigcrec_served", _untuned(ours.SERVED_GRID))
            if grid is None and tname == "test" and seed == TUNE_SEED:
                val = []
                for params in ours.SERVED_GRID:
                    pipe, _ = ours.build_pipeline(catalog, ranker, ours.serving_config(svc, params), data.frame,
                                                  tasks["val"], seed, retriever)
                    lists, _ = ours.served_lists(pipe, tasks["val"].users)
                    val.append(_judge(tasks["val"], lists, n_items)["ndcg_at_10"])
                    log.info("aigcrec_served %s: validation NDCG@10 %.4f", params, val[-1])
                best = int(np.nanargmax(val))
                grid = cache.put("grid-aigcrec_served", {"params": ours.SERVED_GRID[best], "grid": ours.SERVED_GRID,
                                                         "val_ndcg_at_10": val})
            grid = grid or _tuned(cache, "aigcrec_served", seeds) or {"params": {}}
            cfg = ours.serving_config(svc, grid["params"])
            pipe, build_s = ours.build_pipeline(catalog, ranker, cfg, data.frame, task, seed, retriever)
            build_s += retriever.train_s
            rows = {"aigcrec_served": ours.served_lists(pipe, task.users),
                    "aigcrec_retrieval": ours.retrieval_lists(pipe, task.users)}
            if not served_only:
                rows["aigcrec_ranker_all"] = ours.ranker_all_lists(pipe, task.users)
            for row, (lists, ms) in rows.items():
                deep = row != "aigcrec_served" and tname == "test"
                m = _judge(task, lists, n_items, deep=deep)
                train_s = build_s if row == "aigcrec_retrieval" else ranker.train_s + build_s
                cache.put(f"{tname}-{row}-{seed}", {"seed": seed, **m, "train_s": train_s, "ms_per_user": ms,
                                                    "serving": grid["params"],
                                                    **{f"ranker_{k}": v for k, v in ranker.ctr.items()}})
                log.info("%s %s seed %d: %s", tname, row, seed, {k: round(v, 4) for k, v in m.items()})


def _summary(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def summarize(names: list[str], seeds: list[int], cache: Cache) -> dict[str, Any]:
    models: dict[str, Any] = {}
    for name in names:
        test = [r for s in seeds if (r := cache.get(f"test-{name}-{s}")) is not None]
        cold = [r for s in seeds if (r := cache.get(f"cold-{name}-{s}")) is not None]
        if not test:
            continue
        entry: dict[str, Any] = {"seeds": [r["seed"] for r in test], "cold_seeds": [r["seed"] for r in cold]}
        for key in [k for k in test[0] if k.startswith(("recall", "ndcg", "mrr", "coverage"))]:
            entry[f"{key}_mean"], entry[f"{key}_std"] = _summary([r[key] for r in test])
        for key in ("cold_recall_at_20", "cold_ndcg_at_20"):
            if cold:
                entry[f"{key}_mean"], entry[f"{key}_std"] = _summary([r[key] for r in cold])
        entry["train_s"] = float(np.median([r["train_s"] for r in test]))
        entry["ms_per_user"] = float(np.median([r["ms_per_user"] for r in test]))
        grid = cache.get(f"grid-{'aigcrec_served' if name in ours.OURS else name}")
        if grid is not None:
            entry["tuning"] = grid
        entry["runs"] = {"test": test, "cold": cold}
        models[name] = entry
    return models


def checks(models: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, measured: served NDCG@10 >= best peer + 5 % relative; cold Recall@20 > VBPR's."""
    peers = {n: m for n, m in models.items() if n not in ours.OURS}
    out: dict[str, Any] = {}
    served = models.get("aigcrec_served")
    if served and peers:
        best = max(peers, key=lambda n: peers[n]["ndcg_at_10_mean"])
        out["best_peer_ndcg_at_10"] = {"model": best, "value": peers[best]["ndcg_at_10_mean"]}
        out["served_ndcg_at_10_vs_best_peer"] = served["ndcg_at_10_mean"] / peers[best]["ndcg_at_10_mean"] - 1.0
        out["served_ndcg_target_met"] = bool(served["ndcg_at_10_mean"] >= 1.05 * peers[best]["ndcg_at_10_mean"])
        vbpr = peers.get("cornac_vbpr", {})
        if "cold_recall_at_20_mean" in vbpr and "cold_recall_at_20_mean" in served:
            out["served_cold_recall_vs_vbpr"] = served["cold_recall_at_20_mean"] - vbpr["cold_recall_at_20_mean"]
            out["served_cold_target_met"] = bool(served["cold_recall_at_20_mean"] > vbpr["cold_recall_at_20_mean"])
    retr, ceil = models.get("aigcrec_retrieval", {}), models.get("aigcrec_ranker_all", {})
    if f"recall_at_{DEEP}_mean" in retr and f"recall_at_{DEEP}_mean" in ceil:
        out["retrieval_recall_at_500"] = retr[f"recall_at_{DEEP}_mean"]
        out["ranker_all_recall_at_500"] = ceil[f"recall_at_{DEEP}_mean"]
    return out


def run_topk(data: RankingData, dataset: str, data_dir: str | Path, app_cfg, seeds: list[int],
             peers: bool | list[str], out_dir: str | Path, variant: str = VARIANT, gather: bool = False,
             served_only: bool = False, peers_only: bool = False) -> dict[str, Any]:
    """The whole benchmark; writes ``topk.json`` and ``topk.md`` into ``out_dir``.

    ``peers``: True every peer, a list those named (``PEERS`` keys), False none; ``gather``: compute
    nothing, summarise the cached runs of ``seeds`` (a model lists the seeds it has); ``served_only``: the
    aigcrec rows as ``run_ours`` says (peers unchanged); ``peers_only``: compute no aigcrec row (the table
    still shows the ones cached, e.g. by another process)."""
    if peers_only and not peers:
        raise ValueError("peers_only: name the peers to run (--peers or --peer NAME)")
    if isinstance(peers, (list, tuple)):
        unknown = sorted(set(peers) - set(PEERS))
        if unknown:
            raise ValueError(f"peers: unknown {unknown}; known: {sorted(PEERS)}")
    not_run: dict[str, str] = {}
    if peers is True and not gather:  # every peer whose environment is here; the others are listed as not run
        not_run = {n: "its environment is not here (see aigcrec.topk.peers)" for n, found in OPTIONAL_PEERS.items()
                   if found() is None}
        for n, why in not_run.items():
            log.warning("peer %s not run: %s", n, why)
    chosen = [n for n in PEERS if n not in not_run] if peers is True else list(peers or [])
    for n in [] if gather else chosen:  # --gather computes nothing: rows cached elsewhere need no environment here
        if n in OPTIONAL_PEERS and OPTIONAL_PEERS[n]() is None:
            raise ValueError(f"peers: {n} needs its own environment, not found: run `make bench-recbole` "
                             f"(or set {RECBOLE_PYTHON_ENV})")

    out = Path(out_dir)
    data.validate()
    catalog, data = build_catalog(data, dataset, Path(data_dir))
    rcfg = app_cfg.ranking
    tasks = make_tasks(data.frame, rcfg.cold_item_fraction, rcfg.split_seed)
    if not tasks["test"].users:
        raise ValueError(f"{data.name}: no user has a test positive: the per-user temporal split keeps the last "
                         f"{TEST_SHARE:.0%} (rounded) of each user's positives for test, so a user needs at least "
                         f"{min_judged_positives()} positives (label 1) to be judged")
    for tname in ("val", "cold"):
        if not tasks[tname].users:
            log.warning("%s: no user has a %s positive: %s", data.name, tname,
                        "every grid keeps its default setting" if tname == "val" else "no cold-item figures")
    cache = Cache(out / "runs" / _key(data, app_cfg, variant))
    load_before, t_start = machine_load(), time.perf_counter()
    names = list(ours.OURS) + chosen
    mats = Matrices(data.frame, catalog) if chosen and not gather else None
    for seed in [] if gather else seeds:  # seed by seed, so that an interrupted run leaves whole seeds behind
        for name in chosen:
            run_peer(name, mats, tasks, [seed], cache)
        if not peers_only:
            run_ours(data, catalog, tasks, app_cfg, [seed], cache, variant, dataset, Path(data_dir), served_only)
    models = summarize(names, seeds, cache)
    result = {
        "dataset": data.name,
        "protocol": describe(rcfg.cold_item_fraction, rcfg.split_seed),
        "sizes": {"users": int(data.frame["user_id"].nunique()), "items": len(catalog.item_ids),
                  "rows": len(data.frame), "positives": int((data.frame["label"] == 1).sum()),
                  **{f"{t}_users": len(task.users) for t, task in tasks.items()},
                  **{f"{t}_relevant": sum(len(r) for r in task.relevant.values()) for t, task in tasks.items()},
                  "train_rows": len(tasks["test"].train), "cold_items": len(tasks["cold"].cold_items)},
        "seeds": list(seeds),
        "ranker_variant": variant,
        "machine": {"before": load_before, "after": machine_load(), "seconds": round(time.perf_counter() - t_start, 1)},
        "models": models,
        "checks": checks(models),
        **({"peers_not_run": not_run} if not_run else {}),
    }
    (out / "topk.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    (out / "topk.md").write_text(markdown_table(result), encoding="utf-8")
    return result


def _cell(m: dict[str, Any], key: str) -> str:
    if f"{key}_mean" not in m:
        return "-"
    return f"{m[f'{key}_mean']:.4f} ± {m[f'{key}_std']:.4f}"


def markdown_table(result: dict[str, Any]) -> str:
    s = result["sizes"]
    lines = [f"# Top-K benchmark: {result['dataset']}", "",
             f"Seeds asked {result['seeds']} (column `seeds`: how many each row has, test / cold-item); {s['users']} users, {s['items']} items, {s['positives']} positives; "
             f"test: {s['test_users']} users, {s['test_relevant']} positives; cold-item: {s['cold_items']} items, "
             f"{s['cold_users']} users, {s['cold_relevant']} positives. Full-catalog ranking, per-user temporal "
             "split (topk.json `protocol`). Mean ± std over seeds; train s and ms/user (ranking the whole catalog "
             "for one user) are medians.", "",
             "| model | seeds | Recall@10 | NDCG@10 | Recall@20 | NDCG@20 | MRR@20 | coverage@10 | Recall@500 | "
             "cold Recall@20 | cold NDCG@20 | train s | ms/user |",
             "|---" * 13 + "|"]
    for name, m in result["models"].items():
        cells = [_cell(m, k) for k in ("recall_at_10", "ndcg_at_10", "recall_at_20", "ndcg_at_20", "mrr_at_20",
                                       "coverage_at_10", f"recall_at_{DEEP}", "cold_recall_at_20", "cold_ndcg_at_20")]
        untuned = "tuning" not in m or m["tuning"].get("untuned")
        label = name + (" (defaults, not tuned)" if untuned and (name in PEERS and len(PEERS[name].grid) > 1
                                                                 or name == "aigcrec_served") else "")
        lines.append(f"| {label} | {len(m['seeds'])} / {len(m.get('cold_seeds', []))} | " + " | ".join(cells) + f" | {m['train_s']:.1f} | {m['ms_per_user']:.2f} |")
    lines += ["", "Chosen settings (validation NDCG@10, seed 0): "
              + "; ".join(f"{n}: {json.dumps(m['tuning']['params'])}" for n, m in result["models"].items()
                          if "tuning" in m and n != "aigcrec_retrieval" and n != "aigcrec_ranker_all")]
    if any(m.get("tuning", {}).get("untuned") for m in result["models"].values()):
        lines += ["", "No user has a validation positive (too few positives per user): every grid kept its "
                      "first, default setting; the ranker stopped early on the latest 10 % of its training rows."]
    if result["checks"]:
        lines += ["", "Checks: " + json.dumps({k: (round(v, 4) if isinstance(v, float) else v)
                                               for k, v in result["checks"].items()})]
    if result.get("peers_not_run"):
        lines += ["", "Not run: " + "; ".join(f"{n} ({why})" for n, why in result["peers_not_run"].items())]
    mach = result["machine"]
    lines += ["", f"Machine: {mach['before']['cpus']} CPUs, shared (1-minute load {mach['before']['load_1m']:.1f} "
                  f"before, {mach['after']['load_1m']:.1f} after); times are comparable only within this table."]
    return "\n".join(lines) + "\n"
