#!/usr/bin/env bash
# The default-world online simulation of docs/simulate.md, from the repository root after `make demo`
# (its world is runs/cache/world-default-seed0, its models runs/latest):
#   1. the six policies of issue 18, 3 seeds x 300 sessions -> benchmarks/results/simulate-default/
#   2. the headroom of affect (ceiling_blind: the best slate without the session's state) and affect_oracle
#      with the signals sent too, on the same sessions and draws -> benchmarks/results/simulate-default-extra/
# Each writes simulate.json, simulate_details.json (with the wall time, CPU seconds and load average),
# simulate.md, simulate.html and runs/<policy>-s<seed>.{csv,json}.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WORLD=${WORLD:-runs/cache/world-default-seed0}
MODELS=${MODELS:-runs/latest}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
nice -n 10 "$PY" -m aigcrec.cli.main simulate --world "$WORLD" --models "$MODELS" --seeds 3 --sessions 300 \
  --out benchmarks/results/simulate-default
nice -n 10 "$PY" -m aigcrec.cli.main simulate --world "$WORLD" --models "$MODELS" --seeds 3 --sessions 300 \
  --policies ceiling_blind,affect_oracle --config benchmarks/simulate_oracle_signals.yaml \
  --out benchmarks/results/simulate-default-extra
"$PY" benchmarks/simulate_ratios.py benchmarks/results/simulate-default benchmarks/results/simulate-default-extra
nice -n 10 "$PY" benchmarks/simulate_demo_stage.py --models "$MODELS" --out benchmarks/results/simulate-default
