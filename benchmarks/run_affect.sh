#!/usr/bin/env bash
# Re-run every affect benchmark (3 seeds each). Usage: benchmarks/run_affect.sh [DATASETS_DIR] [WORLD_DIR]
# DATASETS_DIR defaults to ../shared/datasets; WORLD_DIR to a world generated with `aigcrec world`.
# The real-data tasks run from the benchmark's defaults, their measured recipes (aigcrec.affect.recipes, recorded in
# affect.json as `recipe`): MiniLM fine-tuned per seed for MELD (top 3 layers, with the previous utterance as context)
# and CLINC150 (top 2 layers), our face-net trained once on FER2013 (~33 min on one core); the trained encoders and
# their features are cached under $CACHE (tens of minutes each on 1 CPU thread).
set -euo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
DATA=${1:-../shared/datasets}
WORLD=${2:-runs/cache/world}
OUT=benchmarks/results
CACHE=${AFFECT_CACHE:-runs/cache/affect}
A=.venv/bin/aigcrec
uptime
[ -f "$WORLD/world.json" ] || $A world --out "$WORLD" --size small --seed 0  # the world the results used
$A benchmark affect --task fusion --data-dir "$WORLD" --seeds 3 --out $OUT/affect-fusion --cache-dir "$CACHE"
.venv/bin/python benchmarks/affect_fusion_ceiling.py --world "$WORLD" --cache-dir "$CACHE" --seeds 3 --out $OUT/affect-fusion
$A benchmark affect --task face-emotion --data-dir "$DATA/fer2013" --seeds 3 \
  --out $OUT/affect-face-emotion --cache-dir "$CACHE"
# Fusion again with the face network the face-emotion run trained (encoders.face: face-net:<its weights>)
FACENET=$(ls -t "$CACHE"/face-net-trained-*.pt | head -1)
printf 'affect:\n  encoders:\n    face: face-net:%s\n' "$FACENET" > "$CACHE/fusion-face-net.yaml"
$A benchmark affect --task fusion --data-dir "$WORLD" --seeds 3 --config "$CACHE/fusion-face-net.yaml" \
  --out $OUT/affect-fusion-face-net --cache-dir "$CACHE"
# Fusion on the default-size world (5,000 sessions), with the packaged face CNN and with our face-net
DEFAULT_WORLD=${DEFAULT_WORLD:-worlds/default-0}
[ -f "$DEFAULT_WORLD/world.json" ] || $A world --out "$DEFAULT_WORLD" --size default --seed 0
$A benchmark affect --task fusion --data-dir "$DEFAULT_WORLD" --seeds 3 --out $OUT/affect-fusion-default --cache-dir "$CACHE"
$A benchmark affect --task fusion --data-dir "$DEFAULT_WORLD" --seeds 3 --config "$CACHE/fusion-face-net.yaml" \
  --out $OUT/affect-fusion-default-face-net --cache-dir "$CACHE"
# ... and with a face-net trained on the world's own train faces (benchmarks/affect_world.yaml; what the demo does),
# then what a perfect reader of each modality subset could reach (signal truth only)
$A benchmark affect --task fusion --data-dir "$DEFAULT_WORLD" --seeds 3 --config benchmarks/affect_world.yaml \
  --out $OUT/affect-fusion-default-world-face-net --cache-dir "$CACHE"
.venv/bin/python benchmarks/affect_fusion_ceiling.py --world "$DEFAULT_WORLD" --signal-only --out $OUT/affect-fusion-default
# The small world with the cross-modal phenomena at their documented prevalences (docs/world.md): readers of the true
# displays with and without cross-modal interactions (and on the same world without phenomena), then the fusion models
X=benchmarks/results/affect-fusion-ceiling-crossmodal
XWORLD=${XWORLD:-runs/cache/world-crossmodal}
ZWORLD=$WORLD   # the small world above, without phenomena
[ -f "$XWORLD/world.json" ] || $A world --out "$XWORLD" --size small --seed 0 --config benchmarks/affect_world_crossmodal.yaml
.venv/bin/python benchmarks/affect_fusion_ceiling.py --world "$XWORLD" --crossmodal --reader-sessions 20000 --out $X
.venv/bin/python benchmarks/affect_fusion_ceiling.py --world "$ZWORLD" --crossmodal --reader-sessions 20000 \
  --sweep-sarcasm --out $X/no-phenomena
$A benchmark affect --task fusion --data-dir "$XWORLD" --seeds 3 --config benchmarks/affect_world_crossmodal.yaml \
  --out $X/fusion --cache-dir "$CACHE"
$A benchmark affect --task fusion --data-dir "$ZWORLD" --seeds 3 --config benchmarks/affect_world.yaml \
  --out $X/no-phenomena/fusion --cache-dir "$CACHE"
$A benchmark affect --task intent --data-dir "$DATA/clinc150" --seeds 3 \
  --out $OUT/affect-intent --cache-dir "$CACHE"
$A benchmark affect --task text-emotion --data-dir "$DATA/meld" --seeds 3 \
  --out $OUT/affect-text-emotion --cache-dir "$CACHE"
.venv/bin/python benchmarks/affect_latency.py --threads 2 --repeats 50 --out $OUT/affect_latency.json
uptime
