"""The policies of an online simulation: what each shows a session.

Three ask the service (``POST /v1/recommend``): ``affect_blind`` sends no signals (UMAIR-FPS without affect),
``affect_mmei`` sends the session's utterance, voice clip and face photo (MMEI reads them), ``affect_oracle``
states the session's true emotion and intent (``stated``; with ``oracle_signals`` the signals too). Three are
computed by the simulator from what it knows (their feedback still goes through the service): ``random``
(uniform over the items the user has not seen), ``popularity`` (most positive events so far) and ``ceiling``
(the k highest true probabilities: the best slate under the world's true model); ``ceiling_blind`` (not in
the default list) is the best slate without the session's state: the k highest true probabilities averaged
over the user's prior of emotion and intent, so ``ceiling / ceiling_blind`` is what knowing the state can
add at best on this world.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from aigcrec.simulate.scenario import Session


@dataclass(frozen=True)
class Policy:
    name: str
    served: bool         # the slate comes from POST /v1/recommend
    needs_affect: bool   # the service must load the affect model
    description: str


POLICIES: dict[str, Policy] = {p.name: p for p in (
    Policy("random", False, False, "k items drawn uniformly among those the user has not seen"),
    Policy("popularity", False, False, "the k unseen items with the most positive events (log + this run)"),
    Policy("affect_blind", True, False, "the service without signals (UMAIR-FPS, no affect context)"),
    Policy("affect_mmei", True, True,
           "the service with the session's text, voice and face (MMEI reads them)"),
    Policy("affect_oracle", True, True, "the service with the true emotion and intent stated explicitly"),
    Policy("ceiling", False, False, "the k unseen items with the highest true bookmark probability"),
    Policy("ceiling_blind", False, False, "the k unseen items with the highest true bookmark probability "
                                          "averaged over the user's prior of emotion and intent"),
)}


def signals_of(session: Session) -> dict[str, str]:
    """The session's utterance, voice clip and face photo as the request's ``signals`` (base64, in memory)."""
    return {"text": session.text,
            "voice": base64.b64encode(Path(session.voice_path).read_bytes()).decode("ascii"),
            "face": base64.b64encode(Path(session.face_path).read_bytes()).decode("ascii")}


def recommend_body(policy: Policy, session: Session, k: int, oracle_signals: bool) -> dict[str, Any]:
    """The ``POST /v1/recommend`` body of a served policy for one session."""
    body: dict[str, Any] = {"user_id": session.user_id, "k": k, "exclude_seen": True}
    if policy.name == "affect_mmei" or (policy.name == "affect_oracle" and oracle_signals):
        body["signals"] = signals_of(session)
    if policy.name == "affect_oracle":
        body["stated"] = {"emotion": session.state.emotion, "intent": session.state.intent}
    return body


def local_slate(policy: Policy, k: int, available: np.ndarray, probabilities: np.ndarray,
                blind: Optional[np.ndarray], positives: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rows shown by a simulator-side policy: ``available`` (n,) bool (in the catalog and unseen),
    ``probabilities`` (n,) the session's true expected probabilities, ``blind`` (n,) the same averaged over
    the user's prior of states (ceiling_blind only), ``positives`` (n,) counts so far."""
    rows = np.flatnonzero(available)                                   # (m,)
    if len(rows) == 0:
        return rows
    k = min(k, len(rows))
    if policy.name == "random":
        return rng.choice(rows, size=k, replace=False)
    scores = {"ceiling": probabilities, "ceiling_blind": blind, "popularity": positives}[policy.name]
    assert scores is not None
    score = np.asarray(scores, dtype=np.float64)[rows]
    top = np.argsort(-score, kind="stable")[:k]                         # ties: catalog order
    return rows[top]
