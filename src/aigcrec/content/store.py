"""The feature store: every item's content vectors in one folder, built incrementally.

Layout of a store folder::

    manifest.json           encoders (name + version), features (group, dim, count), last run's stats
    image_index.parquet     item_id, content_hash, encoder, has_image  (row i <-> row i of e_sem.npy, e_sty.npy, ...)
    text_index.parquet      item_id, content_hash, encoder  (row i <-> row i of e_tsem.npy)
    e_sem.npy e_sty.npy e_tsem.npy [e_sty_magenta.npy, magenta_mean.npy]   float32 matrices
    problems.csv            item_id, group, reason, detail, severity   (this run's skipped/converted inputs)
    shards/                 batches encoded by a run that has not finished (resume reads them)

A vector is reused when (item_id, content hash, encoder version) matches a stored one, so a re-run
encodes only new or changed items; an interrupted run leaves its finished batches in ``shards/`` and
the next run picks them up.

Text-only items (format 2): an item with a text (title or tags) but no usable image (none given, missing
file, corrupt bytes) is served text-only. Its image rows are imputed with the mean of the catalog's encoded
image vectors, :math:`e_{SEM,i} = \\frac{1}{|I|}\\sum_{j \\in I} e_{SEM,j}` (the same for ``e_sty``), or zeros
when no image of the catalog is usable; ``has_image`` is False on its index row (``FeatureStore.has_image``)
and its image problem is a warning ``served_text_only``. Items with neither image nor text are errors and
have no row. Format-1 stores (no ``has_image`` column) read as every indexed item having an image.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from aigcrec.content.config import ContentConfig
from aigcrec.content.encoder import ContentEncoder
from aigcrec.content.images import ImageProblem, load_rgb, to_array
from aigcrec.content.pairs import item_text
from aigcrec.data.catalog import load_catalog
from aigcrec.logs import progress

log = logging.getLogger("aigcrec.content")

GROUPS = {"image": ("e_sem", "e_sty", "e_sty_magenta"), "text": ("e_tsem",)}
PROBLEM_COLUMNS = ["item_id", "group", "reason", "detail", "severity"]
TEXT_CHUNK = 256
FORMAT = 2
"""Feature-store format: 2 adds text-only items (imputed image rows, ``has_image`` on the image index)."""


class FeatureStore:
    """Read a feature-store folder: ``load(name) -> (item_ids, matrix)``.

    >>> store = FeatureStore("runs/cache/features")                # doctest: +SKIP
    >>> ids, e_sty = store.load("e_sty")                           # doctest: +SKIP
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        manifest = self.path / "manifest.json"
        if not manifest.is_file():
            raise FileNotFoundError(f"{self.path} is not a feature store: expected {manifest.name} in it")
        self.manifest: dict[str, Any] = json.loads(manifest.read_text(encoding="utf-8"))

    @property
    def names(self) -> list[str]:
        return list(self.manifest["features"])

    @property
    def item_ids(self) -> list[str]:
        """Items with at least one feature, in catalog order."""
        return list(self.manifest["item_ids"])

    def _index(self, group: str) -> pd.DataFrame:
        return pd.read_parquet(self.path / f"{group}_index.parquet")

    def load(self, name: str) -> tuple[list[str], np.ndarray]:
        """Item ids and the (N, D) float32 matrix of feature ``name`` (rows aligned with the ids)."""
        if name not in self.manifest["features"]:
            raise KeyError(f"feature {name!r} is not in this store; available: {', '.join(self.names)}")
        group = self.manifest["features"][name]["group"]
        return self._index(group)["item_id"].tolist(), np.load(self.path / f"{name}.npy")

    def has_image(self, item_ids: list[str]) -> np.ndarray:
        """(N,) bool: whether each of ``item_ids`` has an encoded image (False: text-only, imputed image rows,
        or not in the store). Format-1 stores have no text-only items."""
        index = self._index("image") if (self.path / "image_index.parquet").is_file() else \
            pd.DataFrame(columns=["item_id"])
        flags = index["has_image"].astype(bool) if "has_image" in index else pd.Series(True, index=index.index)
        known = dict(zip(index["item_id"], flags))
        return np.array([bool(known.get(i, False)) for i in item_ids], dtype=bool)

    @property
    def text_only(self) -> list[str]:
        """Items served text-only (no usable image), in catalog order."""
        ids = self.item_ids
        return [i for i, has in zip(ids, self.has_image(ids)) if not has]

    def problems(self) -> pd.DataFrame:
        path = self.path / "problems.csv"
        return pd.read_csv(path, dtype=str, keep_default_na=False) if path.is_file() else \
            pd.DataFrame(columns=PROBLEM_COLUMNS)

    @property
    def magenta_mean(self) -> np.ndarray | None:
        path = self.path / "magenta_mean.npy"
        return np.load(path) if path.is_file() else None


# ---------------------------------------------------------------------------------------------- writing

@dataclass
class VectorGroup:
    """Vectors of one group (image or text) keyed by (item_id, content_hash, encoder)."""

    name: str
    encoder: str
    vectors: dict[tuple[str, str, str], dict[str, np.ndarray]] = field(default_factory=dict)

    def add(self, ids: list[str], hashes: list[str], feats: dict[str, np.ndarray]) -> None:
        for i, (item_id, h) in enumerate(zip(ids, hashes)):
            self.vectors[(item_id, h, self.encoder)] = {k: v[i] for k, v in feats.items()}


def _read_existing(out: Path, group: VectorGroup) -> None:
    """Load vectors of a previous finished run and of unfinished shards into ``group``."""
    index = out / f"{group.name}_index.parquet"
    if index.is_file():
        df = pd.read_parquet(index)
        if "has_image" in df:  # imputed rows of text-only items are not cached vectors
            keep = df["has_image"].astype(bool).to_numpy()
        else:
            keep = np.ones(len(df), dtype=bool)
        feats = {n: np.load(out / f"{n}.npy") for n in GROUPS[group.name] if (out / f"{n}.npy").is_file()}
        if "e_sty_magenta" in feats and (out / "magenta_mean.npy").is_file():
            feats["e_sty_magenta"] = feats["e_sty_magenta"] + np.load(out / "magenta_mean.npy")  # stored centred
        for i, (item_id, h, enc) in enumerate(zip(df["item_id"], df["content_hash"], df["encoder"])):
            if keep[i]:
                group.vectors[(item_id, h, enc)] = {k: v[i] for k, v in feats.items()}
    for shard in sorted((out / "shards").glob(f"{group.name}-*.npz")):
        with np.load(shard, allow_pickle=False) as z:
            feats = {k: z[k] for k in z.files if k not in ("item_id", "content_hash", "encoder")}
            for i, (item_id, h, enc) in enumerate(zip(z["item_id"], z["content_hash"], z["encoder"])):
                group.vectors[(str(item_id), str(h), str(enc))] = {k: v[i] for k, v in feats.items()}


def write_shard(out: Path, group: VectorGroup, ids: list[str], hashes: list[str],
                feats: dict[str, np.ndarray]) -> None:
    """Save a finished batch as ``out/shards/<group>-NNNNNN.npz`` (atomic rename) and add it to ``group``.

    ``ids`` / ``hashes``: the batch's item ids and content hashes (``content_hash``); ``feats``: feature
    name -> (len(ids), D) float32 matrix. Any engine's encoding run writes its batches this way, so an
    interrupted run resumes from them and ``encode_catalog`` consolidates them into the store.
    """
    shards = out / "shards"
    shards.mkdir(parents=True, exist_ok=True)
    n = len(list(shards.glob(f"{group.name}-*.npz")))
    tmp = shards / f"{group.name}-{n:06d}.tmp{os.getpid()}.npz"
    np.savez(tmp, item_id=np.array(ids, dtype=str), content_hash=np.array(hashes, dtype=str),
             encoder=np.array([group.encoder] * len(ids), dtype=str), **feats)
    tmp.replace(shards / f"{group.name}-{n:06d}.npz")
    group.add(ids, hashes, feats)


def content_hash(data: bytes) -> str:
    """The store's content hash of an input (image file bytes or UTF-8 text): SHA-256, first 20 hex digits."""
    return hashlib.sha256(data).hexdigest()[:20]


def _progress(enabled: bool):

    return progress() if enabled else nullcontext()


def _encode_images(items: pd.DataFrame, out: Path, encoder: ContentEncoder, group: VectorGroup,
                   problems: list[dict], show_progress: bool) -> tuple[list[tuple[str, str]], dict[str, float]]:
    """Hash every image, encode the ones not cached; return (item_id, hash) of usable images and stats."""
    img_enc = encoder.image
    cfg = img_enc.config
    usable: list[tuple[str, str]] = []
    pending: list[tuple[str, str, bytes]] = []
    for item_id, path in zip(items["item_id"], items["image_path"]):
        if not isinstance(path, str) or not path:
            problems.append({"item_id": item_id, "group": "image", "reason": "no_image",
                             "detail": "the catalog gives no image for this item", "severity": "error"})
            continue
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            problems.append({"item_id": item_id, "group": "image", "reason": "missing_file",
                             "detail": f"{path}: {exc.strerror or exc}", "severity": "error"})
            continue
        h = content_hash(data)
        if (item_id, h, group.encoder) in group.vectors:
            usable.append((item_id, h))
        else:
            pending.append((item_id, h, data))
    t0, n_done = time.perf_counter(), 0
    with _progress(show_progress and bool(pending)) as bar:
        task = bar.add_task("encode images", total=len(pending)) if bar else None
        for start in range(0, len(pending), cfg.batch_size):
            chunk = pending[start:start + cfg.batch_size]
            ids, hashes, arrays, pils = [], [], [], []
            for item_id, h, data in chunk:
                try:
                    img, notes = load_rgb(data, cfg.max_pixels)
                except ImageProblem as p:
                    problems.append({"item_id": item_id, "group": "image", "reason": p.reason, "detail": p.detail,
                                     "severity": "error"})
                    continue
                problems += [{"item_id": item_id, "group": "image", "reason": "converted", "detail": note,
                              "severity": "warning"} for note in notes]
                ids.append(item_id)
                hashes.append(h)
                arrays.append(to_array(img, cfg.image_size))
                pils.append(img)
            if ids:
                feats = img_enc.forward_arrays(np.stack(arrays))
                if cfg.magenta_style:
                    feats["e_sty_magenta"] = img_enc.magenta_vectors(pils, centred=False)
                write_shard(out, group, ids, hashes, feats)
                usable += list(zip(ids, hashes))
                n_done += len(ids)
            if bar:
                bar.advance(task, len(chunk))
    dt = time.perf_counter() - t0
    return usable, {"images_encoded": n_done, "image_seconds": round(dt, 3),
                    "images_per_second": round(n_done / dt, 2) if n_done and dt > 0 else None}


def _encode_texts(items: pd.DataFrame, out: Path, encoder: ContentEncoder, group: VectorGroup,
                  problems: list[dict], show_progress: bool) -> tuple[list[tuple[str, str]], dict[str, float]]:
    usable, pending = [], []
    for row in items.to_dict(orient="records"):
        text = item_text(row)
        if not text:
            problems.append({"item_id": row["item_id"], "group": "text", "reason": "empty_text",
                             "detail": "no title and no tags", "severity": "error"})
            continue
        h = content_hash(text.encode("utf-8"))
        if (row["item_id"], h, group.encoder) in group.vectors:
            usable.append((row["item_id"], h))
        else:
            pending.append((row["item_id"], h, text))
    t0 = time.perf_counter()
    with _progress(show_progress and bool(pending)) as bar:
        task = bar.add_task("encode texts", total=len(pending)) if bar else None
        for start in range(0, len(pending), TEXT_CHUNK):
            chunk = pending[start:start + TEXT_CHUNK]
            vecs = encoder.text.encode([t for _, _, t in chunk])
            write_shard(out, group, [i for i, _, _ in chunk], [h for _, h, _ in chunk], {"e_tsem": vecs})
            usable += [(i, h) for i, h, _ in chunk]
            if bar:
                bar.advance(task, len(chunk))
    dt = time.perf_counter() - t0
    return usable, {"texts_encoded": len(pending), "text_seconds": round(dt, 3),
                    "texts_per_second": round(len(pending) / dt, 2) if pending and dt > 0 else None}


def _replace_atomically(path: Path, write) -> None:
    """``write(tmp)`` then rename over ``path``: a process reading the store meanwhile (another benchmark, a
    server) sees the old file or the new one, never a half-written one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _save_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, array)

    _replace_atomically(path, write)


def _consolidate(out: Path, group: VectorGroup, usable: list[tuple[str, str]], order: dict[str, int],
                 imputed: list[str] = (), fill: dict[str, np.ndarray] | None = None) -> dict[str, dict]:
    """Write the group's index and matrices for the current items (catalog order); return feature info.

    ``imputed``: items given the row ``fill`` (feature name -> (D,) vector) instead of an encoded one
    (text-only items in the image group; ``has_image`` False on their index row).
    """
    entries = sorted([(i, h, True) for i, h in usable] + [(i, "", False) for i in imputed],
                     key=lambda r: order[r[0]])
    index = pd.DataFrame({"item_id": [i for i, _, _ in entries], "content_hash": [h for _, h, _ in entries],
                          "encoder": group.encoder})
    if group.name == "image":
        index["has_image"] = [real for _, _, real in entries]
    rows = [group.vectors[(i, h, group.encoder)] if real else fill for i, h, real in entries]
    info: dict[str, dict] = {}
    names = [n for n in GROUPS[group.name] if rows and n in rows[0]] if rows else \
        [n for n in GROUPS[group.name] if n != "e_sty_magenta"]
    for name in names:
        mat = np.stack([r[name] for r in rows]).astype(np.float32) if rows else np.zeros((0, 0), np.float32)
        if name == "e_sty_magenta" and len(mat):
            mean = mat.mean(axis=0)
            _save_npy(out / "magenta_mean.npy", mean)
            mat = mat - mean  # the raw vectors are not centred (DESIGN.md section 4)
        _save_npy(out / f"{name}.npy", mat)
        info[name] = {"group": group.name, "dim": int(mat.shape[1]) if mat.ndim == 2 else 0, "count": len(mat),
                      "file": f"{name}.npy"}
    _replace_atomically(out / f"{group.name}_index.parquet", lambda tmp: index.to_parquet(tmp, index=False))
    return info


def open_store_run(catalog_dir: str | Path, out_dir: str | Path, config, encoder=None):
    """Start an encoding run (any engine): ``(items, encoder, out, groups)``.

    ``items``: the catalog frame; ``encoder``: the given ``ContentEncoder`` or one built from ``config``;
    ``out``: the store folder (created); ``groups``: ``{"image": VectorGroup, "text": VectorGroup}`` holding
    every vector already stored or left in ``shards/`` by an unfinished run (what a run may skip).
    """

    items = load_catalog(catalog_dir, check_images=False)
    encoder = encoder or ContentEncoder(config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    groups = {"image": VectorGroup("image", encoder.image.version),
              "text": VectorGroup("text", encoder.text.version)}
    for g in groups.values():
        _read_existing(out, g)
    return items, encoder, out, groups


def _image_fill(encoder: ContentEncoder, group: VectorGroup, usable: list[tuple[str, str]]) -> dict[str, np.ndarray]:
    """The imputed image row of a text-only item: the mean of the usable image vectors, or zeros (dims from
    one forward pass of a blank image) when no image of the catalog is usable."""
    if usable:
        rows = [group.vectors[(i, h, group.encoder)] for i, h in usable]
        return {k: np.mean([r[k] for r in rows], axis=0).astype(np.float32) for k in rows[0]}
    size = encoder.image.config.image_size
    probe = encoder.image.forward_arrays(np.stack([to_array(Image.new("RGB", (size, size)), size)]))
    return {k: np.zeros(v.shape[1:], dtype=np.float32) for k, v in probe.items()}


def _mark_text_only(problems: list[dict], text_only: set[str]) -> None:
    """Image problems of items served text-only become warnings saying so (they still are in problems.csv)."""
    for p in problems:
        if p["group"] == "image" and p["item_id"] in text_only and p["severity"] == "error":
            p["severity"] = "warning"
            p["detail"] = f"{p['detail']}; served text-only (image vectors imputed)"
    problems += [{"item_id": i, "group": "image", "reason": "served_text_only",
                  "detail": "no usable image: image vectors imputed, has_image false", "severity": "warning"}
                 for i in sorted(text_only)]


def encode_catalog(catalog_dir: str | Path, out_dir: str | Path, config: ContentConfig | None = None,
                   encoder: ContentEncoder | None = None, show_progress: bool = True) -> FeatureStore:
    """Encode every item of a catalog folder (world or MovieLens-with-posters) into the store ``out_dir``.

    Items whose (item_id, content hash, encoder version) is already stored are not encoded again;
    bad inputs are listed in ``problems.csv`` and skipped.
    """
    items, encoder, out, groups = open_store_run(catalog_dir, out_dir, config, encoder)
    problems: list[dict] = []
    img_usable, img_stats = _encode_images(items, out, encoder, groups["image"], problems, show_progress)
    txt_usable, txt_stats = _encode_texts(items, out, encoder, groups["text"], problems, show_progress)
    order = {item_id: i for i, item_id in enumerate(items["item_id"])}
    with_image = {i for i, _ in img_usable}
    text_only = [i for i, _ in txt_usable if i not in with_image]
    fill = _image_fill(encoder, groups["image"], img_usable) if text_only else None
    _mark_text_only(problems, set(text_only))
    features = {**_consolidate(out, groups["image"], img_usable, order, text_only, fill),
                **_consolidate(out, groups["text"], txt_usable, order)}
    have = {i for i, _ in img_usable} | {i for i, _ in txt_usable}
    pd.DataFrame(problems, columns=PROBLEM_COLUMNS).to_csv(out / "problems.csv", index=False)
    manifest = {
        "format": FORMAT,
        "n_text_only": len(text_only),
        "catalog": str(Path(catalog_dir).resolve()),
        "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "encoders": {"image": encoder.image.version, "text": encoder.text.version},
        "features": features,
        "item_ids": [i for i in items["item_id"] if i in have],
        "n_catalog_items": len(items),
        "n_problems": {sev: sum(p["severity"] == sev for p in problems) for sev in ("error", "warning")},
        "last_run": {**img_stats, **txt_stats},
    }
    text = json.dumps(manifest, indent=2, ensure_ascii=False)
    _replace_atomically(out / "manifest.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    shutil.rmtree(out / "shards", ignore_errors=True)
    log.info("feature store %s: %d items, %d images and %d texts encoded this run, %d problems", out,
             len(manifest["item_ids"]), img_stats["images_encoded"], txt_stats["texts_encoded"], len(problems))
    return FeatureStore(out)
