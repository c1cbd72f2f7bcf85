"""Demo stage: train the two-tower retrieval model on the demo's world and hand it to the service.

Reads ``world_dir``, ``feature_store`` and (if present) ``affect_context`` (MMEI's reading of every session;
without it the sessions' simulated state is the context); the model is cached under
``ctx.cache_dir/retrieval-<key>`` (key = retrieval config, seed and input paths); sets ``retrieval_dir``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pandas as pd

from aigcrec.content.store import FeatureStore
from aigcrec.retrieval.data import CONTENT_BLOCKS, world_retrieval_data
from aigcrec.retrieval.retriever import TwoTowerRetriever
from aigcrec.retrieval.trainer import train_two_tower
from aigcrec.saved import config_file

log = logging.getLogger("aigcrec.retrieval")


def _key(ctx) -> str:
    parts = {"retrieval": ctx.config.retrieval.model_dump(), "seed": ctx.config.seed,
             "inputs": {k: str(ctx.artifacts.get(k)) for k in ("world_dir", "feature_store", "affect_context")}}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def run(ctx) -> None:
    if not ctx.config.retrieval.enabled:
        ctx.report.section("Retrieval: two-tower model", "Disabled (retrieval.enabled: false): the service draws "
                           "candidates from the history, fresh and popular items and the request text.")
        return
    out = Path(ctx.cache_dir) / f"retrieval-{_key(ctx)}"
    if config_file(out, "two_tower") is not None:
        log.info("retrieval: reusing %s", out)
        retriever = TwoTowerRetriever.load(out)
    else:
        store = FeatureStore(ctx.artifacts["feature_store"])
        vectors = {b: store.load(b) for b in CONTENT_BLOCKS}
        affect_path = ctx.artifacts.get("affect_context")
        affect = pd.read_parquet(affect_path) if affect_path else None
        if affect is not None and "session_id" in affect.columns:
            affect = affect.set_index("session_id")
        data = world_retrieval_data(ctx.artifacts["world_dir"], vectors, affect)
        with ctx.step("retrieval", "two-tower training"):
            retriever = train_two_tower(data, ctx.config.retrieval.two_tower, ctx.config.seed)
        retriever.save(out)
    ctx.artifacts["retrieval_dir"] = str(out)
    fig = retriever.figures
    ctx.record("retrieval", "two_tower", fig)
    ctx.record("retrieval", "two_tower_final_loss", fig.get("final_loss"), headline=True)
    ctx.report.section(
        "Retrieval: two-tower model",
        f"Trained on {fig.get('positives')} bookmarks of {fig.get('items')} items ({fig.get('epochs')} epochs, "
        f"in-batch sampled softmax with logQ correction, final loss {fig.get('final_loss')}); context: "
        f"{'MMEI readings of each session' if ctx.artifacts.get('affect_context') else 'simulated session state'}. "
        "The service indexes its item vectors and blends it with the history, utterance, fresh and popular "
        "sources by the predicted intent; candidate recall of each source is measured by "
        "`benchmarks/retrieval_recall.py` (benchmarks/results/retrieval-world/).")
