"""The two-tower retrieval network and its loss: in-batch sampled softmax with logQ correction.

Shapes: B = batch, D = content input width (e_SEM, e_STY, e_TSEM concatenated), C = affect-context width,
U = categorical user features, d = output width (``TwoTowerConfig.dim``).

    item:  v_i = norm( MLP_I(x_i) + m_i E[id_i] )                         x_i = content of item i
    user:  u   = norm( MLP_U([ h ; 1[h != 0] ; sum_f E_f[c_f] ; a ; 1[a given] ]) )
           h   = mean of the content of the user's last positives (zero without history)
    score: s(u, i) = <u, v_i> / tau

``m_i`` is 0 for an item the model never saw (id 0) and, in training, for a random ``id_dropout`` share of
rows, so the content path alone ranks new items. Every module works for B = 1.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from aigcrec.retrieval.config import TwoTowerConfig


def _mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, out_dim))


class ItemTower(nn.Module):
    """``v = norm(MLP(x) + E[id])``, ``E[0] = 0`` (unknown item). Input (B, D), ids (B,) -> (B, d)."""

    def __init__(self, content_dim: int, n_ids: int, config: TwoTowerConfig) -> None:
        super().__init__()
        self.mlp = _mlp(content_dim, config.hidden, config.dim)
        self.ids = nn.Embedding(n_ids + 1, config.dim, padding_idx=0)  # row 0: unknown, stays 0
        nn.init.normal_(self.ids.weight, std=0.01)
        with torch.no_grad():
            self.ids.weight[0].zero_()

    def forward(self, content: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        v = self.mlp(content) + self.ids(ids)  # (B, d)
        return F.normalize(v, dim=-1)


class UserTower(nn.Module):
    """``u = norm(MLP([h; has_h; sum_f E_f[c_f]; a; has_a]))``.

    history (B, D) pooled content (zeros: none), features (B, U) codes (0: unknown), context (B, C)
    (zeros: none) -> (B, d). ``has_h`` / ``has_a`` are 1 where the row's history / context is non-zero.
    """

    def __init__(self, content_dim: int, feature_sizes: list[int], context_dim: int, config: TwoTowerConfig) -> None:
        super().__init__()
        self.features = nn.ModuleList(nn.Embedding(n + 1, config.user_feature_dim, padding_idx=0)
                                      for n in feature_sizes)
        in_dim = content_dim + 1 + config.user_feature_dim * bool(feature_sizes) + context_dim + 1
        self.mlp = _mlp(in_dim, config.hidden, config.dim)
        self.user_feature_dim = config.user_feature_dim

    def forward(self, history: torch.Tensor, features: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        has_h = (history.abs().sum(-1, keepdim=True) > 0).to(history.dtype)  # (B, 1)
        has_a = (context.abs().sum(-1, keepdim=True) > 0).to(history.dtype)  # (B, 1)
        parts = [history, has_h]
        if len(self.features):
            parts.append(sum(emb(features[:, f]) for f, emb in enumerate(self.features)))  # (B, e)
        parts += [context, has_a]
        return F.normalize(self.mlp(torch.cat(parts, dim=-1)), dim=-1)  # (B, d)


class TwoTowerNet(nn.Module):
    """Both towers; ``score`` is ``<u, v> / tau``."""

    def __init__(self, content_dim: int, n_ids: int, feature_sizes: list[int], context_dim: int,
                 config: TwoTowerConfig) -> None:
        super().__init__()
        self.items = ItemTower(content_dim, n_ids, config)
        self.users = UserTower(content_dim, feature_sizes, context_dim, config)
        self.temperature = config.temperature


def sampled_softmax_logq_loss(user: torch.Tensor, item: torch.Tensor, log_q: torch.Tensor,
                              item_ids: torch.Tensor, temperature: float) -> torch.Tensor:
    """In-batch sampled softmax with logQ correction (Yi et al., RecSys 2019, eq. 3-4).

    Row ``b`` pairs user ``u_b`` with its positive item ``v_b``; the batch's other items are its negatives:

        s_bj = <u_b, v_j> / tau - log q_j,          L = -(1/B) sum_b log( e^{s_bb} / sum_j e^{s_bj} )

    ``q_j`` is the probability that item ``j`` is drawn into a batch (its share of the training positives):
    subtracting ``log q_j`` removes the popularity bias of in-batch negatives. Where row ``j != b`` holds the
    same item as row ``b`` it is not a negative of ``b`` (masked out).

    user, item (B, d) unit rows; log_q (B,); item_ids (B,) -> scalar loss.
    """
    logits = user @ item.T / temperature - log_q[None, :]  # (B, B)
    same = item_ids[None, :] == item_ids[:, None]  # (B, B)
    eye = torch.eye(len(item_ids), dtype=torch.bool, device=user.device)
    logits = logits.masked_fill(same & ~eye, -math.inf)
    target = torch.arange(len(item_ids), device=user.device)
    return F.cross_entropy(logits, target)
