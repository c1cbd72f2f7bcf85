"""Candidate retrieval: one vector space over the content embeddings and a FAISS index that grows live.

Retrieval vector of an item with content blocks ``f_1 .. f_B`` (e.g. e_SEM, e_STY, e_TSEM):

    x = PCA_D( concat_b( (f_b - mu_b) / ||f_b - mu_b|| ) / sqrt(B) ),   then  x <- x / ||x||

``mu_b`` is the block's catalog mean (styletransfer vectors are not centred, DESIGN.md section 4); the PCA
to ``D`` dims is fitted on the catalog only when the concatenation is wider than ``D``. Inner product of
two retrieval vectors is then a cosine similarity that weighs every block alike.
"""

from __future__ import annotations

import threading
from typing import Mapping, Sequence

import faiss
import numpy as np

from aigcrec.service.config import RetrievalConfig

_EPS = 1e-12
APPROX_KINDS = ("ivf", "hnsw")


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), _EPS)


def _principal_axes(xc: np.ndarray, k: int, seed: int, power_iters: int = 3) -> np.ndarray:
    """Top-``k`` principal axes ``(D, k)`` of centred rows ``xc (s, D)``, randomised SVD (Halko et al. 2011).

    Costs O(s D k) instead of the O(D^3) of an eigendecomposition of the covariance (D is ~2,600 here).
    """
    s, d = xc.shape
    k = min(k, s, d)
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(xc @ rng.standard_normal((d, k + 10), dtype=np.float32))  # (s, k+10)
    for _ in range(power_iters):  # sharpen the spectrum: range of (xc xc^T)^i xc
        q, _ = np.linalg.qr(xc @ (xc.T @ q))
    _, _, vt = np.linalg.svd(q.T @ xc, full_matrices=False)  # (k+10, D)
    return vt[:k].T.astype(np.float32)


class RetrievalSpace:
    """Maps feature-store blocks to unit retrieval vectors ``(n, dim)``; fitted once on the catalog."""

    def __init__(self, blocks: Sequence[str], dim: int) -> None:
        if not blocks:
            raise ValueError("RetrievalSpace: expected at least one feature block, got none")
        self.blocks = list(blocks)
        self.max_dim = dim
        self.means: dict[str, np.ndarray] = {}
        self.components: np.ndarray | None = None  # (D_in, dim) when a PCA is used
        self.center: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return self.max_dim if self.components is not None else sum(len(m) for m in self.means.values())

    def _concat(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        parts = [
            _unit(np.asarray(features[b], dtype=np.float32).reshape(-1, len(self.means[b])) - self.means[b])
            for b in self.blocks
        ]
        return np.concatenate(parts, axis=1) / np.sqrt(len(parts))  # (n, D_in)

    def fit(self, features: Mapping[str, np.ndarray], sample: int = 4_000, seed: int = 0) -> "RetrievalSpace":
        missing = [b for b in self.blocks if b not in features]
        if missing:
            raise ValueError(f"RetrievalSpace.fit: expected blocks {self.blocks}, missing {missing}")
        self.means = {b: np.asarray(features[b], dtype=np.float32).mean(axis=0) for b in self.blocks}
        self.components = None
        d_in = sum(len(m) for m in self.means.values())
        if d_in > self.max_dim:
            n = len(features[self.blocks[0]])
            rows = np.random.default_rng(seed).choice(n, size=min(n, sample), replace=False)
            x = self._concat({b: np.asarray(features[b])[rows] for b in self.blocks})  # (s, D_in)
            self.center = x.mean(axis=0)
            comps = _principal_axes(x - self.center, self.max_dim, seed)  # (D_in, <=dim)
            if comps.shape[1] < self.max_dim:  # tiny catalogs: pad so the width is always `dim`
                comps = np.pad(comps, ((0, 0), (0, self.max_dim - comps.shape[1])))
            self.components = comps
        return self

    def transform(self, features: Mapping[str, np.ndarray], chunk: int = 8192) -> np.ndarray:
        n = len(features[self.blocks[0]])
        out = np.empty((n, self.dim), dtype=np.float32)
        for start in range(0, n, chunk):  # chunks keep the intermediate copies in cache
            part = {b: features[b][start : start + chunk] for b in self.blocks}
            x = self._concat(part)  # (c, D_in)
            if self.components is not None:
                x = (x - self.center) @ self.components  # (c, dim)
            out[start : start + len(x)] = _unit(x)
        return out


class VectorIndex:
    """Inner-product FAISS index keyed by catalog row, its kind chosen by catalog size at ``build``.

    - ``flat`` (exact, ``IndexFlatIP`` in an ``IndexIDMap2``) below ``approx_min_items`` vectors;
    - from ``approx_min_items`` on, the approximate ``approx_kind``:
      ``ivf``: ``IndexIVFFlat`` with ``nlist`` inverted lists (0: ``round(sqrt(n))``; at most ``n / 39``
      so k-means has its 39 points a list) trained on a sample, ``nprobe`` lists scanned per query;
      ``hnsw``: ``IndexHNSWFlat`` (``hnsw_m`` links a node, ``ef_construction`` / ``ef_search`` beam
      widths) in an ``IndexIDMap2``.

    Every kind holds the full vectors (n · dim · 4 bytes, plus HNSW's n · 2 · hnsw_m links). ``add``
    makes rows searchable at once (no rebuild; an IVF list grows, an HNSW graph links the new node) and
    keeps the kind chosen at ``build``; a lock keeps search and add apart. Measured recall@100 and
    latency of each kind: ``benchmarks/scale.py`` (docs/scale.md).
    """

    def __init__(
        self,
        dim: int,
        approx_min_items: int = 20_000,
        nprobe: int = 32,
        *,
        approx_kind: str = "ivf",
        nlist: int = 0,
        hnsw_m: int = 32,
        ef_construction: int = 40,
        ef_search: int = 128,
        train_per_list: int = 40,
    ) -> None:
        if approx_kind not in APPROX_KINDS:
            raise ValueError(f"VectorIndex: approx_kind must be one of {APPROX_KINDS}, got {approx_kind!r}")
        self.dim = dim
        self.approx_min_items = approx_min_items
        self.nprobe = nprobe
        self.approx_kind = approx_kind
        self.nlist = nlist
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.train_per_list = train_per_list
        self._index = None
        self._kind = "flat"
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, dim: int, cfg: RetrievalConfig) -> "VectorIndex":
        """The index ``cfg`` (``service.retrieval``) describes, for ``dim``-wide vectors."""
        return cls(
            dim,
            cfg.approx_min_items,
            cfg.ivf_nprobe,
            approx_kind=cfg.approx_kind,
            nlist=cfg.ivf_nlist,
            hnsw_m=cfg.hnsw_m,
            ef_construction=cfg.hnsw_ef_construction,
            ef_search=cfg.hnsw_ef_search,
        )

    @property
    def kind(self) -> str:
        """``flat``, ``ivf`` or ``hnsw``: what ``build`` chose (``flat`` before any build)."""
        return self._kind

    @property
    def ntotal(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    def kind_for(self, n: int) -> str:
        """The kind ``build`` picks for ``n`` vectors."""
        return self.approx_kind if n >= self.approx_min_items else "flat"

    def lists_for(self, n: int) -> int:
        """IVF lists for ``n`` vectors: ``nlist`` (0: ``round(sqrt(n))``), capped at ``n // 39``."""
        want = self.nlist or int(round(np.sqrt(n)))
        return max(1, min(want, n // 39))

    def build(self, vectors: np.ndarray, rows: np.ndarray, seed: int = 0) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)  # (n, dim)
        kind = self.kind_for(len(vectors))
        if kind == "ivf":
            nlist = self.lists_for(len(vectors))
            quantizer = faiss.IndexFlatIP(self.dim)
            index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(seed)
            sample = min(len(vectors), self.train_per_list * nlist)
            index.cp.seed = seed
            index.train(vectors[rng.choice(len(vectors), size=sample, replace=False)])  # k-means on a sample
            index.nprobe = self.nprobe
        elif kind == "hnsw":
            graph = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efConstruction = self.ef_construction
            graph.hnsw.efSearch = self.ef_search
            index = faiss.IndexIDMap2(graph)
        else:
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        index.add_with_ids(vectors, np.asarray(rows, dtype=np.int64))
        with self._lock:
            self._index, self._kind = index, kind

    def add(self, vectors: np.ndarray, rows: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        if self._index is None:
            self.build(vectors, rows)
            return
        with self._lock:
            self._index.add_with_ids(vectors, np.asarray(rows, dtype=np.int64))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` rows per query: ``(scores (q, k), rows (q, k))``, row -1 where fewer exist."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        if self._index is None:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        with self._lock:
            return self._index.search(queries, k)
