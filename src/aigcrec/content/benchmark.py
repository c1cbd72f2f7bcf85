"""The content stage's benchmark, ``evaluate_content`` (``aigcrec evaluate content``, writes ``content.json``),
and the measured steps it is made of, which the CLI, the demo and ``benchmarks/bench_content.py`` call too:
held-out text fine-tuning (``finetune_text``), label P@k (``label_precision``), throughput, genre kNN.

(Named ``content/pipeline.py`` before; ``service/pipeline.py`` is the served recommend path.)
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from aigcrec.content.config import ContentConfig
from aigcrec.content.encoder import ContentEncoder
from aigcrec.content.evaluate import knn_multilabel_f1, precision_at_k, throughput
from aigcrec.content.pairs import evaluate_pairs, item_text, load_pairs
from aigcrec.content.store import FeatureStore, encode_catalog
from aigcrec.data.catalog import load_catalog

log = logging.getLogger("aigcrec.content")

THROUGHPUT_IMAGES = 64
THROUGHPUT_TEXTS = 256


def _bar_callback(bar, task):
    return (lambda step, total: bar.update(task, completed=step, total=total)) if bar is not None else None


def finetune_text(encoder: ContentEncoder, pairs: pd.DataFrame, seed: int = 0, bar=None) -> dict[str, Any]:
    """Measure held-out Recall@1/MRR, fine-tune on the training pairs with MNRL, measure again."""
    train, test = pairs[pairs["split"] == "train"], pairs[pairs["split"] == "test"]
    if train.empty or test.empty:
        raise ValueError(f"expected train and test pairs, got {len(train)} train and {len(test)} test")
    leaked = set(train["anchor"]) & set(test["anchor"])
    if leaked:
        raise ValueError(f"{len(leaked)} test anchors also appear in training pairs, e.g. {sorted(leaked)[0]!r}")
    before = evaluate_pairs(encoder.text.encode, test)
    task = bar.add_task("fine-tune text (MNRL)", total=None) if bar is not None else None
    losses = encoder.text.fit(train["anchor"].tolist(), train["positive"].tolist(), seed=seed,
                              progress=_bar_callback(bar, task))
    after = evaluate_pairs(encoder.text.encode, test)
    return {"before": before, "after": after, "loss_per_epoch": losses, "n_train": len(train), "n_test": len(test)}


def label_precision(store: FeatureStore, items: pd.DataFrame, k: int) -> dict[str, dict[str, float]]:
    """P@k of e_sty / e_sem neighbours sharing the style / subject label (world catalogs), over all
    neighbours and over neighbours whose other label differs (``style_p_at_10_across_subjects``)."""
    labels = items.set_index("item_id")
    out: dict[str, dict[str, float]] = {}
    for label, other in (("style", "subject"), ("subject", "style")):
        out[f"{label}_p_at_{k}"], out[f"{label}_p_at_{k}_across_{other}s"] = {}, {}
        for name in ("e_sty", "e_sem", "e_sty_magenta", "e_tsem"):
            if name not in store.names:
                continue
            ids, mat = store.load(name)
            y, block = labels.loc[ids, label].to_numpy(), labels.loc[ids, other].to_numpy()
            out[f"{label}_p_at_{k}"][name] = precision_at_k(mat, y, k)
            out[f"{label}_p_at_{k}_across_{other}s"][name] = precision_at_k(mat, y, k, block=block)
    return out


def measure_throughput(encoder: ContentEncoder, items: pd.DataFrame) -> dict[str, float]:
    """Images/s (decode + resize + one pass for both outputs) and texts/s, median of 3 timed runs."""
    paths = [p for p in items["image_path"] if isinstance(p, str)][:THROUGHPUT_IMAGES]
    texts = [item_text(r) for r in items.head(THROUGHPUT_TEXTS).to_dict(orient="records")]
    return {"images_per_second": throughput(lambda xs: encoder.image.encode(xs), paths),
            "texts_per_second": throughput(lambda xs: encoder.text.encode(xs), texts),
            "throughput_images": len(paths), "throughput_texts": len(texts),
            "cpu_count": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)}


def evaluate_content(world_dir: str | Path, out_dir: str | Path, config: ContentConfig | None = None,
                     encoder: ContentEncoder | None = None, seed: int = 0, finetune: bool = True,
                     bar=None) -> dict[str, Any]:
    """Fine-tune the text encoder (held-out pairs), encode the world, measure; write ``content.json``."""

    config = config or ContentConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    encoder = encoder or ContentEncoder(config)
    items = load_catalog(world_dir, check_images=False)
    result: dict[str, Any] = {}
    pairs = load_pairs(world_dir, items, seed)
    if finetune and encoder.text.trainable:
        text = finetune_text(encoder, pairs, seed, bar)
    else:
        test = pairs[pairs["split"] == "test"]
        text = {"before": evaluate_pairs(encoder.text.encode, test), "after": None}
    after = text["after"] or text["before"]
    result["text_pairs"] = {
        "recall_at_1_before": text["before"]["recall_at_1"], "recall_at_1_after": after["recall_at_1"],
        "mrr_before": text["before"]["mrr"], "mrr_after": after["mrr"],
        "by_langs": {k: {"recall_at_1_before": v["recall_at_1"], "recall_at_1_after": after["by_langs"][k]["recall_at_1"],
                         "n": v["n"]} for k, v in text["before"]["by_langs"].items()},
        "by_kind": {k: {"recall_at_1_before": v["recall_at_1"], "recall_at_1_after": after["by_kind"][k]["recall_at_1"],
                        "n": v["n"]} for k, v in text["before"]["by_kind"].items()},
        "fine_tuned": text["after"] is not None, "loss_per_epoch": text.get("loss_per_epoch"),
        "n_train": text.get("n_train"), "n_test": int((pairs["split"] == "test").sum()),
    }
    store = encode_catalog(world_dir, out / "features", config, encoder, show_progress=bar is not None)
    if {"style", "subject"} <= set(items.columns):
        result.update(label_precision(store, items, config.knn_k))
    result.update(measure_throughput(encoder, items))
    result["encoders"] = encoder.versions
    result["n_items"] = len(store.item_ids)
    result["n_problems"] = store.manifest["n_problems"]
    (out / "content.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    return result


def genre_knn(store: FeatureStore, items: pd.DataFrame, feature: str = "e_sem", k: int = 10) -> dict[str, Any]:
    """kNN genre micro-F1 on a MovieLens feature store vs the majority baseline (tags are the genres)."""
    ids, mat = store.load(feature)
    genres = items.set_index("item_id").loc[ids, "tags"].map(lambda ts: [t["text"] for t in ts])
    keep = genres.map(len).to_numpy() > 0
    return {"feature": feature, **knn_multilabel_f1(mat[keep], genres[keep].tolist(), k)}
