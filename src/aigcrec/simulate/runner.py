"""One policy and seed end to end (``run_policy``), and every policy over every seed (``run_simulation``).

Per session: post the held-out items due (``POST /v1/items``), get the policy's slate of k items (the service
for served policies, the simulator for the others), draw each shown item's outcome from the world's true
click model, and post the impressions and bookmarks as feedback (``POST /v1/feedback``), so the service's
histories and popularity follow the run. Outcomes are drawn from a stream keyed by (seed, session position,
item): two policies that show the same item in the same session get the same outcome (common random
numbers, so differences between policies are not draw noise).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pandas as pd

from aigcrec.content.store import FeatureStore
from aigcrec.service.assemble import ServicePaths
from aigcrec.service.workers import limit_threads
from aigcrec.simulate.policies import POLICIES, Policy, local_slate, recommend_body
from aigcrec.simulate.report import write_report
from aigcrec.simulate.scenario import NEW_PREFIX, Scenario, Session
from aigcrec.simulate.server import Models, ProcessService, ThreadService, client
from aigcrec.simulate.config import RunConfig
from aigcrec.world.simulate import rng_for

log = logging.getLogger("aigcrec.simulate")


class SimulationError(RuntimeError):
    """The service answered something a run cannot go on from (the message names the request)."""


@dataclass
class RunResult:
    """One policy on one seed: a row per session, and how the run went."""

    policy: str
    seed: int
    records: pd.DataFrame
    coverage: float
    catalog_size: int
    seconds: float
    start_seconds: float
    requests: int
    truncated: Optional[str] = None
    feedback_with_request_id: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.policy, "seed": self.seed, "coverage": self.coverage,
                "catalog_size": self.catalog_size, "seconds": round(self.seconds, 2),
                "start_seconds": round(self.start_seconds, 2), "requests": self.requests,
                "truncated": self.truncated, "feedback_with_request_id": self.feedback_with_request_id,
                "sessions": int(len(self.records))}


def intra_list_diversity(attributes: np.ndarray) -> float:
    """Mean over pairs of shown items of the share of attributes (style, subject, palette) they differ in;
    ``attributes`` (m, A) integer codes; NaN for fewer than two items."""
    m = len(attributes)
    if m < 2:
        return float("nan")
    differ = (attributes[:, None, :] != attributes[None, :, :]).mean(axis=2)  # (m, m)
    return float(differ[np.triu_indices(m, 1)].mean())


def _item_body(world_items: pd.DataFrame, item_id: str) -> dict[str, Any]:
    """The ``POST /v1/items`` body of a held-out world item (its image, title, tags, creator and style)."""
    row = world_items.loc[item_id]
    return {"item_id": NEW_PREFIX + item_id, "title": str(row["title"]) or item_id,
            "tags": [{"text": t["text"], "lang": t["lang"]} for t in row["tags"]],
            "creator_id": str(row["creator_id"]), "style": str(row["style"]),
            "image": base64.b64encode(Path(row["image_path"]).read_bytes()).decode("ascii")}


def _check(response, what: str) -> dict[str, Any]:
    if response.status_code >= 300:
        raise SimulationError(f"{what}: HTTP {response.status_code}: {response.text[:500]}")
    return response.json()


class PolicyRun:
    """The simulator's side of one run: what is in the catalog, what each user has seen, positives so far."""

    def __init__(self, scn: Scenario, policy: Policy, seed: int, config: RunConfig) -> None:
        self.scn, self.policy, self.seed, self.config, self.sim = scn, policy, seed, config, config.simulate
        truth = scn.truth
        n = len(truth)
        self.live = np.zeros(n, dtype=bool)              # in the service's catalog now
        self.live[truth.rows(scn.catalog_ids)] = True
        self.is_new = np.zeros(n, dtype=bool)            # held out, posted during the run
        self.is_new[truth.rows(scn.held_out)] = True
        self.seen = scn.past_seen()
        self.positives = scn.past_positives()            # (n,)
        self.attributes = np.stack([truth.style, truth.subject, truth.palette], axis=1)  # (n, 3)
        self.shown_ever = np.zeros(n, dtype=bool)
        self.world_items = scn.world.items.set_index("item_id")
        self.rng_random = rng_for(seed, "simulate", "random-policy")
        self.requests = 0
        self.with_request_id = False

    def post_items(self, http, item_ids: list[str]) -> None:
        """The AIGC flood: each item encoded by the service and retrievable when the answer comes."""
        for item_id in item_ids:
            body = _item_body(self.world_items, item_id)
            _check(http.post("/v1/items", json=body), f"POST /v1/items {item_id}")
            self.requests += 1
        if item_ids:
            self.live[self.scn.truth.rows(item_ids)] = True

    def slate(self, http, j: int, session: Session, available: np.ndarray, p: np.ndarray
              ) -> tuple[np.ndarray, Optional[str], float, dict[str, Any]]:
        """(rows shown, request_id, latency ms, affect read) of the policy for session ``j``."""
        if not self.policy.served:
            blind = (self.scn.truth.blind_probabilities(session.user_id) if self.policy.name == "ceiling_blind"
                     else None)
            rows = local_slate(self.policy, self.sim.k, available, p, blind, self.positives, self.rng_random)
            return rows, None, math.nan, {}
        body = recommend_body(self.policy, session, self.sim.k, self.sim.oracle_signals)
        t = time.perf_counter()
        answer = _check(http.post("/v1/recommend", json=body),
                        f"POST /v1/recommend (session {j}, user {session.user_id})")
        latency_ms = (time.perf_counter() - t) * 1e3
        self.requests += 1
        rows = self.scn.truth.rows([it["item_id"].removeprefix(NEW_PREFIX) for it in answer["items"]])
        affect = (answer.get("explanation") or {}).get("affect") or {}
        return rows, answer.get("request_id"), latency_ms, affect

    def session(self, http, j: int, session: Session) -> dict[str, Any]:
        """One session: slate, outcomes, feedback; returns its record."""
        truth, k = self.scn.truth, self.sim.k
        user, state = session.user_id, session.state
        z = truth.logits(user, state)                      # (n,)
        p = truth.expected(z)                              # (n,)
        unseen = np.ones(len(truth), dtype=bool)
        unseen[list(self.seen.get(user, ()))] = False
        available = self.live & unseen
        ceiling = float(np.sort(p[available])[-k:].sum())
        rows, request_id, latency_ms, affect = self.slate(http, j, session, available, p)
        noise, uniform = np.empty(len(rows)), np.empty(len(rows))
        for m, r in enumerate(rows):  # common random numbers: one stream per (seed, session position, item)
            g = rng_for(self.seed, "simulate", "clicks", j, int(r))
            noise[m], uniform[m] = g.standard_normal(), g.random()
        clicks = truth.draw(z[rows], noise, uniform)
        self.feedback(http, j, user, rows, clicks, request_id)
        self.seen.setdefault(user, set()).update(int(r) for r in rows)
        np.add.at(self.positives, rows[clicks], 1)
        self.shown_ever[rows] = True
        new = self.is_new[rows]
        return {"session": j, "session_id": session.session_id, "user_id": user, "emotion": state.emotion,
                "intent": state.intent, "shown": int(len(rows)), "clicks": int(clicks.sum()),
                "utility": float(p[rows].sum()), "ceiling_utility": ceiling,
                "new_shown": int(new.sum()), "new_clicks": int((new & clicks).sum()),
                "new_available": int((available & self.is_new).sum()),
                "diversity": intra_list_diversity(self.attributes[rows]), "latency_ms": latency_ms,
                "read_emotion": affect.get("emotion", ""), "read_intent": affect.get("intent", "")}

    def feedback(self, http, j: int, user: str, rows: np.ndarray, clicks: np.ndarray,
                 request_id: Optional[str]) -> None:
        """An impression per shown item and a bookmark per bookmarked one, at the session's simulated time."""
        truth = self.scn.truth
        ts = self.scn.period_end + (j + 1) * self.sim.session_gap_s
        extra = {"request_id": request_id} if request_id else {}  # a service that names its responses
        self.with_request_id |= bool(request_id)
        events = []
        for r, c in zip(rows, clicks):
            item = NEW_PREFIX + truth.item_ids[r] if self.is_new[r] else truth.item_ids[r]
            base = {"user_id": user, "item_id": item, "timestamp": ts,
                    "session_id": f"sim-{self.seed}-{j:06d}", **extra}
            events += [{**base, "type": "impression"}] + ([{**base, "type": "bookmark"}] if c else [])
        if events:
            ack = _check(http.post("/v1/feedback", json={"events": events}),
                         f"POST /v1/feedback (session {j})")
            self.requests += 1
            if ack.get("accepted") != len(events):
                raise SimulationError(f"POST /v1/feedback (session {j}): rejected {ack.get('rejected')}")


def run_policy(scn: Scenario, policy: Policy, seed: int, config: RunConfig, paths: ServicePaths,
               models: Optional[Models], run_dir: Path) -> RunResult:
    """``config.simulate.sessions`` sessions of ``policy`` on a fresh service (its SQLite in ``run_dir``)."""
    sim = config.simulate
    sessions = scn.draw_sessions(seed, sim.sessions)
    schedule = scn.schedule(len(sessions), sim.new_item_batches)
    run = PolicyRun(scn, policy, seed, config)
    run_dir.mkdir(parents=True, exist_ok=True)
    db = run_dir / "service.sqlite"
    for f in run_dir.glob("service.sqlite*"):
        f.unlink()
    t0 = time.monotonic()
    if sim.server == "thread":
        if models is None:
            raise ValueError("server: thread needs the loaded models")
        service: Any = ThreadService(config, paths, db, models, policy.needs_affect)
    else:
        service = ProcessService(config, paths, db, policy.needs_affect, run_dir)
    records: list[dict[str, Any]] = []
    truncated = None
    with service as svc, client(svc.base_url, svc.api_key, sim.request_timeout_s) as http:
        start_s = time.monotonic() - t0
        for j, session in enumerate(sessions):
            due = schedule.get(j, [])
            if time.monotonic() - t0 - start_s > sim.max_run_seconds:
                truncated = f"stopped after {j} sessions: max_run_seconds {sim.max_run_seconds:g} reached"
            elif run.requests + len(due) + 2 > sim.max_requests:
                truncated = f"stopped after {j} sessions: max_requests {sim.max_requests} reached"
            if truncated:
                break
            run.post_items(http, due)
            records.append(run.session(http, j, session))
    seconds = time.monotonic() - t0
    if not sim.keep_databases:
        for f in run_dir.glob("service.sqlite*"):
            f.unlink()
    coverage = float(run.shown_ever.sum() / max(1, run.live.sum()))
    return RunResult(policy.name, seed, pd.DataFrame(records), coverage, int(run.live.sum()), seconds,
                     start_s, run.requests, truncated, run.with_request_id)


def _check_features(scn: Scenario, paths: ServicePaths) -> None:
    store = FeatureStore(paths.feature_store)
    ids, _ = store.load("e_sem")
    missing = set(scn.catalog_ids) - set(map(str, ids))
    if len(missing) > 0.05 * len(scn.catalog_ids):
        raise ValueError(f"{paths.feature_store}: {len(missing)} of the world's {len(scn.catalog_ids)} "
                         f"catalog items have no content vectors: these models were not built on "
                         f"{scn.world.root}")


def run_simulation(world_dir: Path, models: Path, config: RunConfig, out: Path,
                   progress: Callable[[str], None] = log.info) -> dict[str, Any]:
    """Every policy of ``config.simulate`` on every seed; writes ``out/simulate.{json,md,html}``,
    ``out/simulate_details.json`` and ``out/runs/<policy>-s<seed>.{csv,json}`` (the service's catalog folder
    goes to ``<config.out>/cache/``); returns ``simulate.json``'s content."""
    sim = config.simulate
    unknown = [p for p in sim.policies if p not in POLICIES]
    if unknown:
        raise ValueError(f"policies: unknown {unknown}; expected some of {list(POLICIES)}")
    if sim.workers > 1 and sim.server == "thread":
        raise ValueError("workers > 1 needs server: process (each server process loads the models)")
    t_all = time.monotonic()
    load_start, cpu_start = os.getloadavg()[0], time.process_time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    scn = Scenario.load(world_dir, sim.new_item_share, sim.session_source)
    catalog = scn.prepare(Path(config.out) / "cache" / f"simulate-catalog-{scn.key()}")
    paths = replace(ServicePaths.from_models(models), catalog_dir=catalog)
    _check_features(scn, paths)
    policies = [POLICIES[p] for p in sim.policies]
    loaded = None
    if sim.server == "thread":
        # this process is then the server process: its threads as `aigcrec serve` sets them (without it the
        # BLAS pools of numpy and OpenCV spin on a loaded machine: a service start takes several times longer)
        limit_threads(config.service.torch_threads)
        t = time.monotonic()
        loaded = Models.load(config, paths, any(p.needs_affect for p in policies))
        progress(f"models loaded in {time.monotonic() - t:.1f} s")
    if scn.held_out and (loaded is not None and loaded.encoder is None):
        raise ValueError("the content encoder of these models cannot be loaded, so new items cannot be "
                         "posted; set simulate.new_item_share: 0")
    seeds = [config.seed + s for s in range(sim.seeds)]
    results: list[RunResult] = []
    (out / "runs").mkdir(exist_ok=True)
    for seed in seeds:
        for policy in policies:
            run_dir = out / "runs" / f"{policy.name}-s{seed}"
            res = run_policy(scn, policy, seed, config, paths, loaded, run_dir)
            res.records.to_csv(run_dir.with_suffix(".csv"), index=False)
            run_dir.with_suffix(".json").write_text(json.dumps(res.to_json(), indent=1), encoding="utf-8")
            if not sim.keep_databases:
                shutil.rmtree(run_dir, ignore_errors=True)
            r = res.records
            progress(f"{policy.name} seed {seed}: {len(r)} sessions, CTR@{sim.k} "
                     f"{r['clicks'].sum() / max(1, r['shown'].sum()):.4f}, {res.seconds:.1f} s "
                     f"(start {res.start_seconds:.1f} s)" + (f"; {res.truncated}" if res.truncated else ""))
            results.append(res)
    setting = {"world": str(Path(world_dir).resolve().name), "models": str(Path(models).name),
               "sessions": sim.sessions, "session_source": sim.session_source,
               "session_pool": len(scn.sessions), "held_out_items": len(scn.held_out),
               "catalog_items": len(scn.catalog_ids), "server": sim.server, "workers": sim.workers,
               "oracle_signals": sim.oracle_signals, "wall_seconds": round(time.monotonic() - t_all, 1),
               "cpu_seconds_this_process": round(time.process_time() - cpu_start, 1),
               "cpu_cores": os.cpu_count(), "load_average_1min_start": round(load_start, 2),
               "load_average_1min_end": round(os.getloadavg()[0], 2)}
    return write_report(results, sim.k, seeds, setting, out, sim.curve_bins)
