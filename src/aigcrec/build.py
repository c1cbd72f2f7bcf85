"""``aigcrec build --catalog DIR --out M``: the models folder ``aigcrec serve --models M`` needs, for any catalog.

Steps, each timed and summarised in one line (its figures also go to the manifest):

1. **catalog** — recognise the layout (``aigcrec.data.layouts``) and validate ``items.csv`` and the
   interactions;
2. **encode** — the content encoder (``cfg.content``, or ``--encoder DIR``) writes ``M/features`` (a feature
   store: items with a text but no usable image are served text-only, with imputed image vectors and
   ``has_image`` false, and a warning in ``M/features/problems.csv``; items with neither are listed there as
   errors and not served)
   and is saved to ``M/content`` so ``POST /v1/items`` encodes new items the same way;
3. **ranker** — the ``aigcrec train ranker`` code path (warm split, early stopping) on the layout's
   interactions and the store's vectors, saved to ``M/ranker`` (test metrics in ``M/metrics.json``); a
   context-aware rating set (``context`` layout) is split at random (``random_split``, seeded by
   ``cfg.seed``: it has no timestamps) and its context columns are the ranker's explicit context (its
   schema saved in the bundle; ``/v1/recommend`` takes values for them in ``context``);
4. **export** — the ranker exported to ``M/ranker.onnx`` and checked against torch (max |difference|);
5. **retrieval** — the two-tower candidate model (``aigcrec.retrieval``, ``cfg.retrieval``) on the same
   interactions and vectors, saved to ``M/retrieval``, and the item-item model (EASE^R closed form,
   ``aigcrec.retrieval.collab``, ``cfg.retrieval.collab``) on the same positives, saved to
   ``M/retrieval/item_item`` (skipped above ``collab.max_items`` items); both skipped when
   ``retrieval.enabled`` is false: the service then draws candidates from history, fresh and popular items
   and the request text).

Then ``M/artifacts.json`` (``aigcrec.service.artifacts.ArtifactsManifest``). The affect model is not
trained here (it reads users, not items): ``--affect DIR`` records one (the demo's MMEI works for any
catalog), else the service runs without affect. On a world the two-tower reads the sessions' simulated
state as its affect context (the demo trains it on MMEI's readings instead).
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from aigcrec import __version__
from aigcrec.config import AppConfig
from aigcrec.content.encoder import ContentEncoder
from aigcrec.content.store import encode_catalog
from aigcrec.data.catalog import read_catalog
from aigcrec.data.layouts import detect_layout, load_interactions
from aigcrec.ranking.bundle import RankerBundle
from aigcrec.ranking.data import random_split
from aigcrec.ranking.experiment import train_and_save
from aigcrec.ranking.export import check_export
from aigcrec.retrieval.collab import ItemItemModel
from aigcrec.retrieval.data import catalog_retrieval_data
from aigcrec.retrieval.trainer import train_two_tower
from aigcrec.service.artifacts import ArtifactsManifest, StepRecord
from aigcrec.sources import DATASETS, content_vectors, load_dataset

log = logging.getLogger("aigcrec.build")

EXPORT_TOLERANCE = 1e-5
"""Largest |ONNX - torch| accepted for the exported ranker (what ``aigcrec export ranker`` accepts)."""


N_STEPS = 5
MIN_RETRIEVAL_POSITIVES = 8
"""Fewer positives than this: no two-tower model (its in-batch softmax needs negatives in each batch)."""


class BuildError(RuntimeError):
    """A step could not produce what serving needs; the message says which and why."""


@contextmanager
def _step(name: str, steps: list[StepRecord], report: Callable[[str], None]) -> Iterator[dict[str, Any]]:
    """Time a step; the body fills the yielded dict with its figures; report its one-line summary."""
    report(f"[{len(steps) + 1}/{N_STEPS}] {name} ...")
    figures: dict[str, Any] = {}
    t0 = time.perf_counter()
    yield figures
    record = StepRecord(name=name, seconds=round(time.perf_counter() - t0, 2), figures=figures)
    steps.append(record)
    report(record.summary())


def build(catalog: str | Path, out: str | Path, config: AppConfig, model: str = "umair_fps",
          encoder_dir: Optional[Path] = None, affect_dir: Optional[Path] = None,
          report: Callable[[str], None] = log.info) -> ArtifactsManifest:
    """Run the five steps on ``catalog`` into ``out``; return the manifest written to ``out/artifacts.json``.

    Raises ``aigcrec.data.errors.DataError`` on bad input (naming file, row, field) and :class:`BuildError`
    when a step leaves nothing to serve.
    """
    catalog, out = Path(catalog).resolve(), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    steps: list[StepRecord] = []

    with _step("catalog", steps, report) as fig:
        layout = detect_layout(catalog)
        if layout.name not in DATASETS:
            raise BuildError(f"{catalog}: the {layout.name} layout has no ranker dataset yet")
        items = read_catalog(catalog, check_images=False)
        inter = load_interactions(catalog, set(items.items["item_id"]), layout)
        fig.update(layout=layout.name, items=len(items.items),
                   items_with_image=int(items.items["image_path"].notna().sum()), interactions=len(inter),
                   positives=int(inter["label"].sum()), users=int(inter["user_id"].nunique()))
        if inter.empty:
            raise BuildError(f"{catalog}: no interactions to train the ranker on (the {layout.name} layout reads "
                             f"{layout.description})")

    with _step("encode", steps, report) as fig:
        encoder = ContentEncoder.load(encoder_dir) if encoder_dir else ContentEncoder(config.content)
        store = encode_catalog(catalog, out / "features", encoder=encoder)
        encoder.save(out / "content")
        stats = store.manifest["last_run"]
        counts = {name: info["count"] for name, info in store.manifest["features"].items()}
        fig.update(items_with_vectors=min(counts.values(), default=0), **{f"{k}_vectors": v for k, v in counts.items()},
                   problems=int(store.manifest["n_problems"]["error"]),
                   images_encoded=stats["images_encoded"], images_per_second=stats["images_per_second"],
                   texts_encoded=stats["texts_encoded"], text_only=int(store.manifest.get("n_text_only", 0)))
        if not fig["items_with_vectors"]:
            raise BuildError(f"{out / 'features'}: no item has a text (title or tags); "
                             f"nothing to serve. Reasons per item: {out / 'features' / 'problems.csv'}")

    with _step("ranker", steps, report) as fig:
        data = load_dataset(layout.name, catalog, out / "cache", features_dir=out / "features",
                            content_config=config.content)
        context = [f.column for f in data.fields if f.group == "context"]
        rows = random_split(data.frame, config.seed) if layout.name == "context" else None  # no timestamps there
        metrics = train_and_save(data, model, config, out, meta={"dataset": layout.name, "catalog": catalog.name},
                                 rows=rows)
        fig.update(variant=model, rows=len(data.frame), **({"context": ",".join(context)} if context else {}),
                   **{k: metrics[k] for k in ("auc", "gauc", "logloss", "val_auc", "best_epoch") if k in metrics})

    with _step("export", steps, report) as fig:
        bundle = RankerBundle.load(out / "ranker")
        export = check_export(bundle, out / "ranker.onnx")
        fig.update(max_abs_diff=export["max_abs_diff"])
        if export["max_abs_diff"] > EXPORT_TOLERANCE:
            raise BuildError(f"{out / 'ranker.onnx'}: ONNX outputs differ from torch by "
                             f"{export['max_abs_diff']:.2e} (> {EXPORT_TOLERANCE:g})")

    retrieval_dir = None
    with _step("retrieval", steps, report) as fig:
        if config.retrieval.enabled:
            vectors = content_vectors(catalog, out / "features", out / "cache", config.content)
            rdata = catalog_retrieval_data(catalog, layout.name, vectors, inter)
            if len(rdata.positives) < MIN_RETRIEVAL_POSITIVES:
                fig.update(two_tower=f"skipped: {len(rdata.positives)} positives with content vectors "
                                     f"(< {MIN_RETRIEVAL_POSITIVES})")
            else:
                retriever = train_two_tower(rdata, config.retrieval.two_tower, config.seed)
                retrieval_dir = retriever.save(out / "retrieval")
                fig.update(**{f"two_tower_{k}": v for k, v in retriever.figures.items()})
            cc = config.retrieval.collab  # the item-item model (EASE^R) on the same positives: retrieval/item_item
            pos = rdata.positives
            if not cc.enabled:
                fig.update(item_item="disabled (retrieval.collab.enabled: false)")
            elif len(pos) < cc.min_positives or len(rdata.item_ids) > cc.max_items:
                fig.update(item_item=f"skipped: {len(pos)} positives (min {cc.min_positives}), {len(rdata.item_ids)} "
                                     f"items (max {cc.max_items})")
            else:
                collab = ItemItemModel.fit(pos, rdata.item_ids, cc, shown=rdata.shown)
                collab.save(out / "retrieval" / "item_item")
                retrieval_dir = out / "retrieval"
                fig.update(**{f"item_item_{k}": v for k, v in collab.figures.items()})
        else:
            fig.update(two_tower="disabled (retrieval.enabled: false)")

    if affect_dir is None and (out / "mmei").is_dir():  # an MMEI copied into M/mmei is served
        affect_dir = out / "mmei"
    versions = {"aigcrec": __version__, "ranker": model, **{f"encoder_{k}": v for k, v in encoder.versions.items()}}
    manifest = ArtifactsManifest(
        catalog_dir=ArtifactsManifest.relative(catalog, out), layout=layout.name, content_dir="content",
        mmei_dir=ArtifactsManifest.relative(affect_dir, out) if affect_dir else None, ranker_onnx="ranker.onnx",
        retrieval_dir="retrieval" if retrieval_dir else None,
        versions=versions, steps=steps,
    )
    path = manifest.save(out)
    report(f"wrote {path}; serve it with: aigcrec serve --models {out}"
           + ("" if affect_dir else " [--affect MMEI_DIR]"))
    return manifest
