"""What logging every served list costs (``ServiceStore.log_served``), against a feedback write in the same run.

One SQLite file (WAL, ``synchronous=FULL`` as the service runs it): ``--requests`` responses of ``--k`` items
with an affect reading (7 emotion and 5 intent probabilities, three signals) are logged one transaction each,
then as many single-event feedback batches are appended (each fsyncs, as an acknowledged event must). Reports
the median and p99 wall time per write and the bytes the file (database + WAL, after a checkpoint) grows per
logged response. Figures depend on the disk and the load; compare the two rows of one run.

    nice -n 10 python benchmarks/served_log.py --requests 2000 --k 12 --out benchmarks/results/served_log
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from aigcrec.data.schemas import EMOTIONS
from aigcrec.service.store import Served, ServiceStore

INTENTS = ("explore", "relax", "get_inspired", "find_specific", "share")


def reading(rng: np.random.Generator) -> dict:
    """A derived affect reading as the facade logs it (``AffectOut``): no raw input, no embedding."""
    pe, pi = rng.dirichlet(np.ones(len(EMOTIONS))), rng.dirichlet(np.ones(len(INTENTS)))
    return {"emotion": EMOTIONS[int(pe.argmax())], "intent": INTENTS[int(pi.argmax())],
            "emotion_probs": dict(zip(EMOTIONS, pe.tolist())), "intent_probs": dict(zip(INTENTS, pi.tolist())),
            "confidence": float(pe.max()), "modalities_used": ["text", "voice", "face"],
            "fusion_weights": {"text": 0.5, "voice": 0.2, "face": 0.2, "cross-modal": 0.1}}


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.iterdir() if p.name.startswith(path.name))


def run(requests: int, k: int, folder: Path) -> dict:
    rng = np.random.default_rng(0)
    db = folder / "served.sqlite"
    store = ServiceStore(db, "FULL")
    store.append_events([{"user_id": "u0", "item_id": "i0", "type": "impression"}])
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = _size(db)
    log_ms, rids = [], []
    for n in range(requests):
        served = Served(uuid.uuid4().hex, f"u{n % 500}", time.time(),
                        [(f"i{rng.integers(10_000)}", float(rng.random()), "similar_to_history") for _ in range(k)],
                        False, reading(rng), {"time_of_day": "evening"})
        t0 = time.perf_counter()
        store.log_served(served)
        log_ms.append((time.perf_counter() - t0) * 1e3)
        rids.append((served.request_id, served.user_id, served.items[0][0]))
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    grown = _size(db) - before
    fb_ms = []
    for rid, user, item in rids:
        t0 = time.perf_counter()
        store.append_events([{"user_id": user, "item_id": item, "type": "click", "request_id": rid}])
        fb_ms.append((time.perf_counter() - t0) * 1e3)
    store.close()

    def stats(ms: list[float]) -> dict:
        return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
                "mean_ms": float(np.mean(ms))}

    return {"requests": requests, "k": k, "load_average_1m": os.getloadavg()[0], "log_served": stats(log_ms),
            "feedback_one_event": stats(fb_ms), "bytes_per_logged_response": grown / requests}


def markdown(r: dict) -> str:
    lines = [f"# Served-list log cost ({r['requests']} responses of k = {r['k']}, load average "
             f"{r['load_average_1m']:.1f})", "", "| write | p50 ms | p99 ms | mean ms |", "|---|---|---|---|"]
    for name, key in (("log_served (one response, synchronous=NORMAL)", "log_served"),
                      ("feedback, one event (synchronous=FULL)", "feedback_one_event")):
        s = r[key]
        lines.append(f"| {name} | {s['p50_ms']:.3f} | {s['p99_ms']:.3f} | {s['mean_ms']:.3f} |")
    lines += ["", f"File growth per logged response: {r['bytes_per_logged_response']:.0f} bytes.", "",
              "Command: `nice -n 10 python benchmarks/served_log.py --requests "
              f"{r['requests']} --k {r['k']} --out benchmarks/results/served_log`", ""]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--k", type=int, default=12)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/served_log"))
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.requests, args.k, Path(tmp))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "served_log.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    (args.out / "served_log.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))


if __name__ == "__main__":
    main()
