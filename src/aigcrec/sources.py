"""Where the ranking commands get their data: a dataset folder, its content vectors and affect context.

Content vectors come from a feature store (``aigcrec.content``): an existing store folder when given,
else the catalog is encoded once into ``<cache>/features`` (the store skips items already encoded).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from aigcrec.data.affect_context import AffectContextMismatch, read_affect_context
from aigcrec.ranking.data import (
    MODALITIES,
    RankingData,
    VectorTables,
    catalog_dataset,
    context_dataset,
    movielens_dataset,
    with_affect,
    world_dataset,
)
from aigcrec.content.config import ContentConfig
from aigcrec.content.store import FeatureStore, encode_catalog
from aigcrec.content.text_encoder import MultiPerspectiveTextEncoder
from aigcrec.data.catalog import item_text
from aigcrec.data.context import load_context
from aigcrec.service.store import served_from_db

log = logging.getLogger("aigcrec.ranking")

DatasetName = Literal["movielens", "world", "catalog", "context"]
DATASETS: tuple[str, ...] = ("movielens", "world", "catalog", "context")
"""The layouts a ranker trains on (``aigcrec.data.layouts``; ``catalog``: items.csv + interactions.csv;
``context``: a context-aware rating folder, ``aigcrec.data.context``)."""


def context_text_vectors(data_dir: str | Path, cache_dir: str | Path, content_config=None) -> VectorTables:
    """``{"e_tsem": (item_ids, matrix)}`` of a context-aware rating folder's items that have a title or genres
    (``{}`` when none has: these sets have no images, and some no item text at all). Cached in
    ``<cache>/context_e_tsem.npz`` by a hash of the texts and the encoder settings."""


    items = load_context(data_dir).items
    texts = [item_text(t, [{"text": g} for g in gs]) for t, gs in zip(items["title"], items["genres"])]
    keep = [i for i, t in enumerate(texts) if t]
    if not keep:
        log.info("%s: no item has a title or genres; no content vectors (the model reads the ids and context)", data_dir)
        return {}

    cfg = (content_config or ContentConfig()).text
    ids, chosen = [str(items["item_id"].iloc[i]) for i in keep], [texts[i] for i in keep]
    key = hashlib.sha256(("\0".join(ids + chosen) + cfg.model_dump_json()).encode("utf-8")).hexdigest()[:16]
    path = Path(cache_dir) / f"context_e_tsem-{key}.npz"
    if path.is_file():
        return {"e_tsem": (ids, np.load(path)["e_tsem"])}
    log.info("encoding %d item texts of %s (e_tsem; %d items without text get none)", len(ids), data_dir,
             len(items) - len(ids))
    matrix = np.asarray(MultiPerspectiveTextEncoder(cfg).encode(chosen), np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, e_tsem=matrix)
    return {"e_tsem": (ids, matrix)}


def content_vectors(data_dir: str | Path, features_dir: str | Path | None, cache_dir: str | Path,
                    content_config=None) -> VectorTables:
    """``{e_sem, e_sty, e_tsem: (item_ids, matrix)}`` from ``features_dir`` or a store built in ``cache_dir``."""

    if features_dir is not None:
        store = FeatureStore(features_dir)
    else:
        out = Path(cache_dir) / "features"
        log.info("encoding the catalog of %s into %s (reused on the next run)", data_dir, out)
        store = encode_catalog(data_dir, out, content_config)
    missing = [m for m in MODALITIES if m not in store.names]
    if missing:
        raise ValueError(f"feature store {store.path} lacks {missing} (has {store.names})")
    return {m: store.load(m) for m in MODALITIES}


def _real_vectors(store: FeatureStore) -> VectorTables:
    """The store's modalities, leaving out the image ones when no item has an image (a context-aware rating
    set: every image row is imputed, the same zeros for all items, which would only add constant inputs
    and a meaningless modality weight to the ranker)."""
    ids = store.item_ids
    any_image = bool(store.has_image(ids).any()) if ids else False
    return {m: store.load(m) for m in MODALITIES
            if m in store.names and (any_image or store.manifest["features"][m]["group"] != "image")}


def read_affect(path: str | Path) -> pd.DataFrame:
    """An affect-context table (one row per session, numeric columns) from Parquet or CSV
    (``aigcrec.data.affect_context.read_affect_context``: its columns are its schema)."""
    return read_affect_context(path)[0]


def read_events(db: str | Path):
    """The impressions of a service database's event log with the context they were served in
    (``aigcrec.service.store.ServedInteractions``: frame, served affect table, its schema)."""

    served = served_from_db(db)
    frame = served.frame
    if frame.empty:
        raise ValueError(f"{db}: the event log holds no events to train on")
    with_context = 0 if served.affect is None else int(frame["session_id"].isin(served.affect.index).sum())
    log.info("%s: %d interactions (%d positive), %d of them served with an affect reading", db, len(frame),
             int(frame["label"].sum()), with_context)
    return served


def _events_affect(served, affect: str | Path | None) -> tuple[pd.DataFrame | None, object]:
    """The affect table of a ranker trained on an event log: its served readings (``served_state``), plus
    the rows of an ``--affect`` file when that file has the same columns (else a clear error)."""
    if served.affect is None:
        return (None, None) if affect is None else read_affect_context(affect)
    if affect is None:
        return served.affect, served.schema
    table, schema = read_affect_context(affect)
    if schema.columns != served.schema.columns:
        raise AffectContextMismatch(
            f"--affect {affect}: its columns ({schema.name}, {schema.dim}) are not those of the readings served in "
            f"the event log ({served.schema.name}, {served.schema.dim}); one ranker reads one affect context: "
            f"leave --affect out to train on the served readings")
    return pd.concat([table[~table.index.isin(served.affect.index)], served.affect]), served.schema


def load_dataset(dataset: DatasetName, data_dir: str | Path, cache_dir: str | Path,
                 features_dir: str | Path | None = None, affect: str | Path | None = None,
                 content_config=None, events: str | Path | None = None, context: str | list[str] = "all",
                 threshold: float | None = None) -> RankingData:
    """A ``RankingData`` for ``aigcrec train/evaluate/benchmark`` (any folder in the dataset's format).

    ``events``: a service's SQLite file; its event log replaces the folder's interactions (the folder
    still gives the user and item fields and the catalog the content vectors are encoded from), rebuilt
    with the context each list was served in: the served readings are the affect context (any dataset;
    rows served without signals, and past events, have none), unless the log holds none.
    ``context`` / ``threshold``: the context columns and label threshold of a ``context`` dataset.
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset: expected one of {list(DATASETS)}, got {dataset!r}")
    if dataset == "context":
        if events is not None:
            raise ValueError("--events: a context-aware rating set cannot be retrained from a service's event log")
        if features_dir is not None:  # the store's modalities, the image ones only where some item has an image
            vectors = _real_vectors(FeatureStore(features_dir))
        else:
            vectors = context_text_vectors(data_dir, cache_dir, content_config)
        return context_dataset(data_dir, context, vectors, threshold)
    vectors = content_vectors(data_dir, features_dir, cache_dir, content_config)
    if events is None:
        if dataset == "movielens":
            return movielens_dataset(data_dir, vectors)
        if dataset == "catalog":
            return catalog_dataset(data_dir, vectors)
        return world_dataset(data_dir, vectors, read_affect(affect) if affect else None)
    served = read_events(events)
    table, schema = _events_affect(served, affect)
    if dataset == "world":
        return world_dataset(data_dir, vectors, table, served.frame, schema)
    data = (movielens_dataset if dataset == "movielens" else catalog_dataset)(data_dir, vectors, served.frame)
    return data if table is None else with_affect(data, table, schema)
