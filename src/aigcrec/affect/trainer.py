"""Training of an ``AffectModel`` (``AffectTrainer``): both MMEI stages, calibration and the label priors.

Training (DESIGN.md section 2, MMEI): class-weighted CE_e + lambda * CE_i (unknown labels, -1, are
skipped), modality dropout (each present modality dropped with probability p, at least one kept),
AdamW, early stopping on dev NLL (``aigcrec.training.fit_loop``); then one temperature per head fitted on dev:
T* = argmin_T NLL(softmax(logits / T), y).

MMEI is trained in two stages (modality-balanced training: jointly trained fusion models let the modality
that fits the training set fastest starve the others):
1. unimodal pre-training: each modality's expert (projection, summary, emotion head) alone on its own
   rows, class-weighted CE_e, early-stopped on its own dev NLL; then the experts' temperatures T_m and
   mixing weights eps_m (``MMEINetwork.evidence``) are fitted on dev, averaged over every modality subset;
2. joint fine-tuning of the cross-modal layers, fusion and heads with the experts frozen (CE_e + lambda CE_i,
   modality dropout).
Data without emotion labels (intent only) skips stage 1 and trains everything jointly.
``mmei_paper`` and the baselines have one stage (the joint loop, ``AffectModel.recipe``'s settings;
``mmei_paper``: its text layers at ``paper.lr``, the rest at ``paper.new_lr``).
"""

from __future__ import annotations

import copy
import itertools
import logging
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from aigcrec.affect.batches import modality_dropout, to_batch, trim as _trim
from aigcrec.affect.data import AffectData
from aigcrec.training import fit_loop, module_state

if TYPE_CHECKING:  # the model imports this module to train itself
    from aigcrec.affect.model import AffectModel

log = logging.getLogger("aigcrec.affect")


def class_weights(y: np.ndarray, n: int) -> torch.Tensor:
    """Balanced weights w_c = N / (C * N_c) over known labels (absent classes get weight 1)."""
    y = y[y >= 0]
    counts = np.bincount(y, minlength=n).astype(np.float64)
    w = np.where(counts > 0, len(y) / (n * np.maximum(counts, 1)), 1.0)
    return torch.tensor(w, dtype=torch.float32)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """T minimising the NLL of softmax(logits / T) on labelled rows (1.0 if none)."""
    known = y >= 0
    if known.sum() < 2:
        return 1.0
    z = torch.from_numpy(logits[known]).double()
    t = torch.from_numpy(y[known]).long()
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(z / log_t.exp(), t)
        loss.backward()
        return loss

    opt.step(closure)
    return float(np.clip(np.exp(log_t.item()), 0.05, 20.0))

class AffectTrainer:
    """Trains one ``AffectModel`` in place (its network, temperatures, priors, history and stages)."""

    def __init__(self, model: "AffectModel") -> None:
        self.model = model

    def _fit_standardizers(self, data: AffectData) -> None:
        for m, (norm_seq, norm_pooled) in self.model.net.standardizers().items():
            enc = data.features[m]
            norm_pooled.fit(torch.from_numpy(enc.pooled[enc.present].astype(np.float32)))
            if norm_seq is not None:
                real = enc.mask & enc.present[:, None]
                norm_seq.fit(torch.from_numpy(enc.seq[real].astype(np.float32)))

    def fit(self, train: AffectData, dev: AffectData | None = None, seed: int = 0) -> "AffectModel":
        """Train on ``train``; early-stop and calibrate on ``dev`` (a 10 % hold-out of train if None)."""
        c = self.model.recipe
        if len(train) == 0:
            raise ValueError("expected training rows, got an empty AffectData")
        rng = np.random.default_rng(seed)
        if dev is None:
            perm = rng.permutation(len(train))
            cut = max(1, len(train) // 10)
            dev, train = train.take(perm[:cut]), train.take(perm[cut:])
        torch.manual_seed(seed)
        # initial weights from ``seed`` too, not from whatever ran before (in place: the network may be wrapped)
        getattr(self.model.net, "module", self.model.net).load_state_dict(self.model._build().state_dict())
        gen = torch.Generator().manual_seed(seed)
        threads = torch.get_num_threads()
        torch.set_num_threads(c.threads)
        try:
            self._fit_loop(train, dev, rng, gen)
        finally:
            torch.set_num_threads(threads)
        self._calibrate(dev)
        for head, y in (("emotion", train.emotion), ("intent", train.intent)):
            if (y >= 0).any():
                self.model.prior[head] = self._label_prior(y, len(self.model.prior[head]))
        return self.model

    def _fit_loop(self, train: AffectData, dev: AffectData, rng: np.random.Generator, gen: torch.Generator) -> None:
        c = self.model.recipe
        self._fit_standardizers(train)
        w_e = class_weights(train.emotion, 7) if c.class_weighted else None
        frozen: list[nn.Parameter] = []
        if self.model.architecture == "mmei" and (train.emotion >= 0).any():
            if not c.class_weighted:  # class-weighted experts are prior-free: keep the uniform reference
                prior = self._label_prior(train.emotion, 7)
                self.model.net.log_prior.copy_(torch.log(torch.from_numpy(prior).float()))
            self._pretrain_experts(train, dev, rng, w_e)
            self._calibrate_experts(dev)
            frozen = [p for m in self.model.modalities for p in self.model.net.expert_parameters(m)]
        for p in frozen:
            p.requires_grad_(False)
        try:
            self._joint_loop(train, dev, rng, gen, w_e, frozen)
        finally:
            for p in frozen:
                p.requires_grad_(True)
        if frozen:
            self._fit_residual_gate(dev)

    def _fit_residual_gate(self, dev: AffectData, grid: int = 21) -> None:
        """MMEI: the gate g in [0, 1] of the fused emotion residual minimising dev emotion NLL averaged over
        every modality subset (grid search; each point with its own best temperature on all modalities, as
        the head is calibrated afterwards)."""
        known = dev.emotion >= 0
        if known.sum() < 2:
            return
        dev = dev.take(np.flatnonzero(known))
        y = torch.from_numpy(dev.emotion.astype(np.int64))
        self.model.net.eval()
        views = []  # (product, residual) per subset, the full set first
        for k in range(len(self.model.modalities), 0, -1):
            for subset in itertools.combinations(self.model.modalities, k):
                view = dev.with_modalities(subset)
                with torch.inference_mode():
                    parts = [self.model.net.emotion_parts(_trim(to_batch(view, self.model.modalities,
                                                                    np.arange(s, min(s + 256, len(view))))))
                             for s in range(0, len(view), 256)]
                views.append(tuple(torch.cat(x).double() for x in zip(*parts)))
        best_g, best = 1.0, float("inf")
        for g in np.linspace(0.0, 1.0, grid):
            t = fit_temperature((views[0][0] + g * views[0][1]).numpy(), dev.emotion)
            nll = float(np.mean([nn.functional.cross_entropy((p + g * r) / t, y).item() for p, r in views]))
            if nll < best - 1e-6:
                best_g, best = float(g), nll
        self.model.net.residual_gate.fill_(best_g)
        self.model.stages["residual_gate"] = {"gate": best_g, "dev_nll_emotion_subsets": best}
        log.debug("residual gate %.2f (dev emotion NLL over subsets %.4f)", best_g, best)

    @staticmethod
    def _label_prior(y: np.ndarray, n: int) -> np.ndarray:
        """Laplace-smoothed label frequencies over known labels (N,) -> (n,)."""
        known = y[y >= 0]
        return (np.bincount(known, minlength=n) + 1.0) / (len(known) + n)

    def _pretrain_experts(self, train: AffectData, dev: AffectData, rng: np.random.Generator,
                          w_e: torch.Tensor | None) -> None:
        """Stage 1: every modality's expert on its own present, labelled rows; each keeps its best dev-NLL
        state and stops after ``patience`` epochs without improvement."""
        c, net, mods = self.model.recipe, self.model.net, self.model.modalities
        params = [p for m in mods for p in net.expert_parameters(m)]
        opt = torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=c.lr, total_steps=c.epochs * max(
            1, -(-len(train) // c.batch_size)), pct_start=0.1)
        y, y_dev = torch.from_numpy(train.emotion.astype(np.int64)), torch.from_numpy(dev.emotion.astype(np.int64))
        dev_rows = {m: torch.from_numpy(dev.features[m].present.astype(bool)) & (y_dev >= 0) for m in mods}
        best = {m: float("inf") for m in mods}
        state = {m: [copy.deepcopy(mod.state_dict()) for mod in net.expert_modules(m)] for m in mods}
        bad = {m: 0 for m in mods}
        active: list[int] = []

        def start_epoch() -> None:  # experts still improving on dev; the others are left alone
            active[:] = [j for j, m in enumerate(mods) if bad[m] < c.patience]
            net.train()

        def batches(epoch: int):
            perm = rng.permutation(len(train))
            return (perm[start:start + c.batch_size] for start in range(0, len(perm), c.batch_size))

        def loss(idx):
            batch = _trim(to_batch(train, mods, idx))
            u = net(batch, experts_only=True)  # (B, M, 7)
            losses = []
            for j in active:
                rows = batch[mods[j]]["present"] & (y[idx] >= 0)
                if rows.any():  # a sum: the experts share no parameters
                    losses.append(nn.functional.cross_entropy(u[rows, j], y[idx][rows], weight=w_e))
            return torch.stack(losses).sum() if losses else None

        def evaluate() -> dict[str, float]:  # each expert keeps its best dev-NLL state
            u_dev = self.model._expert_logits(dev)
            for j in active:
                m = mods[j]
                if not dev_rows[m].any():
                    bad[m] = c.patience  # nothing to early-stop on: keep the last state
                    state[m] = [copy.deepcopy(mod.state_dict()) for mod in net.expert_modules(m)]
                    continue
                nll = float(nn.functional.cross_entropy(u_dev[dev_rows[m], j], y_dev[dev_rows[m]]))
                if nll < best[m] - 1e-4:
                    best[m], bad[m] = nll, 0
                    state[m] = [copy.deepcopy(mod.state_dict()) for mod in net.expert_modules(m)]
                else:
                    bad[m] += 1
            return {f"dev_nll_{m}": best[m] for m in mods}

        run = fit_loop(epochs=c.epochs, batches=batches, loss=loss, optimizer=opt, scheduler=sched,
                       clip=(params, 5.0), before_epoch=start_epoch, evaluate=evaluate,
                       stop_when=lambda: all(bad[m] >= c.patience for m in mods))
        epochs = len(run.epochs)
        for m in mods:
            for mod, sd in zip(net.expert_modules(m), state[m]):
                mod.load_state_dict(sd)
        self.model.stages["experts"] = {"epochs": epochs, **{f"dev_nll_{m}": best[m] for m in mods}}
        log.debug("experts pre-trained: dev NLL %s", best)

    def _calibrate_experts(self, dev: AffectData) -> None:
        """Fit the experts' log T_m and logit eps_m on dev: the NLL of the robust product, averaged over every
        non-empty subset of each row's present modalities (so it holds when modalities are missing)."""
        net, mods = self.model.net, self.model.modalities
        known = dev.emotion >= 0
        if known.sum() < 2:
            return
        u = self.model._expert_logits(dev)[torch.from_numpy(known)]
        y = torch.from_numpy(dev.emotion[known].astype(np.int64))
        present = torch.stack([torch.from_numpy(dev.features[m].present[known].astype(bool)) for m in mods], dim=1)
        subsets = [torch.tensor([m in s for m in mods]) for k in range(1, len(mods) + 1)
                   for s in itertools.combinations(mods, k)]
        log_t = torch.zeros(len(mods), requires_grad=True)
        mix = net.expert_mix.detach().clone().requires_grad_(True)
        opt = torch.optim.LBFGS([log_t, mix], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = sum(nn.functional.cross_entropy(net.evidence(u, present & s, log_t, mix), y)
                       for s in subsets) / len(subsets)
            loss.backward()
            return loss

        opt.step(closure)
        net.expert_log_t.copy_(log_t.detach().clamp(-3.0, 3.0))
        net.expert_mix.copy_(mix.detach().clamp(-8.0, 8.0))
        log.debug("experts: T %s, eps %s", net.expert_log_t.exp().tolist(), torch.sigmoid(net.expert_mix).tolist())

    def _joint_loop(self, train: AffectData, dev: AffectData, rng: np.random.Generator, gen: torch.Generator,
                    w_e: torch.Tensor | None, frozen: list[nn.Parameter]) -> None:
        """CE_e + lambda CE_i with modality dropout on the trainable parameters; best dev-NLL state kept."""
        c = self.model.recipe
        w_i = class_weights(train.intent, len(self.model.intents)) if c.class_weighted and self.model.intents else None
        ce_e = nn.CrossEntropyLoss(weight=w_e, ignore_index=-1)
        ce_i = nn.CrossEntropyLoss(weight=w_i, ignore_index=-1)
        y_e, y_i = torch.from_numpy(train.emotion.astype(np.int64)), torch.from_numpy(train.intent.astype(np.int64))
        params = [p for p in self.model.net.parameters() if p.requires_grad]
        frozen_modules = [mod for m in self.model.modalities for mod in self.model.net.expert_modules(m)] if frozen else []
        net = getattr(self.model.net, "module", self.model.net)  # a DDP wrapper keeps the network in .module
        groups = (net.param_groups(c.lr, c.paper.new_lr) if self.model.architecture == "mmei_paper"
                  else [{"params": params, "lr": c.lr}])
        opt = torch.optim.AdamW(groups, lr=c.lr, weight_decay=c.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in groups], total_steps=c.epochs * max(
            1, -(-len(train) // c.batch_size)), pct_start=0.1)
        has_e, has_i = (train.emotion >= 0).any(), (train.intent >= 0).any() and bool(self.model.intents)

        def start_epoch() -> None:
            self.model.net.train()
            for mod in frozen_modules:
                mod.eval()  # frozen experts: no dropout

        def batches(epoch: int):
            perm = rng.permutation(len(train))
            return (perm[start:start + c.batch_size] for start in range(0, len(perm), c.batch_size))

        def loss(idx):
            batch = modality_dropout(_trim(to_batch(train, self.model.modalities, idx)), c.modality_dropout, gen)
            out = self.model.net(batch)
            value = torch.zeros(())
            if has_e and (y_e[idx] >= 0).any():
                value = value + ce_e(out.emotion, y_e[idx])
            if has_i and (y_i[idx] >= 0).any():
                value = value + c.intent_weight * ce_i(out.intent, y_i[idx])
            return value

        def record(e) -> None:
            self.model.history.append({"epoch": e.epoch + 1, "train_loss": e.train_loss, "dev_nll": e.metrics["dev_nll"]})
            log.debug("epoch %d train %.4f dev nll %.4f", e.epoch + 1, e.train_loss, e.metrics["dev_nll"])

        fit_loop(epochs=c.epochs, batches=batches, loss=loss, size=len, optimizer=opt, scheduler=sched,
                 clip=(params, 5.0), before_epoch=start_epoch, evaluate=lambda: {"dev_nll": self._dev_nll(dev)},
                 monitor="dev_nll", mode="min", min_delta=1e-4, patience=c.patience,
                 state=module_state(self.model.net), on_epoch=record,
                 progress_label=f"{self.model.architecture}: epochs (early stop on dev NLL)")

    def _dev_nll(self, dev: AffectData) -> float:
        e, i = self.model._logits(dev)
        total = 0.0
        for logits, y in ((e, dev.emotion), (i, dev.intent)):
            known = y >= 0
            if known.any() and logits.shape[1] > 1:
                total += float(nn.functional.cross_entropy(torch.from_numpy(logits[known]),
                                                           torch.from_numpy(y[known].astype(np.int64))))
        return total

    def _calibrate(self, dev: AffectData) -> None:
        e, i = self.model._logits(dev)
        self.model.temperature = {"emotion": fit_temperature(e, dev.emotion), "intent": fit_temperature(i, dev.intent)}
        log.debug("temperatures %s", self.model.temperature)
