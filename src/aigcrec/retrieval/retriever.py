"""``TwoTowerRetriever``: a trained two-tower model with what it needs to serve, saved and loaded as a folder.

Folder layout (``FORMAT`` 1): ``config.json`` (``aigcrec.saved``, component ``two_tower``: format, config,
content blocks and widths, vocabulary sizes, context column names, training figures; ``two_tower.json`` in
folders saved before, still read), ``vocab.json`` (item ids, user feature values and each training user's
feature codes), ``content_means.npz`` (block means and, when fitted, the PCA centre ``_center`` and axes
``_axes``) and ``weights.pt``. ``load`` refuses another format or a config that does not validate, naming the
file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch

from aigcrec.config_base import ConfigError
from aigcrec.retrieval.config import TwoTowerConfig
from aigcrec.retrieval.data import ContentInput, state_context
from aigcrec.retrieval.model import TwoTowerNet
from aigcrec.saved import read_config, write_config

FORMAT = 1


class TwoTowerRetriever:
    """Item vectors (``item_vectors``) for the FAISS index and the query vector of one request (``user_vector``)."""

    def __init__(self, config: TwoTowerConfig, net: TwoTowerNet, content: ContentInput, item_ids: Sequence[str],
                 feature_names: Sequence[str], feature_values: Mapping[str, Sequence[str]],
                 user_codes: Mapping[str, Sequence[int]], context_names: Sequence[str],
                 figures: Optional[dict[str, Any]] = None) -> None:
        self.config = config
        self.net = net.eval()
        self.content = content
        self.item_ids = list(item_ids)
        self.item_code = {i: k + 1 for k, i in enumerate(self.item_ids)}  # 0: unknown item
        self.feature_names = list(feature_names)
        self.feature_values = {f: list(v) for f, v in feature_values.items()}
        self.user_codes = {u: list(c) for u, c in user_codes.items()}
        self.context_names = list(context_names)
        self.figures = dict(figures or {})

    @property
    def dim(self) -> int:
        """Width of the item and user vectors (the FAISS index's)."""
        return self.net.out_dim

    @property
    def history_len(self) -> int:
        return self.config.history_len

    # -- inference ----------------------------------------------------------------------------------------
    def item_vectors(self, item_ids: Sequence[str], features: Mapping[str, np.ndarray], chunk: int = 4096) -> np.ndarray:
        """Unit item vectors ``(n, d)``; ``features`` block -> ``(n, d_b)`` rows of ``item_ids`` (an id the model
        never saw is served from its content alone)."""
        x = self.content.transform(features)  # (n, D)
        codes = np.array([self.item_code.get(str(i), 0) for i in item_ids], dtype=np.int64)
        out = np.empty((len(x), self.dim), np.float32)
        with torch.inference_mode():
            for s in range(0, len(x), chunk):
                out[s:s + chunk] = self.net.item(torch.from_numpy(x[s:s + chunk]),
                                                  torch.from_numpy(codes[s:s + chunk])).numpy()
        return out

    def context_vector(self, state: Any) -> np.ndarray:
        """An affect state's (``emotion_probs``, ``intent_probs`` dicts) context ``(C,)``; zeros for None."""
        if state is None or not self.context_names:
            return np.zeros(len(self.context_names), np.float32)
        return state_context(state.emotion_probs, state.intent_probs, self.context_names)

    def pooled_history(self, history_features: Optional[Mapping[str, np.ndarray]]) -> np.ndarray:
        """Mean content input of the last ``history_len`` positives ``(D,)`` (zeros without any)."""
        if not history_features or len(next(iter(history_features.values()))) == 0:
            return np.zeros(self.content.dim, np.float32)
        x = self.content.transform({b: np.asarray(history_features[b])[-self.history_len:] for b in self.content.blocks})
        return x.mean(axis=0)

    def history_codes(self, history_ids: Optional[Sequence[str]]) -> np.ndarray:
        """Item codes of the last ``history_len`` history ids ``(1, L)`` (0: an item the model never saw)."""
        if not self.config.history_ids or not history_ids:
            return np.zeros((1, 0), np.int64)
        return np.asarray([[self.item_code.get(str(i), 0) for i in list(history_ids)[-self.history_len:]]], np.int64)

    def user_vector(self, user_id: str, history_features: Optional[Mapping[str, np.ndarray]] = None,
                    context: Optional[np.ndarray] = None, history_ids: Optional[Sequence[str]] = None) -> np.ndarray:
        """The user tower on this request: live history (content rows ``history_features`` and, with
        ``history_ids`` in the config, their item ids in the same order), the user's features (unknown user:
        none) and the affect context ``(C,)`` (None: no signals). Returns ``(1, d)``."""
        h = self.pooled_history(history_features)[None, :]  # (1, D)
        hc = torch.from_numpy(self.history_codes(history_ids))  # (1, L)
        codes = np.asarray([self.user_codes.get(str(user_id), [0] * len(self.feature_names))], np.int64)  # (1, U)
        a = np.zeros((1, len(self.context_names)), np.float32) if context is None else \
            np.asarray(context, np.float32).reshape(1, len(self.context_names))
        with torch.inference_mode():
            return self.net.user(torch.from_numpy(h), torch.from_numpy(codes), torch.from_numpy(a), hc).numpy()

    # -- persistence --------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {"config": self.config.model_dump(), "blocks": self.content.blocks,
                "content_dims": [len(self.content.means[b]) for b in self.content.blocks],
                "n_items": len(self.item_ids), "feature_names": self.feature_names,
                "feature_sizes": [len(self.feature_values[f]) for f in self.feature_names],
                "context_names": self.context_names, "figures": self.figures}
        write_config(path, "two_tower", FORMAT, meta, indent=2)
        vocab = {"items": self.item_ids, "feature_values": self.feature_values, "users": self.user_codes}
        (path / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        extra = {} if self.content.axes is None else {"_center": self.content.center, "_axes": self.content.axes}
        np.savez(path / "content_means.npz", **self.content.means, **extra)
        torch.save(self.net.state_dict(), path / "weights.pt")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "TwoTowerRetriever":
        path = Path(path)
        meta, _, cfg_path = read_config(path, "two_tower", FORMAT)  # aigcrec build writes one
        raw = dict(meta["config"])
        raw.setdefault("history_ids", False)  # saved before the history-id term existed: it has no weights for it
        try:
            config = TwoTowerConfig.model_validate(raw)
        except Exception as exc:  # pydantic's message names the field
            raise ConfigError(f"{cfg_path}: config: {exc}") from None
        vocab = json.loads((path / "vocab.json").read_text(encoding="utf-8"))
        means = np.load(path / "content_means.npz")
        content = ContentInput({b: means[b] for b in meta["blocks"]}, means["_center"] if "_axes" in means else None,
                               means["_axes"] if "_axes" in means else None)
        if [len(content.means[b]) for b in content.blocks] != meta["content_dims"]:
            raise ConfigError(f"{path / 'content_means.npz'}: widths {[len(m) for m in content.means.values()]} "
                              f"differ from {cfg_path.name}'s content_dims {meta['content_dims']}")
        net = TwoTowerNet(content.dim, meta["n_items"], meta["feature_sizes"], len(meta["context_names"]), config)
        net.load_state_dict(torch.load(path / "weights.pt", map_location="cpu", weights_only=True))
        return cls(config, net, content, vocab["items"], meta["feature_names"], vocab["feature_values"],
                   vocab["users"], meta["context_names"], meta.get("figures"))
