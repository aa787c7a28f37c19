"""numpy_nn.layers against torch autograd and torch.nn.functional, in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mlfund.numpy_nn.layers import (
    Conv2d,
    ScaledDotProductAttention,
    causal_mask,
    matmul_forward_backward,
    scaled_dot_product_attention,
    scaled_dot_product_attention_backward,
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def leaf(array: np.ndarray) -> torch.Tensor:
    return torch.tensor(array, dtype=torch.float64, requires_grad=True)


# ---------------------------------------------------------------- matmul
@pytest.mark.parametrize(("n", "k", "m"), [(1, 1, 1), (3, 4, 5), (7, 2, 9)])
def test_matmul_forward_backward_matches_autograd(rng, n, k, m):
    A, B, G = rng.normal(size=(n, k)), rng.normal(size=(k, m)), rng.normal(size=(n, m))
    C, dA, dB = matmul_forward_backward(A, B, G)
    tA, tB = leaf(A), leaf(B)
    tC = tA @ tB
    tC.backward(torch.tensor(G))
    np.testing.assert_allclose(C, tC.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(dA, tA.grad.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(dB, tB.grad.numpy(), rtol=0, atol=1e-12)
    assert dA.shape == A.shape and dB.shape == B.shape


# ---------------------------------------------------------------- Conv2d
CONV_CASES = [
    # (N, C_in, H, W, C_out, kernel, stride, padding)
    (2, 3, 8, 8, 4, 3, 1, 0),
    (2, 3, 8, 8, 4, 3, 1, 1),
    (1, 2, 9, 7, 3, 3, 2, 1),
    (3, 1, 10, 11, 2, (2, 3), (2, 1), (0, 2)),
    (2, 4, 6, 6, 5, 1, 1, 0),
    (1, 2, 7, 7, 3, 5, 3, 2),  # stride that does not divide: trailing rows unused
    (2, 3, 5, 5, 2, 5, 1, 0),  # kernel as large as the image: 1x1 output
]


@pytest.mark.parametrize(("n", "c", "h", "w", "out", "k", "s", "p"), CONV_CASES)
def test_conv2d_matches_torch_forward_and_autograd(rng, n, c, h, w, out, k, s, p):
    conv = Conv2d(c, out, k, stride=s, padding=p, seed=1)
    x = rng.normal(size=(n, c, h, w))
    y = conv.forward(x)
    tx, tW, tb = leaf(x), leaf(conv.weight), leaf(conv.bias)
    ty = F.conv2d(tx, tW, tb, stride=s, padding=p)
    assert y.shape == tuple(ty.shape)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=1e-8)

    grad_out = rng.normal(size=y.shape)
    dx = conv.backward(grad_out)
    ty.backward(torch.tensor(grad_out))
    for mine, theirs in ((dx, tx), (conv.dweight, tW), (conv.dbias, tb)):
        assert mine.shape == tuple(theirs.shape)
        np.testing.assert_allclose(mine, theirs.grad.numpy(), rtol=0, atol=1e-8)


def test_conv2d_init_is_seeded_kaiming_uniform():
    a, b = Conv2d(3, 8, 3, seed=5), Conv2d(3, 8, 3, seed=5)
    np.testing.assert_array_equal(a.weight, b.weight)
    assert not np.array_equal(a.weight, Conv2d(3, 8, 3, seed=6).weight)
    assert a.weight.shape == (8, 3, 3, 3) and a.bias.shape == (8,)
    assert np.abs(a.weight).max() <= np.sqrt(6 / 27)
    assert np.abs(a.bias).max() <= 1 / np.sqrt(27)


def test_conv2d_backward_needs_forward():
    with pytest.raises(RuntimeError, match="forward"):
        Conv2d(1, 1, 3).backward(np.zeros((1, 1, 1, 1)))


# ---------------------------------------------------------------- attention
def torch_attention(Q, K, V, mask=None):
    tQ, tK, tV = leaf(Q), leaf(K), leaf(V)
    tmask = None if mask is None else torch.tensor(mask)
    return tQ, tK, tV, F.scaled_dot_product_attention(tQ, tK, tV, attn_mask=tmask)


def check_against_torch(rng, Q, K, V, mask):
    out, weights = scaled_dot_product_attention(Q, K, V, mask)
    tQ, tK, tV, tout = torch_attention(Q, K, V, mask)
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=0, atol=1e-10)
    grad_out = rng.normal(size=out.shape)
    grads = scaled_dot_product_attention_backward(grad_out, Q, K, V, weights)
    tout.backward(torch.tensor(grad_out))
    for mine, theirs in zip(grads, (tQ, tK, tV), strict=True):
        assert mine.shape == tuple(theirs.shape)
        np.testing.assert_allclose(mine, theirs.grad.numpy(), rtol=0, atol=1e-10)
    return out, weights, grads


ATTENTION_SHAPES = [((5, 4), (5, 4), (5, 4)), ((2, 6, 8), (2, 7, 8), (2, 7, 3))]
ATTENTION_SHAPES += [((2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 5))]
ATTENTION_SHAPES += [((2, 3, 4, 8), (1, 3, 6, 8), (1, 3, 6, 5))]  # K, V broadcast over batch


@pytest.mark.parametrize("mask_kind", ["none", "bool", "causal", "float", "float_broadcast"])
@pytest.mark.parametrize(("q_shape", "k_shape", "v_shape"), ATTENTION_SHAPES)
def test_attention_matches_torch(rng, mask_kind, q_shape, k_shape, v_shape):
    Q, K, V = rng.normal(size=q_shape), rng.normal(size=k_shape), rng.normal(size=v_shape)
    L, S = q_shape[-2], k_shape[-2]
    mask = {
        "none": None,
        "bool": rng.random((*q_shape[:-2], L, S)) < 0.7,
        "causal": causal_mask(L, S),
        "float": rng.normal(size=(*q_shape[:-2], L, S)),
        "float_broadcast": np.where(rng.random((1, S)) < 0.3, -np.inf, 0.5),
    }[mask_kind]
    if mask is not None and mask.dtype == bool:
        mask[..., 0] = True  # keep every row attending to something (see the next test)
    if mask_kind == "float_broadcast":
        mask[0, 0] = 0.0
    _, weights, _ = check_against_torch(rng, Q, K, V, mask)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-12)
    if mask is not None and mask.dtype == bool:
        assert np.all(weights[..., ~np.broadcast_to(mask, weights.shape)] == 0.0)


def test_causal_mask_is_torch_is_causal(rng):
    Q, K, V = rng.normal(size=(2, 5, 4)), rng.normal(size=(2, 5, 4)), rng.normal(size=(2, 5, 3))
    out, weights = scaled_dot_product_attention(Q, K, V, causal_mask(5))
    expected = F.scaled_dot_product_attention(*map(torch.tensor, (Q, K, V)), is_causal=True)
    np.testing.assert_allclose(out, expected.numpy(), rtol=0, atol=1e-10)
    assert np.all(np.triu(weights[0], k=1) == 0.0)


@pytest.mark.parametrize("float_mask", [False, True])
def test_fully_masked_row_attends_to_nothing(rng, float_mask):
    """Our choice: zero weights, zero output, zero gradient; torch 2.14 agrees (old torch: NaN).

    The curriculum's masked_fill(-1e9) would instead average V over every key.
    """
    Q, K, V = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 5, 2))
    mask = np.ones((4, 5), dtype=bool)
    mask[2] = False
    if float_mask:
        mask = np.where(mask, 0.0, -np.inf)
    out, weights, (dQ, _, _) = check_against_torch(rng, Q, K, V, mask)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(dQ))
    assert np.all(weights[:, 2] == 0.0) and np.all(out[:, 2] == 0.0) and np.all(dQ[:, 2] == 0.0)
    np.testing.assert_allclose(np.delete(weights, 2, axis=1).sum(axis=-1), 1.0, atol=1e-12)


def test_attention_class_caches_for_backward(rng):
    Q, K, V = rng.normal(size=(3, 4)), rng.normal(size=(6, 4)), rng.normal(size=(6, 2))
    layer = ScaledDotProductAttention()
    out = layer.forward(Q, K, V, causal_mask(3, 6))
    grad_out = rng.normal(size=out.shape)
    expected = scaled_dot_product_attention_backward(grad_out, Q, K, V, layer.weights)
    for mine, theirs in zip(layer.backward(grad_out), expected, strict=True):
        np.testing.assert_array_equal(mine, theirs)
    with pytest.raises(RuntimeError, match="forward"):
        ScaledDotProductAttention().backward(grad_out)
