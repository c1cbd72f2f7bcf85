"""Assemble the real stack for ``aigcrec serve``: the world catalog, the feature store, the trained MMEI
affect predictor, the UMAIR-FPS ranker bundle and the content encoder, behind one SQLite file.

Where things are comes from the demo's ``artifacts.json`` (``world_dir``, ``feature_store``, ``mmei_dir``,
``ranker_dir``, optional ``content_dir``) or from ``--catalog DIR --models DIR``, where ``DIR`` holds
``features/``, ``ranker/`` and optionally ``mmei/`` and ``content/`` (or its own ``artifacts.json``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from aigcrec.config import AppConfig
from aigcrec.service.state import ServiceState
from aigcrec.service.store import ServiceStore

log = logging.getLogger("aigcrec.service")


@dataclass(frozen=True)
class ServicePaths:
    world_dir: Path
    feature_store: Path
    ranker_dir: Path
    mmei_dir: Optional[Path] = None
    content_dir: Optional[Path] = None

    @classmethod
    def from_artifacts(cls, path: str | Path) -> "ServicePaths":
        """Paths from an ``artifacts.json`` (relative paths are taken from the file's folder)."""
        path = Path(path)
        try:
            art: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise FileNotFoundError(f"{path}: cannot read the demo artifacts ({exc})") from None
        missing = [k for k in ("world_dir", "feature_store", "ranker_dir") if not art.get(k)]
        if missing:
            raise FileNotFoundError(
                f"{path}: expected keys world_dir, feature_store, ranker_dir; missing {missing}"
            )

        def resolve(key: str) -> Optional[Path]:
            value = art.get(key)
            return (
                None if not value else (path.parent / value if not Path(value).is_absolute() else Path(value))
            )

        return cls(
            resolve("world_dir"),
            resolve("feature_store"),
            resolve("ranker_dir"),
            resolve("mmei_dir"),
            resolve("content_dir"),
        )

    @classmethod
    def from_dirs(cls, catalog: str | Path, models: str | Path) -> "ServicePaths":
        models = Path(models)
        manifest = models if models.is_file() else models / "artifacts.json"  # --models may name the file
        if manifest.is_file():
            art = cls.from_artifacts(manifest)
            return cls(Path(catalog), art.feature_store, art.ranker_dir, art.mmei_dir, art.content_dir)
        for sub in ("features", "ranker"):
            if not (models / sub).is_dir():
                raise FileNotFoundError(f"{models}: expected a '{sub}/' folder (or an artifacts.json)")
        optional = {sub: models / sub if (models / sub).is_dir() else None for sub in ("mmei", "content")}
        return cls(
            Path(catalog), models / "features", models / "ranker", optional["mmei"], optional["content"]
        )

    def digest(self) -> str:
        return hashlib.sha1(
            f"{self.world_dir.resolve()}|{self.feature_store.resolve()}".encode()
        ).hexdigest()[:12]


def catalog_from_world(world_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Items and past events (label 1 -> bookmark, 0 -> impression) of a generated world."""
    from aigcrec.world import load_world

    world = load_world(world_dir, check_files=False)
    items = world.items[["item_id", "title", "tags", "creator_id", "style", "image_path", "created_at"]]
    inter = world.interactions
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
    return items.to_dict(orient="records"), events


def aligned_vectors(
    feature_store: Path, item_ids: list[str], names: list[str]
) -> tuple[list[int], dict[str, np.ndarray]]:
    """Rows of ``item_ids`` that have every feature in ``names``, and the matrices in that row order."""
    from aigcrec.content.store import FeatureStore

    store = FeatureStore(feature_store)
    loaded = {name: store.load(name) for name in names}
    keep = set(item_ids)
    for ids, _ in loaded.values():
        keep &= set(ids)
    rows = [r for r, i in enumerate(item_ids) if i in keep]
    if len(rows) < len(item_ids):
        log.warning(
            "%d catalog items lack content vectors in %s: not served",
            len(item_ids) - len(rows),
            feature_store,
        )
    out = {}
    for name, (ids, mat) in loaded.items():
        pos = {i: r for r, i in enumerate(ids)}
        out[name] = np.asarray(mat, dtype=np.float32)[[pos[item_ids[r]] for r in rows]]
    return rows, out


def load_content_encoder(paths: ServicePaths, config: AppConfig):
    """The encoder that made the feature store: the saved one, else the configured one if versions match."""
    from aigcrec.content.encoder import ContentEncoder
    from aigcrec.content.store import FeatureStore

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


def affect_context_for(ranker, predictor) -> Optional[Callable[[Any], Optional[np.ndarray]]]:
    """How to turn an AffectState into the affect context the ranker was trained on, found by width.

    The ranker may have been trained on ``AffectState.as_vector()``, on the demo's ``affect_context`` rows
    (``aigcrec.affect.predictor.states_frame``: probabilities, embedding, confidence, modality flags) or on
    the world's one-hot session state (emotion + intent probabilities here).
    """
    from aigcrec.affect.predictor import states_frame

    dim = next((f.dim for f in ranker.spec.vectors if not f.modality), None)
    if dim is None or predictor is None:
        return None
    formats: dict[str, Callable[[Any], np.ndarray]] = {
        "AffectState.as_vector": lambda s: s.as_vector(),
        "states_frame row": lambda s: states_frame(["request"], [s]).to_numpy()[0],
        "emotion + intent probabilities": lambda s: np.fromiter(
            [*s.emotion_probs.values(), *s.intent_probs.values()], np.float32
        ),
    }
    probe = predictor.predict(text="hello")
    for name, fmt in formats.items():
        if len(fmt(probe)) == dim:
            log.info("affect context for the ranker: %s (%d values)", name, dim)
            return fmt
    log.error(
        "the ranker expects a %d-value affect context, which no AffectState format gives "
        "(%s); the ranker scores without affect",
        dim,
        ", ".join(f"{n}: {len(f(probe))}" for n, f in formats.items()),
    )
    return lambda s: None


def open_real_state(config: AppConfig, paths: ServicePaths, db_path: Path, ranker: Any = None,
                    affect: Any = None) -> ServiceState:
    """The served state: SQLite at ``db_path`` (created and filled on first start) plus the trained models.

    ``ranker`` / ``affect``: models to serve instead of loading them from ``paths`` (Ray Serve passes
    clients of its model deployments, so each model is loaded once, in its deployment).
    """
    from aigcrec.affect.predictor import AffectPredictor
    from aigcrec.ranking.bundle import RankerBundle

    svc = config.service
    items, events = catalog_from_world(paths.world_dir)
    names = list(dict.fromkeys([*svc.retrieval.features, "e_sem", "e_sty", "e_tsem"]))
    rows, vectors = aligned_vectors(paths.feature_store, [str(it["item_id"]) for it in items], names)
    items = [items[r] for r in rows]
    if ranker is None:
        ranker = RankerBundle.load(paths.ranker_dir, svc.model_runtime, svc.torch_threads)
    if affect is None and paths.mmei_dir:
        affect = AffectPredictor.load(paths.mmei_dir, runtime=svc.model_runtime, threads=svc.torch_threads)
    if affect is None:
        log.warning("no MMEI model given: requests with signals are refused (503)")
    encoder = load_content_encoder(paths, config)
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
        affect_context=affect_context_for(ranker, affect),
    )
