"""Demo stage of the service: the real stack on the demo world, driven in-process through the HTTP API.

A cold user and a user with history ask for recommendations (with and without a mood text), a new item
is posted and must be recommendable at once, a like changes the next list; request latencies (in-process,
no network) and the checks go to the metrics and the report.
"""

from __future__ import annotations

import base64
import logging
import time
from pathlib import Path

import numpy as np

from aigcrec.service.app import create_app
from aigcrec.service.assemble import ServicePaths, open_real_state

log = logging.getLogger("aigcrec.service")


def run(ctx) -> None:
    from fastapi.testclient import TestClient  # lazy: the [serve] extra


    art = ctx.artifacts
    paths = ServicePaths(
        Path(art["world_dir"]),
        Path(art["feature_store"]),
        Path(art["ranker_dir"]),
        Path(art["mmei_dir"]) if art.get("mmei_dir") else None,
        Path(art["content_dir"]) if art.get("content_dir") else None,
        Path(art["retrieval_dir"]) if art.get("retrieval_dir") else None,
    )
    cfg = ctx.config.model_copy(deep=True)
    cfg.service.api_key = "demo-key"
    state = open_real_state(cfg, paths, ctx.run_dir / "service.sqlite")
    auth = {"Authorization": "Bearer demo-key"}
    pipe = state.pipeline
    with TestClient(create_app(state)) as client:
        known = next(iter(pipe.users.positives), None) or "u0001"
        lat: dict[str, list[float]] = {"no signals": [], "text": []}
        for i in range(60):
            for name, signals in (
                ("no signals", None),
                ("text", {"text": "I feel calm, something gentle please"}),
            ):
                t0 = time.perf_counter()
                r = client.post(
                    "/v1/recommend",
                    json={"user_id": known if i % 2 else f"demo-cold-{i}", "signals": signals},
                )
                lat[name].append((time.perf_counter() - t0) * 1e3)
                r.raise_for_status()
        first = client.post(
            "/v1/recommend",
            json={"user_id": known, "signals": {"text": "I feel calm, something gentle please"}},
        ).json()
        image = Path(pipe.catalog.meta[0]["image_path"]).read_bytes()
        new = client.post(
            "/v1/items",
            headers=auth,
            json={
                "item_id": "demo-new-item",
                "title": "a brand-new piece",
                "tags": [{"text": "new", "lang": "en"}],
                "image": base64.b64encode(image).decode(),
            },
        )
        fresh_ok = False
        if new.status_code == 201:
            # Recommendable = among the ranked candidates of a cold user's very next request (ask for them all).
            k_all = min(cfg.service.retrieval.candidates, cfg.service.limits.max_k)
            cold = client.post("/v1/recommend", json={"user_id": "demo-cold-after-post", "k": k_all}).json()
            fresh_ok = "demo-new-item" in [i["item_id"] for i in cold["items"]]
        liked = first["items"][0]["item_id"]
        client.post(
            "/v1/feedback", headers=auth, json={"user_id": known, "item_id": liked, "type": "bookmark"}
        )
        after = client.post("/v1/recommend", json={"user_id": known}).json()
    for name, values in lat.items():
        ctx.record(
            "service",
            f"recommend_{name.replace(' ', '_')}_p50_ms",
            float(np.percentile(values, 50)),
            headline=name == "no signals",
        )
        ctx.record("service", f"recommend_{name.replace(' ', '_')}_p99_ms", float(np.percentile(values, 99)))
    ctx.record("service", "new_item_recommendable_at_once", bool(fresh_ok), headline=True)
    ctx.record(
        "service",
        "like_changes_next_list",
        [i["item_id"] for i in after["items"]] != [i["item_id"] for i in first["items"]],
    )
    ctx.report.section(
        "Service",
        "The real stack behind the HTTP API, called in-process (no network): "
        f"{len(pipe.catalog)} items, {pipe.index.kind} index; p50/p99 over 60 requests each.",
    )
    ctx.report.table(
        [
            {"scenario": k, "p50 ms": float(np.percentile(v, 50)), "p99 ms": float(np.percentile(v, 99))}
            for k, v in lat.items()
        ]
    )
    affect = first["explanation"]["affect"] or {}
    ctx.report.table(
        [
            {
                "rank": n + 1,
                "item": it["item_id"],
                "title": it["title"],
                "score": it["score"],
                "source": it["source"],
                "style": it.get("style") or "",
            }
            for n, it in enumerate(first["items"])
        ],
        caption=f"user {known}, mood text → emotion {affect.get('emotion')}, intent {affect.get('intent')}",
    )
