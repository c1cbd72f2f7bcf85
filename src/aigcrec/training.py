"""The one training loop every trainer of the package runs (ranking, affect, face, text and image fine-tuning).

``fit_loop`` runs epochs of mini-batch steps::

    for epoch in 0 .. epochs - 1:                      (stop early: ``stop_when()`` or patience exhausted)
        before_epoch()                                 (train / eval modes)
        for batch in batches(epoch):
            L = loss(batch)                            (None: no optimiser step for this batch)
            zero_grad; L.backward(); clip; optimizer.step()
            scheduler.step()                           (once per batch, also for a batch without a loss)
        metrics = evaluate()                           (dict; ``monitor`` names the early-stopping score)
        keep the state of the best epoch by ``monitor`` (``mode`` max or min, ``min_delta``)
    restore the best state

and returns the per-epoch records. What differs between trainers (the batches, the loss, what is evaluated,
which modules' states are kept) is passed in; the loop owns the order of operations, early stopping, best-state
restore, the progress bar, the step callback for progress of a larger job, torch thread settings and timing.

Seeding stays with the caller, which owns the random streams its batches and augmentations draw from
(``aigcrec.seeding``); the loop draws no random numbers itself, so a trainer's results depend only on its seeds.
"""

from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Literal, Optional, Sequence

import torch
from torch import nn

from aigcrec.logs import progress

Batch = Any


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block on ``n`` torch intra-op threads (``None`` or 0: unchanged), then restore the previous number."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class Epoch:
    """One epoch's record: ``train_loss`` the mean of the batch losses weighted by ``size(batch)``."""

    epoch: int  # 0-based
    train_loss: float
    metrics: dict[str, float]
    train_seconds: float  # optimisation steps only
    seconds: float  # steps and evaluation


@dataclass
class LoopResult:
    """The loop's records; ``best_epoch`` is -1 when nothing was monitored."""

    epochs: list[Epoch] = field(default_factory=list)
    best_epoch: int = -1
    best_score: float = float("nan")
    train_seconds: float = 0.0
    rows_seen: int = 0
    steps: int = 0


def module_state(*modules: nn.Module) -> tuple[Callable[[], Any], Callable[[Any], None]]:
    """(snapshot, restore) of the weights of ``modules`` (deep copies of their state dicts)."""

    def snapshot() -> Any:
        return [copy.deepcopy(m.state_dict()) for m in modules]

    def restore(states: Any) -> None:
        for m, s in zip(modules, states):
            m.load_state_dict(s)

    return snapshot, restore


def fit_loop(
    *,
    epochs: int,
    batches: Callable[[int], Iterable[Batch]],
    loss: Callable[[Batch], Optional[torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    size: Callable[[Batch], int] = lambda batch: 1,
    scheduler: Any = None,
    clip: tuple[Sequence[nn.Parameter], float] | None = None,
    before_epoch: Callable[[], None] | None = None,
    evaluate: Callable[[], dict[str, float]] | None = None,
    monitor: str | None = None,
    mode: Literal["max", "min"] = "max",
    min_delta: float = 0.0,
    patience: int | None = None,
    state: tuple[Callable[[], Any], Callable[[Any], None]] | None = None,
    stop_when: Callable[[], bool] | None = None,
    on_epoch: Callable[[Epoch], None] | None = None,
    on_step: Callable[[int], None] | None = None,
    threads: int | None = None,
    progress_label: str | None = None,
) -> LoopResult:
    """Train for up to ``epochs`` epochs; return the records (see the module docstring for the order of work).

    - ``batches(epoch)``: that epoch's batches (the caller shuffles with its own generator); ``size(batch)``
      weights a batch's loss in the epoch mean (rows; 1 by default: the mean over steps);
    - ``loss(batch)``: the scalar loss of one batch, or None to skip the optimiser step for it;
    - ``evaluate()``: metrics after each epoch; ``monitor`` the key early stopping and best-state keeping read
      (the first epoch is always the best so far); ``patience``: epochs without improvement before stopping
      (None: never stop early); ``state``: (snapshot, restore) of what is kept and restored
      (``module_state(model)``); without ``monitor`` nothing is restored;
    - ``stop_when()``: checked before each epoch (trainers with their own stopping rule);
    - ``on_epoch(record)`` after each epoch; ``on_step(step)`` after each optimiser step (``step`` counts from 1);
    - ``threads``: torch intra-op threads while training (restored after); ``progress_label``: a progress bar
      over the epochs.
    """
    if monitor is not None and evaluate is None:
        raise ValueError("fit_loop: monitor needs evaluate")
    result = LoopResult()
    better = (lambda a, b: a > b + min_delta) if mode == "max" else (lambda a, b: a < b - min_delta)
    best_state, stale = None, 0
    with torch_threads(threads), (progress() if progress_label else contextlib.nullcontext()) as bar:
        task = bar.add_task(progress_label, total=epochs) if bar is not None else None
        for epoch in range(epochs):
            if stop_when is not None and stop_when():
                break
            t0 = time.perf_counter()
            if before_epoch is not None:
                before_epoch()
            total, rows = 0.0, 0
            for batch in batches(epoch):
                value = loss(batch)
                if value is not None:
                    optimizer.zero_grad(set_to_none=True)
                    value.backward()
                    if clip is not None:
                        nn.utils.clip_grad_norm_(clip[0], clip[1])
                    optimizer.step()
                    result.steps += 1
                    n = size(batch)
                    total += float(value.detach()) * n
                    rows += n
                    if on_step is not None:
                        on_step(result.steps)
                if scheduler is not None:
                    scheduler.step()
            busy = time.perf_counter() - t0
            result.train_seconds += busy
            result.rows_seen += rows
            metrics = evaluate() if evaluate is not None else {}
            record = Epoch(epoch, total / rows if rows else float("nan"), metrics, busy, time.perf_counter() - t0)
            stop = False
            if monitor is not None:
                score = float(metrics[monitor])
                if result.best_epoch < 0 or better(score, result.best_score):
                    result.best_epoch, result.best_score, stale = epoch, score, 0
                    best_state = state[0]() if state is not None else None
                else:
                    stale += 1
                    stop = patience is not None and stale >= patience
            result.epochs.append(record)
            if on_epoch is not None:
                on_epoch(record)
            if stop:
                break
            if task is not None:
                bar.advance(task)
    if state is not None and best_state is not None:
        state[1](best_state)
    return result

