"""Train the two-tower model: one example per positive, with the user's history *before* it and its context.

Example ``r`` (a positive of user ``u`` on item ``i`` at time ``t`` in session ``s``): the user tower reads the
mean content of ``u``'s last ``history_len`` positives with timestamp < ``t`` (no leak of the positive itself),
``u``'s features and ``s``'s affect context; the item tower reads ``i``. The loss is
``aigcrec.retrieval.model.sampled_softmax_logq_loss`` over the batch's positives plus ``uniform_negatives``
items drawn uniformly from the N items of ``negatives_from`` (by default the shown ones), each column corrected
by ``log Q_j = log(B q_j + M / N)``, ``q_j`` = item ``j``'s share of the positives.
"""

from __future__ import annotations

import bisect
import logging
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd
import torch

from aigcrec.retrieval.config import TwoTowerConfig
from aigcrec.retrieval.data import ContentInput, RetrievalData, context_columns
from aigcrec.retrieval.model import TwoTowerNet, sampled_softmax_logq_loss
from aigcrec.retrieval.retriever import TwoTowerRetriever
from aigcrec.training import fit_loop

log = logging.getLogger("aigcrec.retrieval")


@dataclass
class Examples:
    """Row-aligned training arrays: history (N, D), features (N, U), context (N, C), item codes (N,),
    history item codes (N, L) (0-padded; L = 0 without ``history_ids``)."""

    history: np.ndarray
    features: np.ndarray
    context: np.ndarray
    items: np.ndarray
    history_codes: np.ndarray


def pooled_histories(positives: pd.DataFrame, x: np.ndarray, row_of: dict[str, int], history_len: int) -> np.ndarray:
    """Per positive (time-sorted): mean content input of the user's last ``history_len`` earlier positives
    (strictly earlier timestamp; zeros for the first). ``x`` (n_items, D) -> (N, D)."""
    out = np.zeros((len(positives), x.shape[1]), np.float32)
    times: dict[str, list[float]] = {}
    rows: dict[str, list[int]] = {}
    for r, (u, i, t) in enumerate(zip(positives["user_id"], positives["item_id"], positives["timestamp"])):
        ts, past = times.setdefault(u, []), rows.setdefault(u, [])
        k = bisect.bisect_left(ts, float(t))  # rows are time-sorted: past[:k] are strictly earlier
        if k:
            out[r] = x[past[max(0, k - history_len):k]].mean(axis=0)
        ts.append(float(t))
        past.append(row_of[i])
    return out


def history_codes(positives: pd.DataFrame, code_of: dict[str, int], history_len: int) -> np.ndarray:
    """Per positive (time-sorted): item codes of the user's last ``history_len`` strictly earlier positives,
    0-padded on the right ``(N, L)`` (the ids ``pooled_histories`` averages the content of)."""
    out = np.zeros((len(positives), history_len), np.int64)
    times: dict[str, list[float]] = {}
    codes: dict[str, list[int]] = {}
    for r, (u, i, t) in enumerate(zip(positives["user_id"], positives["item_id"], positives["timestamp"])):
        ts, past = times.setdefault(u, []), codes.setdefault(u, [])
        k = bisect.bisect_left(ts, float(t))
        last = past[max(0, k - history_len):k]
        out[r, :len(last)] = last
        ts.append(float(t))
        past.append(code_of.get(i, 0))
    return out


def _vocab(users: pd.DataFrame, names: list[str]) -> tuple[dict[str, list[str]], dict[str, list[int]]]:
    """Per feature its values (code = position + 1; 0 unknown) and per user its codes."""
    values = {f: sorted({str(v) for v in users[f] if v is not None and not pd.isna(v)}) for f in names}
    code = {f: {v: k + 1 for k, v in enumerate(values[f])} for f in names}
    per_user = {}
    for row in users.to_dict(orient="records"):
        per_user[str(row["user_id"])] = [code[f].get(str(row[f]), 0) if row[f] is not None and not pd.isna(row[f])
                                         else 0 for f in names]
    return values, per_user


def _negative_rows(source: str, liked_rows: np.ndarray, data: RetrievalData, row_of: dict[str, int],
                   n_items: int) -> np.ndarray:
    """Catalog rows of the uniform negatives' pool: ``source`` "catalog" every row, "liked" the rows of the
    positives, "shown" those of ``data.shown`` (with the liked ones; the liked alone when it is None)."""
    if source == "catalog":
        return np.arange(n_items)
    rows = set(np.unique(liked_rows).tolist())
    if source == "shown" and data.shown is not None:
        rows |= {row_of[i] for i in data.shown if i in row_of}
    return np.array(sorted(rows), np.int64)


def train_two_tower(data: RetrievalData, config: TwoTowerConfig, seed: int = 0,
                    until: Optional[float] = None) -> TwoTowerRetriever:
    """Train on ``data``'s positives (those with timestamp < ``until`` when given); returns the retriever."""
    t0, c0 = time.perf_counter(), time.process_time()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    pos = data.positives if until is None else data.positives[data.positives["timestamp"] < until]
    if len(pos) < 2:
        raise ValueError(f"{data.name}: expected at least 2 positives to train the two-tower model, got {len(pos)}")
    content = ContentInput.fit(data.content, width=config.content_width, seed=seed)
    x = content.transform(data.content)  # (n_items, D)
    row_of = {i: r for r, i in enumerate(data.item_ids)}
    trained_items = sorted(set(pos["item_id"]))
    item_code = {i: k + 1 for k, i in enumerate(trained_items)}
    values, per_user = _vocab(data.users, data.user_features)
    ctx_names = context_columns(data.context) if data.context is not None else []
    if data.context is not None and len(pos) and pos["session_id"].notna().any():
        ctx = data.context[ctx_names].reindex(pos["session_id"].astype(str)).fillna(0.0).to_numpy(np.float32, copy=True)
    else:
        ctx = np.zeros((len(pos), len(ctx_names)), np.float32)
    ex = Examples(
        history=pooled_histories(pos, x, row_of, config.history_len),
        features=np.asarray([per_user.get(u, [0] * len(data.user_features)) for u in pos["user_id"]],
                            np.int64).reshape(len(pos), len(data.user_features)),
        context=ctx,
        items=np.asarray([item_code[i] for i in pos["item_id"]], np.int64),
        history_codes=(history_codes(pos, item_code, config.history_len) if config.history_ids
                       else np.zeros((len(pos), 0), np.int64)),
    )
    n, bs, m = len(pos), min(config.batch_size, len(pos)), config.uniform_negatives
    n_items = len(data.item_ids)
    prow = np.asarray([row_of[i] for i in pos["item_id"]], np.int64)  # catalog row of each positive
    code_of_row = np.zeros(n_items, np.int64)  # item-id code per catalog row (0: never a positive)
    for i, c in item_code.items():
        code_of_row[row_of[i]] = c
    # Rows the uniform negatives are drawn from (negatives_from)
    neg_rows = _negative_rows(config.negatives_from, prow, data, row_of, n_items)  # (N_neg,)
    q = np.bincount(prow, minlength=n_items) / n  # share of the positives per catalog row
    uniform = np.zeros(n_items)
    uniform[neg_rows] = m / len(neg_rows)  # expected uniform draws of each row per step
    log_q = np.log(bs * q + uniform + 1e-12).astype(np.float32)  # log of each row's expected count
    net = TwoTowerNet(content.dim, len(trained_items), [len(values[f]) for f in data.user_features],
                      len(ctx_names), config)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    t_hist, t_feat, t_ctx = (torch.from_numpy(np.ascontiguousarray(a)) for a in (ex.history, ex.features, ex.context))
    t_prow, t_x, t_logq = torch.from_numpy(prow), torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(log_q)
    t_code = torch.from_numpy(code_of_row)
    t_hcode = torch.from_numpy(ex.history_codes)  # (N, L)

    def batches(epoch: int):
        order = torch.from_numpy(rng.permutation(n))
        return (order[s:s + bs] for s in range(0, n - bs + 1, bs))  # full batches: bs - 1 negatives per row

    def loss(b: torch.Tensor) -> torch.Tensor:
        cols = torch.cat([t_prow[b], torch.from_numpy(neg_rows[rng.integers(0, len(neg_rows), m)])])  # (B + M,) rows
        ids = torch.where(torch.from_numpy(rng.random(len(cols)) < config.id_dropout), 0, t_code[cols])
        context = t_ctx[b] * torch.from_numpy(rng.random((len(b), 1)) >= config.context_dropout).float()
        hcodes = t_hcode[b]
        if config.id_dropout and hcodes.shape[1]:  # the tower also learns users whose items are new
            hcodes = torch.where(torch.from_numpy(rng.random(tuple(hcodes.shape)) < config.id_dropout), 0, hcodes)
        u = net.user(t_hist[b], t_feat[b], context, hcodes)  # (B, d)
        v = net.item(t_x[cols], ids)  # (B + M, d)
        return sampled_softmax_logq_loss(u, v, t_logq[cols], cols, config.temperature)

    net.train()
    run = fit_loop(epochs=config.epochs, batches=batches, loss=loss, size=len, optimizer=opt)
    losses = [e.train_loss for e in run.epochs]
    net.eval()
    torch.set_num_threads(threads)
    seconds = time.perf_counter() - t0
    figures = {"positives": int(n), "items": len(trained_items), "epochs": config.epochs,
               "final_loss": round(losses[-1], 4), "seconds": round(seconds, 1),
               "cpu_seconds": round(time.process_time() - c0, 1)}
    log.info("two-tower: %d positives, %d items, %d epochs, loss %.3f -> %.3f (%.1f s)", n, len(trained_items),
             config.epochs, losses[0], losses[-1], seconds)
    return TwoTowerRetriever(config, net, content, trained_items, data.user_features, values, per_user, ctx_names,
                             figures)
