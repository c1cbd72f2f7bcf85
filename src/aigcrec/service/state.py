"""Everything one server process holds: config, the SQLite store, the pipeline, the API key, metrics.

``ServiceState.open`` turns a store plus the catalog's content vectors and the three models into a
ready pipeline: first start imports the catalog (and its past interactions) into SQLite; every start
rebuilds the in-memory state from SQLite (API-added items with their stored vectors, the event log).

SQLite is the one source of truth: writes go to the store first, and every process follows the store's
log (``changes`` + ``apply``: after its own writes and every ``service.sync_interval_s``), so several
server processes on one file (``service.workers``) serve the same items and histories.
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
from aigcrec.service.protocols import AffectReader, CandidateModel, CollabModel, ItemEncoder, ServedRanker
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
    items_seen: int = 0
    """Watermarks of the SQLite log this process has applied (item rowid, event seq)."""
    events_seen: int = 0

    @classmethod
    def open(
        cls,
        config: ServiceConfig,
        store: ServiceStore,
        catalog_items: Sequence[Mapping[str, Any]],
        catalog_vectors: Mapping[str, np.ndarray],
        ranker: ServedRanker,
        affect_model: Optional[AffectReader] = None,
        encoder: Optional[ItemEncoder] = None,
        past_events: Iterable[Mapping[str, Any]] = (),
        seed: int = 0,
        affect_context: Optional[Callable[[Any], Optional[np.ndarray]]] = None,
        retriever: Optional[CandidateModel] = None,
        query_encoder: Optional[Callable[[str], np.ndarray]] = None,
        collab: Optional[CollabModel] = None,
    ) -> "ServiceState":
        """Build the serving state; ``catalog_vectors`` rows align with ``catalog_items``; ``retriever`` /
        ``query_encoder`` / ``collab``: the two-tower model, the text -> e_TSEM encoder and the item-item
        model (``RecommendPipeline.build``)."""
        if store.import_catalog(catalog_items, past_events):
            log.info("first start: imported %d catalog items into %s", len(catalog_items), store.path)
        stored, api_vectors, events = store.changes_since(0, 0)
        row_of = {str(it["item_id"]): i for i, it in enumerate(catalog_items)}
        metas, catalog_rows, api_ids = [], [], []
        for item in stored:
            if item["origin"] == "api" and item["item_id"] in api_vectors:
                api_ids.append(item["item_id"])
            elif item["item_id"] in row_of:
                catalog_rows.append(row_of[item["item_id"]])
            else:
                log.warning("item %s is in the store but has no content vectors: not served", item["item_id"])
                continue
            metas.append(_meta(item))
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
            config, metas, vectors, ranker, affect_model, encoder, seed=seed, affect_context=affect_context,
            retriever=retriever, query_encoder=query_encoder, collab=collab,
        )
        replayed = pipeline.observe(events)
        log.info("replayed %d logged events", replayed)
        api_key = os.environ.get(API_KEY_ENV) or config.api_key
        state = cls(config, store, pipeline, api_key)
        state.items_seen = max((it["rowid"] for it in stored), default=0)
        state.events_seen = max((e["seq"] for e in events), default=0)
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

    # -- following the log ----------------------------------------------------------------------------
    def changes(self) -> Changes:
        """What other writers (or this process) appended to the store since the last ``apply`` (blocking)."""
        return Changes(*self.store.changes_since(self.items_seen, self.events_seen))

    def apply(self, changes: Changes) -> tuple[int, int]:
        """Bring the in-memory state up to ``changes``; returns (items added, events applied).

        Call it from one thread (the event loop): parts that an earlier ``apply`` already covered are
        skipped, so overlapping ``changes`` fetched concurrently are applied once.
        """
        added = applied = 0
        pipe = self.pipeline
        for item in changes.items:
            if item["rowid"] <= self.items_seen:
                continue
            self.items_seen = item["rowid"]
            vectors = changes.vectors.get(item["item_id"])
            if item["item_id"] in pipe.catalog.row_of:
                continue
            if vectors is None:
                log.warning("item %s is in the store but has no content vectors: not served", item["item_id"])
                continue
            pipe.add_item(_meta(item), vectors)
            added += 1
        fresh = [e for e in changes.events if e["seq"] > self.events_seen]
        if fresh:
            applied = pipe.observe(fresh)
            self.events_seen = fresh[-1]["seq"]
        return added, applied

    def sync(self) -> tuple[int, int]:
        """``apply(changes())`` in the calling thread."""
        return self.apply(self.changes())


@dataclass(frozen=True)
class Changes:
    """A snapshot of the store's log past some watermarks (``ServiceStore.changes_since``)."""

    items: list[dict[str, Any]]
    vectors: dict[str, dict[str, np.ndarray]]
    events: list[dict[str, Any]]


def _meta(item: Mapping[str, Any]) -> dict[str, Any]:
    """Serving metadata of a stored item (the store's bookkeeping ``rowid`` dropped)."""
    return {k: v for k, v in item.items() if k != "rowid"}
