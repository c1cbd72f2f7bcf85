#!/usr/bin/env bash
# Re-run the top-K benchmarks whose tables are in benchmarks/results/topk-* (docs/topk.md, README).
# Needs the bench extra (pip install -e '.[bench]': cornac, implicit) and ../shared/datasets/movielens-100k.
# Feature stores are encoded once (aigcrec encode) into FEATURES (default: runs/cache/topk, git-ignored) and
# reused; the world is generated once into worlds/default-0 (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
DATA=${AIGCREC_DATASETS:-../shared/datasets}
FEATURES=${FEATURES:-runs/cache/topk}
WORLD=${WORLD:-worlds/default-0}
OUT=benchmarks/results
AIGCREC=${AIGCREC:-.venv/bin/aigcrec}

[ -f "$FEATURES/movielens-100k/manifest.json" ] || \
  nice -n 10 $AIGCREC encode --catalog "$DATA/movielens-100k" --out "$FEATURES/movielens-100k"
nice -n 10 $AIGCREC benchmark topk --dataset movielens --data-dir "$DATA/movielens-100k" \
  --features "$FEATURES/movielens-100k" --seeds 5 --peers --out "$OUT/topk-movielens" "$@"

[ -f "$WORLD/items.csv" ] || nice -n 10 $AIGCREC world --size default --out "$WORLD" --seed 0
[ -f "$FEATURES/world-default-0/manifest.json" ] || \
  nice -n 10 $AIGCREC encode --catalog "$WORLD" --out "$FEATURES/world-default-0"
nice -n 10 $AIGCREC benchmark topk --dataset world --data-dir "$WORLD" --features "$FEATURES/world-default-0" \
  --seeds 3 --peers --config benchmarks/ranking_world.yaml --out "$OUT/topk-world" "$@"
