"""``TrueClickModel``: the world's true bookmark probability of any user, session state and items.

The world draws its impressions with the click (bookmark) model of docs/world.md (``simulate.simulate``);
this module evaluates the same equation from a generated world's ``truth.json`` for slates the world never
showed, so that an online simulation (``aigcrec simulate``) can ask what a user would do with any list:

    z(u, s, i) = b0 + style_scale * w_style[u] * A_style[u, style_i]
               + subject_scale * w_subject[u] * A_subject[u, subject_i]
               + mood_scale * w_mood[u] * M[e_s, k_s, palette_i]
               + creator_bonus * [u follows creator_i] + series_bonus * [u is a fan of series_i]
               + popularity_scale * popularity_bias[u] * R[k_s] * pop_i
               + find_specific_bonus * [k_s = find_specific] * [item i has the session's target]
    P(bookmark | u, s, i, eps) = sigmoid(z + eps),   eps ~ N(0, noise_sd^2), drawn per impression.

``logits`` gives z, ``probabilities`` the expected probability over eps (what a slate's "expected utility"
sums), ``draw`` one impression's outcome with its own eps. ``impressions_truth.csv`` records
sigmoid(z + eps) of the world's own impressions: logit(p) - z is that impression's eps (the tests check it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from aigcrec.data.world import World
from aigcrec.world.simulate import EMOTION_INTENT
from aigcrec.world.vocab import EMOTIONS, INTENTS, PALETTES, STYLES, SUBJECTS

_HERMITE_NODES = 24
"""Gauss-Hermite nodes of E_eps[sigmoid(z + eps)] (exact to ~1e-9 for the world's noise levels)."""


@dataclass(frozen=True)
class SessionState:
    """What a session's clicks depend on besides the user: emotion, intent and (find_specific) the target.

    ``target``: ``"style:<style>"`` or ``"subject:<subject>"`` (the world's ``affect/signal_truth.csv``), or
    None (then the find_specific bonus is 0).
    """

    emotion: str
    intent: str
    target: Optional[str] = None

    def __post_init__(self) -> None:
        if self.emotion not in EMOTIONS:
            raise ValueError(f"emotion: expected one of {EMOTIONS}, got {self.emotion!r}")
        if self.intent not in INTENTS:
            raise ValueError(f"intent: expected one of {INTENTS}, got {self.intent!r}")
        if self.target is not None:
            kind, _, label = self.target.partition(":")
            if label not in {"style": STYLES, "subject": SUBJECTS}.get(kind, ()):
                raise ValueError(f"target: expected 'style:<style>' or 'subject:<subject>', "
                                 f"got {self.target!r}")


class TrueClickModel:
    """The click equation over a fixed list of items (rows of ``items``), for any user of ``truth``.

    ``items``: item_id, style, subject, palette, creator_id, series_id (a world's ``items.csv``);
    ``truth``: the world's ``truth.json`` (users, mood table, item popularity, knobs).
    """

    def __init__(self, items: pd.DataFrame, truth: dict[str, Any]) -> None:
        knobs = truth["knobs"]["click"]
        self.bias = float(knobs["bias"])
        self.style_scale, self.subject_scale = float(knobs["style_scale"]), float(knobs["subject_scale"])
        self.mood_scale, self.popularity_scale = float(knobs["mood_scale"]), float(knobs["popularity_scale"])
        self.creator_bonus, self.series_bonus = float(knobs["creator_bonus"]), float(knobs["series_bonus"])
        self.noise_sd = float(knobs["noise_sd"])
        self.find_specific_bonus = float(truth["find_specific_bonus"])
        self.intent_popularity = {k: float(v) for k, v in truth["intent_popularity"].items()}
        self.users: dict[str, dict[str, Any]] = truth["users"]
        mood = truth["mood_table"]
        # M[e, k, p] as an array in EMOTIONS x INTENTS x PALETTES order
        self.mood = np.array([[[mood[e][k][p] for p in PALETTES] for k in INTENTS] for e in EMOTIONS])
        self.item_ids = items["item_id"].astype(str).tolist()
        self.row_of = {i: r for r, i in enumerate(self.item_ids)}
        self.style = items["style"].map({s: j for j, s in enumerate(STYLES)}).to_numpy(np.int64)      # (n,)
        self.subject = items["subject"].map({s: j for j, s in enumerate(SUBJECTS)}).to_numpy(np.int64)  # (n,)
        self.palette = items["palette"].map({s: j for j, s in enumerate(PALETTES)}).to_numpy(np.int64)  # (n,)
        self.creator = items["creator_id"].astype(str).to_numpy()
        self.series = items["series_id"].astype(str).to_numpy()
        pop = truth["item_popularity"]
        missing = [i for i in self.item_ids if i not in pop]
        if missing:
            raise ValueError(f"truth.json: item_popularity has no entry for item {missing[0]!r} "
                             f"({len(missing)} items missing)")
        self.popularity = np.array([pop[i] for i in self.item_ids], dtype=np.float64)  # (n,)
        nodes, weights = np.polynomial.hermite.hermgauss(_HERMITE_NODES)
        self._eps = np.sqrt(2.0) * self.noise_sd * nodes       # (H,)
        self._w = weights / np.sqrt(np.pi)                     # (H,), sums to 1

    @classmethod
    def from_world(cls, world: World) -> "TrueClickModel":
        return cls(world.items, world.truth)

    def __len__(self) -> int:
        return len(self.item_ids)

    def rows(self, item_ids: Sequence[str]) -> np.ndarray:
        """Row of each item id; ``KeyError`` naming the first unknown one."""
        try:
            return np.array([self.row_of[str(i)] for i in item_ids], dtype=np.int64)
        except KeyError as exc:
            raise KeyError(f"item_id {exc.args[0]!r} is not an item of this world") from None

    def logits(self, user_id: str, state: SessionState, rows: Optional[np.ndarray] = None) -> np.ndarray:
        """z(u, s, i) of ``rows`` (every item when None), without the per-impression noise: ``(n,)``."""
        if user_id not in self.users:
            raise KeyError(f"user_id {user_id!r} is not a user of this world")
        t = self.users[user_id]
        r = np.arange(len(self)) if rows is None else np.asarray(rows, dtype=np.int64)  # (n,)
        a_style = np.array([t["style_affinity"][s] for s in STYLES])                     # (S,)
        a_subject = np.array([t["subject_affinity"][s] for s in SUBJECTS])               # (B,)
        m_palette = self.mood[EMOTIONS.index(state.emotion), INTENTS.index(state.intent)]  # (P,)
        z = (self.bias
             + self.style_scale * t["w_style"] * a_style[self.style[r]]
             + self.subject_scale * t["w_subject"] * a_subject[self.subject[r]]
             + self.mood_scale * t["w_mood"] * m_palette[self.palette[r]]
             + self.creator_bonus * np.isin(self.creator[r], list(t["follows"]))
             + self.series_bonus * np.isin(self.series[r], list(t["fan_series"]))
             + self.popularity_scale * t["popularity_bias"] * self.intent_popularity[state.intent]
             * self.popularity[r])                                                       # (n,)
        if state.intent == "find_specific" and state.target is not None:
            kind, _, label = state.target.partition(":")
            match = (self.style[r] == STYLES.index(label)) if kind == "style" else (
                self.subject[r] == SUBJECTS.index(label))
            z = z + self.find_specific_bonus * match
        return z

    def expected(self, logits: np.ndarray) -> np.ndarray:
        """E_eps[sigmoid(z + eps)] of each logit (Gauss-Hermite): the true probability before the draw."""
        z = np.asarray(logits, dtype=np.float64)[..., None] + self._eps  # (..., H)
        return (1.0 / (1.0 + np.exp(-z))) @ self._w                        # (...,)

    def probabilities(self, user_id: str, state: SessionState,
                      rows: Optional[np.ndarray] = None) -> np.ndarray:
        """Expected true bookmark probabilities of ``rows`` (every item when None) in a session, ``(n,)``."""
        return self.expected(self.logits(user_id, state, rows))

    def state_prior(self, user_id: str) -> list[tuple[SessionState, float]]:
        """The user's sessions' (emotion, intent) distribution as the world draws it: P(e) from the user's
        emotion prior, P(k | e) proportional to the intent prior times ``EMOTION_INTENT[e][k]``; no target."""
        t = self.users[user_id]
        pe = np.array([t["emotion_prior"][e] for e in EMOTIONS])
        pe = pe / pe.sum()
        out = []
        for e, p_e in zip(EMOTIONS, pe):
            pk = np.array([t["intent_prior"][k] * EMOTION_INTENT[e].get(k, 1.0) for k in INTENTS])
            out += [(SessionState(e, k), float(p_e * q)) for k, q in zip(INTENTS, pk / pk.sum())]
        return out

    def blind_probabilities(self, user_id: str, rows: Optional[np.ndarray] = None) -> np.ndarray:
        """Expected true probabilities of ``rows`` without knowing the session: averaged over
        ``state_prior`` (what the best affect-blind slate maximises), ``(n,)``."""
        return sum(w * self.probabilities(user_id, s, rows) for s, w in self.state_prior(user_id))

    def draw(self, logits: np.ndarray, noise: np.ndarray, uniform: np.ndarray) -> np.ndarray:
        """Outcomes of impressions: ``uniform < sigmoid(z + noise_sd * noise)``; ``noise`` standard normal
        and ``uniform`` in [0, 1), one each per impression (the caller owns the random stream); ``(n,)`` bool.
        """
        p = 1.0 / (1.0 + np.exp(-(np.asarray(logits) + self.noise_sd * np.asarray(noise))))
        return np.asarray(uniform) < p


def session_states(world: World) -> dict[str, SessionState]:
    """Every session's true state (emotion, intent, find_specific target) by session_id."""
    target: dict[str, str] = {}
    if world.signal_truth is not None and "target" in world.signal_truth:
        st = world.signal_truth
        target = dict(zip(st["session_id"].astype(str), st["target"].astype(str)))
    return {sid: SessionState(e, i, target.get(sid) or None)
            for sid, e, i in zip(world.sessions["session_id"].astype(str), world.sessions["emotion"],
                                 world.sessions["intent"])}


class ClickTruth:
    """The world's own sessions over :class:`TrueClickModel`: the true logit of every item (``World.items`` row
    order) for one of its sessions, for benchmarks that need to know which items a session truly prefers
    (``top_items``); nothing a model trains on comes from here."""

    def __init__(self, world: World) -> None:
        self.model = TrueClickModel.from_world(world)
        self.item_ids = self.model.item_ids
        self.users = self.model.users
        self.states = session_states(world)
        self.session_user = dict(zip(world.sessions["session_id"].astype(str),
                                     world.sessions["user_id"].astype(str)))

    def mood_values(self, emotion: str, intent: str) -> np.ndarray:
        """``M[e, n, palette_i]`` of every item ``(n_items,)``: how much the session state favours its palette."""
        return self.model.mood[EMOTIONS.index(emotion), INTENTS.index(intent)][self.model.palette]

    def logits(self, user_id: str, emotion: str, intent: str, target: Optional[str] = None) -> np.ndarray:
        """``z`` of every item ``(n_items,)`` for ``user_id`` in state (``emotion``, ``intent``, ``target``)."""
        return self.model.logits(user_id, SessionState(emotion, intent, target))

    def session_logits(self, session_id: str) -> np.ndarray:
        """``z`` of every item for one of the world's sessions ``(n_items,)``."""
        return self.model.logits(self.session_user[session_id], self.states[session_id])

    def top_items(self, session_id: str, n: int) -> np.ndarray:
        """Rows of the ``n`` items with the highest true click probability in the session, best first."""
        return np.argsort(-self.session_logits(session_id), kind="stable")[:n]
