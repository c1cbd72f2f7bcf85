"""Layers of the ranker: cross networks, UMCM contribution measurement, CIN, FM, MLP.

Shapes: B = batch, D = input width, F = fields, d = field embedding width, M = modalities.
Every layer works for B = 1 (no ``squeeze()`` without a dimension, see DESIGN.md section 7).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class Dropout(nn.Module):
    """Inverted dropout in training, ``x ⊙ m / (1 - p)`` with ``m_i = [u_i >= p]``, u_i ~ U[0, 1) (so m_i ~
    Bernoulli(1 - p), the distribution of ``nn.Dropout``); the identity in evaluation. Input (B, ...) -> same shape.

    The mask comes from one uniform draw and a comparison instead of the ``bernoulli_`` ``nn.Dropout`` draws it with
    (the mask draws: 5.3 % of a profiled UMAIR-FPS training step with ``bernoulli_``, 2.5 % this way;
    docs/ranking.md "Training throughput"). The random stream differs from ``nn.Dropout``'s.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand_like(x).ge_(self.p).mul_(1.0 / (1.0 - self.p))  # (B, ...) 0 or 1/(1-p), no gradient
        return x * keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class MLP(nn.Module):
    """Stack of ``Linear -> ReLU -> Dropout``; ``h_{l+1} = Dropout(ReLU(W_l h_l + b_l))``.

    Input (B, D) -> output (B, units[-1]) (or (B, D) when ``units`` is empty).
    """

    def __init__(self, in_dim: int, units: list[int], dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for u in units:
            layers += [nn.Linear(in_dim, u), nn.ReLU()]
            if dropout > 0:
                layers.append(Dropout(dropout))
            in_dim = u
        self.net = nn.Sequential(*layers)
        self.out_dim = in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CrossNetV1(nn.Module):
    """DCN (v1) cross network: ``x_{l+1} = x_0 (x_l^T w_l) + b_l + x_l``, w_l, b_l in R^D.

    Input (B, D) -> output (B, D).
    """

    def __init__(self, in_dim: int, num_layers: int) -> None:
        super().__init__()
        self.w = nn.ParameterList([nn.Parameter(torch.randn(in_dim, 1) / math.sqrt(in_dim)) for _ in range(num_layers)])
        self.b = nn.ParameterList([nn.Parameter(torch.zeros(in_dim)) for _ in range(num_layers)])

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for w, b in zip(self.w, self.b):
            x = x0 * (x @ w) + b + x  # (B, D) * (B, 1)
        return x


class CrossNetV2(nn.Module):
    """DCN-V2 cross network (Wang et al., WWW 2021), three parameterisations of the cross layer.

    - ``full``:     ``x_{l+1} = x_0 ⊙ (W_l x_l + b_l) + x_l``, W_l in R^{D×D}
    - ``low_rank``: ``x_{l+1} = x_0 ⊙ (U_l V_l^T x_l + b_l) + x_l``, U_l, V_l in R^{D×r}
    - ``mix`` (DCN-Mix): ``x_{l+1} = Σ_i G_i(x_l) E_i(x_l) + x_l`` with K experts
      ``E_i(x) = x_0 ⊙ (U_i tanh(C_i tanh(V_i^T x)) + b_l)``, C_i in R^{r×r}, and gates
      ``G(x) = softmax_i(g_i^T x)`` over the experts.

    Input (B, D) -> output (B, D).

    The mixture is computed without the (B, K, D) expert outputs: as the gates sum to one,
    ``Σ_i G_i E_i(x) = x_0 ⊙ (Σ_i U_i (G_i v_i) + b_l)`` with ``v_i = tanh(C_i tanh(V_i^T x))``, so the K
    experts' V_i and U_i act as one (D, K·r) matrix each (the same equation and parameters, without the
    elementwise work on K copies of x_0; ``tests/test_ranking_layers.py`` checks it against the per-expert form).
    The gate's K columns join V's in one (D, K·r + K) GEMM (``mix_layer``). With gradients on, the layers run as
    one ``torch.autograd.Function`` (``MixCrossFunction``) whose hand-written backward makes fewer passes over the
    (B, D) tensors than autograd's separate products, sums and accumulations (one product for dL/ds per layer,
    x_0's gradient accumulated in place, the residual inside the GEMM); tested against autograd and with
    ``gradcheck``. Without gradients (evaluation, serving) and under tracing (ONNX export)
    the same ``mix_layer`` runs as plain operators.

    Example::

        net = CrossNetV2(in_dim=80, num_layers=2, kind="mix", low_rank=32, num_experts=4)
        y = net(torch.randn(1, 80))  # (1, 80)
    """

    def __init__(self, in_dim: int, num_layers: int, kind: str = "mix", low_rank: int = 32, num_experts: int = 4):
        super().__init__()
        if kind not in ("full", "low_rank", "mix"):
            raise ValueError(f"CrossNetV2 kind must be full/low_rank/mix, got {kind!r}")
        self.kind, self.num_layers = kind, num_layers
        r, k, d = low_rank, num_experts, in_dim
        if kind == "full":
            self.W = nn.ModuleList([nn.Linear(d, d) for _ in range(num_layers)])
        else:
            k = 1 if kind == "low_rank" else k
            self.U = nn.ParameterList([nn.Parameter(nn.init.xavier_normal_(torch.empty(k, d, r))) for _ in range(num_layers)])
            self.V = nn.ParameterList([nn.Parameter(nn.init.xavier_normal_(torch.empty(k, d, r))) for _ in range(num_layers)])
            self.b = nn.ParameterList([nn.Parameter(torch.zeros(d)) for _ in range(num_layers)])
            if kind == "mix":
                self.C = nn.ParameterList([nn.Parameter(nn.init.xavier_normal_(torch.empty(k, r, r))) for _ in range(num_layers)])
                self.gate = nn.Linear(d, k, bias=False)

    def mix_params(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Layer i's (W (D, K·r + K) = [V_1..V_K, gate weights], C (K, r, r), U⁺ (D, K·r + 1) = [U_1..U_K, b])."""
        k, d, r = self.V[i].shape
        w = torch.cat([self.V[i].transpose(0, 1).reshape(d, k * r), self.gate.weight.T], dim=1)
        u = torch.cat([self.U[i].transpose(0, 1).reshape(d, k * r), self.b[i].unsqueeze(1)], dim=1)
        return w, self.C[i], u

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        if self.kind == "mix":
            params = [self.mix_params(i) for i in range(self.num_layers)]
            if torch.is_grad_enabled() and not _tracing():
                return MixCrossFunction.apply(x0, *[t for layer in params for t in layer])
            x = x0
            for w, c, u in params:
                x = mix_layer(x0, x, w, c, u)[0]
            return x
        x = x0
        for i in range(self.num_layers):
            if self.kind == "full":
                x = torch.addcmul(x, x0, self.W[i](x))  # x_0 ⊙ (W x + b) + x
            else:
                v = x @ self.V[i][0]  # (B, r)
                x = torch.addcmul(x, x0, torch.addmm(self.b[i], v, self.U[i][0].T))  # x_0 ⊙ (U v + b) + x
        return x


def _tracing() -> bool:
    """True under ``torch.jit`` tracing (the ONNX export), ``torch.compile`` or the dynamo ONNX exporter."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export()


def mix_layer(x0: torch.Tensor, x: torch.Tensor, w: torch.Tensor, c: torch.Tensor, u: torch.Tensor
              ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """One DCN-Mix layer ``x_0 ⊙ (Σ_i U_i G_i(x) t2_i + b) + x`` (B, D) and its intermediates for the backward.

    ``a = x W`` (B, K·r + K): the K experts' ``V_i^T x`` and the gate logits in one GEMM;
    ``t1 = tanh(V_i^T x)``, ``t2 = tanh(C_i t1)`` (B, K, r); ``g = softmax(gate logits)`` (B, K);
    ``v⁺ = [g ⊙ t2, 1]`` (B, K·r + 1); ``s = v⁺ U⁺ᵀ = Σ_i U_i G_i t2_i + b`` (B, D): the bias as U⁺'s last column
    (one GEMM without addmm's copy of the broadcast bias). Returns (x_{l+1}, (t1, t2, g, v⁺, s)).
    """
    k, r = c.shape[0], c.shape[1]
    a = x @ w  # (B, K*r + K)
    t1 = torch.tanh(a[:, :k * r]).view(-1, k, r)  # (B, K, r)
    t2 = torch.tanh(torch.einsum("bkr,krs->bks", t1, c))  # (B, K, r)
    g = torch.softmax(a[:, k * r:], dim=-1)  # (B, K)
    v = torch.cat([(t2 * g.unsqueeze(-1)).flatten(1), x.new_ones(x.shape[0], 1)], dim=1)  # (B, K*r + 1)
    out = v @ u.T  # (B, D)
    return torch.addcmul(x, x0, out), (t1, t2, g, v, out)


class MixCrossFunction(torch.autograd.Function):
    """The DCN-Mix layers ``x_{l+1} = mix_layer(x_0, x_l, W_l, C_l, U⁺_l)`` with a hand-written backward.

    ``apply(x0, W_1, C_1, U⁺_1, W_2, ...)`` (the ``CrossNetV2.mix_params`` of each layer). Backward of layer l,
    from ``γ = dL/dx_{l+1}`` (B, D): ``dL/ds = γ ⊙ x_0``, ``dL/dU⁺ = (dL/ds)ᵀ v⁺`` (its last column is
    ``dL/db = Σ_B dL/ds``), ``dL/dv = (dL/ds) U``; through g ⊙ t2, the softmax and the two tanh to ``dL/da``
    (B, K·r + K); ``dL/dW = xᵀ dL/da``; ``dL/dx_l = γ + dL/da Wᵀ`` (one addmm) and ``dL/dx_0 += γ ⊙ s`` (one
    addcmul_, in place; layer 0's x is x_0 itself).
    """

    @staticmethod
    def forward(ctx, x0: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        x, saved = x0, []
        for i in range(0, len(params), 3):
            y, inter = mix_layer(x0, x, *params[i:i + 3])
            saved += [x, *inter]
            x = y
        ctx.save_for_backward(x0, *params, *saved)
        ctx.num_params = len(params)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x0, *rest = ctx.saved_tensors
        params, saved = rest[:ctx.num_params], rest[ctx.num_params:]
        grads: list[torch.Tensor | None] = [None] * len(params)
        gx0 = None
        for layer in reversed(range(len(params) // 3)):
            w, c, um = params[3 * layer:3 * layer + 3]
            x, t1, t2, g, v, s = saved[6 * layer:6 * layer + 6]
            k, r = c.shape[0], c.shape[1]
            gs_out = grad * x0  # (B, D) dL/ds
            gx0 = grad * s if gx0 is None else gx0.addcmul_(grad, s)  # (B, D) x_0's own product
            gv = (gs_out @ um[:, :k * r]).view(-1, k, r)  # (B, K, r) dL/d(g ⊙ t2)
            gg = (gv * t2).sum(-1)  # (B, K) dL/dg
            ga_gate = g * (gg - (gg * g).sum(-1, keepdim=True))  # softmax backward
            gpre = gv * g.unsqueeze(-1) * (1 - t2 * t2)  # (B, K, r) before the outer tanh
            ga_v = torch.einsum("bks,krs->bkr", gpre, c) * (1 - t1 * t1)  # (B, K, r) before the inner tanh
            ga = torch.cat([ga_v.flatten(1), ga_gate], dim=1)  # (B, K*r + K) dL/da
            # weight gradients as (ga^T x)^T: MKL's GEMM of x^T ga (a (D, K*r) output) was slower on this CPU
            grads[3 * layer:3 * layer + 3] = [(ga.T @ x).T, torch.einsum("bkr,bks->krs", t1, gpre), (v.T @ gs_out).T]
            if layer:
                grad = torch.addmm(grad, ga, w.T)  # (B, D) dL/dx_l: the residual plus the path through a
            else:
                gx0.add_(grad).addmm_(ga, w.T)  # layer 0's x is x_0: its gradient joins x_0's in place
        return (gx0, *grads)


class UMCM(nn.Module):
    """User-aware multi-modal contribution measurement (attention form), per sample.

    ``α = softmax(q M^T / sqrt(D))``, ``e_MM = Σ_m α_m M_m``. q (B, D) is the user representation,
    M (B, M, D) the stacked modality vectors [item-id tower, e_SEM, e_STY, e_TSEM]. The authors' Keras code
    passed a 2-D query that broadcast across the batch and used no 1/sqrt(D) scale; here every sample
    has its own query, and the scale keeps the softmax from saturating at initialisation
    (``scale=False``: ``α = softmax(q Mᵀ)``, the authors' form).

    Returns (e_MM (B, D), α (B, M)).
    """

    def __init__(self, scale: bool = True) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, query: torch.Tensor, modalities: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = (modalities * query.unsqueeze(1)).sum(dim=-1)  # (B, M): m_k · q
        if self.scale:
            scores = scores / math.sqrt(query.shape[-1])
        alpha = torch.softmax(scores, dim=-1)  # (B, M)
        return (alpha.unsqueeze(-1) * modalities).sum(dim=1), alpha  # (B, D), (B, M)


class UserAwareSENet(nn.Module):
    """User-aware SENet gate over modalities.

    Squeeze: ``z = mean_D(M)`` (B, M). Excitation: ``s = W_2 ReLU(W_1 z)`` (B, M). User awareness:
    ``α = softmax(s ⊙ (W_u q))`` with q (B, Q) the user representation. ``e_MM = Σ_m α_m M_m``.

    Returns (e_MM (B, D), α (B, M)).
    """

    def __init__(self, num_modalities: int, query_dim: int, reduction: int = 2) -> None:
        super().__init__()
        hidden = max(1, num_modalities // reduction)
        self.excite = nn.Sequential(nn.Linear(num_modalities, hidden), nn.ReLU(), nn.Linear(hidden, num_modalities))
        self.user = nn.Linear(query_dim, num_modalities)

    def forward(self, query: torch.Tensor, modalities: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = modalities.mean(dim=-1)  # (B, M)
        alpha = torch.softmax(self.excite(z) * self.user(query), dim=-1)  # (B, M)
        return torch.bmm(alpha.unsqueeze(1), modalities).squeeze(1), alpha


class ContributionMixture(nn.Module):
    """Mixture of UMCM attention and the user-aware SENet: ``α = β α_att + (1-β) α_se``, β = sigmoid(w).

    Returns (e_MM (B, D), α (B, M)).
    """

    def __init__(self, num_modalities: int, query_dim: int, scale: bool = True) -> None:
        super().__init__()
        self.att = UMCM(scale)
        self.se = UserAwareSENet(num_modalities, query_dim)
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, query: torch.Tensor, modalities: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, a1 = self.att(query, modalities)
        _, a2 = self.se(query, modalities)
        beta = torch.sigmoid(self.w)
        alpha = beta * a1 + (1 - beta) * a2  # (B, M)
        return torch.bmm(alpha.unsqueeze(1), modalities).squeeze(1), alpha


class FMInteraction(nn.Module):
    """Factorization-machine second-order term: ``½ Σ_k [(Σ_f v_fk)^2 - Σ_f v_fk^2]``.

    Input (B, F, d) -> output (B,).
    """

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        square_of_sum = emb.sum(dim=1).pow(2)  # (B, d)
        sum_of_square = emb.pow(2).sum(dim=1)  # (B, d)
        return 0.5 * (square_of_sum - sum_of_square).sum(dim=-1)


class CIN(nn.Module):
    """Compressed interaction network of xDeepFM (Lian et al., KDD 2018).

    ``X^k_{h,*} = Σ_{i,j} W^{k,h}_{ij} (X^{k-1}_{i,*} ⊙ X^0_{j,*})``; each layer is sum-pooled over d and the
    pools are concatenated. Input (B, F, d) -> output (B, Σ_k H_k).
    """

    def __init__(self, num_fields: int, layer_sizes: list[int]) -> None:
        super().__init__()
        self.convs = nn.ModuleList()
        prev = num_fields
        for h in layer_sizes:
            self.convs.append(nn.Conv1d(prev * num_fields, h, kernel_size=1))
            prev = h
        self.out_dim = sum(layer_sizes)

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        b, f, d = x0.shape
        x, pools = x0, []
        for conv in self.convs:
            z = torch.einsum("bhd,bmd->bhmd", x, x0).reshape(b, -1, d)  # (B, H*F, d)
            x = torch.relu(conv(z))  # (B, H_k, d)
            pools.append(x.sum(dim=-1))  # (B, H_k)
        return torch.cat(pools, dim=-1)
