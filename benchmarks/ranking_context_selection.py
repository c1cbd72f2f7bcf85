"""Issue 19: UMAIR-FPS's fm_cross and the training-fold context selection on one context-aware set, one model per
setting and seed on the context benchmark's random split (test AUC, best validation AUC, best epoch, seconds).

    PYTHONPATH=src python benchmarks/ranking_context_selection.py SET SEEDS SETTING [SETTING ...]

SET: a folder under ../shared/datasets; SEEDS: comma-separated. SETTING: comma-separated ``v=VARIANT`` (default
umair_fps), ``ctx=sel|none|all`` (the columns ``select_context(..., "anova")`` keeps on that seed's training
rows, none, every column; default sel), ``fmmode=no_context`` (fm_cross over the non-context fields only: an
ablation patched in here, not a config option), ``m.FIELD=VALUE`` / ``t.FIELD=VALUE`` (ModelConfig /
TrainConfig overrides, JSON values). max_epochs 300 as benchmarks/ranking_context.yaml. The commands and their
outputs are in benchmarks/results/ranking-context-diagnosis/ (selection-*.txt).
"""
import sys, time, json
from pathlib import Path
import torch
from torch import nn
from aigcrec.config import AppConfig
from aigcrec.cli.ranking import load_cli_dataset
from aigcrec.ranking.data import random_split
from aigcrec.ranking.experiment import prepare, run_variant
from aigcrec.ranking import models as M
from aigcrec.ranking.context_benchmark import without_context, only_context, select_context, context_columns
from aigcrec.ranking.layers import FMInteraction

class IndexedFM(nn.Module):
    def __init__(self, idx):
        super().__init__(); self.register_buffer("idx", torch.tensor(idx, dtype=torch.long)); self.fm = FMInteraction()
    def forward(self, e):
        return self.fm(e.index_select(1, self.idx))

orig_init = M.UMAIRFPSRanker.__init__
MODE = {"fm": "all"}
def patched(self, spec, cfg, tables=None):
    orig_init(self, spec, cfg, tables)
    if self.fm is not None and MODE["fm"] == "no_context":
        self.fm = IndexedFM([i for i, g in enumerate(self.emb.groups) if g != "context"])
M.UMAIRFPSRanker.__init__ = patched

name = sys.argv[1]; seeds = [int(s) for s in sys.argv[2].split(",")]
cfg = AppConfig()
data = load_cli_dataset("context", Path(f"../shared/datasets/{name}"), None, None, cfg)
cols = context_columns(data)
for seed in seeds:
    rows = random_split(data.frame, seed)
    kept = select_context(data.frame.iloc[rows["train"]], cols, "anova")
    preps = {}
    for spec in sys.argv[3:]:
        kv = dict(x.split("=") for x in spec.split(",")) if spec else {}
        variant = kv.pop("v", "umair_fps")
        ctx = kv.pop("ctx", "sel")  # sel | none | all
        MODE["fm"] = kv.pop("fmmode", "all")
        mo = {k[2:]: json.loads(v) for k, v in kv.items() if k.startswith("m.")}
        tr = {k[2:]: json.loads(v) for k, v in kv.items() if k.startswith("t.")}
        mc = cfg.ranking.model.model_copy(update=mo)
        tc = cfg.ranking.train.model_copy(update={"max_epochs": 300, **tr})
        d = {"sel": lambda: only_context(data, kept), "none": lambda: without_context(data), "all": lambda: data}[ctx]
        if ctx not in preps:
            preps[ctx] = prepare(d(), rows, mc.history_len)
        t = time.time()
        r = run_variant(preps[ctx], variant, mc, tc, seed)
        print(f"{name} {seed} kept={','.join(kept) or '-':30s} {spec:55s} test {r.metrics['auc']:.4f} val {r.fit.best_val_auc:.4f} ep {r.fit.best_epoch} {time.time()-t:.0f}s", flush=True)
