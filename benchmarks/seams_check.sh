#!/usr/bin/env bash
# Issue 23's "behaviour unchanged" check on the tiny world: encode the catalog and run the ranking benchmark with
# the code of commit BEFORE and with this tree, then compare the feature files (SHA-256) and every figure of
# ranking.json except times and load. Usage: benchmarks/seams_check.sh BEFORE [OUT]   (OUT: runs/seams)
set -euo pipefail
BEFORE=${1:?commit to compare against}
OUT=${2:-runs/seams}
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
PY=.venv/bin/python
mkdir -p "$OUT"
[ -d "$OUT/before-src" ] || (mkdir -p "$OUT/before-src" && git archive "$BEFORE" src | tar -x -C "$OUT/before-src")
[ -f "$OUT/world/world.json" ] || PYTHONPATH=src $PY -m aigcrec.cli.main world --size tiny --seed 0 --out "$OUT/world"
for tree in before after; do
  if [ $tree = before ]; then SRC=$OUT/before-src/src; else SRC=src; fi
  PYTHONPATH=$SRC $PY -m aigcrec.cli.main encode --catalog "$OUT/world" --out "$OUT/$tree/features" > "$OUT/$tree-encode.log" 2>&1
  PYTHONPATH=$SRC $PY -m aigcrec.cli.main benchmark ranking --dataset world --data-dir "$OUT/world" --seeds 1 \
    --models umair_fps,dcnv2,popularity --splits warm --features "$OUT/$tree/features" --out "$OUT/$tree/ranking" \
    > "$OUT/$tree-ranking.log" 2>&1
done
$PY - "$OUT" <<'PY'
import hashlib, json, sys
from pathlib import Path
out = Path(sys.argv[1])
def digests(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.suffix in (".npy", ".parquet", ".csv")}
def flat(d, p=""):
    if isinstance(d, dict):
        return {k2: v2 for k, v in d.items() for k2, v2 in flat(v, f"{p}/{k}").items()}
    if isinstance(d, list):
        return {k2: v2 for i, v in enumerate(d) for k2, v2 in flat(v, f"{p}[{i}]").items()}
    return {p: d}
TIMING = ("load_", "seconds", "samples_per_s", "_s\"", "wall", "time")
fb, fa = digests(out / "before/features"), digests(out / "after/features")
a = flat(json.loads((out / "before/ranking/ranking.json").read_text()))
b = flat(json.loads((out / "after/ranking/ranking.json").read_text()))
skip = lambda k: any(t in k for t in ("load_", "seconds", "samples_per_s", "wall", "machine", "environment"))
diff = [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if not skip(k) and a.get(k) != b.get(k)]
lines = ["# Seams check: tiny world, before vs after", "",
         f"- feature files compared: {len(fb)}; identical: {fb == fa}",
         f"- ranking.json figures compared (times and load left out): {sum(not skip(k) for k in set(a) | set(b))}; "
         f"different: {len(diff)}", ""]
lines += [f"  - {k}: {x} -> {y}" for k, x, y in diff[:50]]
(out / "check.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
