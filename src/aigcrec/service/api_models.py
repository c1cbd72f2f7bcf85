"""Typed request and response bodies of the HTTP API (they are the OpenAPI documentation at ``/docs``).

Every string a client sends passes one of three shared checks (``Text``, ``Label``, ``Id``) at the boundary,
so a value the models, the tokenizer or SQLite cannot take is a 422 naming the field, never a 500 later:
no lone surrogates or other invalid code points in any field; labels and ids are NFC-normalised and hold
no control, format (zero-width) or unassigned characters. Numbers and booleans are strict (``true`` is not 1).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    model_validator,
)

from aigcrec.data.schemas import EMOTIONS
from aigcrec.service.store import EVENT_TYPES

EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]  # one list for the store and the API
STATED_SUM_TOLERANCE = 0.01
"""How far stated probabilities may sum from 1 (they are renormalised)."""

_ALLOWED_ASCII = bytes(range(32, 127)) + b"\t\n\r"
_BAD_BMP = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufdd0-\ufdef\ufffe\uffff]")
_BAD_ASTRAL_UTF8 = re.compile(rb"[\xf0-\xf4][\x8f\x9f\xaf\xbf]\xbf[\xbe\xbf]")
"""U+nFFFE and U+nFFFF of planes 1-16 in UTF-8 (a bytes regex: a str class of 32 code points is slow)."""


def _first_invalid(value: str) -> Optional[tuple[int, int]]:
    """(position, code point) of the first character refused in every string, or None: C0/C1 controls
    but tab and newlines, surrogates (lone ones reach Python from JSON escapes) and noncharacters.
    Linear and in C (bytes.translate, str.encode, small regexes): a 10 MB field costs tens of ms."""
    if value.isascii():
        if not value.encode("ascii").translate(None, _ALLOWED_ASCII):
            return None
        bad = _BAD_BMP.search(value)
    else:
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return exc.start, ord(value[exc.start])
        bad = _BAD_BMP.search(value)
        if bad is None:
            astral = _BAD_ASTRAL_UTF8.search(data)
            if astral is not None:
                at = len(data[: astral.start()].decode("utf-8"))
                return at, ord(value[at])
    return None if bad is None else (bad.start(), ord(bad.group()))


_LABEL_CHARS = 4096
"""Labels and ids are checked one character at a time; longer ones are refused before (their own
``max_length`` is far lower)."""


def _code_point_problem(value: str, strict: bool) -> Optional[str]:
    """Why ``value`` is refused, or None; ``strict`` (labels, ids) also refuses every control, format
    (zero-width joiners, bidi marks), private-use and unassigned code point."""
    bad = _first_invalid(value)
    if bad is not None:
        kind = "a lone surrogate" if 0xD800 <= bad[1] <= 0xDFFF else "the invalid character"
        return f"{kind} U+{bad[1]:04X} at position {bad[0]}"
    if strict:
        if len(value) > _LABEL_CHARS:
            return f"{len(value)} characters (at most {_LABEL_CHARS})"
        for i, ch in enumerate(value):
            if unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cn"):
                return f"the invisible or unassigned character U+{ord(ch):04X} at position {i}"
    return None


def _checked(strict: bool):
    def check(value: Any) -> Any:
        if not isinstance(value, str):
            return value  # the str type itself refuses it, with pydantic's message
        problem = _code_point_problem(value, strict)
        if problem is not None:
            raise ValueError(f"expected valid Unicode text, got {problem}")
        return unicodedata.normalize("NFC", value) if strict else value

    return check


Text = Annotated[str, BeforeValidator(_checked(strict=False))]
"""Free text (titles, tags, the mood text): any valid Unicode, tab and newlines included."""
Label = Annotated[str, BeforeValidator(_checked(strict=True))]
"""A short name (creator, style, session): NFC, visible characters and spaces only."""
Id = Annotated[Label, Field(min_length=1, max_length=128, pattern=r"^[\w.:@-]+$")]
"""A user or item id: a Label of word characters and ``. : @ -``."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Signals(_Body):
    """What the user shares now; any subset. Limits (text length, image bytes and pixels, audio seconds)
    are the server's ``service.limits`` and are checked before decoding."""

    text: Optional[Text] = Field(
        None,
        description="How the user feels or what they want, in words.",
        examples=["something calm and dreamy for tonight"],
    )
    voice: Optional[Text] = Field(None, description="A WAV clip, base64 (a data: URL prefix is accepted).")
    face: Optional[Text] = Field(None, description="A face snapshot (PNG/JPEG/WebP/GIF/BMP), base64.")


EmotionLabel = Literal[EMOTIONS]  # type: ignore[valid-type]  # the affect models' emotion labels
Probabilities = Annotated[
    dict[Annotated[Label, Field(max_length=64)],
         Union[Annotated[StrictFloat, Field(ge=0, le=1)], Annotated[StrictInt, Field(ge=0, le=1)]]],
    Field(min_length=1, max_length=64),
]


class StatedAffect(_Body):
    """The user's affect state stated explicitly (a mood picker), beside or instead of the signals.

    Each part is a label (probability 1) or probabilities over labels summing to 1 (labels left out are 0).
    A stated part replaces what the affect model read from the signals; a part not stated comes from the
    signals, or without signals from the affect model's prior. Emotions are ``EMOTIONS``; intents are the
    loaded affect model's (a label it does not know is a 422 naming it and the known ones).
    """

    emotion: Optional[Union[EmotionLabel, Probabilities]] = Field(
        None, description=f"One of {list(EMOTIONS)}, or probabilities over them summing to 1.",
        examples=["sadness", {"sadness": 0.7, "neutral": 0.3}],
    )
    intent: Optional[Union[Annotated[Label, Field(min_length=1, max_length=64)], Probabilities]] = Field(
        None, description="One of the affect model's intents (the world's: explore, relax, get_inspired, "
                          "find_specific, share), or probabilities over them summing to 1.",
        examples=["relax"],
    )

    @model_validator(mode="after")
    def _check(self) -> "StatedAffect":
        if self.emotion is None and self.intent is None:
            raise ValueError("expected emotion, intent or both")
        for name in ("emotion", "intent"):
            value = getattr(self, name)
            if isinstance(value, dict):
                total = sum(value.values())
                if abs(total - 1.0) > STATED_SUM_TOLERANCE:
                    raise ValueError(f"{name}: expected probabilities summing to 1, got {total:.4g}")
        bad = [e for e in (self.emotion if isinstance(self.emotion, dict) else {}) if e not in EMOTIONS]
        if bad:
            raise ValueError(f"emotion: unknown label {bad[0]!r}; expected one of {list(EMOTIONS)}")
        return self


class RecommendRequest(_Body):
    user_id: Id
    k: Optional[StrictInt] = Field(
        None, ge=1, description="How many items (default service.default_k, max service.limits.max_k)."
    )
    signals: Optional[Signals] = None
    context: Optional[Annotated[dict[Annotated[Label, Field(max_length=64)],
                                     Union[Annotated[Label, Field(max_length=128)], StrictFloat, StrictInt]],
                                Field(max_length=32)]] = Field(
        None,
        description="Explicit context beside the signals (a mood picker, a stated purpose, the time of day), "
                    "column -> label or number, for a ranker trained with context columns; a key the ranker "
                    "does not know is an error naming it and the known ones. Absent keys are missing.",
        examples=[{"mood": "negative", "purpose": "relax"}],
    )
    stated: Optional[StatedAffect] = Field(
        None,
        description="The affect state stated explicitly (a mood picker, or a simulation's true state): "
                    "replaces the parts the affect model would read from the signals; needs an affect model.",
        examples=[{"emotion": "sadness", "intent": "relax"}],
    )
    exclude_seen: StrictBool = Field(True, description="Leave out items the user already saw or acted on.")


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


RequestId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$", min_length=32, max_length=32)]
"""A recommendation's id: 32 lowercase hex digits (the ``request_id`` of its response)."""


class RecommendResponse(BaseModel):
    request_id: str = Field(
        description="Id of this list in the event log (the items, positions, scores, sources and the derived "
                    "context it was served in); name it in the feedback that answers the list."
    )
    user_id: str
    items: list[RecommendedItem]
    explanation: Explanation
    timings_ms: dict[str, float]


class TagIn(_Body):
    text: Text = Field(min_length=1, max_length=200)
    lang: Label = Field("en", min_length=2, max_length=8)


class ItemIn(_Body):
    item_id: Optional[Id] = Field(None, description="Defaults to a new random id.")
    title: Text = Field(min_length=1, max_length=500)
    tags: list[TagIn] = Field(default_factory=list, max_length=64)
    creator_id: Optional[Label] = Field(None, min_length=1, max_length=128)
    style: Optional[Label] = Field(None, min_length=1, max_length=64)
    image: Text = Field(description="The illustration (PNG/JPEG/WebP/GIF/BMP), base64.")


class ItemOut(BaseModel):
    item_id: str
    title: str
    tags: list[dict[str, str]]
    creator_id: Optional[str] = None
    style: Optional[str] = None
    created_at: float
    origin: Literal["catalog", "api"]
    image_url: str


class ItemCreated(ItemOut):
    replayed: bool = Field(
        False, description="True when this is the stored answer to an earlier request with the same Idempotency-Key."
    )


class FeedbackEvent(_Body):
    user_id: Id
    item_id: Id
    type: EventType
    value: Optional[StrictFloat] = Field(
        None, ge=0, le=86_400, description="Dwell time in seconds (type dwell)."
    )
    timestamp: Optional[StrictFloat] = Field(
        None, ge=0, le=4e9, description="Unix seconds, stored as given (0 included); default: arrival time."
    )
    session_id: Optional[Label] = Field(None, max_length=128)
    request_id: Optional[RequestId] = Field(
        None, description="The recommendation this event answers (its response's request_id): the event must be "
                          "by that user on an item of that list, else it is rejected.")


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
    replayed: bool = Field(
        False, description="True when this is the stored answer to an earlier request with the same Idempotency-Key."
    )


class Health(BaseModel):
    status: str
    items: Optional[int] = None
    index: Optional[str] = None
    process: Optional[int] = Field(None, description="PID of the server process that answered.")
