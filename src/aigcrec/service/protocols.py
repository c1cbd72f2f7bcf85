"""The model roles the service composes, as structural protocols.

The real implementations are ``aigcrec.affect.AffectPredictor`` (``AffectReader``),
``aigcrec.ranking.RankerBundle`` (``ServedRanker``), the content encoder (``ItemEncoder``) and, optionally, the
two-tower retrieval model ``aigcrec.retrieval.TwoTowerRetriever`` (``CandidateModel``); anything with the
same methods plugs in (the tests use small hand-written ones).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Protocol, Sequence, runtime_checkable

import numpy as np

from aigcrec.data.affect_context import AffectContextSchema


@runtime_checkable
class AffectStateLike(Protocol):
    """What the service reads from an affect prediction (``aigcrec.affect.AffectState``)."""

    emotion: str
    emotion_probs: Any  # mapping label -> probability, or a vector in EMOTIONS order
    intent: str
    intent_probs: Any
    confidence: float
    modalities_used: Any
    fusion_weights: Any

    def as_vector(self) -> np.ndarray: ...


@runtime_checkable
class AffectReader(Protocol):
    """Reads emotion and intent from any subset of text, voice (WAV bytes) and face (image bytes)."""

    def predict(
        self, text: Optional[str] = None, voice: Optional[bytes] = None, face: Optional[bytes] = None
    ) -> AffectStateLike: ...


@runtime_checkable
class ServedRanker(Protocol):
    """Scores candidate items for a user, optionally in an affect context.

    ``item_features`` carries the content vectors (name -> ``(n, d)`` rows aligned with ``item_ids``) so
    items the ranker never saw in training (added live) are scored from their content. ``history`` is the
    user's recent positive items (oldest first) and ``history_features`` their content vectors, for a
    ranker that reads the user's content profile (``RankerBundle``); others ignore them. Such a ranker
    says how many positives it reads (``history_len``, 0 for none); the pipeline keeps at least that many per user.
    Returns ``scores (n,)``, UMCM modality weights ``(n, M)`` and the ``M`` modality names.

    ``affect_dim`` is the width of the affect context it reads (0: none) and ``affect_schema`` that context's
    columns (None for a bundle saved before schemas were recorded); the service encodes each request's
    ``AffectState`` by it. ``check_context`` raises ``ValueError`` naming the keys of an explicit ``context``
    it does not know (and the known ones). ``cache_items`` gets the whole catalog once at start, to precompute
    what depends on the item alone; it returns how many items it cached (0: nothing to cache).
    """

    history_len: int
    affect_dim: int
    affect_schema: Optional[AffectContextSchema]

    def check_context(self, context: Optional[Mapping[str, Any]]) -> None: ...

    def cache_items(self, item_ids: Sequence[str], item_features: Optional[Mapping[str, np.ndarray]] = None) -> int: ...

    def score(
        self,
        user_id: str,
        item_ids: Sequence[str],
        affect_vector: Optional[np.ndarray] = None,
        item_features: Optional[Mapping[str, np.ndarray]] = None,
        history: Optional[Sequence[str]] = None,
        history_features: Optional[Mapping[str, np.ndarray]] = None,
    ) -> tuple[np.ndarray, np.ndarray, list[str]]: ...


@runtime_checkable
class ItemEncoder(Protocol):
    """Encodes one new item (image bytes, title, tags) into the feature-store vectors (name -> ``(d,)``),
    as ``aigcrec.content.ContentEncoder.encode_item`` does."""

    def encode_item(
        self, image: bytes, title: str = "", tags: Sequence[Mapping[str, str]] = ()
    ) -> dict[str, np.ndarray]: ...


@runtime_checkable
class CollabModel(Protocol):
    """An item-item collaborative model (``aigcrec.retrieval.collab.ItemItemModel``, EASE^R): a score for each
    of its ``item_ids`` from the user's live positives (item ids, oldest first)."""

    item_ids: list[str]
    history_len: int
    known: np.ndarray  # (n_model,) bool: whether the model can score the item (an item without training positives cannot)

    def scores(self, history_ids: Sequence[str]) -> np.ndarray: ...


class CandidateModel(Protocol):
    """A two-tower retrieval model (``aigcrec.retrieval.TwoTowerRetriever``): item vectors for the index and
    the user tower's query vector from the live history, the user's features and the affect context."""

    dim: int
    history_len: int

    def item_vectors(self, item_ids: Sequence[str], features: Mapping[str, np.ndarray]) -> np.ndarray: ...

    def context_vector(self, state: Optional[AffectStateLike]) -> np.ndarray: ...

    def user_vector(
        self,
        user_id: str,
        history_features: Optional[Mapping[str, np.ndarray]] = None,
        context: Optional[np.ndarray] = None,
        history_ids: Optional[Sequence[str]] = None,
    ) -> np.ndarray: ...
