"""The records every stage exchanges: items, users, interactions and affect samples.

Loaders turn each dataset format into these; the world generator writes files that load into them.
Columnar code (training, encoding) uses pandas frames with the same column names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

EMOTIONS: tuple[str, ...] = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
"""The 7 emotion classes shared by MELD, FER2013 (renamed) and the world, in this fixed order."""

# The world layout's label sets (docs/world.md; aigcrec.world.vocab adds their names in en/ja/zh).
INTENTS: tuple[str, ...] = ("explore", "relax", "get_inspired", "find_specific", "share")
"""Default AIGC browsing intents (docs/world.md): what the user came for in this session."""

SUBJECTS: tuple[str, ...] = ("cat", "girl", "dragon", "castle", "forest", "ocean", "robot", "flowers")
STYLES: tuple[str, ...] = ("cel", "watercolor", "pencil", "pixel", "impasto", "ink", "pointillism", "halftone")
PALETTES: tuple[str, ...] = ("bright_warm", "dark_cool", "pastel_calm", "high_contrast_red", "misty_gray",
                             "vivid_neon")



class Tag(BaseModel):
    """A tag with its language (ISO 639-1: en, ja, zh, ...)."""

    model_config = ConfigDict(frozen=True)
    text: str = Field(min_length=1)
    lang: str = Field(default="en", min_length=2, max_length=8)


class Item(BaseModel):
    """A piece of content: an illustration (or poster, cover, ...) with its title and tags."""

    item_id: str = Field(min_length=1)
    title: str = ""
    tags: list[Tag] = Field(default_factory=list)
    creator_id: Optional[str] = None
    media_path: Optional[str] = Field(default=None, description="Image (or other media) file, relative to the catalog.")
    created_at: Optional[datetime] = None
    extra: dict[str, Any] = Field(default_factory=dict, description="Free fields (genres, series, year, ...).")


class User(BaseModel):
    """A user and whatever features are known (any may be missing)."""

    user_id: str = Field(min_length=1)
    features: dict[str, Any] = Field(default_factory=dict)


class Interaction(BaseModel):
    """One impression: label 1 = bookmarked/liked, 0 = viewed but not bookmarked (UMAIR-FPS convention)."""

    user_id: str = Field(min_length=1)
    item_id: str = Field(min_length=1)
    label: Literal[0, 1]
    timestamp: float = Field(description="Unix seconds.")
    session_id: Optional[str] = None
    context: dict[str, Any] = Field(default_factory=dict, description="Session context, e.g. emotion, intent.")


class AffectSample(BaseModel):
    """One affect observation: any subset of text, voice (audio path) and face (image path), with labels."""

    sample_id: str = Field(min_length=1)
    text: Optional[str] = None
    audio_path: Optional[str] = None
    image_path: Optional[str] = None
    emotion: Optional[str] = None
    intent: Optional[str] = None
