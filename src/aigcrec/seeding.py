"""One call seeds every random number generator a run uses."""

from __future__ import annotations

import os
import random

import numpy as np


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch (if imported); return a fresh NumPy Generator for explicit use."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import torch  # lazy: the command line imports this module and must start without torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is a hard dependency, kept defensive for slim tools
        pass
    return np.random.default_rng(seed)
