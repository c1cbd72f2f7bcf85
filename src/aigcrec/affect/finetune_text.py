"""Fine-tuning the offline text encoder (all-MiniLM-L6-v2) on a labelled train split, on CPU.

Only the top ``k = train_layers`` of the ``N`` transformer layers and a linear head are trained; the embeddings
and layers ``0 .. N-k-1`` stay frozen, so their token states are computed once (:func:`frozen_states`) and
reused for every epoch and seed. With ``h = layers_{N-k..N-1}(frozen states)`` of shape (B, L, H) and the
token mask ``m`` (B, L)::

    z = sum_t m_t h_t / sum_t m_t            (B, H)   the pooled vector TextEncoder also returns
    logits = W z + b                         (B, C)
    loss = sum_i w_{y_i} CE(logits_i, y_i) / sum_i w_{y_i},   w_c = (n / (C n_c))^0.5 normalised to mean 1

AdamW (head at 10x the layers' learning rate), linear warm-up over 6 % of the steps then linear decay;
batches are drawn from length buckets (less padding). After each epoch the dev weighted-F1 is measured and
the best epoch's weights are kept. The result is saved as a plain BertModel folder (``save_pretrained`` +
tokenizer + ``head.pt`` + ``finetune.json``), so ``TextEncoder("hf:<folder>")`` reads raw text with it.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from aigcrec.affect.config import TextFinetuneConfig
from aigcrec.affect.encoders.base import Encoded, hf_name
from aigcrec.metrics import accuracy, weighted_f1
from aigcrec.training import fit_loop, module_state
from aigcrec.affect.encoders.text import minilm_path

log = logging.getLogger("aigcrec.affect")


@dataclass
class TokenStates:
    """Variable-length token states of N texts, stored flat.

    flat: (T, H) float16, the rows of text i are ``flat[offsets[i]:offsets[i + 1]]``; offsets: (N + 1,) int64.
    """

    flat: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def batch(self, idx: Sequence[int]):
        """Rows ``idx`` padded: (B, L, H) float32 tensor and (B, L) long mask."""
        lens = self.lengths[np.asarray(idx)]
        length = int(lens.max())
        h = np.zeros((len(idx), length, self.flat.shape[1]), np.float32)
        mask = np.zeros((len(idx), length), np.int64)
        for j, i in enumerate(idx):
            h[j, : lens[j]] = self.flat[self.offsets[i]: self.offsets[i + 1]]
            mask[j, : lens[j]] = 1
        return torch.from_numpy(h), torch.from_numpy(mask)


def load_base(path: str | None = None):
    """(tokenizer, BertModel) of the offline MiniLM, or of the folder ``path``."""
    # lazy: a hub-model package (seconds to import), loaded only when a config names such a model
    from transformers import AutoModel, AutoTokenizer


    path = path or minilm_path()
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path)


@functools.lru_cache(maxsize=2)
def named_base(name: str):
    """(tokenizer, BertModel) of a text-encoder name, ``minilm`` or ``hf:<name or folder>``, loaded once per
    process (``mmei_paper`` copies its top layers; callers must not modify the model)."""
    path = hf_name(name) or (minilm_path() if name == "minilm" else None)
    if path is None:
        raise ValueError(f"expected a text encoder 'minilm' or 'hf:<name>', got {name!r}")
    return load_base(path)


def tokenize(tokenizer, texts: Sequence[str], max_tokens: int, contexts: Sequence[str] | None = None
             ) -> list[dict[str, list[int]]]:
    """Token ids per text (at most ``max_tokens``); with ``contexts``: ``[CLS] text [SEP] context [SEP]``,
    where only the context is cut to fit (it is left out when the text alone fills ``max_tokens``)."""
    out = []
    for i, text in enumerate(texts):
        ids = list(tokenizer(text, truncation=True, max_length=max_tokens)["input_ids"])
        types = [0] * len(ids)
        room = max_tokens - len(ids) - 1
        if contexts is not None and contexts[i] and room > 0:
            ctx = list(tokenizer(contexts[i], add_special_tokens=False)["input_ids"])[:room]
            ids += ctx + [tokenizer.sep_token_id]
            types += [1] * (len(ctx) + 1)
        out.append({"input_ids": ids, "token_type_ids": types})
    return out


def _length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Index batches of similar lengths; shuffled (chunks of 50 batches sorted by length) when ``rng`` is given."""
    order = rng.permutation(len(lengths)) if rng is not None else np.arange(len(lengths))
    chunk = batch_size * 50
    batches = []
    for start in range(0, len(order), chunk):
        part = order[start: start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i: i + batch_size] for i in range(0, len(part), batch_size)]
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def extended_mask(config, h, mask):
    """The attention mask BERT layers of ``config`` take, from token states h (B, L, H) and a (B, L) mask."""
    # lazy: a hub-model package (seconds to import), loaded only when a config names such a model
    from transformers.masking_utils import create_bidirectional_mask

    return create_bidirectional_mask(config=config, inputs_embeds=h, attention_mask=mask)


def run_layers(model, h, mask, start: int, stop: int | None = None):
    """Transformer layers ``start .. stop-1`` of a BertModel on token states h (B, L, H) with mask (B, L)."""
    am = extended_mask(model.config, h, mask)
    for layer in model.encoder.layer[start:stop]:
        h = layer(h, am)
    return h


def frozen_states(model, tokens: list[dict[str, list[int]]], stop: int, batch_size: int = 64) -> TokenStates:
    """Embeddings and layers ``0 .. stop-1`` of every text, once, in inference mode."""
    model.eval()
    lengths = np.array([len(t["input_ids"]) for t in tokens])
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    flat = np.zeros((offsets[-1], model.config.hidden_size), np.float16)
    with torch.inference_mode():
        for idx in _length_batches(lengths, batch_size, None):
            length = int(lengths[idx].max())
            ids = torch.zeros((len(idx), length), dtype=torch.long)
            types = torch.zeros_like(ids)
            mask = torch.zeros_like(ids)
            for j, i in enumerate(idx):
                n = lengths[i]
                ids[j, :n] = torch.tensor(tokens[i]["input_ids"])
                types[j, :n] = torch.tensor(tokens[i]["token_type_ids"])
                mask[j, :n] = 1
            h = run_layers(model, model.embeddings(input_ids=ids, token_type_ids=types), mask, 0, stop)
            for j, i in enumerate(idx):
                flat[offsets[i]: offsets[i + 1]] = h[j, : lengths[i]].float().numpy()
    return TokenStates(flat, offsets)


def _pool(h, mask):
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp(min=1.0)


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """w_c = (n / (C n_c))^0.5 (classes absent from ``y`` get the largest weight), normalised to mean 1."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = np.sqrt(len(y) / (n_classes * np.maximum(counts, 1.0)))
    return w / w.mean()


@dataclass
class FinetunedText:
    """A fine-tuned MiniLM: the BertModel (top layers trained), its head and the dev history."""

    model: Any
    head: Any
    start: int
    history: list[dict[str, float]]

    def encode_states(self, states: TokenStates, batch_size: int = 128) -> tuple[Encoded, np.ndarray]:
        """Top layers on frozen states: Encoded (seq = token states, pooled = masked mean) and head logits."""
        self.model.eval()
        lengths = states.lengths
        n, dim = len(states), self.model.config.hidden_size
        seq = np.zeros((n, int(lengths.max()) if n else 1, dim), np.float32)
        pooled = np.zeros((n, dim), np.float32)
        logits = np.zeros((n, self.head.out_features), np.float32)
        with torch.inference_mode():
            for idx in _length_batches(lengths, batch_size, None):
                h0, mask = states.batch(idx)
                h = run_layers(self.model, h0, mask, self.start)
                z = _pool(h, mask)
                pooled[idx] = z.numpy()
                logits[idx] = self.head(z).numpy()
                for j, i in enumerate(idx):
                    seq[i, : lengths[i]] = h[j, : lengths[i]].numpy()
        mask = np.arange(seq.shape[1])[None, :] < lengths[:, None]
        return Encoded(seq, mask, pooled, lengths > 0), logits

    def save(self, out: Path, tokenizer) -> Path:
        out.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        torch.save(self.head.state_dict(), out / "head.pt")
        (out / "finetune.json").write_text(json.dumps({"start_layer": self.start, "history": self.history},
                                                      indent=2), encoding="utf-8")
        return out


def finetune(model, train: TokenStates, y_train: np.ndarray, dev: TokenStates, y_dev: np.ndarray, n_classes: int,
             cfg: TextFinetuneConfig, seed: int) -> FinetunedText:
    """Train the top ``cfg.train_layers`` layers of ``model`` (a copy) and a head; keep the best dev epoch.

    ``train`` / ``dev`` are :func:`frozen_states` at layer ``N - train_layers``; labels are (n,) int indices.
    """
    n_layers = model.config.num_hidden_layers
    if cfg.train_layers > n_layers:
        raise ValueError(f"text_finetune.train_layers: expected <= {n_layers} (the model's layers), "
                         f"got {cfg.train_layers}")
    start = n_layers - cfg.train_layers
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = copy.deepcopy(model)
    for p in model.parameters():
        p.requires_grad_(False)
    top = model.encoder.layer[start:]
    for p in top.parameters():
        p.requires_grad_(True)
    head = torch.nn.Linear(model.config.hidden_size, n_classes)
    opt = torch.optim.AdamW([{"params": list(top.parameters()), "lr": cfg.lr},
                             {"params": list(head.parameters()), "lr": cfg.lr * 10}], weight_decay=cfg.weight_decay)
    steps = cfg.epochs * int(np.ceil(len(train) / cfg.batch_size))
    warm = max(1, int(0.06 * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))
    weight = torch.tensor(class_weights(y_train, n_classes) if cfg.class_weighted else np.ones(n_classes),
                          dtype=torch.float32)
    y_t = torch.tensor(np.asarray(y_train), dtype=torch.long)
    result = FinetunedText(model, head, start, [])

    def loss(idx):
        h0, mask = train.batch(idx)
        logits = head(_pool(run_layers(model, h0, mask, start), mask))
        return torch.nn.functional.cross_entropy(logits, y_t[idx], weight=weight)

    def evaluate() -> dict[str, float]:
        _, dev_logits = result.encode_states(dev)
        return {"dev_weighted_f1": weighted_f1(y_dev, dev_logits.argmax(1)),
                "dev_accuracy": accuracy(y_dev, dev_logits.argmax(1))}

    def record(e) -> None:
        result.history.append({"epoch": e.epoch + 1, "train_loss": e.train_loss, **e.metrics,
                               "seconds": round(e.seconds, 1)})
        log.info("text fine-tune seed %d epoch %d: loss %.4f, dev weighted-F1 %.4f, accuracy %.4f (%.0fs)", seed,
                 e.epoch + 1, e.train_loss, e.metrics["dev_weighted_f1"], e.metrics["dev_accuracy"], e.seconds)

    fit_loop(epochs=cfg.epochs, batches=lambda epoch: _length_batches(train.lengths, cfg.batch_size, rng),
             loss=loss, size=len, optimizer=opt, scheduler=sched, before_epoch=model.train, evaluate=evaluate,
             monitor="dev_weighted_f1", state=module_state(top, head), on_epoch=record)
    model.eval()
    return result
