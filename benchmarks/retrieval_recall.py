"""Candidate recall of each retrieval source and of the intent blend (issue 18, item 1).

The candidates are the service's own (``aigcrec.service.pipeline.RecommendPipeline``: ``source_lists``,
``blended_candidates`` and, as the baseline, today's history + fresh + popular list ``_plain_candidates``),
built in-process from the catalog, the feature store, the event log up to a time cut and a two-tower model
trained on the positives before the cut.

- ``world``: sessions after the cut (the last ``--test-share`` of sessions in time; at most ``--sessions``,
  evenly spaced). Relevant items of a session: the ``--relevant`` items with the highest *true* click
  probability in it (``aigcrec.world.truth.ClickTruth``: the world's click equation without noise, over the
  items created before the cut). The affect context is MMEI's reading of the session (``--affect``,
  the demo's ``affect_context.parquet``) and, as a ceiling of what affect can bring, its true state
  (``oracle`` rows); the query is the session's utterance, embedded by the content text encoder
  (``--content``). Nothing is excluded (every method alike).
- ``movielens``: each user's last ``--test-share`` of positives (rating >= 4, by time) are held out; the
  two-tower trains on the other positives; candidates exclude the user's training ratings (as the service
  excludes seen items). No sessions: no affect, no query; the blend uses its ``none`` shares.

recall@K = |candidates_K ∩ relevant| / |relevant|, averaged over sessions (users); mean and standard deviation
over ``--seeds`` two-tower seeds. Writes ``OUT/recall.json`` and ``OUT/recall.md``.

Usage (the demo's artifacts: ``runs/latest/artifacts.json`` names the world, features, content and MMEI;
one BLAS thread: on a shared machine more threads only contend)::

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 PYTHONPATH=src .venv/bin/python benchmarks/retrieval_recall.py world \\
        --manifest runs/latest/artifacts.json --seeds 3
    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 PYTHONPATH=src .venv/bin/python benchmarks/retrieval_recall.py movielens \\
        --data ../shared/datasets/movielens-100k --features runs/ml-features --seeds 3
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import faiss
import numpy as np
import pandas as pd
import torch

from aigcrec.config import AppConfig
from aigcrec.content.store import FeatureStore
from aigcrec.content.text_encoder import MultiPerspectiveTextEncoder
from aigcrec.data.movielens import load_movielens
from aigcrec.data.schemas import EMOTIONS
from aigcrec.retrieval.data import (
    CONTENT_BLOCKS,
    EMOTION_PREFIX,
    INTENT_PREFIX,
    aligned_content,
    movielens_retrieval_data,
    world_retrieval_data,
)
from aigcrec.retrieval.trainer import train_two_tower
from aigcrec.service.artifacts import ArtifactsManifest
from aigcrec.service.config import ServiceConfig
from aigcrec.service.pipeline import (
    SOURCE_FRESH,
    SOURCE_HISTORY,
    SOURCE_POPULAR,
    SOURCE_QUERY,
    SOURCE_TWO_TOWER,
    RecommendPipeline,
)
from aigcrec.data.world import load_world
from aigcrec.world.truth import ClickTruth
from aigcrec.world.vocab import INTENTS

log = logging.getLogger("retrieval_recall")
SOURCES = (SOURCE_HISTORY, SOURCE_TWO_TOWER, SOURCE_QUERY, SOURCE_FRESH, SOURCE_POPULAR)


@dataclass
class State:
    """The affect reading the pipeline reads (``AffectStateLike``)."""

    emotion_probs: dict[str, float]
    intent_probs: dict[str, float]
    emotion: str = ""
    intent: str = ""
    confidence: float = 1.0
    modalities_used: list[str] = field(default_factory=list)
    fusion_weights: dict[str, float] = field(default_factory=dict)

    def as_vector(self) -> np.ndarray:
        return np.array([*self.emotion_probs.values(), *self.intent_probs.values()], np.float32)


def one_hot_state(emotion: str, intent: str) -> State:
    return State({e: float(e == emotion) for e in EMOTIONS}, {i: float(i == intent) for i in INTENTS},
                 emotion, intent)


def frame_state(row: pd.Series) -> State:
    emo = {c[len(EMOTION_PREFIX):]: float(row[c]) for c in row.index if str(c).startswith(EMOTION_PREFIX)}
    intent = {c[len(INTENT_PREFIX):]: float(row[c]) for c in row.index if str(c).startswith(INTENT_PREFIX)}
    return State(emo, intent, max(emo, key=emo.get), max(intent, key=intent.get))


class NoRanker:
    """The pipeline needs a ranker; candidate generation never calls it."""

    history_len, affect_dim, affect_schema = 0, 0, None

    def check_context(self, context: Any) -> None:
        raise AssertionError("the recall benchmark does not rank")

    def cache_items(self, item_ids: Any, item_features: Any = None) -> int:
        return 0

    def score(self, *args: Any, **kwargs: Any):
        raise AssertionError("the recall benchmark does not rank")


def machine_load() -> dict[str, Any]:
    load = os.getloadavg()
    return {"cpus": os.cpu_count(), "load_1m": round(load[0], 2), "load_5m": round(load[1], 2),
            "python": platform.python_version()}


def build_pipeline(metas: list[dict], vectors: dict[str, np.ndarray], events: list[dict], retriever,
                   query_encoder, seed: int) -> RecommendPipeline:
    pipe = RecommendPipeline.build(ServiceConfig(), metas, vectors, NoRanker(), seed=seed, retriever=retriever,
                                   query_encoder=query_encoder)
    pipe.observe(events)
    return pipe


def recall(found: np.ndarray, relevant: set[int], k: int) -> float:
    return len(relevant.intersection(int(r) for r in found[:k])) / max(1, len(relevant))


def load_vectors(features: Path) -> dict[str, tuple[list[str], np.ndarray]]:
    store = FeatureStore(features)
    return {b: store.load(b) for b in CONTENT_BLOCKS}


# ---------------------------------------------------------------- world

def world_test_sessions(world, test_share: float, n_sessions: int) -> tuple[float, pd.DataFrame]:
    """The time cut and the evaluated sessions: the last ``test_share`` of sessions in time, at most
    ``n_sessions`` of them, evenly spaced (``retrieval_learned_ceiling.py`` evaluates the same ones)."""
    sessions = world.sessions.sort_values("timestamp", kind="stable").reset_index(drop=True)
    cut_at = int(len(sessions) * (1 - test_share))
    cut = float(sessions["timestamp"].iloc[cut_at])
    test = sessions.iloc[cut_at:]
    if len(test) > n_sessions:
        test = test.iloc[np.linspace(0, len(test) - 1, n_sessions).round().astype(int)]
    return cut, test


def world_run(args, seed: int, cfg: AppConfig) -> dict[str, Any]:
    world = load_world(args.world, check_files=False)
    vectors = load_vectors(args.features)
    affect = None
    if args.affect:
        affect = pd.read_parquet(args.affect)
        affect = affect.set_index("session_id") if "session_id" in affect.columns else affect
        affect.index = affect.index.astype(str)
    cut, test = world_test_sessions(world, args.test_share, args.sessions)
    ids, content = aligned_content(vectors)
    created = world.items.set_index("item_id").loc[ids, "created_at"].to_numpy()
    keep = created <= cut  # the catalog as of the cut
    ids = [i for i, k in zip(ids, keep) if k]
    content = {b: m[keep] for b, m in content.items()}
    items = world.items.set_index("item_id").loc[ids]
    metas = [{"item_id": i, "title": r["title"], "tags": r["tags"], "creator_id": r["creator_id"], "style": None,
              "image_path": None, "created_at": float(r["created_at"])} for i, r in items.iterrows()]
    inter = world.interactions[world.interactions["timestamp"] < cut]
    events = [{"user_id": u, "item_id": i, "type": "bookmark" if y else "impression"}
              for u, i, y in zip(inter["user_id"], inter["item_id"], inter["label"])]
    data = world_retrieval_data(args.world, {b: (ids, m) for b, m in content.items()}, affect)
    t0 = time.perf_counter()
    retriever = train_two_tower(data, cfg.retrieval.two_tower, seed, until=cut)
    train_s = time.perf_counter() - t0
    # The text half of the content encoder that made e_TSEM (the service's query encoder).
    text = MultiPerspectiveTextEncoder.load(args.content / "text") if args.content else \
        MultiPerspectiveTextEncoder(cfg.content.text)
    queries = dict(zip(test["session_id"], text.encode(test["text"].astype(str).tolist())))
    # The utterances are encoded in one batch above; the pipeline's query is the session id, looked up.
    pipe = build_pipeline(metas, content, events, retriever, lambda sid: queries[sid], seed)
    truth = ClickTruth(world)
    truth_row = {i: r for r, i in enumerate(truth.item_ids)}
    truth_rows = np.array([truth_row[i] for i in ids])  # catalog row -> truth row
    ks = args.ks
    depth = max(ks)
    rows: dict[str, dict[int, list[float]]] = {}
    by_intent: dict[str, dict[str, list[float]]] = {}

    def add(name: str, found: np.ndarray, relevant: set[int], intent: str) -> None:
        for k in ks:
            rows.setdefault(name, {}).setdefault(k, []).append(recall(found, relevant, k))
        by_intent.setdefault(name, {}).setdefault(intent, []).append(recall(found, relevant, depth))

    def add_lists(name: str, candidates, relevant: set[int], intent: str) -> None:
        """A list made for each K (a blend of K candidates is not the first K of a longer blend)."""
        for k in ks:
            found = candidates(k)
            rows.setdefault(name, {}).setdefault(k, []).append(recall(found, relevant, k))
            if k == depth:
                by_intent.setdefault(name, {}).setdefault(intent, []).append(recall(found, relevant, k))

    for s in test.itertuples():
        z = truth.session_logits(s.session_id)[truth_rows]  # (n_catalog,)
        relevant = set(np.argsort(-z, kind="stable")[:args.relevant].tolist())
        oracle = one_hot_state(s.emotion, s.intent)
        mmei = frame_state(affect.loc[s.session_id]) if affect is not None and s.session_id in affect.index else None
        user, sid = s.user_id, s.session_id
        add_lists("history+fresh+popular (today)", lambda k: pipe._plain_candidates(user, k, set())[0], relevant,
                  s.intent)
        for state_name, state in (("mmei", mmei), ("oracle", oracle)):
            if state is None:
                continue
            lists = pipe.source_lists(user, depth, state, sid)
            for src in SOURCES:  # the sources without context once (with the first state), the two-tower with each
                if src in lists and (src == SOURCE_TWO_TOWER or state is (mmei or oracle)):
                    add(src if src != SOURCE_TWO_TOWER else f"{src} ({state_name} context)", lists[src], relevant,
                        s.intent)
            add_lists(f"blend ({state_name} affect, utterance)",
                      lambda k: pipe.blended_candidates(user, k, set(), state, sid)[0], relevant, s.intent)
        # Ceilings: the true logit with the session's state unknown (expected over the user's emotion and intent
        # priors; what retrieval without any context could reach at best) and known (recall 1 from K >= N).
        u_truth = truth.users[user]
        prior = sum(pe * pi * truth.logits(user, e, i)[truth_rows] for e, pe in u_truth["emotion_prior"].items()
                    for i, pi in u_truth["intent_prior"].items())
        add("ceiling: true logit, session state unknown", np.argsort(-prior, kind="stable"), relevant, s.intent)
        # What any retrieval reading MMEI's posterior could reach at best: the true logit expected over MMEI's
        # emotion and intent probabilities (taken as independent); and with emotion and intent known but the
        # find_specific target (which the world draws apart from the state) unknown.
        if mmei is not None:
            read = sum(pe * pi * truth.logits(user, e, i)[truth_rows] for e, pe in mmei.emotion_probs.items()
                       for i, pi in mmei.intent_probs.items() if pe * pi > 0)
            add("ceiling: true logit, state as MMEI reads it", np.argsort(-read, kind="stable"), relevant, s.intent)
        known = truth.logits(user, s.emotion, s.intent)[truth_rows]
        add("ceiling: true logit, emotion and intent known, target unknown", np.argsort(-known, kind="stable"),
            relevant, s.intent)
        tt = pipe.source_lists(user, depth, None, None)[SOURCE_TWO_TOWER]
        add(f"{SOURCE_TWO_TOWER} (no context)", tt, relevant, s.intent)
        add_lists("blend (no signals)", lambda k: pipe.blended_candidates(user, k, set(), None, None)[0], relevant,
                  s.intent)
    return {"rows": {n: {k: float(np.mean(v)) for k, v in r.items()} for n, r in rows.items()},
            "by_intent": {n: {i: float(np.mean(v)) for i, v in r.items()} for n, r in by_intent.items()},
            "sessions": len(test), "catalog_items": len(ids), "train_positives": retriever.figures["positives"],
            "two_tower_train_s": round(train_s, 1)}


# ---------------------------------------------------------------- MovieLens

def movielens_run(args, seed: int, cfg: AppConfig) -> dict[str, Any]:
    vectors = load_vectors(args.features)
    data = movielens_retrieval_data(args.data, vectors)
    ml = load_movielens(args.data, check_posters=False)
    inter = ml.interactions(threshold=4)
    inter = inter.assign(user_id=inter["user_id"].astype(str), item_id=inter["item_id"].astype(str))
    inter = inter[inter["item_id"].isin(set(data.item_ids))].sort_values("timestamp", kind="stable")
    pos = inter[inter["label"] == 1]
    rank = pos.groupby("user_id").cumcount(ascending=False)  # 0 = the user's last positive
    n_pos = pos.groupby("user_id")["item_id"].transform("size")
    held = pos[rank < np.ceil(n_pos * args.test_share)]
    held = held[n_pos[held.index] >= 5]  # users with at least 5 positives are evaluated
    train = inter.drop(index=held.index)
    data.positives = data.positives.merge(train[["user_id", "item_id", "timestamp"]], how="inner")
    retriever = train_two_tower(data, cfg.retrieval.two_tower, seed)
    items = ml.items.assign(item_id=ml.items["item_id"].astype(str)).set_index("item_id").loc[data.item_ids]
    metas = [{"item_id": i, "title": r["title"], "tags": [], "creator_id": None, "style": None, "image_path": None,
              "created_at": float(r["release_year"]) if pd.notna(r.get("release_year")) else None}
             for i, r in items.iterrows()]
    events = [{"user_id": u, "item_id": i, "type": "bookmark" if y else "impression"}
              for u, i, y in zip(train["user_id"], train["item_id"], train["label"])]
    pipe = build_pipeline(metas, data.content, events, retriever, None, seed)
    ks, depth = args.ks, max(args.ks)
    rows: dict[str, dict[int, list[float]]] = {}
    users = sorted(held["user_id"].unique())
    if len(users) > args.sessions:
        users = [users[j] for j in np.linspace(0, len(users) - 1, args.sessions).round().astype(int)]
    held_rows = held.groupby("user_id")["item_id"].apply(lambda s: {pipe.catalog.row_of[i] for i in s})
    for u in users:
        seen = pipe.users.seen_rows(u)
        relevant = held_rows[u]

        def add(name: str, found: np.ndarray) -> None:
            found = np.array([r for r in found if int(r) not in seen])
            for k in ks:
                rows.setdefault(name, {}).setdefault(k, []).append(recall(found, relevant, k))

        for k in ks:  # a list made for each K (a blend of K candidates is not the first K of a longer one)
            for name, found in (("history+fresh+popular (today)", pipe._plain_candidates(u, k, seen)[0]),
                                ("blend (no signals)", pipe.blended_candidates(u, k, seen, None, None)[0])):
                rows.setdefault(name, {}).setdefault(k, []).append(recall(found, relevant, k))
        lists = pipe.source_lists(u, depth + len(seen), None, None)
        for src in (SOURCE_HISTORY, SOURCE_TWO_TOWER, SOURCE_POPULAR):
            add(src, lists[src])
    return {"rows": {n: {k: float(np.mean(v)) for k, v in r.items()} for n, r in rows.items()},
            "users": len(users), "catalog_items": len(data.item_ids), "train_positives": retriever.figures["positives"],
            "held_out_positives": int(len(held))}


# ---------------------------------------------------------------- report

def summarise(runs: list[dict[str, Any]], seeds: list[int], ks: list[int]) -> dict[str, Any]:
    names = list(runs[0]["rows"])
    table = {}
    for n in names:
        table[n] = {}
        for k in ks:
            vals = [r["rows"][n][k] for r in runs]
            table[n][f"recall@{k}_mean"] = round(float(np.mean(vals)), 4)
            table[n][f"recall@{k}_sd"] = round(float(np.std(vals)), 4)
            table[n][f"recall@{k}_seeds"] = [round(v, 4) for v in vals]
    out: dict[str, Any] = {"seeds": seeds, "ks": ks, "methods": table}
    if "by_intent" in runs[0]:
        out["by_intent_recall@max_k"] = {n: {i: round(float(np.mean([r["by_intent"][n][i] for r in runs])), 4)
                                             for i in runs[0]["by_intent"][n]} for n in runs[0]["by_intent"]}
    return out


def write(out_dir: Path, result: dict[str, Any], title: str, note: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "recall.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    ks = result["ks"]
    lines = [f"# {title}", "", note, "",
             "| method | " + " | ".join(f"recall@{k}" for k in ks) + " |",
             "|---|" + "---|" * len(ks)]
    for n, r in result["methods"].items():
        lines.append(f"| {n} | " + " | ".join(f"{r[f'recall@{k}_mean']:.4f} ± {r[f'recall@{k}_sd']:.4f}"
                                              for k in ks) + " |")
    if "target" in result:
        t = result["target"]
        lines += ["", f"Target: blend recall@{t['k']} >= {t['factor']} x today's: {t['blend']:.4f} vs "
                      f"{t['baseline']:.4f} = {t['ratio']:.3f} x ({'met' if t['met'] else 'MISSED'})."]
    if "by_intent_recall@max_k" in result:
        intents = sorted({i for r in result["by_intent_recall@max_k"].values() for i in r})
        lines += ["", f"recall@{max(ks)} by the session's true intent:", "",
                  "| method | " + " | ".join(intents) + " |", "|---|" + "---|" * len(intents)]
        for n, r in result["by_intent_recall@max_k"].items():
            lines.append(f"| {n} | " + " | ".join(f"{r.get(i, float('nan')):.4f}" for i in intents) + " |")
    lines += ["", f"Command: `{result['command']}`; {result['machine']}; {result['seconds']:.0f} s."]
    (out_dir / "recall.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset", choices=["world", "movielens"])
    ap.add_argument("--manifest", type=Path, help="artifacts.json of a demo run: world, features, content, MMEI")
    ap.add_argument("--world", type=Path)
    ap.add_argument("--features", type=Path)
    ap.add_argument("--content", type=Path, help="the content encoder that made the features (utterance queries)")
    ap.add_argument("--affect", type=Path, help="affect_context.parquet (MMEI's reading of every session)")
    ap.add_argument("--data", type=Path, help="MovieLens-100K with posters")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--sessions", type=int, default=600, help="at most this many test sessions (users)")
    ap.add_argument("--relevant", type=int, default=50, help="world: the top-N true items of a session")
    ap.add_argument("--test-share", type=float, default=0.2)
    ap.add_argument("--ks", default="100,500")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    args.ks = [int(k) for k in args.ks.split(",")]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(1)  # one thread per process, as the service runs (ServiceConfig.torch_threads)
    faiss.omp_set_num_threads(1)
    if args.manifest:
        m = ArtifactsManifest.load(args.manifest)
        base = args.manifest.resolve().parent
        args.world = args.world or m.resolve(m.catalog_dir, base)
        args.features = args.features or m.resolve(m.feature_store, base)
        args.content = args.content or m.resolve(m.content_dir, base)
        if args.affect is None and m.mmei_dir and (m.resolve(m.mmei_dir, base) / "affect_context.parquet").is_file():
            args.affect = m.resolve(m.mmei_dir, base) / "affect_context.parquet"
    cfg = AppConfig()
    seeds = list(range(args.seeds))
    t0 = time.perf_counter()
    if args.dataset == "world":
        runs = [world_run(args, s, cfg) for s in seeds]
        note = (f"World {args.world.resolve().name}, the last {args.test_share:.0%} of sessions in time ({runs[0]['sessions']} evaluated), "
                f"catalog as of the cut ({runs[0]['catalog_items']} items); relevant = the {args.relevant} items "
                "with the highest true click probability in the session (world.truth.ClickTruth). Two-tower trained "
                f"on the {runs[0]['train_positives']} bookmarks before the cut; context: "
                f"{'MMEI readings (affect_context.parquet)' if args.affect else 'none given'}; the oracle rows "
                "give the two-tower and the blend the session's true emotion and intent. Mean ± sd over seeds.")
        out = args.out or Path("benchmarks/results/retrieval-world")
        base_name = "history+fresh+popular (today)"
        blend_name = "blend (mmei affect, utterance)" if args.affect else "blend (oracle affect, utterance)"
    else:
        runs = [movielens_run(args, s, cfg) for s in seeds]
        note = (f"MovieLens-100K: each user's last {args.test_share:.0%} of positives (rating >= 4) held out "
                f"({runs[0]['held_out_positives']} positives of {runs[0]['users']} users with >= 5 positives); "
                "candidates exclude the user's training ratings. No sessions: no affect, no utterance. "
                "Mean ± sd over seeds.")
        out = args.out or Path("benchmarks/results/retrieval-movielens")
        base_name, blend_name = "history+fresh+popular (today)", "blend (no signals)"
    result = summarise(runs, seeds, args.ks)
    k = max(args.ks)
    b, base = result["methods"][blend_name][f"recall@{k}_mean"], result["methods"][base_name][f"recall@{k}_mean"]
    result["target"] = {"k": k, "factor": 1.2, "blend_method": blend_name, "blend": b, "baseline": base,
                        "ratio": round(b / base, 4) if base else float("nan"), "met": bool(base and b >= 1.2 * base)}
    result["runs"] = runs
    result["machine"] = machine_load()
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["command"] = "benchmarks/retrieval_recall.py " + " ".join(sys.argv[1:])
    write(out, result, f"Candidate recall: {args.dataset}", note)
    print((out / "recall.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
