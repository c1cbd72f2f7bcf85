"""Demo stage of ``aigcrec.data``: validate the demo's world and, when present, the real datasets.

The real datasets are looked for in ``$AIGCREC_DATASETS`` (default ``../shared/datasets``, relative to
the working directory, as in the tests); an absent one is listed as such, never an error.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from aigcrec.data.errors import DataError
from aigcrec.data.validate import Format, load_report

log = logging.getLogger("aigcrec.data")

REAL_DATASETS = {"movielens": "movielens-100k", "fer2013": "fer2013", "meld": "meld", "clinc150": "clinc150"}


def datasets_root() -> Path:
    return Path(os.environ.get("AIGCREC_DATASETS", Path("..") / "shared" / "datasets"))


def run(ctx) -> None:
    """Record what each dataset holds; a broken dataset is reported in the table, the demo goes on."""
    rows = []
    targets = [("world", ctx.artifacts.get("world_dir"))] if ctx.artifacts.get("world_dir") else []
    root = datasets_root()
    targets += [(fmt, root / name) for fmt, name in REAL_DATASETS.items()]
    for fmt, folder in targets:
        if not Path(folder).is_dir():
            rows.append({"dataset": fmt, "status": "absent", "summary": str(folder), "seconds": 0.0})
            continue
        t0 = time.perf_counter()
        try:
            report = load_report(Format(fmt), Path(folder))
        except DataError as exc:
            log.warning("%s: %s", fmt, exc)
            rows.append({"dataset": fmt, "status": "invalid", "summary": str(exc),
                         "seconds": round(time.perf_counter() - t0, 2)})
            continue
        summary = ", ".join(f"{k} {v}" for k, v in list(report.counts.items())[:6])
        rows.append({"dataset": fmt, "status": "ok", "summary": summary,
                     "seconds": round(time.perf_counter() - t0, 2)})
        ctx.record("data", f"{fmt}_counts", report.counts)
    ok = sum(r["status"] == "ok" for r in rows)
    ctx.record("data", "datasets_valid", f"{ok}/{len(rows)}", headline=True)
    ctx.report.section("Datasets", "Each folder loaded by its strict loader (aigcrec data validate); "
                                   f"real datasets looked for in {root}.")
    ctx.report.table(rows)
