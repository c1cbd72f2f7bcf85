"""Configuration of the world stage (a section of ``AppConfig``).

``WorldConfig`` holds what does not depend on the seed: the size preset, optional count overrides, the
image size, and the knobs of the generative model (click model, affect noise). Every knob is described in
``docs/world.md``; ``truth.json`` of a generated world records the values it was made with.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from aigcrec.config_base import StrictModel

SizeName = Literal["tiny", "small", "default"]


class SizePreset(StrictModel):
    """Counts of one world size."""

    n_items: int
    n_users: int
    n_sessions: int
    impressions_per_session: float = Field(description="Mean impressions per session (Poisson, at least 3).")
    n_creators: int
    n_series: int
    image_size: int
    face_size: int = 96
    days: float = Field(60.0, description="Length of the simulated period in days.")


SIZES: dict[str, SizePreset] = {
    "tiny": SizePreset(n_items=120, n_users=40, n_sessions=300, impressions_per_session=6.7, n_creators=8,
                       n_series=12, image_size=128, face_size=64, days=20.0),
    "small": SizePreset(n_items=600, n_users=150, n_sessions=1500, impressions_per_session=10.0, n_creators=20,
                        n_series=40, image_size=256),
    "default": SizePreset(n_items=2000, n_users=500, n_sessions=5000, impressions_per_session=10.0,
                          n_creators=40, n_series=120, image_size=256),
}


class ClickKnobs(StrictModel):
    """Coefficients of the click (bookmark) model; see docs/world.md for the equation."""

    bias: float = Field(-2.6, description="b0: global intercept of the bookmark logit.")
    style_scale: float = Field(2.4, description="Scale of the style term for a user whose style weight is 1.")
    subject_scale: float = Field(2.4, description="Scale of the subject term for a user whose subject weight is 1.")
    mood_scale: float = Field(2.6, description="Scale of the session mood term (emotion x intent -> palette).")
    creator_bonus: float = Field(0.9, description="Added when the item's creator is followed by the user.")
    popularity_scale: float = Field(0.5, description="Times the item's standardised log-popularity times the "
                                                      "user's popularity bias.")
    series_bonus: float = Field(0.4, description="Added when the item's series is one the user is a fan of.")
    noise_sd: float = Field(0.3, description="Standard deviation of Gaussian noise added to each logit.")
    taste_concentration: float = Field(0.6, description="Dirichlet concentration of users' taste over "
                                                         "styles/subjects (lower = pickier users).")


class ExposureKnobs(StrictModel):
    """How the platform chooses what a session shows (before the user reacts)."""

    popular_share: float = Field(0.35, description="Share of impressions drawn by item popularity.")
    personal_share: float = Field(0.35, description="Share drawn by a noisy estimate of the user's taste.")
    fresh_share: float = Field(0.30, description="Share drawn uniformly among items created in the last days.")
    fresh_days: float = Field(10.0, description="Window of 'fresh' items in days.")


class TextKnobs(StrictModel):
    """How completely uploaders describe their items (titles and tags), as on real AIGC platforms."""

    descriptive_tag_rate: float = Field(
        0.5, ge=0, le=1,
        description="P(each descriptive tag is given): subject, painting style, palette and the subject-related "
                    "tag are kept or left out independently per item.")
    untitled_rate: float = Field(
        0.4, ge=0, le=1,
        description="P(an item is titled 'Untitled' / '無題' / '无题' instead of a descriptive title; its "
                    "character, if any, is still a tag).")


PHENOMENA: dict[str, tuple[str, ...]] = {
    "sarcasm": ("anger", "disgust"),
    "masking": ("sadness", "fear", "anger", "disgust"),
    "arousal_wording": ("joy", "surprise", "fear"),
}
"""Each cross-modal phenomenon and the emotions whose sessions it can occur in (docs/world.md)."""
EMOTION_PRIOR: dict[str, float] = {"anger": 0.1, "disgust": 0.07, "fear": 0.1, "joy": 0.22, "neutral": 0.24,
                                   "sadness": 0.15, "surprise": 0.12}
"""Global prior of a session's emotion (each user's prior is a Dirichlet around it)."""
PHENOMENON_MAX: dict[str, float] = {name: round(sum(EMOTION_PRIOR[e] for e in emos), 4)
                                    for name, emos in PHENOMENA.items()}
"""The largest prevalence of each phenomenon: the share of sessions whose emotion it applies to."""


class AffectKnobs(StrictModel):
    """Noise of the simulated affect signals (each modality alone informative but imperfect)."""

    intensity_alpha: float = Field(2.2, description="Beta(alpha, beta) of a session's expressiveness, shared by "
                                                    "all modalities.")
    intensity_beta: float = Field(1.4, description="See intensity_alpha.")
    text_no_emotion: float = Field(0.30, description="P(utterance states only the request, no emotion words).")
    text_ambiguous: float = Field(0.12, description="P(utterance uses a hedge/ambiguous emotion phrase).")
    face_neutral_mask: float = Field(0.22, description="P(face shows a near-neutral expression).")
    voice_flat: float = Field(0.22, description="P(voice has a flat, near-neutral prosody).")
    disagree: float = Field(0.10, description="P(one modality, chosen at random, shows a different emotion).")
    text_intent_no_request: float = Field(0.12, description="P(utterance states no request: intent is only "
                                                            "implied by the emotion).")
    typo_rate: float = Field(0.04, description="Per-word probability of a typo in an utterance.")
    face_noise: float = Field(0.06, description="Standard deviation of pixel noise on faces (0-1 scale).")
    voice_snr_db: float = Field(22.0, description="Mean signal-to-noise ratio of voice clips in dB.")
    # Cross-modal phenomena (docs/world.md): each a share of all sessions, drawn only in the sessions whose
    # emotion it applies to, on its own random stream. 0 in the embedded default world (its published figures
    # were measured without them); benchmarks/affect_world_crossmodal.yaml sets the documented values.
    sarcasm: float = Field(
        0.0, ge=0, le=PHENOMENON_MAX["sarcasm"],
        description="Share of sessions that are sarcastic (anger or disgust only): the utterance states joy; "
                    "voice and face show the true emotion with a sarcastic cue (lower, flatter, slower prosody; "
                    "a one-sided smirk with a raised brow). Documented value 0.05.")
    masking: float = Field(
        0.0, ge=0, le=PHENOMENON_MAX["masking"],
        description="Share of sessions with a masked face (sadness, fear, anger or disgust only): the face shows "
                    "a polite smile without smiling eyes; text and voice show the true emotion. Documented 0.10.")
    arousal_wording: float = Field(
        0.0, ge=0, le=PHENOMENON_MAX["arousal_wording"],
        description="Share of sessions whose utterance is an exclamation shared by joy, surprise and fear "
                    "('wow', 'oh my god'; those emotions only): the voice's prosody tells which. Documented 0.05.")

    @model_validator(mode="after")
    def _phenomena_fit(self) -> AffectKnobs:
        for emotion, total in self.phenomenon_rates().items():
            if sum(total.values()) > 1 + 1e-9:
                raise ValueError(f"the cross-modal phenomena of {emotion} sessions add up to more than all of them "
                                 f"({', '.join(f'{k} {v:.2f}' for k, v in total.items())}): lower "
                                 + " or ".join(total))
        return self

    def phenomenon_rates(self) -> dict[str, dict[str, float]]:
        """P(phenomenon | the session's emotion) for each emotion a phenomenon applies to: its prevalence over
        the share of sessions with an emotion it applies to (a session has at most one phenomenon)."""
        out: dict[str, dict[str, float]] = {}
        for name, emotions in PHENOMENA.items():
            for e in emotions:
                out.setdefault(e, {})[name] = float(getattr(self, name)) / PHENOMENON_MAX[name]
        return out

    def phenomena(self) -> dict[str, float]:
        """The cross-modal phenomena's prevalences (share of all sessions), by name."""
        return {name: float(getattr(self, name)) for name in PHENOMENA}


class WorldConfig(StrictModel):
    """Settings of the world stage: which size to build and the knobs of its generative model."""

    size: SizeName = Field("default", description="Size preset: tiny (tests), small, default (the demo).")
    seed: int | None = Field(None, description="Seed of the world; None uses the run's seed.")
    image_size: int | None = Field(None, ge=32, le=1024, description="Item image side in pixels; None uses "
                                                                        "the size preset (tiny 128, else 256).")
    n_items: int | None = Field(None, ge=16, description="Override of the preset's item count.")
    n_users: int | None = Field(None, ge=4, description="Override of the preset's user count.")
    n_sessions: int | None = Field(None, ge=8, description="Override of the preset's session count.")
    workers: int = Field(2, ge=1, le=64, description="Processes used to draw images (output does not depend "
                                                     "on it).")
    click: ClickKnobs = Field(default_factory=ClickKnobs)
    exposure: ExposureKnobs = Field(default_factory=ExposureKnobs)
    text: TextKnobs = Field(default_factory=TextKnobs)
    affect: AffectKnobs = Field(default_factory=AffectKnobs)

    def preset(self) -> SizePreset:
        """The size preset with this config's overrides applied."""
        base = SIZES[self.size]
        upd = {k: v for k, v in (("n_items", self.n_items), ("n_users", self.n_users),
                                 ("n_sessions", self.n_sessions), ("image_size", self.image_size)) if v is not None}
        return base.model_copy(update=upd)
