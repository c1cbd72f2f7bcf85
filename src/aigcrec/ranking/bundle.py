"""A trained ranker with everything needed to serve it: ``RankerBundle.save(dir)`` / ``RankerBundle.load(dir)``.

Files: ``ranker.json`` (model kind, model config, fitted feature spec, metadata), ``weights.pt`` (state dict,
vector tables included), ``users.parquet`` / ``items.parquet`` (raw user-side / item-side field values of
the known users and items, encoded once at load).

``score(user_id, item_ids, affect, item_features)`` ranks ~200 candidates in a few milliseconds; unknown
users get the unknown index on every user field (cold start); items added after training are scored from
their content vectors passed in ``item_features`` (their id fields map to the unknown index).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from aigcrec.ranking.config import ModelConfig
from aigcrec.ranking.features import FeatureSpec
from aigcrec.ranking.models import Ranker, build_model

FORMAT_VERSION = 1


def _side_frame(spec: FeatureSpec, table: pd.DataFrame, key: str) -> pd.DataFrame:
    """``table`` with every column the spec reads (absent ones empty) so ``spec.encode`` accepts it."""
    frame = table.copy()
    frame[key] = frame[key].astype(str)
    for col in {f.key if f.kind == "vector" else f.column for f in spec.fields} - set(frame.columns):
        frame[col] = np.nan
    return frame


class RankerBundle:
    """A model, its feature spec and the known users' / items' raw fields."""

    def __init__(self, kind: str, model: Ranker, users: pd.DataFrame, items: pd.DataFrame,
                 meta: dict[str, Any] | None = None) -> None:
        self.kind, self.model, self.meta = kind, model.eval(), dict(meta or {})
        self.spec = model.spec
        self.users, self.items = users.reset_index(drop=True), items.reset_index(drop=True)
        self._index()

    @classmethod
    def from_training(cls, kind: str, model: Ranker, frame: pd.DataFrame, meta: dict[str, Any] | None = None
                      ) -> "RankerBundle":
        """Collect the user-side and item-side raw columns of ``frame`` (the training impressions)."""
        spec = model.spec
        ucols = sorted({f.column for f in spec.fields if f.kind != "vector" and f.side == "user"} | {"user_id"})
        icols = sorted({f.column for f in spec.fields if f.kind != "vector" and f.side == "item"} | {"item_id"})
        users = frame[ucols].drop_duplicates("user_id", keep="last")
        items = frame[icols].drop_duplicates("item_id", keep="last")
        return cls(kind, model, users, items, meta)

    def _index(self) -> None:
        spec = self.spec
        sides = np.array([f.side for f in spec.sparse])
        tag_sides = np.array([f.side for f in spec.tags])
        num_sides = np.array([f.side for f in spec.dense])
        u = spec.encode(_side_frame(spec, self.users, "user_id")) if len(self.users) else None
        i = spec.encode(_side_frame(spec, self.items, "item_id")) if len(self.items) else None
        self._user_pos = {k: n for n, k in enumerate(self.users["user_id"].astype(str))}
        self._item_pos = {k: n for n, k in enumerate(self.items["item_id"].astype(str))}
        self._u, self._i = u, i
        self._masks = (sides == "item", tag_sides == "item", num_sides == "item")
        self._user_masks = (sides == "user", tag_sides == "user", num_sides == "user")

    @property
    def modality_names(self) -> list[str]:
        return self.model.modality_names

    # -- serving -----------------------------------------------------------------------------------------
    def encode_request(self, user_id: str, item_ids: list[str], affect: np.ndarray | None = None,
                       item_features: dict[str, np.ndarray] | None = None) -> dict[str, torch.Tensor]:
        """The model batch for one user and n candidate items (dense vectors included)."""
        spec, n = self.spec, len(item_ids)
        cat = np.zeros((n, len(spec.sparse)), np.int64)
        max_len = max((f.max_len for f in spec.tags), default=1)
        tags = np.zeros((n, len(spec.tags), max_len), np.int64)
        num = np.zeros((n, len(spec.dense)), np.float32)
        up = self._user_pos.get(str(user_id))
        if up is not None and self._u is not None:
            for arr, src, m in ((cat, self._u.cat, self._user_masks[0]), (tags, self._u.tags, self._user_masks[1]),
                                (num, self._u.num, self._user_masks[2])):
                arr[:, m] = src[up, m]
        ipos = np.array([self._item_pos.get(str(i), -1) for i in item_ids], np.int64)
        known = ipos >= 0
        if known.any() and self._i is not None:
            for arr, src, m in ((cat, self._i.cat, self._masks[0]), (tags, self._i.tags, self._masks[1]),
                                (num, self._i.num, self._masks[2])):
                rows = src[ipos[known]]
                arr[np.ix_(known, m)] = rows[:, m]
        batch = {"cat": torch.from_numpy(cat), "tags": torch.from_numpy(tags), "num": torch.from_numpy(num)}
        for f in spec.vectors:
            if f.name not in self.model.tables:
                continue
            table = self.model.tables[f.name].weight.detach()
            if f.modality:
                keys = spec.state[f.name]["keys"]
                idx = torch.tensor([keys.get(str(i), 0) for i in item_ids], dtype=torch.long)
                vec = table.index_select(0, idx).clone()  # (n, d)
                given = (item_features or {}).get(f.name)
                if given is not None:
                    given = np.asarray(given, np.float32)
                    if given.shape != (n, f.dim):
                        raise ValueError(f"item_features['{f.name}']: expected shape ({n}, {f.dim}), got {given.shape}")
                    missing = torch.from_numpy(idx.numpy() == 0)
                    vec[missing] = torch.from_numpy(spec.prepare_vectors(f, given))[missing]
            elif affect is None:
                vec = torch.zeros(n, f.dim)  # unknown affect = the table's mean after standardization
            else:
                a = np.asarray(affect, np.float32).reshape(1, -1)
                if a.shape[1] != f.dim:
                    raise ValueError(f"affect: expected a vector of {f.dim} values, got {a.shape[1]}")
                vec = torch.from_numpy(spec.prepare_vectors(f, a)).expand(n, f.dim)
            batch[f.name] = vec
        return batch

    @torch.no_grad()
    def score(self, user_id: str, item_ids: list[str], affect: np.ndarray | None = None,
              item_features: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(probabilities (n,), modality weights (n, M), modality names) for one user's candidates."""
        if not isinstance(item_ids, (list, tuple)) or not item_ids:
            raise ValueError(f"item_ids: expected a non-empty list of item ids, got {item_ids!r}")
        logit, alpha = self.model.forward_with_weights(self.encode_request(user_id, list(item_ids), affect, item_features))
        return torch.sigmoid(logit).numpy(), alpha.numpy(), self.modality_names

    # -- persistence -------------------------------------------------------------------------------------
    def save(self, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        info = {"format_version": FORMAT_VERSION, "kind": self.kind, "model_config": self.model.cfg.model_dump(),
                "spec": self.model.spec.to_dict(), "meta": self.meta}
        (out / "ranker.json").write_text(json.dumps(info, indent=1, default=str), encoding="utf-8")
        torch.save(self.model.state_dict(), out / "weights.pt")
        self.users.astype({c: str for c in self.users.columns if self.users[c].dtype == object}).to_parquet(out / "users.parquet")
        self.items.to_parquet(out / "items.parquet")
        return out

    @classmethod
    def load(cls, in_dir: str | Path) -> "RankerBundle":
        path = Path(in_dir)
        if not (path / "ranker.json").is_file():
            raise FileNotFoundError(f"{path}: not a saved ranker (expected ranker.json, weights.pt)")
        info = json.loads((path / "ranker.json").read_text(encoding="utf-8"))
        spec = FeatureSpec.from_dict(info["spec"])
        cfg = ModelConfig(**info["model_config"])
        tables = {f.name: np.zeros((len(spec.state[f.name]["keys"]) + 1, f.dim), np.float32) for f in spec.vectors}
        model = build_model(info["kind"], spec, cfg, tables)
        model.load_state_dict(torch.load(path / "weights.pt", map_location="cpu", weights_only=True))
        for f in spec.vectors:  # load_state_dict copies values; keep the freeze flags
            if f.name in model.tables:
                model.tables[f.name].weight.requires_grad_(not f.freeze)
        return cls(info["kind"], model, pd.read_parquet(path / "users.parquet"), pd.read_parquet(path / "items.parquet"),
                   info.get("meta"))
