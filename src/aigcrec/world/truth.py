"""``ClickTruth``: the world's true bookmark logit of every catalog item for one session (no noise).

The same equation as ``aigcrec.world.simulate.simulate`` (``truth.json``'s ``click_equation``), for all items
at once instead of the shown ones:

    z_i = b0 + s_sty w_sty A_sty[u, style_i] + s_sub w_sub A_sub[u, subject_i] + s_mood w_mood M[e, n, palette_i]
          + c_cr 1[u follows creator_i] + c_se 1[u fans series_i] + s_pop beta_u R[n] pop_i
          + c_fs 1[n = find_specific] 1[item i matches the session's target]

``e``, ``n``: the session's emotion and intent. A benchmark reads it to know which items a session truly
prefers (``top_items``); nothing a model trains on comes from here.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from aigcrec.world.io import World
from aigcrec.world.vocab import PALETTES, STYLES, SUBJECTS


class ClickTruth:
    """True click logits over the world's items (``World.items`` row order)."""

    def __init__(self, world: World) -> None:
        t = world.truth
        self.world = world
        self.item_ids = world.items["item_id"].astype(str).tolist()
        self.knobs = t["knobs"]["click"]
        self.users = t["users"]
        self.mood = t["mood_table"]
        self.intent_popularity = t["intent_popularity"]
        self.find_specific_bonus = float(t["find_specific_bonus"])
        items = world.items
        self.style = items["style"].map({s: k for k, s in enumerate(STYLES)}).to_numpy()
        self.subject = items["subject"].map({s: k for k, s in enumerate(SUBJECTS)}).to_numpy()
        self.palette = items["palette"].map({s: k for k, s in enumerate(PALETTES)}).to_numpy()
        self.labels = {"style": items["style"].to_numpy(), "subject": items["subject"].to_numpy()}
        self.creator = items["creator_id"].astype(str).to_numpy()
        self.series = items["series_id"].astype(str).to_numpy()
        self.popularity = np.array([t["item_popularity"][i] for i in self.item_ids], np.float64)
        sessions = world.sessions.set_index("session_id")
        targets = (world.signal_truth.set_index("session_id")["target"].to_dict()
                   if world.signal_truth is not None else {})
        self.sessions = {sid: (str(r["user_id"]), str(r["emotion"]), str(r["intent"]), targets.get(sid))
                         for sid, r in sessions[["user_id", "emotion", "intent"]].iterrows()}

    def mood_values(self, emotion: str, intent: str) -> np.ndarray:
        """``M[e, n, palette_i]`` of every item ``(n_items,)``: how much the session state favours its palette."""
        table = self.mood[emotion][intent]
        return np.array([table[p] for p in PALETTES])[self.palette]

    def logits(self, user_id: str, emotion: str, intent: str, target: Optional[str] = None) -> np.ndarray:
        """``z`` of every item ``(n_items,)`` for ``user_id`` in state (``emotion``, ``intent``); ``target``
        ``"style:watercolor"`` / ``"subject:cat"`` is what a find_specific session asks for."""
        k, u = self.knobs, self.users[user_id]
        s_aff = np.array([u["style_affinity"][s] for s in STYLES])
        b_aff = np.array([u["subject_affinity"][s] for s in SUBJECTS])
        z = (k["bias"] + k["style_scale"] * u["w_style"] * s_aff[self.style]
             + k["subject_scale"] * u["w_subject"] * b_aff[self.subject]
             + k["mood_scale"] * u["w_mood"] * self.mood_values(emotion, intent)
             + k["creator_bonus"] * np.isin(self.creator, list(u["follows"]))
             + k["series_bonus"] * np.isin(self.series, list(u["fan_series"]))
             + k["popularity_scale"] * u["popularity_bias"] * self.intent_popularity[intent] * self.popularity)
        if intent == "find_specific" and target:
            kind, label = target.split(":", 1)
            z = z + self.find_specific_bonus * (self.labels[kind] == label)
        return z

    def session_logits(self, session_id: str) -> np.ndarray:
        """``z`` of every item for one of the world's sessions ``(n_items,)``."""
        user, emotion, intent, target = self.sessions[session_id]
        return self.logits(user, emotion, intent, target)

    def top_items(self, session_id: str, n: int) -> np.ndarray:
        """Rows of the ``n`` items with the highest true click probability in the session, best first."""
        z = self.session_logits(session_id)
        return np.argsort(-z, kind="stable")[:n]
