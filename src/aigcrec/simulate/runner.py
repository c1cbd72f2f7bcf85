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
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pandas as pd

from aigcrec.config import AppConfig
from aigcrec.content.store import FeatureStore
from aigcrec.service.assemble import ServicePaths
from aigcrec.simulate.policies import POLICIES, Policy, local_slate, recommend_body
from aigcrec.simulate.report import write_report
from aigcrec.simulate.scenario import NEW_PREFIX, Scenario, Session
from aigcrec.simulate.server import Models, ProcessService, ThreadService, client
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
    extra: dict[str, Any] = field(default_factory=dict)

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


def run_policy(scn: Scenario, policy: Policy, seed: int, config: AppConfig, paths: ServicePaths,
               models: Optional[Models], run_dir: Path) -> RunResult:
    """Simulate ``config.simulate.sessions`` sessions of ``policy`` on a fresh service (SQLite in ``run_dir``)."""
    sim = config.simulate
    truth = scn.truth
    n = len(truth)
    sessions = scn.draw_sessions(seed, sim.sessions)
    schedule = scn.schedule(len(sessions), sim.new_item_batches)
    live = np.zeros(n, dtype=bool)
    live[truth.rows(scn.catalog_ids)] = True
    is_new = np.zeros(n, dtype=bool)
    is_new[truth.rows(scn.held_out)] = True
    seen = scn.past_seen()
    positives = scn.past_positives()
    attributes = np.stack([truth.style, truth.subject, truth.palette], axis=1)  # (n, 3)
    world_items = scn.world.items.set_index("item_id")
    shown_ever = np.zeros(n, dtype=bool)
    run_dir.mkdir(parents=True, exist_ok=True)
    db = run_dir / "service.sqlite"
    for f in run_dir.glob("service.sqlite*"):
        f.unlink()
    t0 = time.monotonic()
    if sim.server == "thread":
        assert models is not None
        service = ThreadService(config, paths, db, models, policy.needs_affect)
    else:
        service = ProcessService(config, paths, db, policy.needs_affect, run_dir)
    rows_out: list[dict[str, Any]] = []
    requests, truncated, with_rid = 0, None, False
    rng_random = rng_for(seed, "simulate", "random-policy")
    with service as svc, client(svc.base_url, svc.api_key, sim.request_timeout_s) as http:
        start_s = time.monotonic() - t0
        t_loop = time.monotonic()
        for j, session in enumerate(sessions):
            if time.monotonic() - t_loop > sim.max_run_seconds:
                truncated = f"stopped after {j} sessions: max_run_seconds {sim.max_run_seconds:g} reached"
                break
            due = schedule.get(j, [])
            if requests + len(due) + 2 > sim.max_requests:
                truncated = f"stopped after {j} sessions: max_requests {sim.max_requests} reached"
                break
            for item_id in due:  # the AIGC flood: encoded by the service, retrievable when answered
                _check(http.post("/v1/items", json=_item_body(world_items, item_id)), f"POST /v1/items {item_id}")
                requests += 1
            if due:
                live[truth.rows(due)] = True
            rows_out.append(_session(j, session, policy, seed, config, scn, http, live, is_new, seen, positives,
                                     attributes, rng_random, shown_ever))
            requests += 1 + int(policy.served)
            with_rid |= bool(rows_out[-1].pop("request_id"))
    seconds = time.monotonic() - t0
    if not sim.keep_databases:
        for f in run_dir.glob("service.sqlite*"):
            f.unlink()
    records = pd.DataFrame(rows_out)
    return RunResult(policy.name, seed, records, float(shown_ever.sum() / max(1, live.sum())), int(live.sum()),
                     seconds, start_s, requests, truncated, with_rid)


def _session(j: int, session: Session, policy: Policy, seed: int, config: AppConfig, scn: Scenario, http,
             live: np.ndarray, is_new: np.ndarray, seen: dict[str, set[int]], positives: np.ndarray,
             attributes: np.ndarray, rng_random: np.random.Generator, shown_ever: np.ndarray) -> dict[str, Any]:
    """One session: slate, outcomes, feedback; returns its record (and the response's request_id, if any)."""
    sim, truth, k = config.simulate, scn.truth, config.simulate.k
    user, state = session.user_id, session.state
    z = truth.logits(user, state)                      # (n,)
    p = truth.expected(z)                              # (n,)
    unseen = np.ones(len(truth), dtype=bool)
    unseen[list(seen.get(user, ()))] = False
    available = live & unseen
    ceiling = float(np.sort(p[available])[-k:].sum())
    request_id, latency_ms = None, float("nan")
    if policy.served:
        t = time.perf_counter()
        body = _check(http.post("/v1/recommend", json=recommend_body(policy, session, k, sim.oracle_signals)),
                      f"POST /v1/recommend (session {j}, user {user})")
        latency_ms = (time.perf_counter() - t) * 1e3
        request_id = body.get("request_id")
        rows = truth.rows([it["item_id"].removeprefix(NEW_PREFIX) for it in body["items"]])
        affect = (body.get("explanation") or {}).get("affect") or {}
    else:
        rows = local_slate(policy, k, available, p, positives, rng_random)
        affect = {}
    noise = np.empty(len(rows))
    uniform = np.empty(len(rows))
    for m, r in enumerate(rows):  # common random numbers: one stream per (seed, session position, item)
        g = rng_for(seed, "simulate", "clicks", j, int(r))
        noise[m], uniform[m] = g.standard_normal(), g.random()
    clicks = truth.draw(z[rows], noise, uniform)
    ts = scn.period_end + (j + 1) * sim.session_gap_s
    sid = f"sim-{seed}-{j:06d}"
    events = []
    for r, c in zip(rows, clicks):
        iid = truth.item_ids[r]
        item = NEW_PREFIX + iid if is_new[r] else iid
        base = {"user_id": user, "item_id": item, "timestamp": ts, "session_id": sid,
                **({"request_id": request_id} if request_id else {})}
        events.append({**base, "type": "impression"})
        if c:
            events.append({**base, "type": "bookmark"})
    if events:
        ack = _check(http.post("/v1/feedback", json={"events": events}), f"POST /v1/feedback (session {j})")
        if ack.get("accepted") != len(events):
            raise SimulationError(f"POST /v1/feedback (session {j}): {ack.get('rejected')}")
    seen.setdefault(user, set()).update(int(r) for r in rows)
    np.add.at(positives, rows[clicks], 1)
    shown_ever[rows] = True
    return {"session": j, "session_id": session.session_id, "user_id": user, "emotion": state.emotion,
            "intent": state.intent, "shown": int(len(rows)), "clicks": int(clicks.sum()),
            "utility": float(p[rows].sum()), "ceiling_utility": ceiling,
            "new_shown": int(is_new[rows].sum()), "new_clicks": int((is_new[rows] & clicks).sum()),
            "new_available": int((available & is_new).sum()),
            "diversity": intra_list_diversity(attributes[rows]), "latency_ms": latency_ms,
            "read_emotion": affect.get("emotion", ""), "read_intent": affect.get("intent", ""),
            "request_id": request_id}


def _check_features(scn: Scenario, paths: ServicePaths) -> None:
    store = FeatureStore(paths.feature_store)
    ids, _ = store.load("e_sem")
    missing = set(scn.catalog_ids) - set(map(str, ids))
    if len(missing) > 0.05 * len(scn.catalog_ids):
        raise ValueError(f"{paths.feature_store}: {len(missing)} of the world's {len(scn.catalog_ids)} catalog items "
                         f"have no content vectors: these models were not built on {scn.world.root}")


def run_simulation(world_dir: Path, models: Path, config: AppConfig, out: Path,
                   progress: Callable[[str], None] = log.info) -> dict[str, Any]:
    """Every policy of ``config.simulate`` on every seed; writes ``out/simulate.{json,md,html}``,
    ``out/simulate_details.json`` and ``out/runs/<policy>-s<seed>.csv``; returns ``simulate.json``'s content."""
    sim = config.simulate
    unknown = [p for p in sim.policies if p not in POLICIES]
    if unknown:
        raise ValueError(f"policies: unknown {unknown}; expected some of {list(POLICIES)}")
    if sim.workers > 1 and sim.server == "thread":
        raise ValueError("workers > 1 needs server: process (each server process loads the models)")
    t_all = time.monotonic()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    scn = Scenario.load(world_dir, sim.new_item_share, sim.session_source)
    catalog = scn.prepare(out / "catalog")
    paths = replace(ServicePaths.from_models(models), catalog_dir=catalog)
    _check_features(scn, paths)
    policies = [POLICIES[p] for p in sim.policies]
    loaded = None
    if sim.server == "thread":
        t = time.monotonic()
        loaded = Models.load(config, paths, any(p.needs_affect for p in policies))
        progress(f"models loaded in {time.monotonic() - t:.1f} s")
    if scn.held_out and (loaded is not None and loaded.encoder is None):
        raise ValueError("the content encoder of these models cannot be loaded, so new items cannot be posted; "
                         "set simulate.new_item_share: 0")
    seeds = [config.seed + s for s in range(sim.seeds)]
    results: list[RunResult] = []
    (out / "runs").mkdir(exist_ok=True)
    for seed in seeds:
        for policy in policies:
            res = run_policy(scn, policy, seed, config, paths, loaded, out / "runs" / f"{policy.name}-s{seed}")
            res.records.to_csv(out / "runs" / f"{policy.name}-s{seed}.csv", index=False)
            (out / "runs" / f"{policy.name}-s{seed}.json").write_text(json.dumps(res.to_json(), indent=1),
                                                                       encoding="utf-8")
            if not sim.keep_databases:
                shutil.rmtree(out / "runs" / f"{policy.name}-s{seed}", ignore_errors=True)
            r = res.records
            progress(f"{policy.name} seed {seed}: {len(r)} sessions, CTR@{sim.k} "
                     f"{r['clicks'].sum() / max(1, r['shown'].sum()):.4f}, {res.seconds:.1f} s "
                     f"(start {res.start_seconds:.1f} s)" + (f"; {res.truncated}" if res.truncated else ""))
            results.append(res)
    setting = {"world": str(Path(world_dir).resolve().name), "models": str(Path(models).name),
               "sessions": sim.sessions, "session_source": sim.session_source,
               "session_pool": len(scn.sessions), "held_out_items": len(scn.held_out),
               "catalog_items": len(scn.catalog_ids), "server": sim.server, "workers": sim.workers,
               "oracle_signals": sim.oracle_signals, "wall_seconds": round(time.monotonic() - t_all, 1)}
    return write_report(results, sim.k, seeds, setting, out, sim.curve_bins)
