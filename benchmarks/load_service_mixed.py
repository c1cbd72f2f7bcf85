"""Mixed load on a real ``aigcrec serve``: 30 concurrent clients for 30 s, each request drawn at random among
recommend (with a mood text in a quarter of them), item posts (a real world image, encoded by the real
content encoder) and feedback batches; bounded in time, loopback only.

Reports per kind p50 / p95 / p99 latency, statuses and the count of 5xx, and the feedback latency of the
requests sent while at least one item post was in flight (the issue-25 question: do writes wait behind
item encoding?). Writes and items carry an ``Idempotency-Key``, as a retrying client would. The server is
``aigcrec serve --catalog WORLD --models STACK/artifacts.json --workers N`` over the small real stack of
``service_stack.py``; results in ``load_mixed.json`` and ``load_mixed.md`` under ``--out``.

    nice -n 10 python benchmarks/load_service_mixed.py --stack runs/bench-stack --out benchmarks/results/service
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_service import Conn, cpu_seconds, free_port, percentiles, wait_ready  # noqa: E402
from service_stack import build_stack, serve_stack  # noqa: E402

MIX = {"recommend": 0.5, "feedback": 0.35, "item": 0.15}
TEXTS = ("something calm for tonight", "I am so happy today", "a bit sad, cheer me up", "angry, distract me")


async def run(port: int, pid: int, world: dict[str, Any], clients: int, duration: float, warmup: float,
              mix: dict[str, float]) -> dict:
    auth = "Authorization: Bearer bench-key\r\n"
    lat: dict[str, list[float]] = {k: [] for k in mix}
    during_items: list[float] = []
    statuses: dict[str, dict[int, int]] = {k: {} for k in mix}
    items_in_flight = 0
    t_measure = time.perf_counter() + warmup
    t_end = t_measure + duration

    def body(kind: str, rng: random.Random, n: int) -> tuple[str, bytes, str]:
        user = rng.choice(world["users"])
        if kind == "recommend":
            doc: dict[str, Any] = {"user_id": user, "k": 12}
            if rng.random() < 0.25:
                doc["signals"] = {"text": rng.choice(TEXTS)}
            return "/v1/recommend", json.dumps(doc).encode(), ""
        key = f"Idempotency-Key: {kind}-{os.getpid()}-{n}-{rng.random()}\r\n"
        if kind == "feedback":
            events = [{"user_id": user, "item_id": rng.choice(world["items"]), "type": rng.choice(("click", "impression", "bookmark"))}
                      for _ in range(rng.randint(1, 5))]
            return "/v1/feedback", json.dumps({"events": events}).encode(), auth + key
        doc = {"item_id": f"bench-{os.getpid()}-{n}-{rng.randrange(1 << 30)}", "title": f"posted illustration {n}",
               "tags": [{"text": "bench", "lang": "en"}], "image": rng.choice(world["images"])}
        return "/v1/items", json.dumps(doc).encode(), auth + key

    async def client(seed: int) -> None:
        nonlocal items_in_flight
        rng = random.Random(seed)
        conn = Conn(port)
        n = 0
        try:
            while time.perf_counter() < t_end:
                kind = rng.choices(list(mix), weights=list(mix.values()))[0]
                path, payload, headers = body(kind, rng, seed * 1_000_000 + n)
                n += 1
                overlapped = items_in_flight > 0
                items_in_flight += kind == "item"
                t0 = time.perf_counter()
                try:
                    status, _ = await conn.post(path, payload, headers)
                finally:
                    items_in_flight -= kind == "item"
                ms = (time.perf_counter() - t0) * 1e3
                if t0 >= t_measure:
                    lat[kind].append(ms)
                    statuses[kind][status] = statuses[kind].get(status, 0) + 1
                    if kind == "feedback" and (overlapped or items_in_flight > 0):
                        during_items.append(ms)
        finally:
            conn.close()

    async def cpu_at_start() -> float:
        await asyncio.sleep(max(0.0, t_measure - time.perf_counter()))
        return cpu_seconds(pid)

    *_, cpu0 = await asyncio.gather(*(client(i) for i in range(clients)), cpu_at_start())
    elapsed = time.perf_counter() - t_measure
    server_cpu = cpu_seconds(pid) - cpu0
    kinds = {k: {"requests": len(v), "statuses": statuses[k], "rps": round(len(v) / elapsed, 1), **(percentiles(v) if v else {})}
             for k, v in lat.items()}
    total = sum(len(v) for v in lat.values())
    return {
        "seconds": round(elapsed, 1),
        "requests": total,
        "server_5xx": sum(n for s in statuses.values() for code, n in s.items() if code >= 500),
        "kinds": kinds,
        "feedback_while_items_posted": {"requests": len(during_items), **(percentiles(during_items) if during_items else {})},
        "server_cpu_ms_per_request": round(server_cpu / max(total, 1) * 1e3, 2),
    }


def world_sample(artifacts: Path) -> dict[str, Any]:
    from aigcrec.world import load_world

    world = load_world(artifacts.parent / json.loads(artifacts.read_text())["world_dir"], check_files=False)
    paths = [p for p in world.items["image_path"].dropna().tolist()[:40] if Path(p).is_file()]
    return {"users": sorted({str(u) for u in world.interactions["user_id"]})[:500],
            "items": [str(i) for i in world.items["item_id"]],
            "images": [base64.b64encode(Path(p).read_bytes()).decode() for p in paths]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stack", type=Path, required=True, help="Folder of service_stack.py (built if absent).")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "service")
    p.add_argument("--clients", type=int, default=30)
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--workers", type=int, default=2, help="Server processes (about one per core).")
    p.add_argument("--item-share", type=float, default=MIX["item"],
                   help="Share of item posts (0: the baseline without them; recommend keeps its share).")
    p.add_argument("--name", default="load_mixed", help="Results file stem.")
    args = p.parse_args()
    artifacts = build_stack(args.stack)
    world = world_sample(artifacts)
    mix = {"recommend": MIX["recommend"], "feedback": 1 - MIX["recommend"] - args.item_share, "item": args.item_share}
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = serve_stack(artifacts, port, Path(tmp) / "service.sqlite", workers=args.workers)
        try:
            wait_ready(port, proc, 600, processes=args.workers)
            load_before = os.getloadavg()
            result = asyncio.run(run(port, proc.pid, world, args.clients, args.duration, args.warmup, mix))
            result["loadavg_before"] = [round(x, 2) for x in load_before]
            result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    result |= {"clients": args.clients, "workers": args.workers, "mix": mix,
               "stack": json.loads((artifacts.parent / "stack.json").read_text()),
               "machine": f"{platform.machine()}, {os.cpu_count()} cores", "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    rows = [f"| {k} | {v['requests']} | {v['rps']} | {v.get('p50', '')} | {v.get('p95', '')} | {v.get('p99', '')} | "
            f"{v.get('max', '')} | {v['statuses']} |" for k, v in result["kinds"].items()]
    fw = result["feedback_while_items_posted"]
    rows.append(f"| feedback while an item post is in flight | {fw['requests']} | | {fw.get('p50', '')} | "
                f"{fw.get('p95', '')} | {fw.get('p99', '')} | {fw.get('max', '')} | |")
    md = [
        "# Mixed load on `aigcrec serve` (issue 25)",
        "",
        f"Measured {result['measured']} on {result['machine']} (load average before {result['loadavg_before']}, "
        f"after {result['loadavg_after']}: the machine is shared). {args.clients} keep-alive clients for "
        f"{result['seconds']} s after {args.warmup:g} s warm-up, closed loop; mix {mix} (a quarter of the "
        f"recommendations with a mood text); {args.workers} server processes; stack "
        f"`{json.dumps(result['stack']['recipe'])}`. Command: `nice -n 10 python benchmarks/load_service_mixed.py "
        f"--stack STACK --out benchmarks/results/service --item-share {args.item_share:g} --name {args.name}`.",
        "",
        "| kind | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | statuses |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        *rows,
        "",
        f"5xx answers: {result['server_5xx']}. Server CPU per request: {result['server_cpu_ms_per_request']} ms.",
    ]
    (args.out / f"{args.name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
