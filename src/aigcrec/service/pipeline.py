"""The request path: affect -> candidate sources -> UMAIR-FPS ranking -> diversity re-rank -> explanation.

``RecommendPipeline`` owns the in-memory serving state (catalog, user activity, retrieval space and
indexes) and the models (``protocols.py``). It knows nothing of HTTP; ``app.py`` wraps it.

Candidates come from named sources (``SOURCE_*``, each item's source is in its explanation). With a
two-tower model or a request text, ``blend_shares`` mixes the configured shares of each source
(``ServiceConfig.retrieval.blend``) by the predicted intent probabilities; otherwise history, fresh and
popular items fill the list as before.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from aigcrec.service.catalog import GrowableMatrix, ServedCatalog, UserActivity
from aigcrec.service.config import RetrievalConfig, ServiceConfig
from aigcrec.service.protocols import (AffectReader, AffectStateLike, CandidateModel, CollabModel, ItemEncoder,
                                       ServedRanker)
from aigcrec.service.retrieval import RetrievalSpace, VectorIndex
from aigcrec.service.store import POSITIVE_EVENTS

log = logging.getLogger("aigcrec.service")

SOURCE_HISTORY = "similar_to_history"
SOURCE_FRESH = "fresh"
SOURCE_POPULAR = "popular"
SOURCE_TWO_TOWER = "for_you_now"
"""The two-tower model's user tower: this user's history and features in this request's affect context."""
SOURCE_COLLAB = "liked_with_yours"
"""The item-item model (EASE^R) on the user's live positives: items liked by the people who liked theirs."""
SOURCE_QUERY = "matches_request"
"""The request's text embedded into the e_TSEM space: items whose titles and tags match what was asked."""
SOURCE_KEYS = {SOURCE_HISTORY: "history", SOURCE_TWO_TOWER: "two_tower", SOURCE_COLLAB: "collab", SOURCE_QUERY: "query",
               SOURCE_FRESH: "fresh", SOURCE_POPULAR: "popular"}
"""Source name -> its field in ``SourceShares`` (the blend's weights)."""


@dataclass
class Ranked:
    """One recommended item with why it is there."""

    item_id: str
    score: float
    source: str
    modality_weights: dict[str, float]


@dataclass
class Recommendation:
    items: list[Ranked]
    affect: Optional[AffectStateLike]
    modality_names: list[str]
    cold_start: bool
    timings_ms: dict[str, float] = field(default_factory=dict)
    source_shares: dict[str, float] = field(default_factory=dict)
    """The blend's share of each candidate source for this request (empty: the sources without a blend)."""


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def blend_shares(config: RetrievalConfig, intent_probs: Optional[Mapping[str, float]],
                 available: Sequence[str]) -> dict[str, float]:
    """Share of each available source: ``w_s = sum_n p(n) W[n][s]`` renormalised over ``available``.

    ``p(n)``: the predicted intent probabilities (None: no affect reading, ``W['none']`` alone); an intent
    the blend does not list weighs ``W['none']``. Sources the request lacks (no history, no text, no
    two-tower model) give their share to the others in proportion.
    """
    probs = {"none": 1.0} if not intent_probs else {str(k): float(v) for k, v in dict(intent_probs).items()}
    total = {s: 0.0 for s in available}
    for intent, p in probs.items():
        shares = config.blend.get(intent, config.blend["none"])
        for s in available:
            total[s] += p * getattr(shares, SOURCE_KEYS[s])
    norm = sum(total.values())
    if norm <= 0:  # every available source has weight 0: share alike
        return {s: 1.0 / len(available) for s in available}
    return {s: v / norm for s, v in total.items()}


def _codes(values: Sequence[Any]) -> tuple[np.ndarray, int]:
    """Integer code per value (``None`` -> -1) and the number of distinct values."""
    table: dict[Any, int] = {}
    codes = np.array([-1 if v is None else table.setdefault(v, len(table)) for v in values], dtype=np.int64)
    return codes, len(table)


def fuse_retrieval(scores: np.ndarray, rows: np.ndarray, ranked: Optional[np.ndarray], weight: float,
                   more: Sequence[tuple[Optional[np.ndarray], float] | tuple[Optional[np.ndarray], float,
                                                                             Optional[np.ndarray]]] = (),
                   unknown: str = "renormalize") -> np.ndarray:
    """The ranker's scores blended with the rankings of the same candidates by the retrieval models:

        s_i = [(1 - W) p_i + sum_{m in K_i} w_m (1 - r_mi / R_m)] / [(1 - W) + sum_{m in K_i} w_m],
        W = sum_m w_m  (<= 1)

    ``p_i`` the ranker's score of candidate ``rows[i]`` (a click probability), ``r_mi`` its position in model
    ``m``'s list (R_m long; R_m when absent, so 0): ``ranked`` with ``weight`` (the two-tower), then each
    ``(list, weight)`` or ``(list, weight, knows)`` of ``more`` (the item-item model). ``K_i``: the models
    that can score candidate i: ``knows`` is a bool array over catalog rows (rows past its end are unknown;
    None: every row known). With every model knowing i the denominator is 1 and this is the plain blend; a
    model that cannot score i (the item-item model and a new item) is left out of i's blend
    (``unknown="renormalize"``), or counted as its worst rank (``unknown="worst"``: the numerator alone).
    A candidate no weighted term knows keeps ``p_i``. The ranker learns from impressions (clicked vs shown);
    the retrieval models from positives against the whole catalog: the blend keeps what the full-catalog
    models know about what a user would never pick. Every ``w = 0`` or no list: ``scores`` unchanged."""
    if unknown not in ("renormalize", "worst"):
        raise ValueError(f"fuse_retrieval: unknown={unknown!r}, expected 'renormalize' or 'worst'")
    parts = [(p[0], float(p[1]), p[2] if len(p) > 2 else None) for p in [(ranked, weight), *more]]
    parts = [(r, w, k) for r, w, k in parts if w > 0 and r is not None and len(r) > 0]
    if not parts:
        return scores
    total = sum(w for _, w, _ in parts)
    if total > 1.0 + 1e-9:
        raise ValueError(f"fuse_retrieval: retrieval weights sum to {total:g} > 1")
    rows = np.asarray(rows, np.int64).reshape(-1)
    p = np.asarray(scores, np.float64)  # (n,)
    out = (1.0 - total) * p
    norm = np.full(len(rows), 1.0 - total)  # (n,) sum of the weights of the terms that know each candidate
    for lst, w, knows in parts:
        pos = {int(r): k for k, r in enumerate(np.asarray(lst).reshape(-1)) if r >= 0}
        big = len(lst)
        q = 1.0 - np.array([pos.get(int(r), big) for r in rows], dtype=np.float64) / big  # (n,) in [0, 1]
        if knows is None:
            k = np.ones(len(rows), bool)
        else:
            knows = np.asarray(knows, bool)
            k = np.zeros(len(rows), bool)
            inside = (rows >= 0) & (rows < len(knows))
            k[inside] = knows[rows[inside]]
        out = out + w * q * k
        norm = norm + w * k
    if unknown == "worst":
        return out
    ok = norm > 1e-12
    return np.where(ok, out / np.where(ok, norm, 1.0), p)


def _unseen(ranked: Optional[np.ndarray], exclude: set[int]) -> Optional[np.ndarray]:
    """``ranked`` without the rows in ``exclude`` (positions then count only items the user may be shown)."""
    if ranked is None or not exclude:
        return ranked
    ranked = np.asarray(ranked).reshape(-1)
    return ranked[~np.isin(ranked, np.fromiter(exclude, np.int64, len(exclude)))]


def diversify(
    scores: np.ndarray, styles: Sequence[Any], creators: Sequence[Any], k: int, penalty: float
) -> list[int]:
    """Greedy re-rank: pick ``argmax_i s_i - penalty * (n_style(i) + n_creator(i))`` until ``k`` are picked.

    ``n_style(i)`` / ``n_creator(i)`` count already-picked items sharing item ``i``'s style / creator
    (``None`` shares with nothing). Returns positions into ``scores``, in display order.
    """
    scores = np.asarray(scores, dtype=np.float64)  # (n,)
    style_codes, n_styles = _codes(styles)
    creator_codes, n_creators = _codes(creators)
    # One spare slot at the end: code -1 indexes it and it stays 0, so None is never penalised.
    style_count = np.zeros(n_styles + 1)
    creator_count = np.zeros(n_creators + 1)
    free = np.ones(len(scores), dtype=bool)
    picked: list[int] = []
    for _ in range(min(k, len(scores))):
        adjusted = scores - penalty * (style_count[style_codes] + creator_count[creator_codes])  # (n,)
        adjusted[~free] = -np.inf
        best = int(np.argmax(adjusted))
        picked.append(best)
        free[best] = False
        if style_codes[best] >= 0:
            style_count[style_codes[best]] += 1
        if creator_codes[best] >= 0:
            creator_count[creator_codes[best]] += 1
    return picked


class RecommendPipeline:
    """Serving state plus models; ``recommend`` is the whole request path."""

    def __init__(
        self,
        config: ServiceConfig,
        catalog: ServedCatalog,
        space: RetrievalSpace,
        index: VectorIndex,
        ranker: ServedRanker,
        affect_model: Optional[AffectReader] = None,
        encoder: Optional[ItemEncoder] = None,
        affect_context: Optional[Callable[[AffectStateLike], Optional[np.ndarray]]] = None,
        retriever: Optional[CandidateModel] = None,
        query_encoder: Optional[Callable[[str], np.ndarray]] = None,
        collab: Optional[CollabModel] = None,
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.space = space
        self.index = index
        self.ranker = ranker
        self.affect_model = affect_model
        self.encoder = encoder
        # How an AffectState becomes the ranker's context vector (the ranker's training format).
        self.affect_context = affect_context or (lambda state: state.as_vector())
        self.retriever = retriever
        self.query_encoder = query_encoder  # text -> (d_tsem,) in the e_TSEM space (the content text encoder)
        self.collab = collab
        self._collab_rows = np.zeros(0, np.int64)  # (n_model,) catalog row of each of the model's items, -1 none
        self._collab_knows = np.zeros(0, bool)  # (n_catalog at build,) whether the item-item model scores the row
        # Keep as many recent positives as the retrieval query, the two-tower, the item-item model or the
        # ranker's profile reads.
        self.users = UserActivity(max(config.retrieval.history_len, int(ranker.history_len),
                                      int(retriever.history_len) if retriever is not None else 0,
                                      int(collab.history_len) if collab is not None else 0))
        self._retrieval = GrowableMatrix(
            space.dim, capacity=len(catalog) + 1024
        )  # (n, dim), grows with the catalog
        # Two-tower item vectors and unit e_TSEM vectors, each in its own FAISS index keyed by catalog row.
        self.two_tower_index = None if retriever is None else VectorIndex.from_config(
            retriever.dim, config.retrieval)
        self.text_index = None if query_encoder is None or "e_tsem" not in catalog.features else (
            VectorIndex.from_config(catalog.features["e_tsem"].values.shape[1], config.retrieval))

    # -- building -----------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        config: ServiceConfig,
        metas: Sequence[Mapping[str, Any]],
        vectors: Mapping[str, np.ndarray],
        ranker: ServedRanker,
        affect_model: Optional[AffectReader] = None,
        encoder: Optional[ItemEncoder] = None,
        seed: int = 0,
        affect_context: Optional[Callable[[AffectStateLike], Optional[np.ndarray]]] = None,
        retriever: Optional[CandidateModel] = None,
        query_encoder: Optional[Callable[[str], np.ndarray]] = None,
        collab: Optional[CollabModel] = None,
    ) -> "RecommendPipeline":
        """Catalog from item metadata + content vectors (name -> (n, d), rows as ``metas``), indexes built.

        ``retriever``: a two-tower model (its item vectors are indexed); ``query_encoder``: text -> e_TSEM
        vector (the request's text then retrieves too); ``collab``: an item-item model (scores the catalog
        items it was fit on; items added later are not among its candidates until the next build)."""
        if not metas:
            raise ValueError("RecommendPipeline.build: expected a non-empty catalog, got 0 items")
        dims = {name: int(np.asarray(v).shape[1]) for name, v in vectors.items()}
        catalog = ServedCatalog(dims, capacity=len(metas) + 1024)
        rows = catalog.add(metas, vectors)
        space = RetrievalSpace(config.retrieval.features, config.retrieval.dim).fit(vectors, seed=seed)
        index = VectorIndex.from_config(space.dim, config.retrieval)
        retr = space.transform(vectors)  # (n, dim)
        index.build(retr, rows, seed=seed)
        pipe = cls(config, catalog, space, index, ranker, affect_model, encoder, affect_context, retriever,
                   query_encoder, collab)
        if collab is not None:
            pipe._collab_rows = np.array([catalog.row_of.get(str(i), -1) for i in collab.item_ids], np.int64)
            mine = pipe._collab_rows >= 0
            pipe._collab_knows = np.zeros(len(catalog), bool)  # items added later: past its end, unknown
            pipe._collab_knows[pipe._collab_rows[mine]] = np.asarray(collab.known, bool)[mine]
        pipe._retrieval.extend(retr)
        pipe._index_sources(catalog.item_ids, vectors, rows, seed)
        t0 = time.perf_counter()  # item-side model inputs precomputed once
        cached = ranker.cache_items(catalog.item_ids, {n: m.values for n, m in catalog.features.items()})
        if cached:
            log.info("ranker: item-side inputs of %d items cached in %.1f s", cached, time.perf_counter() - t0)
        log.info("catalog: %d items, retrieval %d-d %s index", len(catalog), space.dim, index.kind)
        return pipe

    def _index_sources(self, item_ids: Sequence[str], vectors: Mapping[str, np.ndarray], rows: np.ndarray,
                       seed: int = 0) -> None:
        """Put items into the two-tower and e_TSEM indexes (build on the first call, add afterwards)."""
        for index, vecs in ((self.two_tower_index, lambda: self.retriever.item_vectors(item_ids, vectors)),
                            (self.text_index, lambda: _unit(np.asarray(vectors["e_tsem"], np.float32)))):
            if index is None:
                continue
            v = np.asarray(vecs(), dtype=np.float32)  # (n, d)
            if index.ntotal == 0:
                index.build(v, rows, seed=seed)
            else:
                index.add(v, rows)

    @property
    def retrieval_vectors(self) -> np.ndarray:
        """Unit retrieval vectors of every catalog row, ``(n, dim)``."""
        return self._retrieval.values

    # -- live updates -------------------------------------------------------------------------------
    def add_item(self, meta: Mapping[str, Any], vectors: Mapping[str, np.ndarray]) -> int:
        """Make one item retrievable now: catalog row, retrieval vector, FAISS entry."""
        batch = {name: np.asarray(v, dtype=np.float32).reshape(1, -1) for name, v in vectors.items()}
        retr = self.space.transform(batch)  # (1, dim)
        row = self.catalog.add([meta], batch)
        self._retrieval.extend(retr)
        self.index.add(retr, row)
        self._index_sources([str(meta["item_id"])], batch, row)
        return int(row[0])

    def observe(self, events: Sequence[Mapping[str, Any]]) -> int:
        """Apply feedback to the serving state; returns how many events named a known item."""
        known = 0
        positive_rows = []
        for e in events:
            row = self.catalog.row_of.get(e["item_id"])
            if row is None:
                continue
            known += 1
            self.users.observe(e["user_id"], row, e["type"])
            if e["type"] in POSITIVE_EVENTS:
                positive_rows.append(row)
        if positive_rows:
            self.catalog.bump_popularity(np.asarray(positive_rows))
        return known

    # -- request path -------------------------------------------------------------------------------
    def read_affect(
        self, text: Optional[str] = None, voice: Optional[bytes] = None, face: Optional[bytes] = None
    ) -> Optional[AffectStateLike]:
        if text is None and voice is None and face is None:
            return None
        if self.affect_model is None:
            raise RuntimeError("no affect model is loaded")
        return self.affect_model.predict(text=text, voice=voice, face=face)

    def candidates(
        self,
        user_id: str,
        n: int,
        exclude: set[int],
        affect: Optional[AffectStateLike] = None,
        query: Optional[str] = None,
    ) -> tuple[np.ndarray, list[str], bool]:
        """Up to ``n`` candidate rows with their sources; cold start when the user has no positive history.

        With a two-tower model or a ``query`` text the sources are blended (``blended_candidates``);
        otherwise history, fresh and popular items fill the list."""
        if self.blends(query):
            rows, sources, cold, _ = self.blended_candidates(user_id, n, exclude, affect, query)
            return rows, sources, cold
        return self._plain_candidates(user_id, n, exclude)

    def blends(self, query: Optional[str] = None) -> bool:
        """Whether candidates come from the blend: a two-tower or item-item model is loaded, or the request
        has text to retrieve with."""
        return self.retriever is not None or self.collab is not None or bool(query and self.text_index is not None)

    def collab_list(self, user_id: str, depth: int) -> Optional[np.ndarray]:
        """The item-item model's ranked catalog rows for the user (best first, at most ``depth``, only items
        with a positive score); None without the model or a live positive it knows."""
        if self.collab is None:
            return None
        liked = self.users.history(user_id, self.collab.history_len)
        if not liked:
            return None
        s = np.asarray(self.collab.scores([self.catalog.item_ids[r] for r in liked]), np.float64)  # (n_model,)
        ok = (self._collab_rows >= 0) & (s > 0)
        cols = np.flatnonzero(ok)
        if len(cols) == 0:
            return None
        k = min(depth, len(cols))
        top = cols[np.argpartition(-s[cols], k - 1)[:k]]
        top = top[np.lexsort((top, -s[top]))]  # by score, then the model's order
        return self._collab_rows[top]

    def _plain_candidates(self, user_id: str, n: int, exclude: set[int]) -> tuple[np.ndarray, list[str], bool]:
        """History (80 %), then fresh (10 %, cold start ``fresh_share``) and popular items."""
        rows: list[int] = []
        sources: list[str] = []
        taken = set(exclude)

        def take(cands: np.ndarray, source: str, limit: int) -> None:
            for r in cands:
                r = int(r)
                if len(rows) >= limit:
                    return
                if r >= 0 and r not in taken:
                    taken.add(r)
                    rows.append(r)
                    sources.append(source)

        history = self.users.history(user_id, self.config.retrieval.history_len)
        cold = not history
        extra = len(exclude) + n
        if not cold:
            query = self.retrieval_vectors[history].mean(axis=0, keepdims=True)  # (1, dim)
            _, found = self.index.search(query, min(extra, len(self.catalog)))
            take(found[0], SOURCE_HISTORY, int(0.8 * n))
        fresh_n = int(self.config.retrieval.fresh_share * n) if cold else n // 10
        take(self.catalog.newest(fresh_n + len(exclude)), SOURCE_FRESH, len(rows) + fresh_n)
        take(self.catalog.most_popular(extra), SOURCE_POPULAR, n)
        if len(rows) < n:  # tiny catalogs: whatever is left
            take(self.catalog.newest(len(self.catalog)), SOURCE_FRESH, n)
        return np.asarray(rows, dtype=np.int64), sources, cold

    def source_lists(
        self, user_id: str, depth: int, affect: Optional[AffectStateLike] = None, query: Optional[str] = None
    ) -> dict[str, np.ndarray]:
        """Each available source's ranked rows (best first, at most ``depth``), before any exclusion."""
        depth = min(depth, len(self.catalog))
        out: dict[str, np.ndarray] = {}
        history = self.users.history(user_id, self.config.retrieval.history_len)
        if history:
            q = self.retrieval_vectors[history].mean(axis=0, keepdims=True)  # (1, dim)
            out[SOURCE_HISTORY] = self.index.search(q, depth)[1][0]
        if self.retriever is not None and self.two_tower_index is not None:
            liked = self.users.history(user_id, self.retriever.history_len)
            feats = self.catalog.features_of(np.asarray(liked, dtype=np.int64)) if liked else None
            u = self.retriever.user_vector(user_id, feats, None if affect is None else
                                           self.retriever.context_vector(affect),
                                           [self.catalog.item_ids[r] for r in liked])  # (1, d)
            out[SOURCE_TWO_TOWER] = self.two_tower_index.search(u, depth)[1][0]
        collab = self.collab_list(user_id, depth)
        if collab is not None:
            out[SOURCE_COLLAB] = collab
        if query and query.strip() and self.query_encoder is not None and self.text_index is not None:
            q = _unit(np.asarray(self.query_encoder(query), np.float32).reshape(1, -1))  # (1, d_tsem)
            out[SOURCE_QUERY] = self.text_index.search(q, depth)[1][0]
        out[SOURCE_FRESH] = self.catalog.newest(depth)
        out[SOURCE_POPULAR] = self.catalog.most_popular(depth)
        return out

    def blended_candidates(
        self,
        user_id: str,
        n: int,
        exclude: set[int],
        affect: Optional[AffectStateLike] = None,
        query: Optional[str] = None,
    ) -> tuple[np.ndarray, list[str], bool, dict[str, float]]:
        """Candidates from every available source in the blend's shares (``blend_shares``).

        Each source fills ``round(share * n)`` places from its ranked list (largest share first, an item
        already taken keeps its first source); places a source cannot fill go to the next items of the
        sources in share order. Returns rows, sources, cold start and the shares used.
        """
        rows, sources, cold, shares, _ = self._blend(user_id, n, exclude, affect, query)
        return rows, sources, cold, shares

    def _blend(
        self,
        user_id: str,
        n: int,
        exclude: set[int],
        affect: Optional[AffectStateLike] = None,
        query: Optional[str] = None,
    ) -> tuple[np.ndarray, list[str], bool, dict[str, float], dict[str, np.ndarray]]:
        """``blended_candidates`` plus each source's ranked list (``source_lists``)."""
        cold = not self.users.history(user_id, 1)
        lists = self.source_lists(user_id, n + len(exclude), affect, query)
        shares = blend_shares(self.config.retrieval, None if affect is None else affect.intent_probs, list(lists))
        order = sorted(lists, key=lambda s: -shares[s])
        taken = set(exclude)
        rows: list[int] = []
        sources: list[str] = []
        pos = {s: 0 for s in lists}

        def take(source: str, quota: int) -> None:
            cands = lists[source]
            while quota > 0 and pos[source] < len(cands) and len(rows) < n:
                r = int(cands[pos[source]])
                pos[source] += 1
                if r >= 0 and r not in taken:
                    taken.add(r)
                    rows.append(r)
                    sources.append(source)
                    quota -= 1

        for source in order:
            take(source, int(round(shares[source] * n)))
        for source in order:  # what rounding or exhausted lists left
            take(source, n - len(rows))
        if len(rows) < n:  # tiny catalogs: whatever is left
            lists[SOURCE_FRESH], pos[SOURCE_FRESH] = self.catalog.newest(len(self.catalog)), 0
            take(SOURCE_FRESH, n - len(rows))
        return np.asarray(rows, dtype=np.int64), sources, cold, shares, lists

    def check_context(self, context: Optional[Mapping[str, Any]]) -> None:
        """``ValueError`` naming a key of an explicit ``context`` the ranker does not know (and the known ones)."""
        if context:
            self.ranker.check_context(dict(context))

    def recommend(
        self,
        user_id: str,
        k: int,
        affect: Optional[AffectStateLike] = None,
        exclude_seen: bool = True,
        context: Optional[Mapping[str, Any]] = None,
        query: Optional[str] = None,
    ) -> Recommendation:
        """``context``: explicit context values for the ranker (``check_context``), beside the affect state;
        ``query``: the request's text, a retrieval query (never stored or logged)."""
        self.check_context(context)
        t0 = time.perf_counter()
        exclude = self.users.seen_rows(user_id) if exclude_seen else set()
        n_cand = max(self.config.retrieval.candidates, k)
        shares: dict[str, float] = {}
        lists: dict[str, np.ndarray] = {}
        if self.blends(query):
            rows, sources, cold, shares, lists = self._blend(user_id, n_cand, exclude, affect, query)
        else:
            rows, sources, cold = self._plain_candidates(user_id, n_cand, exclude)
        t1 = time.perf_counter()
        if len(rows) == 0:
            return Recommendation([], affect, [], cold, {"retrieval": (t1 - t0) * 1e3}, shares)
        item_ids = [self.catalog.item_ids[r] for r in rows]
        affect_ctx = None if affect is None else self.affect_context(affect)
        affect_vec = None if affect_ctx is None else np.array(affect_ctx, dtype=np.float32)  # writable copy
        liked = np.asarray(self.users.history(user_id), dtype=np.int64)  # live positives, oldest first
        scores, weights, names = self.ranker.score(
            user_id,
            item_ids,
            affect_vec,
            self.catalog.features_of(rows),
            history=[self.catalog.item_ids[r] for r in liked],
            history_features=self.catalog.features_of(liked),
            **({"context": dict(context)} if context else {}),  # rankers without explicit context take none
        )
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)  # (n,)
        weights = np.asarray(weights, dtype=np.float64).reshape(len(rows), -1)  # (n, M)
        scores = fuse_retrieval(scores, rows, _unseen(lists.get(SOURCE_TWO_TOWER), exclude),
                                self.config.retrieval_weight,
                                [(_unseen(lists.get(SOURCE_COLLAB), exclude), self.config.collab_weight,
                                  self._collab_knows)], self.config.fuse_unknown)
        t2 = time.perf_counter()
        metas = [self.catalog.meta[r] for r in rows]
        order = diversify(
            scores,
            [m.get("style") for m in metas],
            [m.get("creator_id") for m in metas],
            k,
            self.config.diversity,
        )
        items = [
            Ranked(
                item_ids[i], float(scores[i]), sources[i], {nm: float(w) for nm, w in zip(names, weights[i])}
            )
            for i in order
        ]
        t3 = time.perf_counter()
        if context:
            log.info("recommend %s: explicit context %s", user_id, dict(context))
        return Recommendation(
            items,
            affect,
            list(names),
            cold,
            {"retrieval": (t1 - t0) * 1e3, "ranking": (t2 - t1) * 1e3, "rerank": (t3 - t2) * 1e3},
            shares,
        )
