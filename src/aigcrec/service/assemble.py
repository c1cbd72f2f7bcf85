"""Assemble the real stack for ``aigcrec serve``: a catalog (any layout of ``aigcrec.data.layouts``), the
feature store, the UMAIR-FPS ranker bundle, the content encoder and (optionally) the MMEI affect predictor,
behind one SQLite file.

Where things are comes from a typed artifacts manifest (``aigcrec.service.artifacts``: written by
``aigcrec build`` and ``aigcrec demo``), or from ``--catalog DIR --models DIR`` where the models folder holds
``features/``, ``ranker/`` and optionally ``mmei/``, ``content/`` and ``retrieval/`` (the two-tower model).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pandas as pd

from aigcrec.data.affect_context import AffectContextMismatch
from aigcrec.retrieval.collab import ItemItemModel
from aigcrec.retrieval.retriever import TwoTowerRetriever
from aigcrec.service.artifacts import MANIFEST_NAME, ArtifactsManifest
from aigcrec.service.config import ServingConfig
from aigcrec.service.state import ServiceState
from aigcrec.service.store import ServiceStore
from aigcrec.affect.predictor import AffectPredictor
from aigcrec.content.encoder import ContentEncoder
from aigcrec.content.store import FeatureStore
from aigcrec.data.catalog import read_catalog
from aigcrec.data.layouts import detect_layout, load_interactions
from aigcrec.ranking.bundle import RankerBundle
from aigcrec.saved import config_file

log = logging.getLogger("aigcrec.service")


@dataclass(frozen=True)
class ServicePaths:
    catalog_dir: Path
    feature_store: Path
    ranker_dir: Path
    mmei_dir: Optional[Path] = None
    content_dir: Optional[Path] = None
    retrieval_dir: Optional[Path] = None

    @classmethod
    def from_manifest(cls, path: str | Path) -> "ServicePaths":
        """Paths from an ``artifacts.json`` (or a folder holding one); relative paths are from its folder."""
        path = Path(path)
        manifest = ArtifactsManifest.load(path)
        base = (path if path.is_dir() else path.parent).resolve()  # runs/latest is a symlink
        return cls(
            manifest.resolve(manifest.catalog_dir, base),
            manifest.resolve(manifest.feature_store, base),
            manifest.resolve(manifest.ranker_dir, base),
            manifest.resolve(manifest.mmei_dir, base),
            manifest.resolve(manifest.content_dir, base),
            manifest.resolve(manifest.retrieval_dir, base),
        )

    @classmethod
    def from_models(
        cls, models: str | Path, catalog: str | Path | None = None, affect: str | Path | None = None
    ) -> "ServicePaths":
        """``aigcrec serve --models M [--catalog DIR] [--affect DIR]``.

        ``M``: an ``artifacts.json``, a folder with one, or a folder with ``features/`` and ``ranker/`` (then
        ``catalog`` is required); ``catalog`` / ``affect`` replace the manifest's catalog / affect model.
        """
        models = Path(models)
        if models.is_file() or (models / MANIFEST_NAME).is_file():
            paths = cls.from_manifest(models)
        else:
            if not models.is_dir():
                raise FileNotFoundError(f"--models {models}: no such folder or artifacts.json")
            for sub in ("features", "ranker"):
                if not (models / sub).is_dir():
                    raise FileNotFoundError(
                        f"--models {models}: expected an {MANIFEST_NAME} (aigcrec build --catalog DIR --out "
                        f"{models}) or a '{sub}/' folder"
                    )
            if catalog is None:
                raise FileNotFoundError(
                    f"--models {models} has no {MANIFEST_NAME} naming its catalog: give --catalog DIR"
                )
            opt = {sub: models / sub if (models / sub).is_dir() else None for sub in ("mmei", "content", "retrieval")}
            paths = cls(Path(catalog), models / "features", models / "ranker", opt["mmei"], opt["content"],
                        opt["retrieval"])
        if catalog is not None:
            paths = replace(paths, catalog_dir=Path(catalog))
        if affect is not None:
            if not Path(affect).is_dir():
                raise FileNotFoundError(f"--affect {affect}: no such folder (expected a saved MMEI model)")
            paths = replace(paths, mmei_dir=Path(affect))
        return paths

    @classmethod
    def from_dirs(cls, catalog: str | Path, models: str | Path) -> "ServicePaths":
        """``--catalog DIR --models M`` (kept for ``aigcrec.serve_app.app_builder``)."""
        return cls.from_models(models, catalog)

    def digest(self) -> str:
        return hashlib.sha1(
            f"{self.catalog_dir.resolve()}|{self.feature_store.resolve()}".encode()
        ).hexdigest()[:12]


def _timestamp(value: Any) -> Optional[float]:
    """``created_at`` as unix seconds: a number, or an ISO date/time; anything else is unknown (None)."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        pass
    try:
        stamp = pd.Timestamp(str(value))
    except (TypeError, ValueError):
        return None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return float(stamp.timestamp())


OPTIONAL_META = ("creator_id", "style")
"""Item columns the service uses when a catalog has them (the diversity re-rank reads both)."""


def read_serving_catalog(catalog_dir: Path) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """(layout name, items, past events) of a catalog folder of any layout (``aigcrec.data.layouts``).

    Items: item_id, title, tags, image_path, created_at and, when the catalog has them, creator_id and
    style. Events: label 1 -> bookmark, 0 -> impression.
    """

    layout = detect_layout(catalog_dir)
    frame = read_catalog(catalog_dir, check_images=False).items
    items = []
    for row in frame.to_dict(orient="records"):
        item = {k: row[k] for k in ("item_id", "title", "tags", "image_path")}
        item["image_path"] = item["image_path"] if isinstance(item["image_path"], str) else None
        for col in OPTIONAL_META:
            value = row.get(col)
            item[col] = None if value is None or str(value).strip() == "" else str(value)
        item["created_at"] = _timestamp(row.get("created_at"))
        items.append(item)
    inter = load_interactions(catalog_dir, set(frame["item_id"]), layout)
    events = [
        {
            "user_id": str(u),
            "item_id": str(i),
            "type": "bookmark" if lab == 1 else "impression",
            "ts": float(t),
            "session_id": None if s in ("", None) else str(s),
        }
        for u, i, lab, t, s in zip(
            inter["user_id"], inter["item_id"], inter["label"], inter["timestamp"], inter["session_id"]
        )
    ]
    return layout.name, items, events


def aligned_vectors(
    feature_store: Path, item_ids: list[str], names: list[str]
) -> tuple[list[int], dict[str, np.ndarray]]:
    """Rows of ``item_ids`` that have every feature in ``names``, and the matrices in that row order."""

    store = FeatureStore(feature_store)
    loaded = {name: store.load(name) for name in names}
    keep = set(item_ids)
    for ids, _ in loaded.values():
        keep &= set(ids)
    rows = [r for r, i in enumerate(item_ids) if i in keep]
    text_only = set(store.text_only) & keep
    if text_only:
        log.warning("%d of %d catalog items are served text-only (no usable image: image vectors imputed, "
                    "has_image false); reasons in %s", len(text_only), len(item_ids), store.path / "problems.csv")
    if len(rows) < len(item_ids):
        log.warning("%s", skipped_line(store, [i for i in item_ids if i not in keep], len(item_ids)))
    out = {}
    for name, (ids, mat) in loaded.items():
        pos = {i: r for r, i in enumerate(ids)}
        out[name] = np.asarray(mat, dtype=np.float32)[[pos[item_ids[r]] for r in rows]]
    return rows, out


def skipped_line(store, skipped: list[str], total: int) -> str:
    """One start-up line: how many catalog items are not served, why (the encoder's reasons) and where the
    list is (the feature store's ``problems.csv``)."""
    problems = store.problems()
    errors = problems[(problems["severity"] == "error") & problems["item_id"].isin(skipped)]
    reasons = errors.drop_duplicates("item_id")["reason"].value_counts()
    unknown = len(set(skipped) - set(errors["item_id"]))
    why = [f"{n} {reason.replace('_', ' ')}" for reason, n in reasons.items()]
    why += [f"{unknown} not encoded (re-run aigcrec build / aigcrec encode)"] if unknown else []
    return (
        f"{len(skipped)} of {total} catalog items are not served (no usable text, or not encoded: {', '.join(why)}); "
        f"items and reasons in {store.path / 'problems.csv'}"
    )


def load_content_encoder(paths: ServicePaths, config: ServingConfig):
    """The encoder that made the feature store: the saved one, else the configured one if versions match."""

    encoder = ContentEncoder.load(paths.content_dir) if paths.content_dir else ContentEncoder(config.content)
    stored = FeatureStore(paths.feature_store).manifest.get("encoders", {})
    if stored and stored != encoder.versions:
        log.error(
            "the configured content encoder %s is not the one that built the feature store %s: "
            "POST /v1/items is disabled (vectors would not be comparable)",
            encoder.versions,
            stored,
        )
        return None
    return encoder


def load_retriever(paths: ServicePaths) -> Optional[TwoTowerRetriever]:
    """The two-tower model of ``paths`` and one start-up line saying which candidate sources are served."""
    d = paths.retrieval_dir
    if d is None or not d.is_dir() or config_file(d, "two_tower") is None:
        log.info("retrieval: no two-tower model (retrieval/ in the models folder); candidates come from the "
                 "history, fresh and popular items%s", " and the request text" if paths.content_dir else "")
        return None
    retriever = TwoTowerRetriever.load(paths.retrieval_dir)
    log.info("retrieval: two-tower model %s (%d trained items, context %d values), blended by intent",
             paths.retrieval_dir, len(retriever.item_ids), len(retriever.context_names))
    return retriever


def load_collab(paths: ServicePaths) -> Optional[ItemItemModel]:
    """The item-item model (EASE^R) of ``paths`` (``retrieval/item_item``, written by ``aigcrec build``)."""
    where = None if paths.retrieval_dir is None else paths.retrieval_dir / "item_item"
    if where is None or config_file(where, "item_item") is None:
        log.info("retrieval: no item-item model (retrieval/item_item in the models folder)")
        return None
    collab = ItemItemModel.load(where)
    log.info("retrieval: item-item model %s (%d items, %d weights), source %s", where, len(collab.item_ids),
             collab.weights.nnz, "liked_with_yours")
    return collab


def affect_encoder(ranker, predictor) -> Optional[Callable[[Any], np.ndarray]]:
    """``AffectState -> the ranker's affect-context row``, by the schema saved with the ranker
    (``aigcrec.data.affect_context``), checked by name against the affect model's at start-up.

    None when the ranker reads no affect context. Raises ``AffectContextMismatch`` naming the columns when
    the affect model cannot give what the ranker was trained on, or when the ranker (a bundle of format 2 or
    earlier) recorded no schema: never a guess from the width. Without an affect model nothing is checked
    (no reading is ever made); an affect model that states no ``context_schema`` (a test double) is trusted.
    """
    if not ranker.affect_dim:
        return None
    schema = ranker.affect_schema
    if schema is None:
        if predictor is None:
            log.warning("the ranker reads a %d-value affect context but records no schema (saved before format 3): "
                        "served without affect", ranker.affect_dim)
            return lambda state: None
        raise AffectContextMismatch(
            f"the ranker reads a {ranker.affect_dim}-value affect context but records no schema of its columns (a bundle "
            f"saved before ranker format 3): its columns cannot be checked against the affect model. Retrain "
            f"the ranker (aigcrec train ranker, or aigcrec demo), or serve it without an affect model")
    offered = getattr(predictor, "context_schema", None) if predictor is not None else None
    if offered is not None:
        schema.check_servable(offered)
        log.info("affect context for the ranker: %s (%d columns), computed from the affect model's %s", schema.name,
                 schema.dim, offered.name)
    return schema.encode


def open_real_state(config: ServingConfig, paths: ServicePaths, db_path: Path, ranker: Any = None,
                    affect: Any = None, encoder: Any = None) -> ServiceState:
    """The served state: SQLite at ``db_path`` (created and filled on first start) plus the trained models.

    ``ranker`` / ``affect`` / ``encoder``: models to serve instead of loading them from ``paths`` (Ray Serve
    passes clients of its model deployments, so each model is loaded once, in its deployment; ``aigcrec
    simulate`` loads them once for all its services).
    """

    svc = config.service
    if ranker is None:
        ranker = RankerBundle.load(paths.ranker_dir, svc.model_runtime, svc.torch_threads)
    if affect is None and paths.mmei_dir:
        affect = AffectPredictor.load(paths.mmei_dir, runtime=svc.model_runtime, threads=svc.torch_threads)
    context = affect_encoder(ranker, affect)  # before the catalog is read: a mismatch stops the start at once
    layout, items, events = read_serving_catalog(paths.catalog_dir)
    log.info("catalog %s (%s layout): %d items, %d past interactions", paths.catalog_dir, layout, len(items),
             len(events))
    names = list(dict.fromkeys([*svc.retrieval.features, "e_sem", "e_sty", "e_tsem"]))
    rows, vectors = aligned_vectors(paths.feature_store, [str(it["item_id"]) for it in items], names)
    if not rows:
        raise FileNotFoundError(
            f"{paths.feature_store}: no catalog item of {paths.catalog_dir} has every content vector "
            f"({', '.join(names)}); nothing to serve (see problems.csv there)"
        )
    items = [items[r] for r in rows]
    if encoder is None:
        encoder = load_content_encoder(paths, config)
    missing = [
        *(["affect (no mmei/ and no --affect DIR): requests with signals are refused with 422"]
          if affect is None else []),
        *(["the content encoder: POST /v1/items is refused with 503"] if encoder is None else []),
    ]
    if missing:
        log.warning("serving without %s", "; without ".join(missing))
    retriever = load_retriever(paths)
    collab = load_collab(paths)
    query_encoder = None if encoder is None else (lambda text: encoder.text.encode([text])[0])
    store = ServiceStore(db_path, svc.sqlite_synchronous)
    return ServiceState.open(
        svc,
        store,
        items,
        vectors,
        ranker,
        affect,
        encoder,
        past_events=events,
        seed=config.seed,
        affect_context=context,
        retriever=retriever,
        query_encoder=query_encoder,
        collab=collab,
    )
