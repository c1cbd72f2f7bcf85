"""Configuration of the service stage (a section of ``AppConfig``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import Field

from aigcrec.config_base import StrictModel


class InputLimits(StrictModel):
    """Limits checked before any decoding (a request over a limit is refused with 413/422)."""

    max_body_bytes: int = Field(16 * 1024 * 1024, gt=0, description="Whole request body.")
    max_image_bytes: int = Field(10 * 1024 * 1024, gt=0)
    max_image_pixels: int = Field(40_000_000, gt=0)
    max_audio_bytes: int = Field(10 * 1024 * 1024, gt=0)
    max_audio_seconds: float = Field(30.0, gt=0)
    max_text_chars: int = Field(2000, gt=0)
    max_feedback_batch: int = Field(1000, gt=0)
    max_k: int = Field(100, gt=0)


class RetrievalConfig(StrictModel):
    """FAISS candidate retrieval over content embeddings."""

    features: list[str] = Field(
        default_factory=lambda: ["e_sem", "e_sty", "e_tsem"],
        description="Feature-store matrices concatenated (each L2-normalised).",
    )
    dim: int = Field(
        128, gt=0, description="PCA width of the retrieval vector when the concatenation is wider."
    )
    ivf_min_items: int = Field(
        20_000, gt=0, description="From this catalog size on, an IVF index replaces flat."
    )
    ivf_nprobe: int = Field(16, gt=0)
    candidates: int = Field(
        100, gt=0, description="Candidates handed to the ranker (its cost grows linearly with them)."
    )
    history_len: int = Field(50, gt=0, description="Most recent positive items that form the user query.")
    fresh_share: float = Field(
        0.5, ge=0, le=1, description="Cold start: share of fresh (vs popular) candidates."
    )


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
