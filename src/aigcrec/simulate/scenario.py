"""What a world gives an online simulation: its true click model, the sessions users re-enact, the held-out
items posted during the run (the AIGC flood), and the catalog folder the service starts from.

Sessions are the world's own (``SimulateConfig.session_source``: the affect test split by default, whose users
MMEI never saw), re-enacted after the logged period: each keeps its user, true emotion, intent and
find_specific target, and its utterance, voice clip and face photo. The service starts from the world minus
the held-out items (the newest ``new_item_share`` of the catalog) and minus their logged impressions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from aigcrec.data.world import World, load_world, world_identity
from aigcrec.world.simulate import DAY, rng_for
from aigcrec.world.truth import SessionState, TrueClickModel, session_states

log = logging.getLogger("aigcrec.simulate")

NEW_PREFIX = "new-"
"""Held-out items are posted as ``new-<world item id>``: an id the ranker never saw in training, so they are
scored from their content, as a real new item would be."""


@dataclass(frozen=True)
class Session:
    """One session a user re-enacts: who, the true state, the paths of its signals (read, never copied)."""

    session_id: str
    user_id: str
    state: SessionState
    text: str
    voice_path: str
    face_path: str


class Scenario:
    """A world prepared for simulation (``prepare`` writes the catalog folder the services start from)."""

    def __init__(self, world: World, new_item_share: float, session_source: str = "test") -> None:
        self.world = world
        self.truth = TrueClickModel.from_world(world)
        items = world.items
        n_new = int(round(new_item_share * len(items)))
        newest = np.argsort(-items["created_at"].to_numpy(), kind="stable")[:n_new]
        order = newest[np.argsort(items["created_at"].to_numpy()[newest], kind="stable")]  # oldest first
        self.held_out: list[str] = items["item_id"].iloc[order].astype(str).tolist()
        held = set(self.held_out)
        self.catalog_ids = [i for i in items["item_id"].astype(str) if i not in held]
        states = session_states(world)
        sessions = world.sessions
        pool = sessions if session_source == "all" else sessions[sessions["split"] == "test"]
        if pool.empty:
            raise ValueError(f"{world.root}: no sessions in the '{session_source}' split to simulate")
        self.sessions = [Session(str(r.session_id), str(r.user_id), states[str(r.session_id)], str(r.text),
                                 str(r.voice_path), str(r.face_path)) for r in pool.itertuples()]
        inter = world.interactions[~world.interactions["item_id"].isin(held)]
        self.past = inter
        self.period_end = float(world.manifest.get("period", {}).get("start", 0.0)) + DAY * float(
            world.manifest.get("period", {}).get("days", 0.0))
        self.period_end = max(self.period_end, float(world.interactions["timestamp"].max()))

    @classmethod
    def load(cls, world_dir: str | Path, new_item_share: float, session_source: str = "test") -> "Scenario":
        return cls(load_world(world_dir), new_item_share, session_source)

    # -- what the simulator knows of the service's starting state -------------------------------------------
    def past_seen(self) -> dict[str, set[int]]:
        """Rows (of ``truth``) each user has an event on in the service's starting log (exclude_seen)."""
        rows = self.truth.rows(self.past["item_id"])
        out: dict[str, set[int]] = {}
        for u, r in zip(self.past["user_id"].astype(str), rows):
            out.setdefault(u, set()).add(int(r))
        return out

    def past_positives(self) -> np.ndarray:
        """Positive events per row of ``truth`` in the starting log (what the popularity policy counts)."""
        counts = np.zeros(len(self.truth), dtype=np.int64)
        pos = self.past[self.past["label"] == 1]
        np.add.at(counts, self.truth.rows(pos["item_id"]), 1)
        return counts

    def draw_sessions(self, seed: int, n: int) -> list[Session]:
        """``n`` sessions in a seed's order: a permutation of the pool, repeated when ``n`` is larger."""
        rng = rng_for(seed, "simulate", "sessions")
        out: list[Session] = []
        while len(out) < n:
            out += [self.sessions[j] for j in rng.permutation(len(self.sessions))]
        return out[:n]

    def schedule(self, n_sessions: int, batches: int) -> dict[int, list[str]]:
        """Session index -> held-out world item ids posted before it (equal batches, evenly spaced)."""
        if not self.held_out:
            return {}
        batches = min(batches, len(self.held_out))
        parts = np.array_split(np.array(self.held_out, dtype=object), batches)
        at = [int(b * n_sessions // batches) for b in range(batches)]
        out: dict[int, list[str]] = {}
        for j, part in zip(at, parts):
            out.setdefault(j, []).extend(str(i) for i in part)
        return out

    # -- the service's catalog folder -------------------------------------------------------------------
    def key(self) -> str:
        """A short digest of the world (folder and manifest digest) and the held-out items."""
        text = json.dumps({"world": world_identity(self.world.root), "held_out": self.held_out})
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def prepare(self, folder: Path) -> Path:
        """Write ``folder`` (a world-layout catalog: the world minus the held-out items and their impressions,
        images linked) unless it is already there for this world and share; returns it."""
        folder = Path(folder)
        stamp = {"world": world_identity(self.world.root), "held_out": self.held_out}
        mark = folder / "simulate-catalog.json"
        if mark.is_file() and json.loads(mark.read_text(encoding="utf-8")) == stamp:
            return folder
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        root = self.world.root
        shutil.copy(root / "world.json", folder / "world.json")
        held = set(self.held_out)
        items = pd.read_csv(root / "items.csv", dtype=str, keep_default_na=False)
        items[~items["item_id"].isin(held)].to_csv(folder / "items.csv", index=False)
        inter = pd.read_csv(root / "interactions.csv", dtype=str, keep_default_na=False)
        inter[~inter["item_id"].isin(held)].to_csv(folder / "interactions.csv", index=False)
        (folder / "images").symlink_to((root / "images").resolve(), target_is_directory=True)
        mark.write_text(json.dumps(stamp), encoding="utf-8")
        log.info("simulation catalog %s: %d items (%d held out), %d past impressions", folder,
                 len(items) - len(held), len(held), len(inter[~inter["item_id"].isin(held)]))
        return folder

