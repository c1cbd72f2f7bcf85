"""Old vs new UMAIR-FPS code on the same weights: scores, modality weights and gradients on fixed MovieLens rows.

Run it twice, each time with the aigcrec source to test first on PYTHONPATH: ``--dump`` with the old source
(it builds umair_fps with seed 0, saves the weights and its outputs), then ``--compare`` with the new source
(it loads those weights and compares its own outputs). What is compared, on the warm split's first 4,096
training rows and all test rows:

- ``predict`` probabilities and modality weights (the evaluation path of ``fit``);
- the gradient of the BCE loss of 1,024 training rows with respect to every trainable parameter, from the
  batches ``fit`` trains on (eval mode, so no dropout: the training equations);
- ``RankerBundle.score`` for 20 users x 50 items, eager torch and ONNX Runtime (the serving paths).

    PYTHONPATH=<old>/src python benchmarks/ranking_throughput_check.py --dump runs/check
    PYTHONPATH=src python benchmarks/ranking_throughput_check.py --compare runs/check --out benchmarks/results/ranking-throughput
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from aigcrec.ranking.bundle import RankerBundle
from aigcrec.ranking.config import RankingConfig
from aigcrec.ranking.data import warm_split
from aigcrec.ranking.experiment import prepare, variant_config
from aigcrec.ranking.models import build_model
from aigcrec.sources import load_dataset
from aigcrec.ranking import trainer
from aigcrec.ranking.trainer import make_batch, predict, to_tensors

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-5


def movielens(data_dir: Path):
    """The MovieLens ranking data with the content vectors cached where ``aigcrec benchmark ranking`` keeps them."""
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:10]
    return load_dataset("movielens", data_dir, Path("runs") / "cache" / f"ranking-content-movielens-{digest}")


def outputs(model, prep) -> dict[str, np.ndarray]:
    """Scores, weights and gradients on the fixed rows, and bundle scores (torch and ONNX)."""
    torch.set_num_threads(1)
    out = {}
    for part, rows in (("train", np.arange(4096)), ("test", np.arange(len(prep.parts["test"])))):
        p, w = predict(model, prep.parts[part].take(rows), with_weights=True)
        out[f"{part}_prob"], out[f"{part}_alpha"] = p, w
    model.eval()
    data = to_tensors(prep.parts["train"].take(np.arange(1024)))
    if hasattr(trainer, "with_profiles"):  # the new code's training path: profiles precomputed per distinct history
        data = trainer.with_profiles(model, data)
    batch = make_batch(model, data)
    model.zero_grad()
    torch.nn.functional.binary_cross_entropy_with_logits(model(batch), torch.as_tensor(prep.labels["train"][:1024])).backward()
    for name, param in model.named_parameters():
        if param.grad is not None:
            out[f"grad:{name}"] = param.grad.numpy().copy()
    train = prep.data.frame.iloc[prep.rows["train"]]
    users = sorted(train["user_id"].astype(str).unique())[:20]
    items = sorted(train["item_id"].astype(str).unique())[:50]
    for runtime in ("torch", "onnx"):
        bundle = RankerBundle.from_training("umair_fps", model, train)
        bundle = bundle.use_onnx() if runtime == "onnx" else bundle
        out[f"bundle_{runtime}"] = np.stack([bundle.score(u, items)[0] for u in users])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "datasets" / "movielens-100k")
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--dump", type=Path, help="folder for the weights and outputs of this source")
    mode.add_argument("--compare", type=Path, help="folder written by --dump with the other source")
    ap.add_argument("--out", type=Path, help="with --compare: folder for check.json and check.md")
    args = ap.parse_args()
    data = movielens(args.data_dir)
    prep = prepare(data, warm_split(data.frame))
    kind, cfg = variant_config("umair_fps", RankingConfig().model)
    torch.manual_seed(0)
    model = build_model(kind, prep.spec, cfg, prep.tables)
    if args.dump:
        args.dump.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), args.dump / "state.pt")
        np.savez(args.dump / "outputs.npz", **outputs(model, prep))
        return
    model.load_state_dict(torch.load(args.compare / "state.pt"))
    new, old = outputs(model, prep), dict(np.load(args.compare / "outputs.npz"))
    if sorted(new) != sorted(old):
        raise SystemExit(f"outputs differ in keys: {sorted(set(new) ^ set(old))}")
    diffs = {k: float(np.abs(new[k] - old[k]).max()) for k in sorted(new)}
    scale = {k: float(np.abs(old[k]).max()) for k in diffs}
    grads = [k for k in diffs if k.startswith("grad:")]
    result = {
        "tolerance": TOL,
        "max_abs_diff": {k: diffs[k] for k in diffs if not k.startswith("grad:")},
        "grad_max_abs_diff": max(diffs[k] for k in grads),
        "grad_max_rel_diff": max(diffs[k] / max(scale[k], 1e-12) for k in grads),
        "parameters_with_grad": len(grads),
    }
    result["allclose"] = all(v <= TOL for v in result["max_abs_diff"].values()) and result["grad_max_rel_diff"] <= TOL
    out = args.out or args.compare
    out.mkdir(parents=True, exist_ok=True)
    (out / "check.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    lines = ["# UMAIR-FPS old vs new code, same weights (MovieLens warm split)", "",
             "| output | max abs difference |", "|---|---|"]
    lines += [f"| {k} | {v:.2e} |" for k, v in result["max_abs_diff"].items()]
    lines += [f"| gradients of {len(grads)} parameters (1,024 training rows) | {result['grad_max_abs_diff']:.2e} "
              f"(relative to each parameter's largest gradient: {result['grad_max_rel_diff']:.2e}) |",
              "", f"All within {TOL:g}: {result['allclose']}."]
    (out / "check.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
