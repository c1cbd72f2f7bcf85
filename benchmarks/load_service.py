"""Load benchmark of the recommender service on loopback (bounded in requests and time).

A 100,000-item catalog with synthetic content vectors (at the widths of the real feature store / ranker)
is served by ``--workers`` uvicorn processes (default 2, one per core of the target machine; they share
the port and the SQLite file); 50 concurrent keep-alive clients call POST /v1/recommend
  1. without signals, 2. with a mood text, 3. with text + voice (WAV) + face (image),
and we report p50 / p95 / p99 latency and requests/s for each, plus how soon an item posted to
/v1/items is recommendable. Writes ``service_load.json`` and ``service_load.md`` under ``--out``.

    .venv/bin/python benchmarks/load_service.py --out benchmarks/results/service

``--stack real`` (default) uses the trained ranker, MMEI predictor and content encoder of the latest demo
(``runs/latest/artifacts.json``; run ``aigcrec demo`` first). ``--stack test`` uses the simple test models of
``tests/test_service_support.py`` to measure the serving path alone; results say which stack was used.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
AUTH_KEY = "bench-key"
STYLES = ("cel", "watercolor", "pencil", "pixel", "impasto", "ink", "pointillism", "halftone")


# ------------------------------------------------------------------------------------------ server side


def synthetic_catalog(
    n: int, dims: dict[str, int], seed: int = 0
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """``n`` items in 64 content clusters (so history-based retrieval has structure), 500 creators."""
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, 64, size=n)
    vectors = {}
    for name, d in dims.items():
        centers = rng.standard_normal((64, d), dtype=np.float32)
        noise = rng.standard_normal((n, d), dtype=np.float32)
        noise *= 0.5
        noise += centers[cluster]
        vectors[name] = noise  # (n, d)
    now = time.time()
    items = [
        {
            "item_id": f"s{i:06d}",
            "title": f"synthetic illustration {i}",
            "tags": [],
            "creator_id": f"creator{i % 500}",
            "style": STYLES[int(cluster[i]) % len(STYLES)],
            "image_path": None,
            "created_at": now - (n - i) * 60.0,
        }
        for i in range(n)
    ]
    return items, vectors


def synthetic_history(
    users: list[str], n_items: int, per_user: int = 20, seed: int = 1
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    now = time.time()
    return [
        {
            "user_id": u,
            "item_id": f"s{int(i):06d}",
            "type": "bookmark",
            "ts": now - 3600.0,
            "session_id": None,
        }
        for u in users
        for i in rng.integers(0, n_items, size=per_user)
    ]


def build_state(args: argparse.Namespace):
    from aigcrec.config import AppConfig
    from aigcrec.service.state import ServiceState
    from aigcrec.service.store import ServiceStore

    cfg = AppConfig()
    if args.stack == "real":
        from aigcrec.affect.predictor import AffectPredictor
        from aigcrec.ranking.bundle import RankerBundle
        from aigcrec.service.assemble import ServicePaths, affect_encoder, load_content_encoder

        paths = ServicePaths.from_manifest(args.artifacts)
        ranker = RankerBundle.load(paths.ranker_dir, cfg.service.model_runtime, cfg.service.torch_threads)
        dims = {f.name: f.dim for f in ranker.spec.vectors if f.modality}
        svc = cfg.service
        affect = (AffectPredictor.load(paths.mmei_dir, runtime=svc.model_runtime, threads=svc.torch_threads)
                  if paths.mmei_dir else None)
        encoder = load_content_encoder(paths, cfg)
        users = [str(u) for u in ranker.users["user_id"]][:2000]
        context = affect_encoder(ranker, affect)
    else:
        sys.path.insert(0, str(REPO / "tests"))
        from test_service_support import ContentDotRanker, KeywordAffect, PixelHashEncoder

        dims = {"e_sem": 1280, "e_sty": 64, "e_tsem": 384}
        ranker, affect, encoder = ContentDotRanker(), KeywordAffect(), PixelHashEncoder()
        context = None
        users = [f"u{i:04d}" for i in range(2000)]
    for name in cfg.service.retrieval.features:
        dims.setdefault(name, 64)
    items, vectors = synthetic_catalog(args.items, dims)
    if args.stack == "test":  # the test encoder emits its own small widths: make new items match the catalog
        encoder = _WidthMatched(encoder, dims)
    cfg.service.api_key = AUTH_KEY
    store = ServiceStore(Path(args.db), "FULL")
    state = ServiceState.open(
        cfg.service,
        store,
        items,
        vectors,
        ranker,
        affect,
        encoder,
        past_events=synthetic_history(users, args.items),
        affect_context=context,
    )
    return state, users


class _WidthMatched:
    """Test stack only: deterministic vectors of the catalog's widths from the test encoder's seed."""

    def __init__(self, inner, dims: dict[str, int]) -> None:
        self.inner, self.dims = inner, dims

    def encode_item(self, image: bytes, title: str = "", tags=()) -> dict[str, np.ndarray]:
        small = self.inner.encode_item(image, title, tags)
        rng = np.random.default_rng(abs(int(small["e_sem"][0] * 1e6)))
        return {n: rng.normal(size=d).astype(np.float32) for n, d in self.dims.items()}


def bench_app():
    """uvicorn factory (one call per server process): the benchmark state from the spec ``serve`` passed."""
    from aigcrec.service.app import create_app
    from aigcrec.service.workers import current_spec, limit_threads

    args = argparse.Namespace(**current_spec())
    args.artifacts = Path(args.artifacts)
    limit_threads(1)
    state, users = build_state(args)
    tmp = Path(f"{args.users_file}.{os.getpid()}")
    tmp.write_text(json.dumps(users), encoding="utf-8")
    tmp.replace(args.users_file)  # atomic: several processes write the same list
    return create_app(state)


def serve(args: argparse.Namespace) -> None:
    from aigcrec.service.config import ServiceConfig
    from aigcrec.service.workers import run

    spec = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # spawned server processes import this module
    run("load_service:bench_app", spec, ServiceConfig(port=args.port, workers=args.workers))


# ------------------------------------------------------------------------------------------ client side


class Conn:
    """One keep-alive HTTP/1.1 connection with just enough parsing for this benchmark (low client CPU)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: str = "") -> tuple[int, bytes]:
        try:
            return await self._post(path, body, headers)
        except (asyncio.IncompleteReadError, ConnectionError):  # the server closed an idle keep-alive
            self.close()
            return await self._post(path, body, headers)

    async def _post(self, path: str, body: bytes, headers: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"{headers}Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


def percentiles(lat_ms: list[float]) -> dict[str, float]:
    a = np.asarray(lat_ms)
    return {f"p{q}": round(float(np.percentile(a, q)), 2) for q in (50, 95, 99)} | {
        "max": round(float(a.max()), 2)
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds so far of a process and its descendants (the server's worker processes);
    a load-independent cost, unlike wall-clock latency."""
    stats = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        stats[int(stat.parent.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    tree, total = {pid}, 0
    for _ in range(4):  # parent -> workers (-> their helpers): a few levels suffice
        tree |= {p for p, (ppid, _) in stats.items() if ppid in tree}
    total = sum(stats[p][1] for p in tree if p in stats)
    return total / os.sysconf("SC_CLK_TCK")


async def run_scenario(
    port: int,
    server_pid: int,
    name: str,
    make_body,
    clients: int,
    duration: float,
    max_requests: int,
    warmup: float,
    rate: float = 0.0,
) -> dict[str, Any]:
    """``clients`` keep-alive connections for ``duration`` s after ``warmup`` s (at most ``max_requests``).

    ``rate`` 0: closed loop, each client sends its next request when the last one is answered (saturation
    throughput). ``rate`` > 0: open loop at ``rate`` requests/s in total, each client on a fixed schedule, and
    latency counted from the scheduled send time, so a server that falls behind is charged for it.
    """
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sent = 0
    t_start = time.perf_counter()
    t_measure = t_start + warmup
    t_end = t_measure + duration
    interval = clients / rate if rate > 0 else 0.0

    async def worker(seed: int) -> None:
        nonlocal sent
        rng = random.Random(seed)
        conn = Conn(port)
        scheduled = t_start + interval * seed / clients
        try:
            # A paced run that falls behind stops at 2 x duration: bounded in time, not only in count.
            while scheduled < t_end and sent < max_requests and time.perf_counter() < t_end + duration:
                if rate > 0:
                    await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
                body = make_body(rng)
                t0 = scheduled if rate > 0 else time.perf_counter()
                status, _ = await conn.post("/v1/recommend", body)
                t1 = time.perf_counter()
                if t0 >= t_measure:
                    sent += 1
                    latencies.append((t1 - t0) * 1e3)
                    statuses[status] = statuses.get(status, 0) + 1
                scheduled = scheduled + interval if rate > 0 else t1
        finally:
            conn.close()

    async def measure_cpu() -> tuple[float, float]:
        await asyncio.sleep(max(0.0, t_measure - time.perf_counter()))
        return cpu_seconds(server_pid), time.process_time()

    *_, (server0, client0) = await asyncio.gather(*(worker(i) for i in range(clients)), measure_cpu())
    server_cpu, client_cpu = cpu_seconds(server_pid) - server0, time.process_time() - client0
    elapsed = time.perf_counter() - t_measure
    n = max(len(latencies), 1)
    return {
        "scenario": name,
        "mode": f"paced {rate:g} req/s" if rate > 0 else "closed loop (saturation)",
        "requests": len(latencies),
        "ok": statuses.get(200, 0),
        "statuses": statuses,
        "seconds": round(elapsed, 2),
        "rps": round(len(latencies) / elapsed, 1),
        **percentiles(latencies),
        "server_cpu_ms_per_request": round(server_cpu / n * 1e3, 2),
        "client_cpu_ms_per_request": round(client_cpu / n * 1e3, 2),
    }


async def freshness(port: int, image: bytes, rounds: int = 5) -> dict[str, Any]:
    """POST an item, then ask for a cold user's recommendations until it appears; report both times."""
    conn = Conn(port)
    post_ms, visible_ms = [], []
    auth = f"Authorization: Bearer {AUTH_KEY}\r\n"
    try:
        for r in range(rounds):
            item_id = f"fresh-{r}-{int(time.time() * 1e3)}"
            body = json.dumps(
                {
                    "item_id": item_id,
                    "title": f"fresh item {r}",
                    "image": base64.b64encode(image).decode(),
                    "tags": [{"text": "new", "lang": "en"}],
                }
            ).encode()
            t0 = time.perf_counter()
            status, text = await conn.post("/v1/items", body, auth)
            t1 = time.perf_counter()
            if status != 201:
                return {"error": f"POST /v1/items answered {status}: {text[:200]!r}"}
            post_ms.append((t1 - t0) * 1e3)
            while time.perf_counter() - t1 < 5:
                probe = Conn(port)  # a new connection: with several server processes it may reach another
                try:
                    _, rec = await probe.post(
                        "/v1/recommend", json.dumps({"user_id": f"cold-{item_id}", "k": 50}).encode()
                    )
                finally:
                    probe.close()
                if item_id.encode() in rec:
                    visible_ms.append((time.perf_counter() - t1) * 1e3)
                    break
            else:
                visible_ms.append(float("inf"))
    finally:
        conn.close()
    return {
        "post_ms": [round(v, 1) for v in post_ms],
        "visible_after_post_ms": [round(v, 1) for v in visible_ms],
        "max_visible_after_post_ms": round(max(visible_ms), 1),
    }


def load_signals(artifacts: Path) -> tuple[list[str], bytes, bytes, str]:
    """Texts, one voice WAV and one face image: from the demo world's affect sessions when there is one."""
    try:
        from aigcrec.service.assemble import ServicePaths

        world = ServicePaths.from_manifest(artifacts).catalog_dir
        import pandas as pd

        sessions = pd.read_csv(world / "affect" / "utterances.csv", dtype=str, keep_default_na=False)
        row = sessions[(sessions["voice"] != "") & (sessions["face"] != "")].iloc[0]
        texts = [t for t in sessions["text"].tolist() if t][:500]
        return (
            texts,
            (world / row["voice"]).read_bytes(),
            (world / row["face"]).read_bytes(),
            f"world {world.name}",
        )
    except Exception as exc:  # no demo world: synthetic signals of realistic size
        import io

        import soundfile
        from PIL import Image

        t = np.arange(3 * 16000) / 16000
        wav = io.BytesIO()
        soundfile.write(wav, (0.2 * np.sin(2 * np.pi * 180 * t)).astype(np.float32), 16000, format="WAV")
        face = io.BytesIO()
        Image.fromarray((np.random.default_rng(0).random((96, 96, 3)) * 255).astype(np.uint8)).save(
            face, "PNG"
        )
        texts = [
            "I feel great, show me something bright",
            "so tired and a bit sad today",
            "looking for calm watercolor landscapes",
            "angry about work, need a distraction",
        ]
        return texts, wav.getvalue(), face.getvalue(), f"synthetic ({type(exc).__name__})"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, proc: subprocess.Popen, timeout: float, processes: int = 1) -> float:
    """Seconds until ``processes`` distinct server processes answer /readyz (each loads its own state)."""
    import urllib.request

    t0 = time.perf_counter()
    ready: set[int] = set()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    ready.add(json.loads(r.read())["process"])
                    if len(ready) >= processes:
                        return time.perf_counter() - t0
                    time.sleep(0.05)
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{len(ready)} of {processes} server processes ready after {timeout} s")


def write_results(out: Path, result: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "service_load.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    lines = [
        f"# Service load benchmark ({result['stack']} stack)",
        "",
        f"{result['items']:,} items (synthetic vectors {result['dims']}), {result['clients']} concurrent "
        f"keep-alive clients on loopback, {result['workers']} uvicorn server process(es), torch threads 1 "
        f"each; {result['cpus']} CPUs; "
        f"load before: `{result['uptime_before']}`; after: `{result['uptime_after']}`; signals: "
        f"{result['signals']}.",
        "",
        "| scenario | load | requests | ok | req/s | p50 ms | p95 ms | p99 ms | max ms | server CPU ms/req "
        "| client CPU ms/req |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in result["scenarios"]:
        lines.append(
            f"| {s['scenario']} | {s['mode']} | {s['requests']} | {s['ok']} | {s['rps']} | {s['p50']} | "
            f"{s['p95']} | "
            f"{s['p99']} | {s['max']} | {s['server_cpu_ms_per_request']} | "
            f"{s['client_cpu_ms_per_request']} |"
        )
    f = result.get("freshness", {})
    lines += [
        "",
        f"New item: POST /v1/items took {f.get('post_ms')} ms; recommendable "
        f"{f.get('visible_after_post_ms')} ms after the POST returned."
        if "post_ms" in f
        else f"New item: {f.get('error', 'not measured')}",
        "",
        f"Server start (catalog, PCA, {result['index']} index): {result['startup_s']} s.",
        "",
        f"Command: `{result['command']}`",
    ]
    (out / "service_load.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "service")
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--duration", type=float, default=15.0, help="Measured seconds per scenario.")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--max-requests", type=int, default=20_000, help="Cap per scenario.")
    p.add_argument(
        "--rates",
        type=lambda v: [float(x) for x in v.split(",")],
        default=[300.0, 50.0, 10.0],
        help="Paced total req/s of the three scenarios (no signals, text, all three); 0 skips the "
        "paced run. Each scenario also runs closed-loop to find its saturation throughput.",
    )
    p.add_argument("--workers", type=int, default=2, help="Server processes (service.workers).")
    p.add_argument("--stack", choices=("real", "test"), default="real")
    p.add_argument("--artifacts", type=Path, default=REPO / "runs" / "latest" / "artifacts.json")
    p.add_argument("--startup-timeout", type=float, default=300.0)
    p.add_argument("--_serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--db", default="", help=argparse.SUPPRESS)
    p.add_argument("--users-file", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._serve:
        serve(args)
        return
    if args.stack == "real" and not args.artifacts.is_file():
        sys.exit(f"error: {args.artifacts} not found: run `aigcrec demo` first (or use --stack test)")
    uptime_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    tmp = Path(tempfile.mkdtemp(prefix="aigcrec-load-"))
    port = free_port()
    cmd = [
        sys.executable,
        __file__,
        "--_serve",
        "--port",
        str(port),
        "--items",
        str(args.items),
        "--stack",
        args.stack,
        "--workers",
        str(args.workers),
        "--artifacts",
        str(args.artifacts),
        "--db",
        str(tmp / "bench.sqlite"),
        "--users-file",
        str(tmp / "users.json"),
    ]
    proc = subprocess.Popen(cmd, env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    try:
        startup = wait_ready(port, proc, args.startup_timeout, args.workers)
        users = json.loads((tmp / "users.json").read_text(encoding="utf-8"))
        texts, voice, face, signal_source = load_signals(args.artifacts)
        voice_b64, face_b64 = base64.b64encode(voice).decode(), base64.b64encode(face).decode()

        def pick_user(rng: random.Random) -> str:  # 90 % users with history, 10 % unknown (cold start)
            return rng.choice(users) if rng.random() < 0.9 else f"new-user-{rng.randrange(10**9)}"

        bodies = {
            "no signals": lambda rng: json.dumps({"user_id": pick_user(rng), "k": 12}).encode(),
            "text": lambda rng: json.dumps(
                {"user_id": pick_user(rng), "k": 12, "signals": {"text": rng.choice(texts)}}
            ).encode(),
            "text + voice + face": lambda rng: json.dumps(
                {
                    "user_id": pick_user(rng),
                    "k": 12,
                    "signals": {"text": rng.choice(texts), "voice": voice_b64, "face": face_b64},
                }
            ).encode(),
        }
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        scenarios = []
        for (name, make), rate in zip(bodies.items(), args.rates):
            for r in ([rate] if rate > 0 else []) + [0.0]:
                res = asyncio.run(
                    run_scenario(
                        port,
                        proc.pid,
                        name,
                        make,
                        args.clients,
                        args.duration,
                        args.max_requests,
                        args.warmup,
                        r,
                    )
                )
                print(json.dumps(res), flush=True)
                scenarios.append(res)
        fresh = asyncio.run(freshness(port, face))
        print(json.dumps({"freshness": fresh}), flush=True)
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz") as r:
            index_kind = json.loads(r.read())["index"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    result = {
        "stack": args.stack,
        "items": args.items,
        "clients": args.clients,
        "workers": args.workers,
        "duration_s": args.duration,
        "dims": "ranker/feature-store widths" if args.stack == "real" else "e_sem 1280, e_sty 64, e_tsem 384",
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "uptime_before": uptime_before,
        "uptime_after": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "signals": signal_source,
        "startup_s": round(startup, 1),
        "index": index_kind,
        "scenarios": scenarios,
        "freshness": fresh,
        # Paths of this machine stay out of the results: the artifacts file is named by its role.
        "command": " ".join(
            ["python", "benchmarks/load_service.py", *sys.argv[1:]]
        ).replace(str(args.artifacts), "ARTIFACTS_JSON"),
    }
    write_results(args.out, result)
    print(f"wrote {args.out / 'service_load.json'} and {args.out / 'service_load.md'}")


if __name__ == "__main__":
    main()
