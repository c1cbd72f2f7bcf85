"""Run a torch module with ONNX Runtime on CPU, after checking it agrees with PyTorch.

The check: ``max_k max|ort_k - torch_k| / max(1, max|torch_k|) <= 1e-4`` on a random batch (absolute for
unit-scale outputs, relative for larger ones such as uncentred Gram statistics).
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from aigcrec.onnx_cpu import cpu_session

log = logging.getLogger("aigcrec.content")

ONNX_TOLERANCE = 1e-4


def cache_root() -> Path:
    """Where exported ONNX graphs are kept (``$AIGCREC_CACHE`` or ``~/.cache/aigcrec``)."""
    return Path(os.environ.get("AIGCREC_CACHE", Path.home() / ".cache" / "aigcrec"))


def onnx_discrepancy(got: Sequence[np.ndarray], want: Sequence[np.ndarray]) -> float:
    """``max_k max|got_k - want_k| / max(1, max|want_k|)``."""
    return max(float(np.abs(g - w).max()) / max(1.0, float(np.abs(w).max())) for g, w in zip(got, want))


def export_module(module: nn.Module, image_size: int, output_names: list[str], path: Path | None = None) -> bytes:
    """ONNX bytes of ``module`` on (batch, 3, S, S) input named ``image`` (dynamic batch axis).

    With ``path``: reuse the file when it exists, else write it (atomically).
    """
    if path is not None and path.is_file():
        return path.read_bytes()
    buf = io.BytesIO()
    was_training = module.training
    torch.onnx.export(module, (torch.rand(2, 3, image_size, image_size),), buf, input_names=["image"],
                      output_names=output_names, dynamic_axes={"image": {0: "batch"}}, opset_version=17,
                      dynamo=False)
    module.train(was_training)  # the exporter may leave submodules in another mode
    data = buf.getvalue()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        tmp.write_bytes(data)
        tmp.replace(path)
    return data


def onnx_function(module: nn.Module, image_size: int, output_names: list[str], threads: int = 0,
                  path: Path | None = None) -> Callable[[np.ndarray], list[np.ndarray]] | None:
    """A numpy function running ``module`` in ONNX Runtime, or None (with a warning) if it disagrees."""
    session = cpu_session(export_module(module, image_size, output_names, path), threads)
    x = np.random.default_rng(0).random((2, 3, image_size, image_size), dtype=np.float32)
    with torch.inference_mode():
        want = module(torch.from_numpy(x))
    want = [t.numpy() for t in (want if isinstance(want, (tuple, list)) else [want])]
    diff = onnx_discrepancy(session.run(None, {"image": x}), want)
    if diff > ONNX_TOLERANCE:
        log.warning("ONNX Runtime differs from PyTorch by %.2e (> %.0e relative to the output scale): "
                    "staying on PyTorch", diff, ONNX_TOLERANCE)
        return None
    return lambda arr: session.run(None, {"image": np.ascontiguousarray(arr, dtype=np.float32)})
