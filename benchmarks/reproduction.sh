#!/usr/bin/env bash
# UMAIR-FPS as the paper built it beside ours on MovieLens-100K (docs/reproduction.md): the content pipeline's
# features (tag-pretext fine-tuned image backbone, genres as tags; text encoder fine-tuned with MNRL on the
# catalog's pairs), encoded once into runs/cache/; then the benchmark reads them (--features).
# Group A (paper, ours, the authors' eight baselines): benchmarks/results/reproduction-movielens/.
# Group B (the walk from paper to ours after umair_fps_paper_val, which group A has; the contribution mechanisms):
# benchmarks/results/reproduction-movielens-walk/.
# SEEDS_A / SEEDS_B: seed counts (the committed tables say which were run).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
A=${AIGCREC:-.venv/bin/aigcrec}
DATA=${AIGCREC_DATASETS:-../shared/datasets}/movielens-100k
OUT=benchmarks/results
C=runs/cache
if [ ! -f "$C/ml100k-features/manifest.json" ]; then
  nice -n 10 $A encode finetune-image --catalog "$DATA" --out "$C/ml100k-enc-image"
  nice -n 10 $A encode finetune-text --catalog "$DATA" --encoder "$C/ml100k-enc-image" --out "$C/ml100k-enc"
  nice -n 10 $A encode --catalog "$DATA" --encoder "$C/ml100k-enc" --out "$C/ml100k-features"
fi
nice -n 10 $A benchmark ranking --dataset movielens --data-dir "$DATA" --features "$C/ml100k-features" \
  --seeds "${SEEDS_A:-5}" --splits warm --peers all --models umair_fps_paper,umair_fps_paper_val,umair_fps \
  --out "$OUT/reproduction-movielens"
nice -n 10 $A benchmark ranking --dataset movielens --data-dir "$DATA" --features "$C/ml100k-features" \
  --seeds "${SEEDS_B:-5}" --splits warm \
  --models umair_fps_walk_batch,umair_fps_walk_id_dropout,umair_fps_walk_scale,umair_fps_walk_parallel,umair_fps_walk_mod_dropout,umair_fps_walk_cross_fields,umair_fps_walk_history,umair_fps_walk_match,umair_fps_paper_none,umair_fps_paper_senet,umair_fps_paper_mixture,umair_fps_concat,umair_fps_senet,umair_fps_mixture \
  --out "$OUT/reproduction-movielens-walk"
.venv/bin/python benchmarks/reproduction_tests.py "$OUT/reproduction-movielens"
