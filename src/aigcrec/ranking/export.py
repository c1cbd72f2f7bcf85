"""ONNX export of a ranker with a dynamic batch axis (``aigcrec export ranker``).

Inputs: ``cat`` (B, F_cat) int64, ``tags`` (B, F_tag, L) int64, ``num`` (B, F_num) float32, one
(B, d) float32 input per vector field the model reads (named after the field) and one per history
profile (``"history:<table>"``, the mean of the table rows of the user's history items, as
``Ranker.lookup`` computes it). Outputs: ``prob`` (B,) and ``modality_weights`` (B, M).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from aigcrec.ranking.models import Ranker
from aigcrec.onnx_cpu import cpu_session


class _Exportable(nn.Module):
    def __init__(self, model: Ranker) -> None:
        super().__init__()
        self.model = model
        self.vector_names = model.vector_inputs

    def forward(self, cat, tags, num, *vectors):
        batch = {"cat": cat, "tags": tags, "num": num, **dict(zip(self.vector_names, vectors))}
        logit, alpha = self.model.forward_with_weights(batch)
        return torch.sigmoid(logit), alpha


class _StackScorer(nn.Module):
    """UMAIR-FPS scoring from precomputed item stacks: inputs are the tabular fields, the user-side vectors
    (the affect context, the history profiles) and ``stack`` (B, M, D_m); no item vector is read
    (``RankerBundle``'s serving path)."""

    def __init__(self, model: Ranker) -> None:
        super().__init__()
        self.model = model
        self.vector_names = [f.name for f in model.affect] + model.history_keys

    def forward(self, cat, tags, num, *rest):
        *vectors, stack = rest
        batch = {"cat": cat, "tags": tags, "num": num, **dict(zip(self.vector_names, vectors))}
        logit, alpha = self.model.forward_with_weights(batch, stack)
        return torch.sigmoid(logit), alpha


def export_stack_scorer(model: Ranker, example: dict[str, torch.Tensor], stack: torch.Tensor, path: str | Path) -> Path:
    """ONNX of ``_StackScorer`` (a UMAIR-FPS model) at ``path``, dynamic batch axis; ``example`` a model batch."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = _StackScorer(model).eval()
    names = ["cat", "tags", "num", *wrapper.vector_names, "stack"]
    args = tuple(example[n] for n in names[:-1]) + (stack,)
    axes = {n: {0: "batch"} for n in names + ["prob", "modality_weights"]}
    torch.onnx.export(wrapper, args, str(path), input_names=names, output_names=["prob", "modality_weights"],
                      dynamic_axes=axes, opset_version=17, dynamo=False)
    return path


def input_names(model: Ranker) -> list[str]:
    return ["cat", "tags", "num"] + model.vector_inputs


def export_onnx(model: Ranker, example: dict[str, torch.Tensor], path: str | Path) -> Path:
    """Write ``model`` to ONNX at ``path``; ``example`` is a model batch (any batch size)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = input_names(model)
    wrapper = _Exportable(model).eval()
    args = tuple(example[n] for n in names)
    axes = {n: {0: "batch"} for n in names + ["prob", "modality_weights"]}
    torch.onnx.export(wrapper, args, str(path), input_names=names, output_names=["prob", "modality_weights"],
                      dynamic_axes=axes, opset_version=17, dynamo=False)
    return path


def onnx_session(path: str | Path, threads: int = 0):
    """An onnxruntime CPU session for an exported ranker (``threads`` intra-op threads; 0 = ORT's default)."""

    return cpu_session(path, threads)


def run_onnx(session, batch: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    """(prob (B,), modality_weights (B, M)) from an onnxruntime session."""
    # contiguous: the request's affect context is one row broadcast over the candidates (stride 0)
    feeds = {i.name: np.ascontiguousarray(batch[i.name].numpy()) for i in session.get_inputs()}
    prob, alpha = session.run(["prob", "modality_weights"], feeds)
    return prob, alpha


def check_export(bundle, path: str | Path, sizes: tuple[int, ...] = (1, 1000), seed: int = 0) -> dict:
    """Export ``bundle.model`` and compare ONNX Runtime with torch on requests of each batch size.

    Requests are one known user against known items (repeated up to the size), with a random affect
    vector when the model reads one. Returns ``{"path", "max_abs_diff", "per_size": {size: diff}}``.
    """
    rng = np.random.default_rng(seed)
    items = bundle.items["item_id"].astype(str).tolist()
    user = str(bundle.users["user_id"].iloc[0]) if len(bundle.users) else "unknown"
    affect_dim = sum(f.dim for f in bundle.spec.vectors if not f.modality)
    batches = {}
    for n in sizes:
        chosen = [items[i % len(items)] for i in range(n)]
        affect = rng.random(affect_dim).astype(np.float32) if affect_dim else None
        batches[n] = bundle.encode_request(user, chosen, affect)
    path = export_onnx(bundle.model, batches[sizes[0]], path)
    session = onnx_session(path)
    per_size = {}
    with torch.no_grad():
        for n, batch in batches.items():
            logit, alpha = bundle.model.forward_with_weights(batch)
            prob, weights = run_onnx(session, batch)
            per_size[n] = float(max(np.abs(prob - torch.sigmoid(logit).numpy()).max(),
                                    np.abs(weights - alpha.numpy()).max()))
    return {"path": str(path), "max_abs_diff": max(per_size.values()), "per_size": per_size}
