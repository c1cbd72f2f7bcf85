"""Demo stage: encode the demo world into a feature store, measure disentanglement, show neighbours."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from aigcrec.content.encoder import ContentEncoder
from aigcrec.content.evaluate import neighbours
from aigcrec.content.benchmark import finetune_text, label_precision
from aigcrec.content.pairs import load_pairs
from aigcrec.content.store import FeatureStore, encode_catalog
from aigcrec.data.catalog import load_catalog
from aigcrec.saved import config_file

log = logging.getLogger("aigcrec.content")

THUMB = 96
N_QUERIES = 3
N_NEIGHBOURS = 5
DEMO_TEXT_EPOCHS = 1


def _cache_key(ctx, world_dir: Path) -> str:
    world = (world_dir / "world.json").read_bytes() if (world_dir / "world.json").is_file() else str(world_dir).encode()
    blob = ctx.config.content.model_dump_json().encode() + str(ctx.config.seed).encode() + world
    return hashlib.sha256(blob).hexdigest()[:12]


def _strip(paths: list[str], captions: list[str]) -> Image.Image:
    """A row of thumbnails with a caption under each (the first is the query)."""
    sheet = Image.new("RGB", (len(paths) * (THUMB + 6) + 6, THUMB + 30), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (p, cap) in enumerate(zip(paths, captions)):
        x = 6 + i * (THUMB + 6)
        with Image.open(p) as im:
            sheet.paste(im.convert("RGB").resize((THUMB, THUMB)), (x, 4))
        if i == 0:
            draw.rectangle((x - 3, 1, x + THUMB + 2, THUMB + 6), outline="red", width=2)
        draw.text((x, THUMB + 9), cap[:16], fill="black")
    return sheet


def _neighbour_rows(ctx, store: FeatureStore, items: pd.DataFrame) -> None:
    meta = items.set_index("item_id")
    rng = np.random.default_rng(ctx.config.seed)
    for feature, label in (("e_sty", "style"), ("e_sem", "subject")):
        ids, mat = store.load(feature)
        nn = neighbours(mat, N_NEIGHBOURS)
        rows = []
        for q in rng.choice(len(ids), size=min(N_QUERIES, len(ids)), replace=False):
            chosen = [ids[q]] + [ids[j] for j in nn[q]]
            caps = [f"{meta.at[i, 'subject']}/{meta.at[i, 'style']}" for i in chosen]
            ctx.report.image(_strip([meta.at[i, "image_path"] for i in chosen], caps),
                             f"{feature}: query {ids[q]} (red) and its {N_NEIGHBOURS} nearest neighbours "
                             f"(captions subject/style); they should share the {label}")
            rows.append({"query": ids[q], f"query {label}": meta.at[ids[q], label],
                         f"neighbours sharing the {label}": sum(meta.at[i, label] == meta.at[ids[q], label]
                                                                 for i in chosen[1:])})
        ctx.report.table(rows, caption=f"nearest neighbours by {feature}")


def run(ctx) -> None:
    """Fine-tune the text encoder briefly, encode the world (cached), record P@10, show neighbours."""

    world_dir = Path(ctx.artifacts["world_dir"])
    cfg = ctx.config.content
    root = ctx.cache_dir / f"content-{_cache_key(ctx, world_dir)}"
    enc_dir, store_dir, text_json = root / "encoder", root / "features", root / "text_pairs.json"
    items = load_catalog(world_dir, check_images=False)
    if config_file(enc_dir, "content_encoder") is not None and text_json.is_file():
        encoder = ContentEncoder.load(enc_dir)
        text = json.loads(text_json.read_text(encoding="utf-8"))
    else:
        encoder = ContentEncoder(cfg.model_copy(update={"text": cfg.text.model_copy(update={"epochs": DEMO_TEXT_EPOCHS})}))
        text = None
        if cfg.finetune_text_in_demo and encoder.text.trainable:
            with ctx.step("content", "fine-tune the text encoder"):
                text = finetune_text(encoder, load_pairs(world_dir, items, ctx.config.seed), ctx.config.seed)
        encoder.save(enc_dir)
        text_json.write_text(json.dumps(text, indent=2, ensure_ascii=False), encoding="utf-8")
    with ctx.step("content", "encode the catalog"):
        store = encode_catalog(world_dir, store_dir, cfg, encoder)
    ctx.artifacts["feature_store"] = str(store_dir)
    ctx.artifacts["content_dir"] = str(enc_dir)

    ctx.report.section("Content understanding", "Dual-output image encoder (e_sem: pooled late block; e_sty: "
                       f"{cfg.image.style_reduction} Gram statistics of early blocks, one pass) and the "
                       f"multi-perspective text encoder ({cfg.text.model}). Encoders: {encoder.versions}.")
    rows = []
    if {"style", "subject"} <= set(items.columns):
        prec = label_precision(store, items, cfg.knn_k)
        for label, by_feature in prec.items():
            for feature, value in by_feature.items():
                headline = feature in ("e_sty", "e_sem")
                ctx.record("content", f"{label}_{feature}", value, headline=headline)
                rows.append({"metric": label, "feature": feature, "value": value})
    if text is not None:
        for when in ("before", "after"):
            ctx.record("content", f"text_recall_at_1_{when}", text[when]["recall_at_1"], headline=True)
            rows.append({"metric": f"held-out text-pair Recall@1 ({when} fine-tuning)", "feature": "e_tsem",
                         "value": text[when]["recall_at_1"]})
    last = store.manifest["last_run"]
    for key in ("images_per_second", "texts_per_second"):
        if last.get(key):
            ctx.record("content", key, last[key])
    ctx.report.table(rows, caption=f"label precision of {cfg.knn_k} nearest neighbours and text-pair retrieval")
    ctx.report.text(f"{len(store.item_ids)} items encoded; problems: {store.manifest['n_problems']}; "
                    f"last run: {last}")
    _neighbour_rows(ctx, store, items)
