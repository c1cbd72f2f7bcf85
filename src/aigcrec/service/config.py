"""Configuration of the service stage (a section of ``AppConfig``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Optional

from pydantic import Field, field_validator, model_validator

from aigcrec.config_base import StrictModel
from aigcrec.content.config import ContentConfig


class InputLimits(StrictModel):
    """What one request may ask of the server, checked before the work it bounds (``docs/service.md``).

    Sizes are checked from headers (Content-Length, base64 length, image and WAV headers) before anything is
    decoded; a request over a size limit is refused with 413, one over a time limit with 408 or 503, and a
    connection that breaks a connection limit is closed. Every limit here is enforced by the server itself
    (the app, its ASGI guard or its uvicorn protocol), not left to a proxy in front.
    """

    # -- bodies and fields
    max_body_bytes: int = Field(16 * 1024 * 1024, gt=0, description="Whole request body.")
    max_feedback_bytes: int = Field(
        1024 * 1024, gt=0, description="Body of POST /v1/feedback, counted while it streams in (before parsing)."
    )
    max_image_bytes: int = Field(10 * 1024 * 1024, gt=0)
    max_image_pixels: int = Field(40_000_000, gt=0, description="Item images, from the header.")
    max_face_pixels: int = Field(
        4_000_000, gt=0, description="Face snapshots, from the header (a face needs far fewer pixels)."
    )
    max_decoded_bytes: int = Field(
        32 * 1024 * 1024,
        gt=0,
        description="Memory one image (item or face) may take once decoded, from its header after any "
        "reduced-scale decoding (JPEG): width x height x bytes a pixel in Pillow's storage (4 for RGB/RGBA/"
        "CMYK, 1 for L/P, 2 for 16-bit grey).",
    )
    item_side: int = Field(
        1024, gt=0, description="Item images are downscaled to at most this many pixels a side before encoding."
    )
    face_side: int = Field(
        640, gt=0, description="Faces are downscaled to at most this many pixels a side before detection."
    )
    max_audio_bytes: int = Field(10 * 1024 * 1024, gt=0)
    max_audio_seconds: float = Field(30.0, gt=0)
    min_audio_rate: int = Field(8_000, gt=0, description="Lowest WAV sample rate (Hz), from the header.")
    max_audio_rate: int = Field(192_000, gt=0, description="Highest WAV sample rate (Hz), from the header.")
    max_audio_channels: int = Field(8, gt=0)
    max_text_chars: int = Field(2000, gt=0)
    max_feedback_batch: int = Field(1000, gt=0)
    max_k: int = Field(100, gt=0)
    # -- work
    affect_timeout_s: float = Field(
        5.0, gt=0, description="Wall time one affect reading may take before the request is answered 503."
    )
    affect_threads: int = Field(2, gt=0, description="Threads reading affect (voice, face, text).")
    recommend_threads: int = Field(2, gt=0, description="Threads retrieving and ranking.")
    max_pending_affect: int = Field(
        64, gt=0, description="Affect readings running or queued; more are answered 503 at once."
    )
    max_pending_items: int = Field(
        64, gt=0, description="Item encodings running or queued (one encoder thread); more are answered 503."
    )
    idempotency_ttl_s: float = Field(
        86_400.0, gt=0, description="How long an Idempotency-Key's stored answer is replayed."
    )
    # -- connections (uvicorn protocol and the app's ASGI guard)
    max_header_bytes: int = Field(
        16 * 1024, gt=0, description="Request line plus headers; larger closes the connection (431/400)."
    )
    max_headers: int = Field(100, gt=0, description="Header lines per request; more answer 431.")
    header_timeout_s: float = Field(
        5.0, gt=0, description="From a connection's start (or its previous response) to the end of the headers."
    )
    body_timeout_s: float = Field(
        10.0, gt=0, description="From the headers to the end of the body (slow or never-sent bodies: 408)."
    )
    request_timeout_s: float = Field(
        30.0, gt=0, description="From the headers to the end of the response (503 when exceeded)."
    )
    keep_alive_s: float = Field(5.0, gt=0, description="Idle time before a keep-alive connection is closed.")
    max_connections: int = Field(
        1000, gt=0, description="Open connections or in-flight requests per server process; more answer 503."
    )


class SourceShares(StrictModel):
    """Shares of the candidate list each source fills (renormalised over the sources a request has).

    ``history``: FAISS over the mean content vector of the user's positives; ``two_tower``: the two-tower
    model's user tower (live history, user features, this request's affect context); ``collab``: the
    item-item model (EASE^R) on the user's live positives; ``query``: the
    utterance embedded into the e_TSEM space; ``fresh``: newest items; ``popular``: most bookmarked.
    """

    history: float = Field(0.0, ge=0)
    two_tower: float = Field(0.0, ge=0)
    collab: float = Field(0.0, ge=0)
    query: float = Field(0.0, ge=0)
    fresh: float = Field(0.0, ge=0)
    popular: float = Field(0.0, ge=0)


def _default_blend() -> dict[str, SourceShares]:
    s = SourceShares
    return {
        "none": s(history=0.35, two_tower=0.35, collab=0.35, query=0.10, fresh=0.10, popular=0.10),
        "explore": s(history=0.25, two_tower=0.25, collab=0.25, query=0.10, fresh=0.30, popular=0.10),
        "relax": s(history=0.30, two_tower=0.45, collab=0.45, query=0.10, fresh=0.05, popular=0.10),
        "get_inspired": s(history=0.30, two_tower=0.35, collab=0.35, query=0.15, fresh=0.10, popular=0.10),
        "find_specific": s(history=0.25, two_tower=0.20, collab=0.20, query=0.45, fresh=0.05, popular=0.05),
        "share": s(history=0.25, two_tower=0.35, collab=0.35, query=0.10, fresh=0.05, popular=0.25),
    }


class RetrievalConfig(StrictModel):
    """FAISS candidate retrieval over content embeddings, the two-tower model and the utterance."""

    features: list[str] = Field(
        default_factory=lambda: ["e_sem", "e_sty", "e_tsem"],
        description="Feature-store matrices concatenated (each L2-normalised).",
    )
    dim: int = Field(
        128, gt=0, description="PCA width of the retrieval vector when the concatenation is wider."
    )
    approx_min_items: int = Field(
        20_000,
        gt=0,
        description="From this catalog size (at start) on, the approximate index approx_kind replaces exact "
        "(flat) search; below it exact search is as fast (docs/scale.md).",
    )
    approx_kind: Literal["ivf", "hnsw"] = Field(
        "ivf",
        description="Approximate index: IVF-Flat (k-means lists) or HNSW (a proximity graph); both take live "
        "adds. Chosen by benchmarks/scale.py: recall@100 >= 0.95 at 10^6 items at the lowest latency.",
    )
    ivf_nlist: int = Field(
        0, ge=0, description="IVF inverted lists; 0 = round(sqrt(n)) at build (at most n / 39)."
    )
    ivf_nprobe: int = Field(
        32,
        gt=0,
        description="IVF lists scanned per query (recall against latency): the fewest that keep recall@100 >= "
        "0.95 at 10^5 and 10^6 items in benchmarks/scale.py (16 does at 10^6 but not at 10^5).",
    )
    hnsw_m: int = Field(32, gt=0, description="HNSW links per node (memory: 2 * hnsw_m ids per item).")
    hnsw_ef_construction: int = Field(40, gt=0, description="HNSW beam width while inserting.")
    hnsw_ef_search: int = Field(128, gt=0, description="HNSW beam width per query (recall against latency).")
    candidates: int = Field(
        100, gt=0, description="Candidates handed to the ranker (its cost grows linearly with them)."
    )
    history_len: int = Field(50, gt=0, description="Most recent positive items that form the user query.")
    fresh_share: float = Field(
        0.5, ge=0, le=1, description="Cold start: share of fresh (vs popular) candidates."
    )
    blend: dict[str, SourceShares] = Field(
        default_factory=_default_blend,
        description="Source shares by predicted intent, mixed by the intent probabilities; 'none' is used "
        "without an affect reading and for intents not listed. Applies when a two-tower model is loaded "
        "or the request has text; otherwise the sources are history, fresh and popular as above.",
    )

    @field_validator("blend")
    @classmethod
    def _has_none(cls, blend: dict[str, SourceShares]) -> dict[str, SourceShares]:
        if "none" not in blend:
            raise ValueError(f"expected a 'none' entry (shares without an affect reading), got {sorted(blend)}")
        return blend


class ServiceConfig(StrictModel):
    """Settings of ``aigcrec serve``."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    db_path: Optional[Path] = Field(
        None, description="SQLite file; default: service.sqlite in the run folder."
    )
    api_key: Optional[str] = Field(None, description="Bearer token for writes; AIGCREC_API_KEY overrides it.")
    demo_mode: bool = Field(
        False, description="Allow keyless writes from loopback clients (stated at start-up)."
    )
    sqlite_synchronous: Literal["NORMAL", "FULL"] = Field(
        "FULL", description="FULL fsyncs every acknowledged feedback batch (durable across power loss)."
    )
    default_k: int = Field(12, gt=0)
    diversity: float = Field(
        0.15, ge=0, description="Re-rank penalty per already-shown item of the same style or creator."
    )
    retrieval_weight: float = Field(
        0.0, ge=0, le=1, description="Share w of the two-tower's ranking in the final score, (1 - w - w_c) ranker "
        "+ w (1 - rank / depth) + w_c (1 - collab rank / depth) (service/pipeline.py fuse_retrieval); 0 (both): "
        "the ranker's score alone.",
    )
    collab_weight: float = Field(
        0.0, ge=0, le=1, description="Share w_c of the item-item model's ranking in the final score (as "
        "retrieval_weight; the two together at most 1).",
    )
    fuse_unknown: Literal["renormalize", "worst"] = Field(
        "renormalize", description="A candidate a retrieval model cannot score (the item-item model for an item "
        "without training positives or added after the build): 'renormalize' leaves that model out of the "
        "candidate's blend and divides by the weights left (so a new item competes on the other models' "
        "terms); 'worst' gives it that model's worst rank (its term 0: new items sink under a large "
        "collab_weight)."
    )
    torch_threads: int = Field(
        1, gt=0, description="Intra-op threads of the models in each server process (torch, ONNX Runtime, OpenCV)."
    )
    model_runtime: Literal["onnx", "torch"] = Field(
        "onnx",
        description="How the ranker and the affect text encoder run in the server: ONNX Runtime (exported in "
        "memory at start, outputs equal to torch within 1e-5; about half the CPU per request) or eager torch.",
    )
    workers: int = Field(
        1,
        gt=0,
        description="Server processes sharing the port and the SQLite file (each loads the models and the "
        "catalog; about one per CPU core). They follow the store's log, so an item or event written through "
        "one is served by all within sync_interval_s.",
    )
    sync_interval_s: float = Field(
        0.25, gt=0, description="How often a server process applies what others wrote to the SQLite file."
    )
    graceful_shutdown_s: float = Field(
        10.0, ge=0, description="How long shutdown waits for in-flight requests."
    )
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    limits: InputLimits = Field(default_factory=InputLimits)

    @model_validator(mode="after")
    def _weights_sum(self) -> "ServiceConfig":
        if self.retrieval_weight + self.collab_weight > 1.0 + 1e-9:
            raise ValueError(f"retrieval_weight {self.retrieval_weight:g} + collab_weight {self.collab_weight:g} "
                             "> 1: the ranker's share 1 - both would be negative")
        return self


@dataclass(frozen=True)
class ServingConfig:
    """The sections the served state reads. ``AppConfig`` has the same attributes and is passed as is: the
    service composes the stages and is composed by the top layer, so it never imports ``AppConfig``."""

    service: ServiceConfig
    content: ContentConfig
    seed: int = 0

    @classmethod
    def from_dump(cls, dump: Mapping[str, Any]) -> "ServingConfig":
        """From ``AppConfig.model_dump(mode="json")`` (what a server process receives); other sections ignored."""
        return cls(ServiceConfig.model_validate(dump.get("service", {})),
                   ContentConfig.model_validate(dump.get("content", {})), int(dump.get("seed", 0)))
