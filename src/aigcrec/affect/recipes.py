"""The measured recipes of the real-data affect benchmarks: what ``aigcrec benchmark affect`` uses by default.

The class defaults of :class:`~aigcrec.affect.config.AffectConfig` are the world's and the demo's (small
sessions, frozen encoders, fast). FER2013, MELD and CLINC150 have tens of thousands of rows, and their best
measured configurations fine-tune or train an encoder first; those settings are kept here, one overlay per
task, so that the benchmark's defaults are the measured recipes with no extra config file::

    cfg_task = recipe(task)  <-  what the user's config sets explicitly   (a deep merge; the config wins)

``affect.json`` records the overlay that was applied under ``recipe`` (``null`` when none was).
The figures each recipe gives are in ``docs/affect.md`` ("Results") and ``benchmarks/results/affect-<task>/``.
"""

from __future__ import annotations

import copy
from typing import Any

from aigcrec.affect.config import AffectConfig

_MMEI = {"epochs": 8, "batch_size": 256, "patience": 3, "lr": 2e-3, "threads": 1,
         # the fine-tuned / trained encoders are trained class-weighted (text) or on the true class mix (face)
         # already; weighted-F1 is MELD's metric
         "class_weighted": False}
_TEXT_FINETUNE = {"enabled": True, "train_layers": 2, "epochs": 3, "batch_size": 32, "lr": 1e-4}

REAL_DATA_RECIPES: dict[str, dict[str, Any]] = {
    # FER2013: our VGG-style face-net (FaceTrainConfig's defaults) trained once on train (~33 min on one core;
    # measured: test accuracy 0.6663 +- 0.0026, 3 seeds of MMEI on its features)
    "face-emotion": {"encoders": {"face_train": {"enabled": True, "network": "face-net", "threads": 1}},
                     "mmei": _MMEI},
    # MELD: the top 3 MiniLM layers fine-tuned per seed, each utterance read with the previous one of its dialogue
    # (measured: 0.5945 +- 0.0040 test weighted-F1, 3 seeds). More turns with speaker names (context_turns > 1,
    # context_speakers) are implemented but not yet measured on MELD, so they are not the default.
    "text-emotion": {"encoders": {"max_tokens": 64,
                                  "text_finetune": {**_TEXT_FINETUNE, "train_layers": 3, "context_turns": 1,
                                                    "context_speakers": False}},
                     "mmei": _MMEI},
    # CLINC150: the top 2 MiniLM layers fine-tuned per seed (single queries, no dialogue; measured: in-scope
    # accuracy 0.9098 +- 0.0053, 3 seeds)
    "intent": {"encoders": {"max_tokens": 64, "text_finetune": _TEXT_FINETUNE}, "mmei": _MMEI},
}
"""task -> the AffectConfig fields its measured recipe sets (nested like the ``affect`` section of a config)."""


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in top.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def task_config(task: str, cfg: AffectConfig, use_recipe: bool = True) -> tuple[AffectConfig, dict[str, Any] | None]:
    """``cfg`` with ``task``'s recipe under it: (config, the overlay applied or None).

    Only the fields set explicitly in ``cfg`` (a config file's ``affect`` section; pydantic's ``fields_set``)
    win over the recipe; a task without a recipe (``fusion``), or ``use_recipe=False``, gives ``cfg`` as is.
    """
    recipe = REAL_DATA_RECIPES.get(task) if use_recipe else None
    if recipe is None:
        return cfg, None
    merged = _merge(recipe, cfg.model_dump(exclude_unset=True))
    return AffectConfig.model_validate(merged), copy.deepcopy(recipe)
