"""Batch encoding on Ray Data: the content stage's encoders over a catalog, into the same feature store.

``encode_catalog_ray`` spreads the expensive part — decoding images and running the image and text
encoders — over ``workers`` Ray actors with ``Dataset.map_batches``; the driver keeps the parts that
need one writer:

1. the driver loads the catalog and builds the ``ContentEncoder`` once; the actors receive it as the
   folder ``ContentEncoder.save`` writes (packed in memory) and ``ContentEncoder.load`` it: the same
   weights, hence the same encoder versions, even for fine-tuned or ``random:`` encoders, on any node
   (runtime sessions such as ONNX Runtime's are rebuilt there, not pickled);
2. each actor hashes and decodes its rows' images (``load_rgb``, ``to_array``), runs
   ``forward_arrays`` and ``text.encode``, and returns the vectors plus the problems it met;
   items whose (item_id, content hash, encoder version) is already stored are skipped;
3. the driver writes each returned batch as a feature-store shard, then runs the content stage's own
   ``encode_catalog``, which finds every vector cached and writes the index, the matrices, the manifest
   and ``problems.csv`` exactly as the local engine does (unreadable items fail there again, cheaply,
   and are reported the same way); warnings the actors met while converting images are added to
   ``problems.csv``, and the manifest's ``last_run`` records the Ray run.

Vectors equal the local engine's within 1e-5 (tested): the same encoder runs on the same pixels, only
the batch composition differs.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aigcrec.distributed.cluster import ray_session, require_ray
from aigcrec.content.encoder import ContentEncoder
from aigcrec.content.images import ImageProblem, load_rgb, to_array
from aigcrec.content.pairs import item_text
from aigcrec.content.store import GROUPS, PROBLEM_COLUMNS, content_hash, encode_catalog, open_store_run, write_shard
from aigcrec.logs import progress

log = logging.getLogger("aigcrec.distributed")


class CatalogBatchEncoder:
    """A Ray Data actor: catalog rows (item_id, image_path, text) in, hashes, vectors and problems out.

    Output rows (one per input row): ``item_id``; ``image_hash`` / ``text_hash`` ("" when that group
    has no new vector for the item); one column per feature (zeros when absent); ``problems`` (JSON list).
    """

    def __init__(self, shared: Any) -> None:
        """``shared``: an object-store reference to ``{"encoder": pack_encoder(...), "cached": {group: {(id, hash)}}}``
        (put once by the driver rather than captured in every actor's constructor)."""
        import ray  # lazy: Ray is the optional [ray] extra

        state = ray.get(shared) if isinstance(shared, ray.ObjectRef) else shared
        self.encoder = unpack_encoder(state["encoder"])
        self.cached: dict[str, set[tuple[str, str]]] = state["cached"]

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        img_enc = self.encoder.image
        cfg = img_enc.config
        n = len(batch)
        problems: list[list[dict]] = [[] for _ in range(n)]
        image_hash, text_hash = [""] * n, [""] * n
        arrays, pils, img_rows = [], [], []
        for r, (item_id, path) in enumerate(zip(batch["item_id"], batch["image_path"])):
            if not isinstance(path, str) or not path:
                continue  # reported by the driver's finalising pass, like every unreadable input
            try:
                data = Path(path).read_bytes()
            except OSError:
                continue
            h = content_hash(data)
            if (item_id, h) in self.cached["image"]:
                continue
            try:
                img, notes = load_rgb(data, cfg.max_pixels)
            except ImageProblem:
                continue
            problems[r] += [{"item_id": item_id, "group": "image", "reason": "converted", "detail": note,
                             "severity": "warning"} for note in notes]
            image_hash[r] = h
            arrays.append(to_array(img, cfg.image_size))
            pils.append(img)
            img_rows.append(r)
        out: dict[str, Any] = {"item_id": batch["item_id"].to_numpy()}
        if img_rows:
            feats = img_enc.forward_arrays(np.stack(arrays))
            if cfg.magenta_style:
                feats["e_sty_magenta"] = img_enc.magenta_vectors(pils, centred=False)
            for name, mat in feats.items():
                full = np.zeros((n, mat.shape[1]), np.float32)
                full[img_rows] = mat
                out[name] = list(full)
        txt_rows, texts = [], []
        for r, (item_id, text) in enumerate(zip(batch["item_id"], batch["text"])):
            if not text:
                continue
            h = content_hash(text.encode("utf-8"))
            if (item_id, h) not in self.cached["text"]:
                text_hash[r] = h
                txt_rows.append(r)
                texts.append(text)
        if texts:
            vecs = self.encoder.text.encode(texts)
            full = np.zeros((n, vecs.shape[1]), np.float32)
            full[txt_rows] = vecs
            out["e_tsem"] = list(full)
        out.update(image_hash=image_hash, text_hash=text_hash, problems=[json.dumps(p) for p in problems])
        return pd.DataFrame(out)


def pack_encoder(encoder: Any) -> bytes:
    """``encoder.save`` into an in-memory tar archive (what the actors receive)."""
    with tempfile.TemporaryDirectory(prefix="aigcrec-encoder-") as tmp:
        encoder.save(Path(tmp) / "encoder")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(Path(tmp) / "encoder", arcname="encoder")
    return buf.getvalue()


def unpack_encoder(archive: bytes) -> Any:
    """The ``ContentEncoder`` packed by ``pack_encoder`` (weights read into memory, temp files removed)."""

    tmp = tempfile.mkdtemp(prefix="aigcrec-encoder-")
    try:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        return ContentEncoder.load(Path(tmp) / "encoder")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _catalog_rows(items: pd.DataFrame) -> pd.DataFrame:
    """The columns the actors read: item_id, image_path and the text ``e_tsem`` encodes."""

    return pd.DataFrame({"item_id": items["item_id"].astype(str),
                         "image_path": [p if isinstance(p, str) else "" for p in items["image_path"]],
                         "text": [item_text(row) for row in items.to_dict(orient="records")]})


def encode_catalog_ray(catalog_dir: str | Path, out_dir: str | Path, config=None, address: str | None = None,
                       num_cpus: int | None = None, encoder=None, workers: int = 2, batch_size: int = 32,
                       show_progress: bool = True):
    """``aigcrec encode --engine ray``: encode a catalog folder into the feature store ``out_dir`` on Ray.

    ``config`` is the ``ContentConfig`` (``encoder`` a ready ``ContentEncoder``, built from it if None);
    ``address`` an existing cluster (None: a local cluster of ``num_cpus`` CPUs for this call);
    ``workers`` encoder actors (each holds one copy of the encoders) get ``batch_size`` rows per call.
    Returns the ``FeatureStore``, the same one ``aigcrec.content.store.encode_catalog`` writes.
    """

    ray = require_ray()
    if workers < 1 or batch_size < 1:
        raise ValueError(f"workers and batch_size must be at least 1, got {workers} and {batch_size}")
    items, encoder, out, groups = open_store_run(catalog_dir, out_dir, config, encoder)
    cached = {name: {(i, h) for i, h, _ in g.vectors} for name, g in groups.items()}
    rows = _catalog_rows(items)
    warnings: list[dict] = []
    n_new = {"image": 0, "text": 0}
    t0 = time.perf_counter()
    with ray_session(address, num_cpus, need_cpus=workers):
        import ray.data  # lazy: Ray is the optional [ray] extra

        ray.data.DataContext.get_current().enable_progress_bars = False
        size = max(1, -(-len(rows) // (workers * 4)))  # a few blocks per actor so the pool stays busy
        shared = ray.put({"encoder": pack_encoder(encoder), "cached": cached})
        ds = ray.data.from_pandas([rows.iloc[s:s + size] for s in range(0, len(rows), size)]).map_batches(
            CatalogBatchEncoder, fn_constructor_args=(shared,), batch_size=batch_size, batch_format="pandas",
            compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1)
        with progress(disable=not show_progress) as bar:
            task = bar.add_task("encode on ray", total=len(rows))
            for part in ds.iter_batches(batch_format="pandas", batch_size=None):
                for group in ("image", "text"):
                    keep = (part[f"{group}_hash"] != "").to_numpy()
                    names = [n for n in GROUPS[group] if n in part.columns]
                    if keep.any() and names:
                        sel = part[keep]
                        write_shard(out, groups[group], sel["item_id"].tolist(), sel[f"{group}_hash"].tolist(),
                                    {n: np.stack(sel[n].to_list()).astype(np.float32) for n in names})
                        n_new[group] += int(keep.sum())
                warnings += [p for ps in part["problems"] for p in json.loads(ps)]
                bar.advance(task, len(part))
    ray_seconds = time.perf_counter() - t0
    store = encode_catalog(catalog_dir, out, encoder=encoder, show_progress=False)
    on_driver = {k: store.manifest["last_run"][f"{k}s_encoded"] for k in ("image", "text")}
    if any(on_driver.values()):  # e.g. images the actors could not read: is the catalog on shared storage?
        log.warning("ray encode: the driver had to encode %s item(s) the actors did not return", on_driver)
    _record_ray_run(out, warnings, {
        "engine": "ray", "workers": workers, "batch_size": batch_size, "images_encoded": n_new["image"],
        "texts_encoded": n_new["text"], "driver_images_encoded": on_driver["image"],
        "driver_texts_encoded": on_driver["text"], "ray_seconds": round(ray_seconds, 3),
        "items_per_second": round(len(rows) / ray_seconds, 2) if ray_seconds > 0 else None})
    log.info("ray encode: %d images and %d texts encoded by %d workers in %.1fs", n_new["image"], n_new["text"],
             workers, ray_seconds)
    return type(store)(out)


def _record_ray_run(out: Path, warnings: list[dict], stats: dict[str, Any]) -> None:
    """Add the actors' conversion warnings to ``problems.csv`` and the run's statistics to the manifest."""

    path = out / "problems.csv"
    local = pd.read_csv(path, dtype=str, keep_default_na=False)
    if warnings:
        extra = pd.DataFrame(warnings, columns=PROBLEM_COLUMNS)
        pd.concat([local, extra], ignore_index=True).to_csv(path, index=False)
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["n_problems"]["warning"] = manifest["n_problems"].get("warning", 0) + len(warnings)
    manifest["last_run"] = stats
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
