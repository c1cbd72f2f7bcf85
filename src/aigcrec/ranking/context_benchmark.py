"""``aigcrec benchmark ranking --dataset context``: every model with and without the explicit context.

Protocol (a context-aware rating folder, ``ranking.data.context_dataset``):

- label: rating >= threshold (4 on 1-5 scales, the scale's midpoint otherwise) for AUC, logloss, gAUC; or
  ``task="rating"``: the rating itself (MSE training, RMSE and MAE), the measures the context-aware
  literature reports;
- splits, drawn again for every seed (these sets have no timestamps): ``random`` 80/10/10 hold-out of
  ratings; ``cold_user`` every rating of 20 % of the users as test, the rest 90/10 train / validation
  (run when the set has at least ``MIN_COLD_USERS`` users);
- models: UMAIR-FPS (``umair_fps``), our factorization machine (``fm``; the classic context-aware baseline,
  Rendle et al., SIGIR 2011) and, with ``peers``, FuxiCTR DCNv2 and DeepCTR-Torch DCNMix, each trained
  with the context columns (UMAIR-FPS: the context group, in the affect slot; the others: one sparse field
  per column, numeric ones as quantile buckets for the peers) and without them (``<name>_no_context``),
  on the same split and seed; ``popularity`` as a floor (ctr only);
- context selection (``RankingConfig.context_select``): the models with context read every chosen column
  (``all``) or, per split and seed, those whose ANOVA on the training rows shows signal (``anova``; the
  validation and test rows are never looked at); with none kept, "with context" is the run without it;
- per context value: test AUC of ``umair_fps`` with vs without on the test rows with that value, and
  its lift, averaged over seeds; a paired t-test over seeds of with vs without (and of ours vs each
  model with context);
- "signal": does the mean rating differ across a column's values by more than the noise (one-way ANOVA
  over the non-missing values, Bonferroni over the columns, p < 0.05)? The checks then ask: where some
  column carries signal, is ours with context above ours without and every other model with context on
  AUC; where none does, does adding the context cost at most ``COST_TOLERANCE`` AUC?

Writes ``ranking.json`` (``models.<name>`` and ``models.<name>_no_context``, ``paired``, ``lift``,
``signal``, ``checks``) and ``ranking.md``. Runs are cached in ``runs/<key>/`` like the main benchmark.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import f as f_dist
from scipy.stats import f_oneway
from scipy.stats import ttest_rel

from aigcrec.metrics import auc, gauc, logloss
from aigcrec.ranking.benchmark import _run_key, _summary, machine_load
from aigcrec.ranking.config import RankingConfig
from aigcrec.ranking.data import RankingData, cold_user_split, random_split
from aigcrec.ranking.experiment import Prepared, prepare, run_variant, variant_config
from aigcrec.ranking.features import MISSING_TOKEN, Field, FeatureSpec, is_missing
from aigcrec.ranking.models import build_model
from aigcrec.ranking.trainer import fit, predict
from aigcrec.logs import progress
from aigcrec.ranking.peers import PEERS, RUNNERS

log = logging.getLogger("aigcrec.ranking")

OURS = "umair_fps"
BASE_MODELS = ("umair_fps", "fm")
SPLITS = ("random", "cold_user")
MIN_COLD_USERS = 20
COST_TOLERANCE = 0.005
SIGNAL_ALPHA = 0.05
PEER_BUCKETS = 10
NO_CONTEXT = "_no_context"
UNGATED = OURS + "_ungated"  # with ``context_gate``: ours reading its context columns on every seed


def context_columns(data: RankingData) -> list[str]:
    return [f.column for f in data.fields if f.group == "context"]


def without_context(data: RankingData) -> RankingData:
    """The same impressions without the context group (the ``_no_context`` runs)."""
    return replace(data, fields=[f for f in data.fields if f.group != "context"])


def only_context(data: RankingData, keep: list[str]) -> RankingData:
    """The same impressions with only the context columns ``keep`` (none: ``without_context``)."""
    return replace(data, fields=[f for f in data.fields if f.group != "context" or f.column in keep])


def within_item_p(frame: pd.DataFrame, col: str) -> float:
    """p of the nested F test "does the column's value explain the rating within each item?" over the rows
    with a value: groups = items (k_1) against groups = (item, value) pairs (k_2), with n rows and residual
    sums of squares SS_1 >= SS_2,

        F = ((SS_1 - SS_2) / (k_2 - k_1)) / (SS_2 / (n - k_2)),  p = P(F_{k_2 - k_1, n - k_2} > F);

    it sees a main effect and an item x value interaction (a mood that flips which items are liked, whose
    one-way ANOVA is flat). NaN when there are no degrees of freedom for either."""
    present = ~frame[col].map(is_missing)
    sub = pd.DataFrame({"item": frame.loc[present, "item_id"].astype(str).to_numpy(),
                        "value": frame.loc[present, col].astype(str).to_numpy(),
                        "r": frame.loc[present, "rating"].to_numpy(np.float64)})
    n = len(sub)
    ss1 = float(((sub["r"] - sub.groupby("item")["r"].transform("mean")) ** 2).sum())
    ss2 = float(((sub["r"] - sub.groupby(["item", "value"])["r"].transform("mean")) ** 2).sum())
    k1, k2 = sub["item"].nunique(), len(sub.groupby(["item", "value"]))
    if k2 <= k1 or n <= k2 or ss2 <= 0:
        return float("nan")
    return float(f_dist.sf(((ss1 - ss2) / (k2 - k1)) / (ss2 / (n - k2)), k2 - k1, n - k2))


def select_context(train: pd.DataFrame, columns: list[str], how: str) -> list[str]:
    """The context columns the models with context read (``RankingConfig.context_select``), from the training
    rows ``train`` only: ``all`` keeps ``columns``; ``anova`` keeps a column when the one-way ANOVA of the
    rating over its non-missing values (``context_signal``, a main effect) or the within-item F test
    (``within_item_p``, main effect or item x value interaction) has p < SIGNAL_ALPHA / (2 len(columns))
    (Bonferroni over both tests of every column)."""
    if how == "all":
        return list(columns)
    if how != "anova":
        raise ValueError(f"context_select: expected 'all' or 'anova', got {how!r}")
    tests, bar = selection_tests(train, columns), SIGNAL_ALPHA / (2 * max(1, len(columns)))
    return [c for c in columns if min(tests[c]) < bar]  # NaN < x is False


def selection_tests(train: pd.DataFrame, columns: list[str]) -> dict[str, list[float]]:
    """col -> [one-way ANOVA p, within-item F test p] on the rows ``train`` (what ``select_context`` reads)."""
    signal = context_signal(train, columns)
    return {c: [signal[c]["anova_p"], within_item_p(train, c)] for c in columns}


# -- what the data says -----------------------------------------------------------------------------------
def context_signal(frame: pd.DataFrame, columns: list[str]) -> dict[str, Any]:
    """Per column: mean rating per value, one-way ANOVA F and p over the non-missing values; ``signal`` when
    p < SIGNAL_ALPHA / len(columns) (Bonferroni)."""
    out: dict[str, Any] = {}
    for col in columns:
        values = frame[col]
        present = ~values.map(is_missing)
        groups = {str(v): g["rating"].to_numpy() for v, g in frame[present].groupby(values[present].astype(str))}
        usable = [g for g in groups.values() if len(g) > 1]
        f_stat, p = (f_oneway(*usable) if len(usable) > 1 else (float("nan"), float("nan")))
        out[col] = {"mean_rating": {v: round(float(g.mean()), 4) for v, g in groups.items()},
                    "n": {v: int(len(g)) for v, g in groups.items()},
                    "mean_rating_missing": round(float(frame.loc[~present, "rating"].mean()), 4) if (~present).any() else None,
                    "anova_f": float(f_stat), "anova_p": float(p),
                    "signal": bool(p < SIGNAL_ALPHA / max(1, len(columns)))}
    return out


def value_labels(frame: pd.DataFrame, col: str) -> np.ndarray:
    return np.array([MISSING_TOKEN if is_missing(v) else str(v) for v in frame[col]], dtype=object)


def per_value_auc(frame: pd.DataFrame, columns: list[str], y: np.ndarray, p: np.ndarray) -> dict[str, dict[str, list]]:
    """col -> value -> [n test rows, AUC on them (NaN with one class)]."""
    out: dict[str, dict[str, list]] = {}
    for col in columns:
        labels = value_labels(frame, col)
        out[col] = {}
        for v in sorted(set(labels)):
            m = labels == v
            both = 0 < y[m].sum() < m.sum()
            out[col][v] = [int(m.sum()), float(auc(y[m], p[m])) if both else float("nan")]
    return out


# -- training -----------------------------------------------------------------------------------------------
def sparse_only(prep: Prepared) -> tuple[FeatureSpec, dict]:
    """The tabular spec and encoded parts the peers read: numeric fields become ``PEER_BUCKETS`` quantile
    buckets (refitted on the training rows), tags fields are dropped (the peers take sparse fields only)."""
    tab = prep.spec.tabular_only()
    if not tab.dense and not tab.tags:
        return tab, prep.parts
    fields = [Field(**{**vars(f), "buckets": PEER_BUCKETS}) if f in tab.dense else Field(**vars(f))
              for f in tab.fields if f.kind != "tags"]
    frame = prep.data.frame
    spec = FeatureSpec(fields).fit(frame.iloc[prep.rows["train"]], {})
    return spec, {part: spec.encode(frame.iloc[prep.rows[part]]) for part in ("train", "val", "test")}


def _train_ours(prep: Prepared, name: str, cfg: RankingConfig, seed: int, task: str) -> tuple[np.ndarray, int, float]:
    """(test outputs, best epoch, best validation score: AUC, or -RMSE for ratings) of one of our models:
    probabilities (ctr) or ratings (rating; trained on the rating minus the training mean, as a regression)."""
    if task == "ctr":
        r = run_variant(prep, name, cfg.model, cfg.train, seed)
        return r.test_probs, r.fit.best_epoch, r.fit.best_val_auc
    kind, mcfg = variant_config(name, cfg.model)
    ratings = prep.data.frame["rating"].to_numpy(np.float32)
    mean = float(ratings[prep.rows["train"]].mean())
    torch.manual_seed(seed)
    model = build_model(kind, prep.spec, mcfg, prep.tables)
    res = fit(model, prep.parts["train"], ratings[prep.rows["train"]] - mean, prep.parts["val"],
              ratings[prep.rows["val"]] - mean, cfg.train, seed=seed, objective="mse")
    return predict(model, prep.parts["test"], raw=True) + mean, res.best_epoch, res.best_val_auc


def _train_peer(prep: Prepared, name: str, cfg: RankingConfig, seed: int, task: str) -> tuple[np.ndarray, int]:
    _, mcfg = variant_config("dcnv2", cfg.model)
    spec, parts = sparse_only(prep)
    if task == "ctr":
        out = RUNNERS[name](spec, parts, prep.labels, mcfg, cfg.train, seed)
        return np.clip(out["probs"], 0.0, 1.0), int(out["best_epoch"])
    ratings = prep.data.frame["rating"].to_numpy(np.float32)
    mean = float(ratings[prep.rows["train"]].mean())
    labels = {part: ratings[prep.rows[part]] - mean for part in ("train", "val", "test")}
    out = RUNNERS[name](spec, parts, labels, mcfg, cfg.train, seed, task="rating")
    return out["probs"] + mean, int(out["best_epoch"])


def _metrics(prep: Prepared, out: np.ndarray, task: str) -> dict[str, float]:
    if task == "ctr":
        y = prep.labels["test"]
        return {"auc": auc(y, out), "logloss": logloss(y, np.clip(out, 1e-7, 1 - 1e-7)),
                "gauc": gauc(prep.users["test"], y, out)}
    r = prep.data.frame["rating"].to_numpy(np.float64)[prep.rows["test"]]
    lo, hi = float(prep.data.frame["rating"].min()), float(prep.data.frame["rating"].max())
    pred = np.clip(out, lo, hi)  # a rating outside the scale is never right
    return {"rmse": float(np.sqrt(np.mean((pred - r) ** 2))), "mae": float(np.mean(np.abs(pred - r)))}


# -- the benchmark --------------------------------------------------------------------------------------------
def model_names(peers: bool, task: str) -> list[str]:
    base = list(BASE_MODELS) + (list(PEERS) if peers else [])
    names = [n for b in base for n in (b, b + NO_CONTEXT)]
    return names + (["popularity"] if task == "ctr" else [])


def run_context_benchmark(data: RankingData, cfg: RankingConfig, seeds: list[int], peers: bool, out_dir: str | Path,
                          task: str = "ctr", threshold: float | None = None,
                          split_names: tuple[str, ...] = SPLITS) -> dict[str, Any]:
    """Train every model with and without the context on each split and seed; write ranking.json / ranking.md."""

    if task not in ("ctr", "rating"):
        raise ValueError(f"task: expected 'ctr' or 'rating', got {task!r}")
    columns = context_columns(data)
    if not columns:
        raise ValueError(f"{data.name}: no context columns chosen; nothing to compare (use --context all)")
    n_users = data.frame["user_id"].nunique()
    splits = [s for s in split_names if s != "cold_user" or n_users >= MIN_COLD_USERS]
    if "random" not in splits:
        raise ValueError(f"split_names: expected 'random' and optionally 'cold_user', got {list(split_names)}")
    names = model_names(peers, task)
    out = Path(out_dir)
    cache = out / "runs" / (_run_key(data, cfg) + f"-{task}")
    cache.mkdir(parents=True, exist_ok=True)
    makers = {"random": lambda s: random_split(data.frame, s), "cold_user": lambda s: cold_user_split(data.frame, s)}
    runs: dict[str, dict[str, list[dict]]] = {n: {s: [] for s in splits} for n in names + [UNGATED]}
    kept_per_seed: dict[str, dict[str, list[str]]] = {s: {} for s in splits}
    tests_per_seed: dict[str, dict[str, dict[str, list[float]]]] = {s: {} for s in splits}
    t_start, load_before = time.perf_counter(), machine_load()
    with progress() as bar:
        task_bar = bar.add_task("context benchmark", total=len(names) * len(seeds) * len(splits))
        for split in splits:
            for seed in seeds:
                rows = makers[split](seed)
                kept = select_context(data.frame.iloc[rows["train"]], columns, cfg.context_select)
                kept_per_seed[split][str(seed)] = kept
                if cfg.context_select == "anova":
                    tests_per_seed[split][str(seed)] = selection_tests(data.frame.iloc[rows["train"]], columns)
                # one prepared split and one run per (model, columns read): with no column kept, the run
                # "with context" is the run without it (the same data, seed and model)
                preps: dict[tuple[str, ...], Prepared] = {}
                done: dict[tuple[str, tuple[str, ...]], dict] = {}
                for name in names:
                    base = name[: -len(NO_CONTEXT)] if name.endswith(NO_CONTEXT) else name
                    reads = (() if name.endswith(NO_CONTEXT) or name == "popularity"
                             else tuple(kept) if base == OURS else tuple(columns))
                    path = cache / f"{split}-{name}-{seed}.json"
                    if path.is_file():
                        record = json.loads(path.read_text(encoding="utf-8"))
                        done[(base, reads)] = record
                        runs[name][split].append(record)
                        bar.advance(task_bar)
                        continue
                    if (base, reads) in done:
                        record = dict(done[(base, reads)])
                    else:
                        bar.update(task_bar, description=f"{split} {name} seed {seed}")
                        if reads not in preps:
                            preps[reads] = prepare(only_context(data, list(reads)), rows, cfg.model.history_len)
                        prep = preps[reads]
                        val = float("nan")
                        if base == "popularity":
                            outp, best = run_variant(prep, "popularity", cfg.model, cfg.train, seed).test_probs, -1
                        elif base in PEERS:
                            outp, best = _train_peer(prep, base, cfg, seed, task)
                        else:
                            outp, best, val = _train_ours(prep, base, cfg, seed, task)
                        record = {"seed": seed, **_metrics(prep, outp, task), "best_epoch": best, "val": val,
                                  "batch_size": cfg.train.batch_for(len(rows["train"])),
                                  "load_1m": machine_load()["load_1m"], "context_read": list(reads)}
                        if task == "ctr" and base == OURS:
                            test = data.frame.iloc[rows["test"]]
                            record["per_value"] = per_value_auc(test, columns, prep.labels["test"], outp)
                        done[(base, reads)] = record
                    path.write_text(json.dumps(record), encoding="utf-8")
                    runs[name][split].append(record)
                    bar.advance(task_bar)
                if cfg.context_gate:  # ours with context: the run with the better validation score
                    with_run, without_run = runs[OURS][split][-1], runs[OURS + NO_CONTEXT][split][-1]
                    runs[UNGATED][split].append(with_run)
                    keep = with_run if with_run["val"] >= without_run["val"] else without_run
                    runs[OURS][split][-1] = {**keep, "gate": "with" if keep is with_run else "without"}
    metric_keys = ("auc", "logloss", "gauc") if task == "ctr" else ("rmse", "mae")
    lo, hi = float(data.frame["rating"].min()), float(data.frame["rating"].max())
    result: dict[str, Any] = {
        "dataset": data.name, "task": task, "context": columns, "seeds": list(seeds),
        "label": {"threshold": threshold, "positive_rate": round(float(data.frame["label"].mean()), 4),
                  "rating_range": [lo, hi]},
        "split": {"random": "random 80/10/10 hold-out of ratings, drawn per seed",
                  **({"cold_user": "every rating of 20% of the users (drawn per seed) as test; the rest at random "
                                   "90/10 train/validation"} if "cold_user" in splits else {})},
        "rows": {"ratings": len(data.frame), "users": int(n_users), "items": int(data.frame["item_id"].nunique())},
        "batch_size": cfg.train.batch_size,
        "machine": {"before": load_before, "after": machine_load(), "seconds": round(time.perf_counter() - t_start, 1)},
        "config": cfg.model_dump(),
        "signal": context_signal(data.frame, columns),
        "context_select": cfg.context_select,
        "context_kept": kept_per_seed,
        "context_tests": tests_per_seed,  # split -> seed -> column -> [one-way p, within-item p] (anova only)
        "context_gate": cfg.context_gate,
        "models": {},
    }
    for name in names + ([UNGATED] if cfg.context_gate else []):
        entry: dict[str, Any] = {}
        for split in splits:
            prefix = "" if split == "random" else f"{split}_"
            for key in metric_keys:
                entry[f"{prefix}{key}_mean"], entry[f"{prefix}{key}_std"] = _summary([r[key] for r in runs[name][split]])
        entry["runs"] = runs[name]
        result["models"][name] = entry
    result["paired"] = paired_tests(result, splits, metric_keys[0])
    if task == "ctr":
        result["lift"] = context_lift(runs, columns)
        result["checks"] = checks(result)
    (out / "ranking.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    (out / "ranking.md").write_text(markdown(result), encoding="utf-8")
    return result


def _paired(a: list[float], b: list[float], lower_is_better: bool = False) -> dict[str, Any]:
    """Paired t-test over seeds of a - b (two-sided); ``ahead_on``: seeds where a is better (larger AUC,
    or smaller RMSE with ``lower_is_better``)."""
    d = np.asarray(a) - np.asarray(b)
    t, p = ttest_rel(a, b) if len(d) > 1 and np.std(d) > 0 else (float("nan"), float("nan"))
    return {"diff_mean": float(d.mean()), "diff_std": float(d.std(ddof=1)) if len(d) > 1 else 0.0,
            "per_seed": [round(float(x), 5) for x in d], "t": float(t), "p": float(p),
            "ahead_on": int((d < 0).sum() if lower_is_better else (d > 0).sum()), "seeds": int(len(d))}


def paired_tests(result: dict[str, Any], splits: list[str], key: str) -> dict[str, Any]:
    """Each model with vs without its context, and ours with context vs every other model with context."""
    models, lower = result["models"], key in ("rmse", "mae")
    out: dict[str, Any] = {}
    for split in splits:
        values = {n: [r[key] for r in m["runs"][split]] for n, m in models.items()}
        part: dict[str, Any] = {}
        for name in values:
            if name + NO_CONTEXT in values:
                part[f"{name} - {name}{NO_CONTEXT}"] = _paired(values[name], values[name + NO_CONTEXT], lower)
        for name in values:
            if name != OURS and not name.endswith(NO_CONTEXT) and name != "popularity":
                part[f"{OURS} - {name}"] = _paired(values[OURS], values[name], lower)
        out[split] = part
    return out


def context_lift(runs: dict[str, dict[str, list[dict]]], columns: list[str]) -> dict[str, Any]:
    """col -> value -> test rows per seed, mean AUC with and without the context, and the lift (random split)."""
    with_runs = {r["seed"]: r for r in runs[OURS]["random"]}
    without_runs = {r["seed"]: r for r in runs[OURS + NO_CONTEXT]["random"]}
    out: dict[str, Any] = {}
    for col in columns:
        out[col] = {}
        vals = sorted({v for r in with_runs.values() for v in r["per_value"][col]})
        for v in vals:
            w = [with_runs[s]["per_value"][col].get(v, [0, np.nan]) for s in with_runs]
            o = [without_runs[s].get("per_value", {}).get(col, {}).get(v, [0, np.nan]) for s in with_runs]
            aw, ao = np.array([x[1] for x in w]), np.array([x[1] for x in o])
            ok = ~np.isnan(aw) & ~np.isnan(ao)
            out[col][v] = {"test_rows_per_seed": round(float(np.mean([x[0] for x in w])), 1),
                           "auc_with": float(aw[ok].mean()) if ok.any() else None,
                           "auc_without": float(ao[ok].mean()) if ok.any() else None,
                           "lift": float((aw[ok] - ao[ok]).mean()) if ok.any() else None,
                           "seeds": int(ok.sum())}
    return out


def checks(result: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets on the random split's AUC, evaluated honestly (no tuning toward them)."""
    models, signal = result["models"], result["signal"]
    carries = [c for c, s in signal.items() if s["signal"]]
    ours, ours_nc = models[OURS]["auc_mean"], models[OURS + NO_CONTEXT]["auc_mean"]
    others = {n: m["auc_mean"] for n, m in models.items()
              if n not in (OURS, UNGATED) and not n.endswith(NO_CONTEXT) and n != "popularity"}
    out: dict[str, Any] = {"signal_columns": carries, "ours_minus_ours_no_context": ours - ours_nc,
                           "ours_minus_other_with_context": {n: ours - v for n, v in others.items()}}
    if carries:
        out["target"] = "beat ours without context and every other model with context on AUC"
        out["met"] = bool(ours > ours_nc and all(ours > v for v in others.values()))
    else:
        out["target"] = f"adding the context costs at most {COST_TOLERANCE} AUC"
        out["met"] = bool(ours_nc - ours <= COST_TOLERANCE)
    return out


def markdown(result: dict[str, Any]) -> str:
    """The benchmark as Markdown: the models table, the paired tests, the signal and the per-value lift."""
    task, splits = result["task"], list(result["split"])
    keys = ("auc", "logloss", "gauc") if task == "ctr" else ("rmse", "mae")
    cols = [k for k in keys] + [f"{s}_{keys[0]}" for s in splits if s != "random"]
    lines = [f"# Context benchmark: {result['dataset']} ({task})", "",
             f"Context columns: {', '.join(result['context'])}. Seeds {result['seeds']}; "
             f"{result['rows']['ratings']} ratings, {result['rows']['users']} users, {result['rows']['items']} items. "
             + (f"Label: rating >= {result['label']['threshold']:g} (positive rate {result['label']['positive_rate']:.3f}). "
                if task == "ctr" else "Target: the rating. ")
             + " ".join(f"{k}: {v}." for k, v in result["split"].items()), "",
             "| model | " + " | ".join(c.replace("_", " ") for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, m in result["models"].items():
        cells = [f"{m[c + '_mean']:.4f} ± {m[c + '_std']:.4f}" if c + "_mean" in m else "-" for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"Paired t-tests over seeds ({keys[0]}; two-sided):", "",
              "| split | comparison | mean difference | better on | t | p |", "|---|---|---|---|---|---|"]
    for split, part in result["paired"].items():
        for comp, t in part.items():
            lines.append(f"| {split} | {comp} | {t['diff_mean']:+.4f} ± {t['diff_std']:.4f} | "
                         f"{t['ahead_on']}/{t['seeds']} | {t['t']:.2f} | {t['p']:.3f} |")
    lines += ["", "Does the context carry signal? Mean rating per value (one-way ANOVA over the non-missing values, "
                  f"signal when p < {SIGNAL_ALPHA} / {len(result['signal'])} columns):", "",
              "| column | mean rating per value (n) | missing | F | p | signal |", "|---|---|---|---|---|---|"]
    for col, s in result["signal"].items():
        means = ", ".join(f"{v} {mu:.2f} ({s['n'][v]})" for v, mu in s["mean_rating"].items())
        miss = "-" if s["mean_rating_missing"] is None else f"{s['mean_rating_missing']:.2f}"
        lines.append(f"| {col} | {means} | {miss} | {s['anova_f']:.2f} | {s['anova_p']:.2g} | "
                     f"{'yes' if s['signal'] else 'no'} |")
    if result.get("context_select", "all") != "all":
        lines += ["", f"Context columns {OURS} reads (`context_select: {result['context_select']}`, decided on each "
                      "seed's training rows only; the other models read every column):", ""]
        for split, per_seed in result["context_kept"].items():
            lines += [f"- {split}: " + "; ".join(f"seed {s}: {', '.join(k) if k else '(none)'}"
                                                  for s, k in per_seed.items())]
    if result.get("context_gate"):
        lines += ["", f"`context_gate`: {OURS} with context is, per seed, its run with or without the context, "
                      f"whichever has the better validation score ({UNGATED}: the run with it on every seed):", ""]
        for split in splits:
            lines += [f"- {split}: " + "; ".join(f"seed {r['seed']}: {r['gate']}"
                                                  for r in result["models"][OURS]["runs"][split])]
    if "lift" in result:
        lines += ["", f"Per context value ({OURS}, random split, mean over seeds): test AUC with and without the "
                      "context on the test rows with that value, and the lift:", "",
                  "| column | value | test rows | AUC with | AUC without | lift |", "|---|---|---|---|---|---|"]
        for col, vals in result["lift"].items():
            for v, x in vals.items():
                if x["lift"] is None:
                    continue
                lines.append(f"| {col} | {v} | {x['test_rows_per_seed']:.0f} | {x['auc_with']:.4f} | "
                             f"{x['auc_without']:.4f} | {x['lift']:+.4f} |")
    if "checks" in result:
        c = result["checks"]
        lines += ["", f"Target ({'signal in ' + ', '.join(c['signal_columns']) if c['signal_columns'] else 'no column carries signal'}): "
                      f"{c['target']}: **{'met' if c['met'] else 'not met'}** (ours - ours without context "
                      f"{c['ours_minus_ours_no_context']:+.4f}; ours - others with context "
                      + ", ".join(f"{n} {v:+.4f}" for n, v in c["ours_minus_other_with_context"].items()) + ")."]
    mach = result["machine"]
    lines += ["", f"Machine: {mach['before']['cpus']} CPUs, shared; {mach['seconds']:.0f} s for the runs of this call."]
    return "\n".join(lines) + "\n"
