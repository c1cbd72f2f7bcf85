"""The affect state a request states explicitly (``RecommendRequest.stated``: a mood picker, or the true
session state of a simulation) merged into the state the affect model read.

A stated part (emotion, intent) replaces the read probabilities of that part; the rest of the state (the
other part, the fused embedding, the modalities used, the fusion weights) is the reading's, or without
signals the affect model's prior. The ranker then encodes the merged state like any other
(``RecommendPipeline.affect_context``), so a stated state reaches it in the format it was trained on.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Union

STATED = "stated"
"""Added to ``modalities_used`` of a state with a stated part (the explanation shows it)."""

Stated = Optional[Union[str, Mapping[str, float]]]


def stated_probabilities(value: Stated, labels: list[str], name: str) -> Optional[dict[str, float]]:
    """A stated label (probability 1) or probabilities (renormalised) as ``{label: p}`` over ``labels``,
    in their order; None when nothing is stated. ``ValueError`` naming ``stated.<name>`` and the known labels
    for a label not in ``labels``."""
    if value is None:
        return None
    given = {value: 1.0} if isinstance(value, str) else {str(k): float(v) for k, v in value.items()}
    unknown = [k for k in given if k not in labels]
    if unknown:
        raise ValueError(f"stated.{name}: unknown label {unknown[0]!r}; this affect model's labels are "
                         f"{labels}")
    total = sum(given.values())
    if total <= 0:
        raise ValueError(f"stated.{name}: expected probabilities summing to 1, got all zeros")
    return {k: given.get(k, 0.0) / total for k in labels}


def stated_state(base: Any, emotion: Stated = None, intent: Stated = None) -> Any:
    """``base`` (an AffectState-like dataclass) with the stated parts replacing its probabilities."""
    emotion_probs = stated_probabilities(emotion, list(base.emotion_probs), "emotion")
    intent_probs = stated_probabilities(intent, list(base.intent_probs), "intent")
    changes: dict[str, Any] = {"modalities_used": [*base.modalities_used, STATED]}
    if emotion_probs is not None:
        top = max(emotion_probs, key=emotion_probs.__getitem__)
        changes.update(emotion=top, emotion_probs=emotion_probs, confidence=emotion_probs[top])
    if intent_probs is not None:
        changes.update(intent=max(intent_probs, key=intent_probs.__getitem__), intent_probs=intent_probs)
    return dataclasses.replace(base, **changes)
