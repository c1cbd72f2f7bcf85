"""Everything one server process holds: config, the SQLite store, the pipeline, the API key, metrics.

``ServiceState.open`` turns a store plus the catalog's content vectors and the three models into a
ready pipeline: first start imports the catalog (and its past interactions) into SQLite; every start
rebuilds the in-memory state from SQLite (API-added items with their stored vectors, the event log).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import numpy as np

from aigcrec.service.config import ServiceConfig
from aigcrec.service.metrics import Metrics
from aigcrec.service.pipeline import RecommendPipeline
from aigcrec.service.protocols import AffectModel, ItemEncoder, Ranker
from aigcrec.service.store import ServiceStore

log = logging.getLogger("aigcrec.service")

API_KEY_ENV = "AIGCREC_API_KEY"


@dataclass
class ServiceState:
    config: ServiceConfig
    store: ServiceStore
    pipeline: RecommendPipeline
    api_key: Optional[str]
    metrics: Metrics = field(default_factory=Metrics)
    ready: bool = True

    @classmethod
    def open(
        cls,
        config: ServiceConfig,
        store: ServiceStore,
        catalog_items: Sequence[Mapping[str, Any]],
        catalog_vectors: Mapping[str, np.ndarray],
        ranker: Ranker,
        affect_model: Optional[AffectModel] = None,
        encoder: Optional[ItemEncoder] = None,
        past_events: Iterable[Mapping[str, Any]] = (),
        seed: int = 0,
        affect_context: Optional[Callable[[Any], Optional[np.ndarray]]] = None,
    ) -> "ServiceState":
        """Build the serving state; ``catalog_vectors`` rows align with ``catalog_items``."""
        if store.get_meta("catalog_imported") is None:
            store.import_catalog(catalog_items, past_events)
            log.info("first start: imported %d catalog items into %s", len(catalog_items), store.path)
        row_of = {str(it["item_id"]): i for i, it in enumerate(catalog_items)}
        api_vectors = store.api_item_vectors()
        metas, catalog_rows, api_ids = [], [], []
        for item in store.items():
            if item["origin"] == "api" and item["item_id"] in api_vectors:
                api_ids.append(item["item_id"])
            elif item["item_id"] in row_of:
                catalog_rows.append(row_of[item["item_id"]])
            else:
                log.warning("item %s is in the store but has no content vectors: not served", item["item_id"])
                continue
            metas.append(item)
        # Catalog rows first, then API items: the same order as `metas` because the store lists by rowid
        # and imported catalog items always precede API items.
        vectors = {
            name: np.concatenate(
                [
                    np.asarray(mat, dtype=np.float32)[catalog_rows],
                    np.stack([api_vectors[i][name] for i in api_ids]).astype(np.float32)
                    if api_ids
                    else np.zeros((0, np.asarray(mat).shape[1]), np.float32),
                ]
            )
            for name, mat in catalog_vectors.items()
        }
        pipeline = RecommendPipeline.build(
            config, metas, vectors, ranker, affect_model, encoder, seed=seed, affect_context=affect_context
        )
        replayed = pipeline.observe(list(store.iter_events()))
        log.info("replayed %d logged events", replayed)
        api_key = os.environ.get(API_KEY_ENV) or config.api_key
        state = cls(config, store, pipeline, api_key)
        state.metrics.gauge(
            "aigcrec_catalog_items", "Items in the serving catalog.", lambda: len(pipeline.catalog)
        )
        state.metrics.gauge(
            "aigcrec_index_vectors", "Vectors in the FAISS index.", lambda: pipeline.index.ntotal
        )
        state.metrics.gauge(
            "aigcrec_users_with_history",
            "Users with at least one logged event.",
            lambda: len(pipeline.users.seen),
        )
        return state
