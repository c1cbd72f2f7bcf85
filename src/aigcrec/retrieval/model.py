"""The two-tower retrieval network and its loss: in-batch sampled softmax with logQ correction.

Shapes: B = batch, D = content input width (e_SEM, e_STY, e_TSEM concatenated), C = affect-context width,
U = categorical user features, d = output width (``TwoTowerConfig.dim``).

    item:  v_i = norm( MLP_I(x_i) + m_i E[id_i] )                         x_i = content of item i
    user:  u   = norm( MLP_U([ h ; 1[h != 0] ; sum_f E_f[c_f] ; a ; 1[a given] ]) + r MLP_I(h) + g mean_j H[id_j] )
           h   = mean of the content of the user's last positives (zero without history)
           j   = those positives' item ids (an id the model never saw, 0, is left out of the mean)
    score: s(u, i) = <u, v_i> / tau

``r`` is 1 with ``history_residual`` (the history read through the item tower's own content MLP), else 0.
``g`` is 1 with ``history_ids``: the mean of a history-id embedding ``H`` (n_ids + 1, d) over the user's
last positives (YouTube-DNN style, Covington et al., RecSys 2016), the collaborative signal: users who liked
the same items get near vectors whatever their content; zero for a user with no known item.
With ``content_skip`` both vectors also carry their raw content direction, weighted by a learned ``a > 0``:

    v_i = norm([ a unit(x_i) ; unit(v'_i) ]),   u = norm([ unit(h) ; unit(u') ])    (v', u': the towers above)

so ``<u, v_i>`` is ``a cos(h, x_i)`` (the content similarity of the item to the history, which the
history source ranks by) plus what the towers learn from features, context and ids, over a norm.

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

    def __init__(self, content_dim: int, feature_sizes: list[int], context_dim: int, config: TwoTowerConfig,
                 n_ids: int = 0) -> None:
        super().__init__()
        # H: history-id embedding, mean over the ids of the history (id 0 = unknown, excluded from the mean)
        self.history_ids = (nn.EmbeddingBag(n_ids + 1, config.dim, mode="mean", padding_idx=0)
                            if config.history_ids else None)
        if self.history_ids is not None:
            nn.init.normal_(self.history_ids.weight, std=0.01)
            with torch.no_grad():
                self.history_ids.weight[0].zero_()
        self.features = nn.ModuleList(nn.Embedding(n + 1, config.user_feature_dim, padding_idx=0)
                                      for n in feature_sizes)
        in_dim = content_dim + 1 + config.user_feature_dim * bool(feature_sizes) + context_dim + 1
        self.mlp = _mlp(in_dim, config.hidden, config.dim)
        self.user_feature_dim = config.user_feature_dim

    def forward(self, history: torch.Tensor, features: torch.Tensor, context: torch.Tensor,
                history_ids: torch.Tensor | None = None) -> torch.Tensor:
        return F.normalize(self.raw(history, features, context, history_ids), dim=-1)  # (B, d)

    def raw(self, history: torch.Tensor, features: torch.Tensor, context: torch.Tensor,
            history_ids: torch.Tensor | None = None) -> torch.Tensor:
        """The MLP's output before normalisation, plus the mean history-id embedding ``(B, d)``.

        history_ids (B, L) item-id codes of the history, 0-padded (None: no ids, the term is 0)."""
        has_h = (history.abs().sum(-1, keepdim=True) > 0).to(history.dtype)  # (B, 1)
        has_a = (context.abs().sum(-1, keepdim=True) > 0).to(history.dtype)  # (B, 1)
        parts = [history, has_h]
        if len(self.features):
            parts.append(sum(emb(features[:, f]) for f, emb in enumerate(self.features)))  # (B, e)
        parts += [context, has_a]
        out = self.mlp(torch.cat(parts, dim=-1))  # (B, d)
        if self.history_ids is not None and history_ids is not None and history_ids.shape[-1]:
            out = out + self.history_ids(history_ids)  # (B, d); an all-zero row pools to 0
        return out


class TwoTowerNet(nn.Module):
    """Both towers: ``item(x, ids) -> (B, d)``, ``user(h, features, context, history_ids) -> (B, d)``, unit rows."""

    def __init__(self, content_dim: int, n_ids: int, feature_sizes: list[int], context_dim: int,
                 config: TwoTowerConfig) -> None:
        super().__init__()
        self.items = ItemTower(content_dim, n_ids, config)
        self.users = UserTower(content_dim, feature_sizes, context_dim, config, n_ids)
        self.temperature = config.temperature
        self.history_residual = config.history_residual
        self.content_skip = config.content_skip
        self.skip_weight = nn.Parameter(torch.zeros(()))  # a = softplus(w) / softplus(0): 1 at init

    @property
    def out_dim(self) -> int:
        return self.items.ids.embedding_dim + (self.items.mlp[0].in_features if self.content_skip else 0)

    def item(self, content: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        v = self.items(content, ids)  # (B, d)
        if not self.content_skip:
            return v
        a = F.softplus(self.skip_weight) / math.log(2.0)
        return F.normalize(torch.cat([a * F.normalize(content, dim=-1), v], dim=-1), dim=-1)  # (B, P + d)

    def user(self, history: torch.Tensor, features: torch.Tensor, context: torch.Tensor,
             history_ids: torch.Tensor | None = None) -> torch.Tensor:
        """history (B, D), features (B, U), context (B, C), history_ids (B, L) or None -> (B, out_dim)."""
        u = self.users.raw(history, features, context, history_ids)  # (B, d)
        if self.history_residual:
            u = u + self.items.mlp(history)  # zero history -> MLP_I(0), the same for every cold user
        u = F.normalize(u, dim=-1)
        if not self.content_skip:
            return u
        return F.normalize(torch.cat([F.normalize(history, dim=-1), u], dim=-1), dim=-1)  # (B, P + d)


def sampled_softmax_logq_loss(user: torch.Tensor, item: torch.Tensor, log_q: torch.Tensor,
                              item_ids: torch.Tensor, temperature: float) -> torch.Tensor:
    """Sampled softmax with logQ correction (Yi et al., RecSys 2019, eq. 3-4) over in-batch and extra negatives.

    Row ``b`` pairs user ``u_b`` with its positive item ``v_b`` (column ``b``); every other column ``j`` (the
    batch's other positives, then ``M`` extra sampled items) is a negative:

        s_bj = <u_b, v_j> / tau - log Q_j,          L = -(1/B) sum_b log( e^{s_bb} / sum_j e^{s_bj} )

    ``Q_j`` is the expected number of times item ``j`` is among the columns (the proposal of the sampled
    softmax): ``B q_j`` for in-batch negatives (``q_j`` its share of the training positives), plus ``M / N``
    with ``M`` uniform extra negatives from the ``N`` catalog items (mixed negative sampling, Yang et al.,
    WWW 2020). Subtracting ``log Q_j`` removes the popularity bias of in-batch negatives. A column holding
    the same item as row ``b``'s positive is not a negative of ``b`` (masked out).

    user (B, d), item (B + M, d) unit rows; log_q (B + M,); item_ids (B + M,) identities -> scalar loss.
    """
    b = len(user)
    logits = user @ item.T / temperature - log_q[None, :]  # (B, B + M)
    same = item_ids[None, :] == item_ids[:b, None]  # (B, B + M)
    own = torch.eye(b, len(item_ids), dtype=torch.bool, device=user.device)
    logits = logits.masked_fill(same & ~own, -math.inf)
    target = torch.arange(b, device=user.device)
    return F.cross_entropy(logits, target)
