"""Your own catalog by hand, timed: ``aigcrec build``, ``aigcrec serve``, then requests with an HTTP client.

The three commands a new user runs, each a real subprocess (the CLI, uvicorn on loopback): the wall time of
the build and of each of its steps (from the manifest it writes), the time from starting the server to
``/readyz``, the latency of recommend requests for a known and an unknown user (the first one and the
median of the next 20), a posted item and a feedback event, and the time to restart on the same SQLite
file. Writes ``own_catalog.json`` and ``own_catalog.md`` under ``--out``.

    nice -n 10 .venv/bin/python benchmarks/own_catalog.py --catalog ../shared/datasets/movielens-100k \\
        --out benchmarks/results/own_catalog

``--context JSON`` (repeatable; a catalog in the context-aware rating layout, whose ranker reads explicit
context): the known user's recommend with each of those contexts as well (first request's latency, the
top 10), and how many of the first two contexts' top 10 they share. Items without an image (that layout has
none) make the posted item's image a generated PNG instead of a served item's.

    nice -n 10 .venv/bin/python benchmarks/own_catalog.py --catalog ../shared/datasets/depaulmovie \\
        --out benchmarks/results/own_catalog-depaulmovie \\
        --context '{"time": "weekend", "location": "cinema", "companion": "partner"}' \\
        --context '{"time": "weekday", "location": "home", "companion": "alone"}'

Timings depend on the machine's load; the results record ``os.getloadavg()`` before and after.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KEY = "own-catalog-bench"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "aigcrec.cli.main", *args]


def _env() -> dict[str, str]:
    env = dict(os.environ, AIGCREC_API_KEY=KEY, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", COLUMNS="400")  # wide: one log record per line
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(models: Path, db: Path, port: int, log: Path) -> tuple[subprocess.Popen, float]:
    import httpx

    t0 = time.perf_counter()
    proc = subprocess.Popen(_cli("serve", "--models", str(models / "artifacts.json"), "--port", str(port),
                                 "--db", str(db)), env=_env(), stdout=log.open("w"), stderr=subprocess.STDOUT)
    while proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc, time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")


def _timed(client, method: str, path: str, **kw) -> tuple[float, dict]:
    t0 = time.perf_counter()
    r = getattr(client, method)(path, **kw)
    ms = (time.perf_counter() - t0) * 1e3
    r.raise_for_status()
    return ms, r.json()


def main() -> None:
    import httpx

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--models", type=Path, help="Models folder (default: a fresh temporary one).")
    ap.add_argument("--context", action="append", default=[], type=json.loads,
                    help="An explicit context (JSON object) to recommend with as well; repeatable.")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="own-catalog-"))
    models = args.models or work / "models"
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    subprocess.run(_cli("build", "--catalog", str(args.catalog), "--out", str(models)), env=_env(), check=True)
    build_s = time.perf_counter() - t0
    manifest = json.loads((models / "artifacts.json").read_text(encoding="utf-8"))

    port = _free_port()
    proc, start_s = _start(models, work / "service.sqlite", port, work / "serve.log")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
            c.get("/healthz")  # open the connection; not timed
            known = _known_user(args.catalog)
            first_known, body = _timed(c, "post", "/v1/recommend", json={"user_id": known, "k": 10})
            first_unknown, cold = _timed(c, "post", "/v1/recommend", json={"user_id": "bench-new-user", "k": 10})
            warm = [_timed(c, "post", "/v1/recommend", json={"user_id": known, "k": 10})[0] for _ in range(20)]
            contexts = []
            for ctx in args.context:
                ms, got = _timed(c, "post", "/v1/recommend", json={"user_id": known, "k": 10, "context": ctx})
                contexts.append({"context": ctx, "first_ms": round(ms, 1),
                                 "top10": [i["item_id"] for i in got["items"]]})
            served = c.get(body["items"][0]["image_url"])  # a served item's image when it has one
            image = served.content if served.status_code == 200 else _png()
            post_ms, _ = _timed(c, "post", "/v1/items", headers={"Authorization": f"Bearer {KEY}"}, json={
                "item_id": "bench-new-item", "title": "a new item", "tags": [{"text": "new", "lang": "en"}],
                "image": base64.b64encode(image).decode()})
            fb_ms, _ = _timed(c, "post", "/v1/feedback", headers={"Authorization": f"Bearer {KEY}"},
                              json={"user_id": "bench-new-user", "item_id": body["items"][0]["item_id"],
                                    "type": "bookmark"})
    finally:
        proc.terminate()
        proc.wait(60)
    proc, restart_s = _start(models, work / "service.sqlite", port, work / "serve2.log")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
            kept = c.get("/v1/items/bench-new-item").status_code == 200
            remembered = not c.post("/v1/recommend", json={"user_id": "bench-new-user"}).json()[
                "explanation"]["cold_start"]
    finally:
        proc.terminate()
        proc.wait(60)
    startup = [" ".join(line.split("WARNING", 1)[1].split()).replace(str(work), "<tmp>")
               .replace(str(models.resolve()), "<models>").replace(str(REPO), "<repo>")
               for line in (work / "serve.log").read_text().splitlines() if "WARNING" in line]
    result = {
        "catalog": args.catalog.name, "layout": manifest["layout"], "python": platform.python_version(),
        "cpus": os.cpu_count(), "load_before": load_before, "load_after": os.getloadavg(),
        "build_s": round(build_s, 1), "steps": manifest["steps"], "serve_ready_s": round(start_s, 1),
        "restart_ready_s": round(restart_s, 1), "first_recommend_known_ms": round(first_known, 1),
        "first_recommend_unknown_ms": round(first_unknown, 1), "recommend_known_p50_ms": round(statistics.median(warm), 1),
        "cold_start_unknown": cold["explanation"]["cold_start"], "post_item_ms": round(post_ms, 1),
        "feedback_ms": round(fb_ms, 1), "item_kept_after_restart": kept,
        "feedback_kept_after_restart": remembered, "startup_warnings": startup,
        **({"contexts": contexts} if contexts else {}),
    }
    if len(contexts) >= 2:
        result["first_two_contexts_shared_top10"] = len(set(contexts[0]["top10"]) & set(contexts[1]["top10"]))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "own_catalog.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    rows = [("aigcrec build (total)", f"{result['build_s']} s")]
    rows += [(f"  {s['name']}", f"{s['seconds']} s  ({_figs(s['figures'])})") for s in manifest["steps"]]
    rows += [("aigcrec serve: start to /readyz (first start, imports the catalog)", f"{result['serve_ready_s']} s"),
             ("first recommend, known / unknown user", f"{result['first_recommend_known_ms']} / "
                                                       f"{result['first_recommend_unknown_ms']} ms"),
             ("recommend, known user, median of 20", f"{result['recommend_known_p50_ms']} ms"),
             ("POST /v1/items, POST /v1/feedback", f"{result['post_item_ms']} / {result['feedback_ms']} ms"),
             ("restart to /readyz; item and feedback kept", f"{result['restart_ready_s']} s; {kept and remembered}")]
    rows += [(f"recommend, known user, context {json.dumps(x['context'])}", f"first {x['first_ms']} ms; top 10 "
              f"{', '.join(x['top10'])}") for x in contexts]
    if len(contexts) >= 2:
        rows += [("items the first two contexts' top 10 share", str(result["first_two_contexts_shared_top10"]))]
    md = [f"# Own catalog end to end: {result['catalog']} ({result['layout']} layout)", "",
          f"`benchmarks/own_catalog.py`, {result['cpus']} CPUs, load average before {load_before[0]:.1f}, "
          f"after {result['load_after'][0]:.1f}.", "", "| step | result |", "|---|---|",
          *[f"| {a} | {b} |" for a, b in rows]]
    (args.out / "own_catalog.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    print("\n".join(md))


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 80, 40)).save(buf, format="PNG")
    return buf.getvalue()


def _figs(figures: dict) -> str:
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items())


def _known_user(catalog: Path) -> str:
    sys.path.insert(0, str(REPO / "src"))
    from aigcrec.data.catalog import read_catalog
    from aigcrec.data.layouts import load_interactions

    items = read_catalog(catalog, check_images=False).items
    inter = load_interactions(catalog, set(items["item_id"]))
    return str(inter.loc[inter["label"] == 1, "user_id"].iloc[0])


if __name__ == "__main__":
    main()
