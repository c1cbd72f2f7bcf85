"""Where a UMAIR-FPS training step spends its time on MovieLens (warm split, batch 1024, one torch thread).

Times ``--steps`` training steps of the loop ``trainer.fit`` runs (slice the rows, look up the vectors, BCE,
backward, Adam) with the aigcrec source on PYTHONPATH, beside DeepCTR-Torch DCNMix's own ``fit`` on the same
number of rows in the same process, then profiles 10 steps with ``torch.profiler`` (operator self times, GEMM
FLOPs). Writes ``profile-<label>.json`` and ``profile-<label>.md``. Run it once per source to compare:

    PYTHONPATH=<old checkout>/src python benchmarks/ranking_throughput_profile.py --label before
    PYTHONPATH=src python benchmarks/ranking_throughput_profile.py --label after

Figures under a shared machine's load are inflated; the DCNMix ratio from the same process is the one to read.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import inspect
import io
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.profiler import profile

from aigcrec.ranking import trainer
from aigcrec.ranking.config import RankingConfig
from aigcrec.ranking.data import warm_split
from aigcrec.ranking.experiment import prepare, variant_config
from aigcrec.ranking.models import build_model
from aigcrec.sources import load_dataset

ROOT = Path(__file__).resolve().parents[1]
# operator -> category of the summary (self CPU time; anything else is "elementwise and other")
CATEGORIES = {
    "GEMM (mm, addmm, bmm)": ("aten::mm", "aten::addmm", "aten::bmm"),
    "history pooling (embedding_bag, sort, unique)": ("aten::_embedding_bag", "aten::_embedding_bag_forward_only",
                                                      "aten::_embedding_bag_dense_backward", "aten::embedding_bag",
                                                      "aten::sort", "aten::_unique2", "aten::unique_dim"),
    "gathers and scatters (index_select, embedding backward)": ("aten::index_select", "aten::embedding_dense_backward",
                                                                "aten::index_add_", "aten::scatter_add_", "aten::index"),
    "dropout masks (bernoulli_, uniform_)": ("aten::bernoulli_", "aten::uniform_"),
}


def movielens(data_dir: Path):
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:10]
    return load_dataset("movielens", data_dir, Path("runs") / "cache" / f"ranking-content-movielens-{digest}")


def training_step(model, prep, cfg):
    """A closure running step i of one epoch exactly as ``trainer.fit`` does (its optimizer settings too)."""
    data = trainer.to_tensors(prep.parts["train"])
    if hasattr(trainer, "with_profiles"):
        data = trainer.with_profiles(model, data, cfg.train.profile_cache_mb)
    y = torch.as_tensor(prep.labels["train"])
    fused = "fused=True" in inspect.getsource(trainer.fit)  # the optimizer as this source's fit builds it
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.train.lr,
                           **({"fused": True} if fused else {}))
    drop_cols = torch.tensor([j for j, f in enumerate(model.spec.sparse) if f.id_dropout], dtype=torch.long)
    gen = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(y), generator=gen)
    loss_fn = nn.BCEWithLogitsLoss()
    bs = cfg.train.batch_size
    model.train()

    def step(i: int) -> None:
        rows = perm[(i * bs) % len(y):][:bs]
        batch = trainer.make_batch(model, data, rows)
        cat = batch["cat"].clone()
        drop = torch.rand(cat.shape[0], drop_cols.numel(), generator=gen) < cfg.train.id_dropout
        cat[:, drop_cols] = cat[:, drop_cols].masked_fill(drop, 0)
        batch["cat"] = cat
        loss = loss_fn(model(batch), y.index_select(0, rows))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def deepctr_rate(prep, cfg, n_rows: int) -> dict[str, float]:
    """DeepCTR-Torch DCNMix's ``fit`` over the first ``n_rows`` training rows (as ``ranking.peers.run_deepctr``)."""
    from deepctr_torch.inputs import SparseFeat
    from deepctr_torch.models import DCNMix

    spec = prep.spec.tabular_only()
    cols = [(f.name, spec.cardinality(f)) for f in spec.sparse]
    _, m = variant_config("dcnv2", cfg.model)
    feats = [SparseFeat(name, vocabulary_size=card, embedding_dim=m.embedding_dim) for name, card in cols]
    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):
        model = DCNMix(feats, feats, cross_num=m.cross_layers, dnn_hidden_units=tuple(m.dnn_units), low_rank=m.low_rank,
                       num_experts=m.num_experts, dnn_dropout=m.dropout, l2_reg_linear=0.0, l2_reg_embedding=0.0,
                       l2_reg_cross=0.0, l2_reg_dnn=0.0, seed=0, device="cpu")
    model.compile(torch.optim.Adam(model.parameters(), lr=cfg.train.lr), "binary_crossentropy")
    x = {name: prep.parts["train"].cat[:n_rows, j] for j, (name, _) in enumerate(cols)}
    c, w = time.process_time(), time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        model.fit(x, prep.labels["train"][:n_rows], batch_size=cfg.train.batch_size, epochs=1, verbose=0)
    return {"cpu": n_rows / (time.process_time() - c), "wall": n_rows / (time.perf_counter() - w)}


def timed(step, start: int, steps: int, bs: int) -> dict[str, float]:
    c, w = time.process_time(), time.perf_counter()
    for i in range(start, start + steps):
        step(i)
    return {"cpu": steps * bs / (time.process_time() - c), "wall": steps * bs / (time.perf_counter() - w)}


def gemm_floor_ms(events) -> float:
    """ms per step of the profiled step's GEMMs re-run alone on random operands of the same shapes (best of 5):
    the time a step cannot go under on this machine without less matrix work."""
    ops = {"aten::mm": torch.mm, "aten::addmm": torch.addmm, "aten::bmm": torch.bmm}
    total = 0.0
    for e in events:
        if e.key not in ops or not e.input_shapes:
            continue
        args = [torch.randn(*shape) for shape in e.input_shapes if shape][:3]
        ops[e.key](*args)
        best = np.inf
        for _ in range(5):
            t = time.perf_counter()
            ops[e.key](*args)
            best = min(best, time.perf_counter() - t)
        total += best * e.count / 10
    return total * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "datasets" / "movielens-100k")
    ap.add_argument("--label", required=True, help="names the output files (e.g. before / after)")
    ap.add_argument("--steps", type=int, default=30, help="timed training steps (after 3 warm-up steps)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ranking-throughput")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = RankingConfig()
    data = movielens(args.data_dir)
    prep = prepare(data, warm_split(data.frame))
    kind, mcfg = variant_config("umair_fps", cfg.model)
    torch.manual_seed(0)
    model = build_model(kind, prep.spec, mcfg, prep.tables)
    t0 = time.perf_counter()
    step = training_step(model, prep, cfg)
    setup_s = time.perf_counter() - t0
    bs = cfg.train.batch_size
    for i in range(3):
        step(i)
    peer_before = deepctr_rate(prep, cfg, args.steps * bs)
    ours = timed(step, 3, args.steps, bs)
    peer_after = deepctr_rate(prep, cfg, args.steps * bs)
    with profile(record_shapes=True, with_flops=True) as prof:
        for i in range(3 + args.steps, 13 + args.steps):
            step(i)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)  # us over 10 steps
    cats = {name: 0.0 for name in CATEGORIES}
    for e in events:
        hit = next((name for name, ops in CATEGORIES.items() if e.key in ops), None)
        if hit:
            cats[hit] += e.self_cpu_time_total
    cats["elementwise and other"] = total - sum(cats.values())
    opt_total = sum(e.cpu_time_total for e in events if e.key.startswith("Optimizer.step"))
    gemm_us = cats["GEMM (mm, addmm, bmm)"]
    flops = sum(e.flops for e in events)
    top = sorted(prof.key_averages(group_by_input_shape=True), key=lambda e: -e.self_cpu_time_total)[:20]
    peer_cpu = (peer_before["cpu"] + peer_after["cpu"]) / 2
    floor = gemm_floor_ms(prof.key_averages(group_by_input_shape=True))
    result = {
        "label": args.label,
        "model": "umair_fps", "dataset": "movielens warm split (train rows)", "batch_size": bs, "threads": 1,
        "timed_steps": args.steps, "setup_seconds": round(setup_s, 2),
        "samples_per_s": {k: round(v, 1) for k, v in ours.items()},
        "deepctr_dcnmix_samples_per_s": {"before": peer_before, "after": peer_after},
        "ratio_to_deepctr_cpu": ours["cpu"] / peer_cpu,
        "profiled_ms_per_step": total / 10 / 1e3,
        "gemm_gflop_per_step": flops / 10 / 1e9,
        "gemm_gflops_achieved": flops / max(gemm_us, 1.0) / 1e3,
        "gemm_floor_ms_per_step": floor,
        "ceiling_samples_per_s": bs / (floor / 1e3),
        "ceiling_ratio_to_deepctr": bs / (floor / 1e3) / peer_cpu,
        "categories_percent": {k: 100 * v / total for k, v in cats.items()},
        "optimizer_step_percent": 100 * opt_total / total,
        "top_ops": [{"op": e.key, "shapes": str(e.input_shapes)[:100], "calls_per_step": e.count / 10,
                     "ms_per_step": e.self_cpu_time_total / 10 / 1e3, "percent": 100 * e.self_cpu_time_total / total}
                    for e in top],
        "load_1m": os.getloadavg()[0], "cpus": os.cpu_count(), "torch": torch.__version__,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"profile-{args.label}.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    lines = [f"# UMAIR-FPS training step profile: {args.label}", "",
             f"MovieLens warm split, batch {bs}, one torch thread, {args.steps} timed steps; 1-minute load "
             f"{result['load_1m']:.1f} on {result['cpus']} CPUs (shared).", "",
             f"- umair_fps: {ours['cpu']:.0f} samples/s of CPU time ({ours['wall']:.0f} wall); DeepCTR-Torch DCNMix "
             f"in the same process: {peer_cpu:.0f} (mean of before and after); ratio {result['ratio_to_deepctr_cpu']:.2f}",
             f"- profiled step: {result['profiled_ms_per_step']:.1f} ms (profiler on); GEMM work "
             f"{result['gemm_gflop_per_step']:.2f} GFLOP per step at {result['gemm_gflops_achieved']:.0f} GFLOP/s",
             f"- the step's GEMMs alone (same shapes, random operands, best of 5): {floor:.1f} ms per step, a ceiling "
             f"of {result['ceiling_samples_per_s']:.0f} samples/s = {result['ceiling_ratio_to_deepctr']:.2f}x DCNMix's "
             "(were everything else free)",
             f"- optimizer step (inclusive): {result['optimizer_step_percent']:.1f}% of the step", "",
             "| where the time goes (self CPU time) | % |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in result["categories_percent"].items()]
    lines += ["", "| top operators | input shapes | calls / step | ms / step | % |", "|---|---|---|---|---|"]
    lines += [f"| {o['op']} | {o['shapes']} | {o['calls_per_step']:g} | {o['ms_per_step']:.2f} | {o['percent']:.1f} |"
              for o in result["top_ops"]]
    (args.out / f"profile-{args.label}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
