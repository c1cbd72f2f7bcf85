"""Typed request and response bodies of the HTTP API (they are the OpenAPI documentation at ``/docs``)."""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from aigcrec.service.store import EVENT_TYPES

EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]  # one list for the store and the API

_Id = Field(min_length=1, max_length=128, pattern=r"^[\w.:@-]+$")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Signals(_Body):
    """What the user shares now; any subset. Limits (text length, image bytes and pixels, audio seconds)
    are the server's ``service.limits`` and are checked before decoding."""

    text: Optional[str] = Field(
        None,
        description="How the user feels or what they want, in words.",
        examples=["something calm and dreamy for tonight"],
    )
    voice: Optional[str] = Field(None, description="A WAV clip, base64 (a data: URL prefix is accepted).")
    face: Optional[str] = Field(None, description="A face snapshot (PNG/JPEG/WebP/GIF/BMP), base64.")


class RecommendRequest(_Body):
    user_id: str = _Id
    k: Optional[int] = Field(
        None, ge=1, description="How many items (default service.default_k, max service.limits.max_k)."
    )
    signals: Optional[Signals] = None
    context: Optional[dict[str, Union[str, float]]] = Field(
        None,
        description="Explicit context beside the signals (a mood picker, a stated purpose, the time of day), "
                    "column -> label or number, for a ranker trained with context columns; a key the ranker "
                    "does not know is an error naming it and the known ones. Absent keys are missing.",
        examples=[{"mood": "negative", "purpose": "relax"}],
    )
    exclude_seen: bool = Field(True, description="Leave out items the user already saw or acted on.")


class AffectRequest(_Body):
    signals: Signals


class AffectOut(BaseModel):
    emotion: str
    emotion_probs: dict[str, float]
    intent: str
    intent_probs: dict[str, float]
    confidence: float
    modalities_used: list[str]
    fusion_weights: dict[str, float] = Field(
        description="How much each signal contributed to the fused state."
    )


class RecommendedItem(BaseModel):
    item_id: str
    score: float = Field(description="Ranker probability of a bookmark, in the affect context when given.")
    source: str = Field(description="Where the candidate came from: similar_to_history, fresh or popular.")
    modality_weights: dict[str, float] = Field(
        description="UMCM contribution of each modality for this user and item."
    )
    title: str
    creator_id: Optional[str] = None
    style: Optional[str] = None
    image_url: str


class Explanation(BaseModel):
    affect: Optional[AffectOut] = None
    modality_names: list[str]
    modality_weights: dict[str, float] = Field(description="UMCM weights averaged over the returned items.")
    cold_start: bool = Field(description="True when the user has no history: fresh and popular candidates.")
    sources: dict[str, int]


class RecommendResponse(BaseModel):
    user_id: str
    items: list[RecommendedItem]
    explanation: Explanation
    timings_ms: dict[str, float]


class TagIn(_Body):
    text: str = Field(min_length=1, max_length=200)
    lang: str = Field("en", min_length=2, max_length=8)


class ItemIn(_Body):
    item_id: Optional[str] = Field(
        None, min_length=1, max_length=128, pattern=r"^[\w.:@-]+$", description="Defaults to a new random id."
    )
    title: str = Field(min_length=1, max_length=500)
    tags: list[TagIn] = Field(default_factory=list, max_length=64)
    creator_id: Optional[str] = Field(None, min_length=1, max_length=128)
    style: Optional[str] = Field(None, min_length=1, max_length=64)
    image: str = Field(description="The illustration (PNG/JPEG/WebP/GIF/BMP), base64.")


class ItemOut(BaseModel):
    item_id: str
    title: str
    tags: list[dict[str, str]]
    creator_id: Optional[str] = None
    style: Optional[str] = None
    created_at: float
    origin: Literal["catalog", "api"]
    image_url: str


class FeedbackEvent(_Body):
    user_id: str = _Id
    item_id: str = _Id
    type: EventType
    value: Optional[float] = Field(None, ge=0, le=86_400, description="Dwell time in seconds (type dwell).")
    timestamp: Optional[float] = Field(None, ge=0, le=4e9, description="Unix seconds; default: arrival time.")
    session_id: Optional[str] = Field(None, max_length=128)


class FeedbackBatch(_Body):
    events: list[FeedbackEvent] = Field(min_length=1)


FeedbackIn = Union[FeedbackEvent, FeedbackBatch]


class Rejected(BaseModel):
    index: int
    reason: str


class FeedbackAck(BaseModel):
    accepted: int
    first_seq: Optional[int] = Field(None, description="Event-log sequence numbers given to this batch.")
    last_seq: Optional[int] = None
    rejected: list[Rejected] = Field(default_factory=list, description="Events skipped, with why.")


class Health(BaseModel):
    status: str
    items: Optional[int] = None
    index: Optional[str] = None
    process: Optional[int] = Field(None, description="PID of the server process that answered.")
