"""Simple, clearly test-only implementations of the service protocols, a synthetic catalog, and a server
entry point for subprocess tests (``python tests/test_service_support.py --db F --port P``).

They are deterministic and fast so the HTTP layer, storage, retrieval and durability can be tested
without trained models; ``test_service_real.py`` exercises the real models on the tiny world.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

EMOTIONS = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
INTENTS = ("explore", "relax", "focus")
DIMS = {"e_sem": 32, "e_sty": 8, "e_tsem": 16}
STYLES = ("watercolor", "anime", "pixel", "oil")


@dataclass
class KeywordAffectState:
    emotion: str
    emotion_probs: dict[str, float]
    intent: str
    intent_probs: dict[str, float]
    confidence: float
    modalities_used: list[str]
    fusion_weights: dict[str, float] = field(default_factory=dict)

    def as_vector(self) -> np.ndarray:
        return np.array(
            [self.emotion_probs[e] for e in EMOTIONS] + [self.intent_probs[i] for i in INTENTS],
            dtype=np.float32,
        )


class KeywordAffect:
    """Test affect model: 'happy'/'sad'/'angry' in the text set the emotion; voice and face count as used."""

    words = {"happy": "joy", "sad": "sadness", "angry": "anger", "scared": "fear"}

    def prior(self) -> KeywordAffectState:
        """The state without any signal (what a stated state alone is merged into)."""
        return KeywordAffectState(
            "neutral", {e: 1 / len(EMOTIONS) for e in EMOTIONS}, "explore",
            {i: 1 / len(INTENTS) for i in INTENTS}, 1 / len(EMOTIONS), [], {},
        )

    def predict(
        self, text: Optional[str] = None, voice: Optional[bytes] = None, face: Optional[bytes] = None
    ) -> KeywordAffectState:
        emotion = next((e for w, e in self.words.items() if text and w in text.lower()), "neutral")
        probs = {e: (0.7 if e == emotion else 0.05) for e in EMOTIONS}
        used = [m for m, v in (("text", text), ("voice", voice), ("face", face)) if v is not None]
        return KeywordAffectState(
            emotion,
            probs,
            "relax",
            {"explore": 0.2, "relax": 0.6, "focus": 0.2},
            0.7,
            used,
            {m: 1.0 / len(used) for m in used},
        )


class ContentDotRanker:
    """Test ranker: sigmoid of the item's e_sem mean plus an affect shift; weights from block norms."""

    names = ["item_sparse", "e_sem", "e_sty", "e_tsem"]
    history_len = 0  # reads no content profile
    affect_dim, affect_schema = 0, None  # the affect vector it gets is the AffectState's own

    def check_context(self, context):
        if context:
            raise ValueError(f"context: unknown key(s) {sorted(context)}; this ranker knows no explicit context")

    def cache_items(self, item_ids, item_features=None) -> int:
        return 0

    def score(
        self,
        user_id: str,
        item_ids: Sequence[str],
        affect_vector: Optional[np.ndarray] = None,
        item_features: Optional[Mapping[str, np.ndarray]] = None,
        history: Optional[Sequence[str]] = None,
        history_features: Optional[Mapping[str, np.ndarray]] = None,
    ):
        assert item_features is not None and len(item_features["e_sem"]) == len(item_ids)
        shift = 0.0 if affect_vector is None else float(affect_vector[3])  # joy makes everything brighter
        logits = item_features["e_sem"].mean(axis=1) * 3 + shift  # (n,)
        norms = np.stack(
            [np.ones(len(item_ids))] + [np.linalg.norm(item_features[n], axis=1) for n in self.names[1:]],
            axis=1,
        )  # (n, 4)
        weights = norms / norms.sum(axis=1, keepdims=True)
        return 1 / (1 + np.exp(-logits)), weights, list(self.names)


class PixelHashEncoder:
    """Test item encoder: vectors seeded by a hash of the decoded pixels (so it really decodes the image)."""

    def encode_item(
        self, image: bytes, title: str = "", tags: Sequence[Mapping[str, str]] = ()
    ) -> dict[str, np.ndarray]:
        from PIL import Image

        with Image.open(io.BytesIO(image)) as img:
            pixels = np.asarray(img.convert("RGB").resize((8, 8)))
        seed = int.from_bytes(hashlib.sha256(pixels.tobytes() + title.encode()).digest()[:8], "little")
        rng = np.random.default_rng(seed)
        return {n: rng.normal(size=d).astype(np.float32) for n, d in DIMS.items()}


def synthetic_catalog(n: int, seed: int = 0) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """``n`` items in 8 content clusters with styles and creators, and their vectors."""
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, 8, size=n)
    centers = {name: rng.normal(size=(8, d)) for name, d in DIMS.items()}
    vectors = {
        name: (centers[name][cluster] + 0.3 * rng.normal(size=(n, d))).astype(np.float32)
        for name, d in DIMS.items()
    }
    items = [
        {
            "item_id": f"i{i}",
            "title": f"illustration {i}",
            "tags": [{"text": f"c{cluster[i]}", "lang": "en"}],
            "creator_id": f"c{i % 17}",
            "style": STYLES[i % 4],
            "image_path": None,
            "created_at": 1_700_000_000.0 + i,
            "cluster": int(cluster[i]),
        }
        for i in range(n)
    ]
    return items, vectors


def png_bytes(color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (16, 16)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def wav_bytes(seconds: float = 0.5, rate: int = 16000) -> bytes:
    import soundfile

    buf = io.BytesIO()
    t = np.arange(int(seconds * rate)) / rate
    soundfile.write(buf, (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate, format="WAV")
    return buf.getvalue()


def open_state(
    db: Path,
    n_items: int = 300,
    api_key: Optional[str] = "test-key",
    demo_mode: bool = False,
    **service_overrides: Any,
):
    from aigcrec.service.config import ServiceConfig
    from aigcrec.service.state import ServiceState
    from aigcrec.service.store import ServiceStore

    config = ServiceConfig(
        api_key=api_key, demo_mode=demo_mode, sqlite_synchronous="FULL", **service_overrides
    )
    items, vectors = synthetic_catalog(n_items)
    store = ServiceStore(db, config.sqlite_synchronous)
    return ServiceState.open(
        config, store, items, vectors, ContentDotRanker(), KeywordAffect(), PixelHashEncoder()
    )


def support_app():  # pragma: no cover - runs in server processes
    """uvicorn factory: the test models over the synthetic catalog (``aigcrec.service.workers`` spec)."""
    from aigcrec.service.app import create_app
    from aigcrec.service.workers import current_spec

    from aigcrec.service.config import InputLimits

    spec = current_spec()
    extra = {"api_key": None, "demo_mode": True} if spec["demo"] else {}
    limits = InputLimits(**json.loads(spec.get("limits") or "{}"))
    return create_app(open_state(Path(spec["db"]), sync_interval_s=0.1, limits=limits, **extra))


def main() -> None:  # pragma: no cover - runs in a subprocess
    from aigcrec.service.config import ServiceConfig
    from aigcrec.service.workers import run

    p = argparse.ArgumentParser()
    p.add_argument("--db", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--demo", action="store_true", help="no API key; loopback writes allowed")
    p.add_argument("--limits", default="{}", help="service.limits overrides, as JSON")
    args = p.parse_args()
    svc = ServiceConfig(port=args.port, workers=args.workers, graceful_shutdown_s=10, limits=json.loads(args.limits))
    run("test_service_support:support_app", {"db": args.db, "demo": args.demo, "limits": args.limits}, svc)


if __name__ == "__main__":
    main()
