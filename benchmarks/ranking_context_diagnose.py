"""Diagnosis of UMAIR-FPS on the small context-aware sets (docs/ranking.md, "Context-aware rating sets"):
one model per setting on the context benchmark's random split of one seed, printing its test AUC, best
validation AUC, best epoch, seconds and the validation AUC per epoch.

    PYTHONPATH=src python benchmarks/ranking_context_diagnose.py SET SEED SETTING [SETTING ...]

SET: a folder under ../shared/datasets. SETTING: "" (the defaults) or comma-separated ``v=VARIANT`` (default
umair_fps), ``nc=1`` (without the context columns), ``m.FIELD=VALUE`` / ``t.FIELD=VALUE`` (ModelConfig /
TrainConfig overrides, JSON values). Every setting trains with max_epochs 60 unless ``t.max_epochs`` is given.
The commands and their outputs are in benchmarks/results/ranking-context-diagnosis/.
"""
import sys, time, json
from pathlib import Path
from aigcrec.config import AppConfig
from aigcrec.cli.ranking import load_cli_dataset
from aigcrec.ranking.data import random_split
from aigcrec.ranking.experiment import prepare, run_variant
from aigcrec.ranking.context_benchmark import without_context

name, seed = sys.argv[1], int(sys.argv[2])
cfg = AppConfig()
data = load_cli_dataset("context", Path(f"../shared/datasets/{name}"), None, None, cfg)
print("fields", [(f.name, f.kind, f.group) for f in data.fields])
rows = random_split(data.frame, seed)
print({k: len(v) for k, v in rows.items()})
preps = {}
for spec in sys.argv[3:]:
    kv = dict(x.split("=") for x in spec.split(",")) if spec else {}
    variant = kv.pop("v", "umair_fps")
    nc = kv.pop("nc", "0") == "1"
    mo = {k[2:]: json.loads(v) for k, v in kv.items() if k.startswith("m.")}
    tr = {k[2:]: json.loads(v) for k, v in kv.items() if k.startswith("t.")}
    mc = cfg.ranking.model.model_copy(update=mo)
    tc = cfg.ranking.train.model_copy(update={"max_epochs": 60, **tr})
    key = nc
    if key not in preps:
        preps[key] = prepare(without_context(data) if nc else data, rows, mc.history_len)
    t = time.time()
    r = run_variant(preps[key], variant, mc, tc, seed)
    h = [round(x["val_auc"], 3) for x in r.fit.history]
    print(f"{spec or 'default':50s} test {r.metrics['auc']:.4f} val {r.fit.best_val_auc:.4f} best_ep {r.fit.best_epoch} {time.time()-t:.1f}s  val/ep {h[:12]}...{h[-3:]}", flush=True)
