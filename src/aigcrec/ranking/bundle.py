"""A trained ranker with everything needed to serve it: ``RankerBundle.save(dir)`` / ``RankerBundle.load(dir)``.

Files: ``config.json`` (``aigcrec.saved``: component ``ranker``, format; model kind, model config, fitted
feature spec, metadata; ``ranker.json`` in bundles saved before, still read), ``weights.pt`` (state dict,
vector tables included), ``users.parquet`` / ``items.parquet`` (raw user-side / item-side field values of
the known users and items, encoded once at load; a ``history`` field holds each user's last positive items
of the training rows, ``|``-separated).

The affect context's column names (``aigcrec.data.affect_context.AffectContextSchema``) are saved on its
field of the feature spec (``affect_schema``) and repeated under ``affect_context`` in ``config.json``; the
service checks them by name against its affect model at start-up.

``config.json`` also records the explicit context schema (``FeatureSpec.context_schema``: column -> kind and
labels), checked by name against the spec at load; ``score(..., context={"mood": "sad"})`` takes explicit
context values (a column the ranker does not know is a ``ValueError`` naming it and the known ones; an
absent column is missing, as a rating given without that context).

``score(user_id, item_ids, affect, item_features)`` ranks ~100 candidates in a few milliseconds (eager torch,
or ONNX Runtime after ``use_onnx()``, as the service does); unknown users get the unknown index on every user
field (cold start); items added after training are scored from their content vectors passed in
``item_features`` (their id fields map to the unknown index).
"""

from __future__ import annotations

import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from aigcrec.data.affect_context import AffectContextSchema
from aigcrec.ranking.config import ModelConfig
from aigcrec.ranking.features import FeatureSpec, split_history_key
from aigcrec.ranking.models import Ranker, build_model
from aigcrec.ranking.data import latest_histories
from aigcrec.ranking.export import export_onnx, export_stack_scorer, onnx_session, run_onnx
from aigcrec.ranking.models import UMAIRFPSRanker
from aigcrec.saved import read_config, write_config

FORMAT_VERSION = 3
# 3: the affect context's vector field carries its AffectContextSchema (column names, version); bundles of
# 2 and earlier have none and are refused beside an affect model (aigcrec.service.assemble.affect_encoder).
# Settings added after a format version, with the values that rebuild what that version saved.
LEGACY_MODEL_CONFIG = {1: {"use_history": False, "match": False}}


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
        self._session = None  # an ONNX Runtime session once use_onnx() is called
        self._stacks: _StackCache | None = None  # UMAIR-FPS item stacks by item id (use_onnx)
        self._index()

    @classmethod
    def from_training(cls, kind: str, model: Ranker, frame: pd.DataFrame, meta: dict[str, Any] | None = None
                      ) -> "RankerBundle":
        """Collect the user-side and item-side raw columns of ``frame`` (the training impressions)."""

        spec = model.spec
        raw = [f for f in spec.fields if f.kind not in ("vector", "history")]
        ucols = sorted({f.column for f in raw if f.side == "user"} | {"user_id"})
        icols = sorted({f.column for f in raw if f.side == "item"} | {"item_id"})
        users = frame[ucols].drop_duplicates("user_id", keep="last").copy()
        items = frame[icols].drop_duplicates("item_id", keep="last")
        for f in spec.history:  # the history a request is scored with: the user's last training positives
            last = latest_histories(frame, f.max_len)
            users[f.column] = users["user_id"].astype(str).map(lambda u: "|".join(last.get(u, [])))
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
    def affect_dim(self) -> int:
        """Width of the affect context the ranker reads (0: none)."""
        return self.spec.affect.dim if self.spec.affect is not None else 0

    @property
    def affect_schema(self) -> AffectContextSchema | None:
        """The affect context's schema (None when the ranker reads no affect context, or for a bundle of
        format 2 and earlier, which recorded none)."""
        return self.spec.affect_schema()

    @property
    def context_schema(self) -> dict[str, dict[str, Any]]:
        """Column -> {"kind", "values"} of the explicit context the ranker reads (empty without one)."""
        return self.spec.context_schema()

    def check_context(self, context: dict[str, Any] | None) -> None:
        """Every key of an explicit ``context`` is a context column of this ranker (else ``ValueError``)."""
        known = sorted(self.context_schema)
        unknown = sorted(set(context or {}) - set(known))
        if unknown:
            raise ValueError(f"context: unknown key(s) {unknown}; this ranker knows {known or 'no explicit context'}")

    def _context_rows(self, context: dict[str, Any] | None) -> tuple[np.ndarray, np.ndarray]:
        """The encoded context group of one request: (sparse indices (F_cat,), scaled numbers (F_num,)) over
        all of the spec's sparse / dense fields (only the context columns are read)."""
        self.check_context(context)
        spec = self.spec
        row = pd.DataFrame({f.column: [(context or {}).get(f.column)] for f in spec.context})
        cat = np.zeros(len(spec.sparse), np.int64)
        num = np.zeros(len(spec.dense), np.float32)
        for j, f in enumerate(spec.sparse):
            if f.group == "context":
                cat[j] = spec._encode_sparse(f, row[f.column])[0]
        for j, f in enumerate(spec.dense):
            if f.group == "context":
                st, x = spec.state[f.name], pd.to_numeric(row[f.column], errors="coerce").astype(float).iloc[0]
                num[j] = 0.0 if np.isnan(x) else (x - st["mean"]) / st["std"]
        return cat, num

    @property
    def history_len(self) -> int:
        """How many of the user's latest positives the content profile averages (0: the model reads none)."""
        return self.spec.history_len if self.model.history_keys else 0

    @property
    def modality_names(self) -> list[str]:
        return self.model.modality_names

    # -- serving -----------------------------------------------------------------------------------------
    def _check_item_features(self, n: int, item_features: dict[str, np.ndarray] | None) -> None:
        for f in self.spec.vectors:
            given = (item_features or {}).get(f.name)
            if f.modality and given is not None and np.shape(given) != (n, f.dim):
                raise ValueError(f"item_features['{f.name}']: expected shape ({n}, {f.dim}), got {np.shape(given)}")

    def encode_request(self, user_id: str, item_ids: list[str], affect: np.ndarray | None = None,
                       item_features: dict[str, np.ndarray] | None = None, item_vectors: bool = True,
                       history: list[str] | None = None, history_features: dict[str, np.ndarray] | None = None,
                       context: dict[str, Any] | None = None) -> dict[str, torch.Tensor]:
        """The model batch for one user and n candidate items (dense vectors included; the item-side
        modality vectors only with ``item_vectors``).

        ``history``: the user's positive items, oldest first (e.g. the service's live feedback); without it
        the user's last training positives are used. ``history_features`` rows align with ``history`` and
        give the vectors of items the ranker was not trained with (others are ignored). ``context``: explicit
        context values by column (``check_context``); absent columns are missing.
        """
        spec, n = self.spec, len(item_ids)
        self._check_item_features(n, item_features)
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
        if spec.context:
            ctx_cat, ctx_num = self._context_rows(context)
            groups = (np.array([f.group == "context" for f in spec.sparse], bool),
                      np.array([f.group == "context" for f in spec.dense], bool))
            cat[:, groups[0]] = ctx_cat[groups[0]]
            num[:, groups[1]] = ctx_num[groups[1]]
        elif context:
            self.check_context(context)
        batch = {"cat": torch.from_numpy(cat), "tags": torch.from_numpy(tags), "num": torch.from_numpy(num)}
        for f in spec.vectors:
            if f.name not in self.model.tables or (f.modality and not item_vectors):
                continue
            table = self.model.tables[f.name].weight.detach()
            if f.modality:
                keys = spec.state[f.name]["keys"]
                idx = torch.tensor([keys.get(str(i), 0) for i in item_ids], dtype=torch.long)
                vec = table.index_select(0, idx).clone()  # (n, d)
                given = (item_features or {}).get(f.name)
                if given is not None:
                    given = np.asarray(given, np.float32)
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
        for key in self.model.history_keys:  # the user's content profiles: one row for every candidate
            if history is not None:
                profile = self._live_profile(key, [str(i) for i in history], history_features)
            else:
                known_user = up is not None and self._u is not None
                rows = torch.from_numpy(self._u.vec_idx[key][up: up + 1]) if known_user else torch.zeros((1, 1), dtype=torch.long)
                profile = self.model.history_profile(key, rows).detach()
            batch[key] = profile.expand(n, -1)
        return batch

    def _live_profile(self, key: str, history: list[str], features: dict[str, np.ndarray] | None) -> torch.Tensor:
        """(1, d) mean of the last ``max_len`` history items' vectors: table rows for items the ranker knows,
        ``features`` rows (prepared as at training) for the others; zeros when none has a vector."""
        field_name, table_name = split_history_key(key)
        max_len = next(f.max_len for f in self.spec.history if f.name == field_name)
        vf = next(f for f in self.spec.vectors if f.name == table_name)
        table = self.model.tables[table_name].weight.detach()
        keys = self.spec.state[table_name]["keys"]
        given = None if features is None or features.get(table_name) is None else np.asarray(features[table_name], np.float32)
        if given is not None and given.shape != (len(history), vf.dim):
            raise ValueError(f"history_features['{table_name}']: expected shape ({len(history)}, {vf.dim}), "
                             f"got {given.shape}")
        start = max(0, len(history) - max_len)
        recent = history[start:]
        idx = np.fromiter((keys.get(i, 0) for i in recent), np.int64, len(recent))  # (L,), 0: unknown
        known = idx != 0
        # one gather for the known items' rows (history order), then the new items' prepared rows: the same
        # (L', d) matrix, in the same order, as stacking row by row
        parts = [table[torch.from_numpy(idx[known])]] if known.any() else []
        new = start + np.flatnonzero(~known)
        if given is not None and len(new):
            parts.append(torch.from_numpy(self.spec.prepare_vectors(vf, given[new])))
        return torch.cat(parts).mean(0, keepdim=True) if parts else torch.zeros(1, vf.dim)

    def use_onnx(self, threads: int = 1) -> "RankerBundle":
        """Score with ONNX Runtime instead of eager torch from now on (the service's setting).

        The model is exported once, here (``aigcrec.ranking.export``). For UMAIR-FPS the serving graph
        takes the item-side modality vectors ``M`` (``UMAIRFPSRanker.item_stack``) as an input, and this
        bundle keeps them per item id: an item's 2,000-odd content values are projected once, not on every
        request (one (M, D_m) float32 row per item scored, 1 KB at the defaults). The model must not change
        afterwards. Scores equal eager torch within 1e-5 (tested). ``threads``: ORT intra-op threads.
        """


        keys = list(self._item_pos)[:2] or ["?"]
        example = self.encode_request(next(iter(self._user_pos), "?"), keys)
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about data-dependent branches of the export
            if isinstance(self.model, UMAIRFPSRanker):
                stack = self.model.item_stack(example)
                path = export_stack_scorer(self.model, example, stack, Path(tmp) / "ranker.onnx")
                self._stacks = _StackCache(stack.shape[1:])
            else:
                path = export_onnx(self.model, example, Path(tmp) / "ranker.onnx")
            self._session = onnx_session(path, threads)
        return self

    @property
    def runtime(self) -> str:
        return "onnx" if self._session is not None else "torch"

    @torch.no_grad()
    def score(self, user_id: str, item_ids: list[str], affect: np.ndarray | None = None,
              item_features: dict[str, np.ndarray] | None = None, history: list[str] | None = None,
              history_features: dict[str, np.ndarray] | None = None, context: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(probabilities (n,), modality weights (n, M), modality names) for one user's candidates;
        ``history`` / ``history_features``: the user's live positives, ``context``: explicit context values
        (``encode_request``)."""
        if not isinstance(item_ids, (list, tuple)) or not item_ids:
            raise ValueError(f"item_ids: expected a non-empty list of item ids, got {item_ids!r}")

        item_ids = [str(i) for i in item_ids]
        if self._stacks is not None:
            self._check_item_features(len(item_ids), item_features)
            batch = self.encode_request(user_id, item_ids, affect, item_vectors=False, history=history,
                                        history_features=history_features, context=context)
            batch["stack"] = torch.from_numpy(self._item_stacks(user_id, item_ids, item_features))
            prob, alpha = run_onnx(self._session, batch)
        elif self._session is not None:
            prob, alpha = run_onnx(self._session, self.encode_request(
                user_id, item_ids, affect, item_features, history=history, history_features=history_features,
                context=context))
        else:
            batch = self.encode_request(user_id, item_ids, affect, item_features, history=history,
                                        history_features=history_features, context=context)
            logit, alpha = self.model.forward_with_weights(batch)
            prob, alpha = torch.sigmoid(logit).numpy(), alpha.numpy()
        return prob, alpha, self.modality_names

    @torch.no_grad()
    def cache_items(self, item_ids: list[str], item_features: dict[str, np.ndarray] | None = None,
                    batch_size: int = 4096) -> int:
        """Compute the modality stacks of a catalog ahead of requests (``use_onnx`` serving path; else a
        no-op); ``item_features`` rows align with ``item_ids``. Returns how many items are cached."""
        if self._stacks is None:
            return 0
        ids = [str(i) for i in item_ids]
        for start in range(0, len(ids), batch_size):
            part = slice(start, start + batch_size)
            feats = None if item_features is None else {k: np.asarray(v)[part] for k, v in item_features.items()}
            self._item_stacks("", ids[part], feats)
        return len(self._stacks)

    def _item_stacks(self, user_id: str, item_ids: list[str], item_features: dict[str, np.ndarray] | None
                     ) -> np.ndarray:
        """Cached ``item_stack`` rows (n, M, D_m) of ``item_ids``, computing those not seen before."""
        pos = self._stacks.positions(item_ids)  # (n,), -1: not cached yet
        new = np.flatnonzero(pos < 0).tolist()
        if new:
            feats = None if item_features is None else {
                name: np.asarray(v)[new] for name, v in item_features.items() if v is not None}
            sub = [item_ids[k] for k in new]
            self._stacks.add(sub, self.model.item_stack(self.encode_request(user_id, sub, None, feats)).numpy())
            return self._stacks.get(item_ids)
        return self._stacks.rows(pos)

    # -- persistence -------------------------------------------------------------------------------------
    def save(self, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        info = {"kind": self.kind, "model_config": self.model.cfg.model_dump(),
                "spec": self.model.spec.to_dict(), "context": self.context_schema,
                "affect_context": None if self.affect_schema is None else self.affect_schema.to_dict(),
                "meta": self.meta}
        write_config(out, "ranker", FORMAT_VERSION, info, indent=1, default=str)
        torch.save(self.model.state_dict(), out / "weights.pt")
        self.users.astype({c: str for c in self.users.columns if self.users[c].dtype == object}).to_parquet(out / "users.parquet")
        self.items.to_parquet(out / "items.parquet")
        return out

    @classmethod
    def load(cls, in_dir: str | Path, runtime: str = "torch", threads: int = 1) -> "RankerBundle":
        """A saved bundle; ``runtime="onnx"`` scores with ONNX Runtime (``use_onnx(threads)``)."""
        if runtime not in ("torch", "onnx"):
            raise ValueError(f"runtime: expected 'torch' or 'onnx', got {runtime!r}")
        bundle = cls._load(in_dir)
        return bundle.use_onnx(threads) if runtime == "onnx" else bundle

    @classmethod
    def _load(cls, in_dir: str | Path) -> "RankerBundle":
        path = Path(in_dir)
        info, fmt, file = read_config(path, "ranker", FORMAT_VERSION)
        fmt = int(info.pop("format_version", fmt))  # ranker.json (before aigcrec.saved) named it so
        spec = FeatureSpec.from_dict(info["spec"])
        unknown = sorted(set(info["model_config"]) - set(ModelConfig.model_fields))
        if unknown:
            raise ValueError(f"{file}: model_config has settings this version of aigcrec does not "
                             f"know: {unknown} (saved by another version? retrain the ranker)")
        saved, have = info.get("context", {}), spec.context_schema()  # bundles before the context group: none
        if saved != have:
            raise ValueError(f"{file}: the recorded context schema {sorted(saved)} does not match "
                             f"the feature spec's context fields {sorted(have)} (edited by hand? retrain the ranker)")
        recorded = info.get("affect_context")
        schema = spec.affect_schema()
        if recorded is not None and (schema is None or recorded != schema.to_dict()):
            raise ValueError(f"{file}: the recorded affect context schema does not match the feature "
                             f"spec's affect field (edited by hand? retrain the ranker)")
        legacy = LEGACY_MODEL_CONFIG.get(fmt, {})
        cfg = ModelConfig(**{**legacy, **info["model_config"]})
        tables = {f.name: np.zeros((len(spec.state[f.name]["keys"]) + 1, f.dim), np.float32) for f in spec.vectors}
        model = build_model(info["kind"], spec, cfg, tables)
        model.load_state_dict(torch.load(path / "weights.pt", map_location="cpu", weights_only=True))
        for f in spec.vectors:  # load_state_dict copies values; keep the freeze flags
            if f.name in model.tables:
                model.tables[f.name].weight.requires_grad_(not f.freeze)
        return cls(info["kind"], model, pd.read_parquet(path / "users.parquet"), pd.read_parquet(path / "items.parquet"),
                   info.get("meta"))


class _StackCache:
    """Item id -> one ``(M, D_m)`` float32 row, in a matrix that doubles its capacity as it fills."""

    def __init__(self, row_shape: tuple[int, ...]) -> None:
        self._rows: dict[str, int] = {}
        self._data = np.zeros((1024, *row_shape), np.float32)
        self._lock = threading.Lock()

    def __contains__(self, item_id: str) -> bool:
        return item_id in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, item_ids: list[str], stacks: np.ndarray) -> None:
        with self._lock:
            for item_id, row in zip(item_ids, stacks):
                if item_id in self._rows:
                    continue
                n = len(self._rows)
                if n == len(self._data):
                    self._data = np.concatenate([self._data, np.zeros_like(self._data)])
                self._data[n] = row
                self._rows[item_id] = n

    def get(self, item_ids: list[str]) -> np.ndarray:
        return self._data[[self._rows[i] for i in item_ids]]

    def positions(self, item_ids: list[str]) -> np.ndarray:
        """Row of each item id in the cache, ``(n,)`` int64, -1 where absent."""
        get = self._rows.get
        return np.fromiter((get(i, -1) for i in item_ids), np.int64, len(item_ids))

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """The cached stacks at ``positions`` (all >= 0), ``(n, M, D_m)``."""
        return self._data[positions]
