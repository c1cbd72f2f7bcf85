"""Layers of the ranker: equations, shapes, batch size 1."""

from __future__ import annotations

import itertools

import pytest
import torch

from aigcrec.ranking.config import ModelConfig
from aigcrec.ranking.layers import (CIN, UMCM, ContributionMixture, CrossNetV1, CrossNetV2, Dropout, FMInteraction,
                                    UserAwareSENet, mix_layer)
from aigcrec.ranking.models import CrossDeep


@pytest.mark.parametrize("kind,batch", itertools.product(["full", "low_rank", "mix"], [1, 5]))
def test_crossnetv2_shapes_and_batch_one(kind, batch):
    net = CrossNetV2(12, num_layers=2, kind=kind, low_rank=3, num_experts=4)
    y = net(torch.randn(batch, 12))
    assert y.shape == (batch, 12)
    assert torch.isfinite(y).all()


def test_crossnetv2_full_rank_equation():
    torch.manual_seed(0)
    net = CrossNetV2(6, num_layers=1, kind="full")
    x0 = torch.randn(3, 6)
    lin = net.W[0]
    expected = x0 * (x0 @ lin.weight.T + lin.bias) + x0
    assert torch.allclose(net(x0), expected, atol=1e-6)


def test_crossnetv2_low_rank_equation():
    torch.manual_seed(0)
    net = CrossNetV2(6, num_layers=1, kind="low_rank", low_rank=2)
    x0 = torch.randn(3, 6)
    u, v, b = net.U[0][0], net.V[0][0], net.b[0]
    expected = x0 * ((x0 @ v) @ u.T + b) + x0
    assert torch.allclose(net(x0), expected, atol=1e-6)


def test_crossnet_mix_single_expert_matches_hand_computation():
    torch.manual_seed(0)
    net = CrossNetV2(5, num_layers=1, kind="mix", low_rank=2, num_experts=1)
    x0 = torch.randn(4, 5)
    u, v, c, b = net.U[0][0], net.V[0][0], net.C[0][0], net.b[0]
    expert = x0 * (torch.tanh(torch.tanh(x0 @ v) @ c) @ u.T + b)
    assert torch.allclose(net(x0), expert + x0, atol=1e-6)  # one expert: its gate is exactly 1


def test_crossnet_mix_equals_the_gated_sum_of_its_experts():
    """The fused form (no (B, K, D) expert tensor) equals the paper's Σ_i G_i(x) E_i(x) + x per layer."""
    torch.manual_seed(0)
    net = CrossNetV2(7, num_layers=2, kind="mix", low_rank=3, num_experts=4)
    with torch.no_grad():
        for b in net.b:
            b.normal_()  # non-zero biases: Σ_i G_i b = b only because the gates sum to one
    x0 = torch.randn(5, 7)
    x = x0
    for i in range(2):
        g = torch.softmax(net.gate(x), dim=-1)  # (B, K)
        experts = [x0 * (torch.tanh(torch.tanh(x @ net.V[i][k]) @ net.C[i][k]) @ net.U[i][k].T + net.b[i])
                   for k in range(4)]
        x = sum(g[:, k:k + 1] * e for k, e in enumerate(experts)) + x
    assert torch.allclose(net(x0), x, atol=1e-5)


def _mix_net(layers: int = 2) -> CrossNetV2:
    torch.manual_seed(0)
    net = CrossNetV2(7, num_layers=layers, kind="mix", low_rank=3, num_experts=4).double()
    with torch.no_grad():
        for b in net.b:
            b.normal_()
    return net


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_crossnet_mix_hand_written_backward_matches_autograd(layers):
    """MixCrossFunction's backward (training) against autograd through the plain operators of mix_layer."""
    net = _mix_net(layers)
    x0 = torch.randn(5, 7, dtype=torch.double, requires_grad=True)
    y = net(x0)  # gradients on: the Function
    assert y.grad_fn is not None and "MixCrossFunction" in type(y.grad_fn).__name__
    x = x0
    for i in range(layers):
        x = mix_layer(x0, x, *net.mix_params(i))[0]  # autograd through the same equations
    assert torch.allclose(y, x, atol=1e-12)
    g = torch.randn_like(y)
    params = [x0] + list(net.parameters())
    ours, reference = torch.autograd.grad(y, params, g), torch.autograd.grad(x, params, g)
    for a, b in zip(ours, reference):
        assert torch.allclose(a, b, atol=1e-10)
    assert torch.autograd.gradcheck(net, (x0,))


def test_crossnet_mix_evaluation_path_equals_training_path():
    net = _mix_net().float()
    x0 = torch.randn(6, 7)
    with torch.no_grad():
        plain = net(x0)
    assert torch.allclose(net(x0), plain, atol=1e-6)


def test_dropout_keeps_a_share_one_minus_p_scaled_and_is_identity_in_eval():
    torch.manual_seed(0)
    drop = Dropout(0.3)
    x = torch.ones(200, 500)
    y = drop(x)
    kept = y > 0
    assert abs(kept.float().mean().item() - 0.7) < 0.01
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.7))
    assert not torch.any(y[~kept])
    x = torch.randn(3, 4, requires_grad=True)
    y = drop(x)
    y.sum().backward()
    assert torch.allclose(x.grad, (y != 0).float() / 0.7)  # the gradient passes the kept units, scaled
    drop.eval()
    assert drop(x) is x
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(1.0)


def test_crossnet_v1_equation():
    torch.manual_seed(0)
    net = CrossNetV1(4, num_layers=1)
    x0 = torch.randn(2, 4)
    expected = x0 * (x0 @ net.w[0]) + net.b[0] + x0
    assert torch.allclose(net(x0), expected, atol=1e-6)


def test_crossnetv2_rejects_unknown_kind():
    with pytest.raises(ValueError, match="full/low_rank/mix"):
        CrossNetV2(4, 1, kind="diagonal")


def test_umcm_is_per_sample_softmax_attention():
    torch.manual_seed(0)
    q = torch.randn(3, 8)
    m = torch.randn(3, 4, 8)
    e_mm, alpha = UMCM()(q, m)
    assert alpha.shape == (3, 4) and e_mm.shape == (3, 8)
    assert torch.allclose(alpha.sum(-1), torch.ones(3))
    for i in range(3):  # each sample uses its own query (the authors' Keras code broadcast one)
        a = torch.softmax(m[i] @ q[i] / 8 ** 0.5, dim=-1)
        assert torch.allclose(alpha[i], a, atol=1e-6)
        assert torch.allclose(e_mm[i], a @ m[i], atol=1e-6)


def test_umcm_query_aligned_with_a_modality_weights_it_most():
    m = torch.eye(4).unsqueeze(0) * 10  # (1, 4, 4): modality k points along axis k
    _, alpha = UMCM()(torch.tensor([[0.0, 0.0, 5.0, 0.0]]), m)
    assert int(alpha.argmax()) == 2


@pytest.mark.parametrize("layer", [lambda: UserAwareSENet(4, 8), lambda: ContributionMixture(4, 8)])
@pytest.mark.parametrize("batch", [1, 3])
def test_senet_and_mixture_return_weights_that_sum_to_one(layer, batch):
    e_mm, alpha = layer()(torch.randn(batch, 8), torch.randn(batch, 4, 8))
    assert e_mm.shape == (batch, 8) and alpha.shape == (batch, 4)
    assert torch.allclose(alpha.sum(-1), torch.ones(batch), atol=1e-6)


def test_fm_matches_explicit_pairwise_sum():
    torch.manual_seed(0)
    e = torch.randn(2, 5, 3)
    explicit = sum((e[:, i] * e[:, j]).sum(-1) for i in range(5) for j in range(i + 1, 5))
    assert torch.allclose(FMInteraction()(e), explicit, atol=1e-5)


def test_cin_shape_batch_one():
    assert CIN(5, [4, 3])(torch.randn(1, 5, 2)).shape == (1, 7)


@pytest.mark.parametrize("structure", ["crossnet_only", "stacked", "parallel", "stacked_parallel"])
@pytest.mark.parametrize("layers", [0, 2])
def test_cross_deep_structures_batch_one(structure, layers):
    cfg = ModelConfig(structure=structure, cross_layers=layers, dnn_units=[8, 4], dropout=0.5)
    net = CrossDeep(10, cfg).eval()
    y = net(torch.randn(1, 10))
    assert y.shape == (1, net.out_dim)
