"""``AffectState``: what MMEI tells the ranker about a user's current emotion and intent."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class AffectState:
    """Calibrated emotion and intent of one request.

    emotion_probs: EMOTIONS order (7); intent_probs: the model's intent labels (K); embedding: fused (D,);
    confidence: the calibrated probability of the predicted emotion; modalities_used: the modalities that
    were given and usable (a photo without a face or a silent clip is not used); fusion_weights: attention
    of the fusion pooling per modality (0 for unused ones) and, for MMEI, on its cross-modal summary.
    """

    emotion: str
    emotion_probs: dict[str, float]
    intent: str
    intent_probs: dict[str, float]
    embedding: np.ndarray
    confidence: float
    modalities_used: list[str]
    fusion_weights: dict[str, float] = field(default_factory=dict)

    def as_vector(self) -> np.ndarray:
        """[emotion probs (7), intent probs (K), embedding (D)] as float32: the ranker's affect context."""
        return np.concatenate([np.fromiter(self.emotion_probs.values(), np.float32),
                               np.fromiter(self.intent_probs.values(), np.float32),
                               np.asarray(self.embedding, np.float32)])

    def to_dict(self) -> dict:
        """JSON-ready (the service's response body)."""
        return {"emotion": self.emotion, "emotion_probs": self.emotion_probs, "intent": self.intent,
                "intent_probs": self.intent_probs, "embedding": [float(v) for v in self.embedding],
                "confidence": self.confidence, "modalities_used": self.modalities_used,
                "fusion_weights": self.fusion_weights}
