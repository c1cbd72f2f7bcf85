#!/usr/bin/env bash
# First and second `make demo` on a fresh clone, as a new user runs them (issue: first demo <= 10 min after
# the installs, second <= 30 s). Clones the committed HEAD into a temporary folder (with ../shared beside it
# when this checkout has one), runs `make demo` twice, and writes benchmarks/results/demo/first_run.{json,md}
# from the two runs' metrics.json (stage and step wall/CPU seconds, the install time) and the wall times.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
WORK=${1:-$(mktemp -d)}
mkdir -p "$WORK"
[ -d "$REPO/../shared" ] && [ ! -e "$WORK/shared" ] && ln -s "$(cd "$REPO/../shared" && pwd)" "$WORK/shared"
git clone -q "$REPO" "$WORK/repo"
cd "$WORK/repo"
t0=$(date +%s); make demo > "$WORK/first.log" 2>&1; t1=$(date +%s)
first=$(readlink -f runs/latest)
make demo > "$WORK/second.log" 2>&1; t2=$(date +%s)
second=$(readlink -f runs/latest)
"$WORK/repo/.venv/bin/python" "$REPO/benchmarks/demo_timings.py" --first "$first" --second "$second" \
  --first-wall $((t1 - t0)) --second-wall $((t2 - t1)) --out "$REPO/benchmarks/results/demo"
