"""Layers from scratch, each backward next to its forward: matmul, Conv2d, attention.

The curriculum's Exercise 3 (`matrix_multiply_forward_backward`) and Implementation
Challenges 2 (`Conv2d`) and 3 (`ScaledDotProductAttention`). What we fixed in its
attention (`masked_fill(mask == 0, -1e9)`): a fully masked query row there silently
becomes a uniform average over *all* keys, masked ones included. Here masked scores are
-inf and a fully masked row attends to nothing: zero weights, zero output, zero gradient,
which is exactly what torch >= 2.5's `F.scaled_dot_product_attention` returns (older
torch returned NaN).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mlfund.numpy_nn.activations import softmax, softmax_backward

Array = np.ndarray


# ---------------------------------------------------------------- matmul (Exercise 3)
def matmul_forward_backward(A: Array, B: Array, grad_out: Array) -> tuple[Array, Array, Array]:
    """C = A @ B and the vector-Jacobian products dL/dA, dL/dB given dL/dC = `grad_out`.

    A (n, k), B (k, m), grad_out (n, m) -> C (n, m), dA (n, k), dB (k, m).
    Each entry A[i, p] meets B[p, :] in row i of C, so dA = grad_out @ B.T; likewise
    dB = A.T @ grad_out. Shapes are the check: dA must look like A.
    """
    C = A @ B
    dA = grad_out @ B.T  # (n, m) @ (m, k)
    dB = A.T @ grad_out  # (k, n) @ (n, m)
    return C, dA, dB


# ---------------------------------------------------------------- Conv2d (Challenge 2)
def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


class Conv2d:
    """2-D cross-correlation like `torch.nn.Conv2d` (no dilation, no groups), by im2col.

    weight (out, in, kh, kw) ~ U(-sqrt(6 / fan_in), +sqrt(6 / fan_in)): Kaiming (He)
    uniform for ReLU networks, fan_in = in * kh * kw; bias (out,) ~ U(+-1 / sqrt(fan_in))
    as torch does. (torch's default weight init uses a = sqrt(5), i.e. bound 1 / sqrt(fan_in).)
    `backward(grad_out)` returns dL/dx and stores `dweight`, `dbias`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        seed: int = 0,
    ) -> None:
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = (
            _pair(kernel_size),
            _pair(stride),
            _pair(padding),
        )
        kh, kw = self.kernel_size
        fan_in = in_channels * kh * kw
        rng = np.random.default_rng(seed)
        bound = math.sqrt(6.0 / fan_in)
        self.weight = rng.uniform(-bound, bound, size=(out_channels, in_channels, kh, kw))
        self.bias = rng.uniform(-1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in), out_channels)
        self.dweight = np.zeros_like(self.weight)
        self.dbias = np.zeros_like(self.bias)
        self._cache: tuple[Array, tuple[int, ...]] | None = None

    def output_shape(self, height: int, width: int) -> tuple[int, int]:
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1

    def forward(self, x: Array) -> Array:
        """x (N, C, H, W) -> (N, out, H_out, W_out)."""
        n, c, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        h_out, w_out = self.output_shape(h, w)
        padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        # A strided view, no copy: (N, C, H_out, W_out, kh, kw), one window per output pixel
        windows = sliding_window_view(padded, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
        # im2col: one row per (image, output pixel), columns ordered (C, kh, kw) like weight
        cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * h_out * w_out, c * kh * kw)
        out = cols @ self.weight.reshape(self.out_channels, -1).T + self.bias  # (N*Ho*Wo, out)
        self._cache = (cols, x.shape)
        return out.reshape(n, h_out, w_out, self.out_channels).transpose(0, 3, 1, 2)

    def backward(self, grad_out: Array) -> Array:
        """dL/dout (N, out, H_out, W_out) -> dL/dx (N, C, H, W); sets dweight, dbias."""
        if self._cache is None:
            raise RuntimeError("call forward before backward")
        cols, (n, c, h, w) = self._cache
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        h_out, w_out = grad_out.shape[2:]
        g = grad_out.transpose(0, 2, 3, 1).reshape(-1, self.out_channels)  # (N*Ho*Wo, out)
        self.dweight = (g.T @ cols).reshape(self.weight.shape)  # matmul rule: dB = A.T @ g
        self.dbias = g.sum(axis=0)
        dcols = (g @ self.weight.reshape(self.out_channels, -1)).reshape(n, h_out, w_out, c, kh, kw)
        # col2im: each kernel offset (i, j) touched a strided grid of padded pixels; windows
        # overlap, so contributions add. kh*kw vectorised adds, no loop over pixels or images.
        dpadded = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=dcols.dtype)
        for i in range(kh):
            for j in range(kw):
                dpadded[:, :, i : i + sh * h_out : sh, j : j + sw * w_out : sw] += dcols[
                    :, :, :, :, i, j
                ].transpose(0, 3, 1, 2)
        return dpadded[:, :, ph : ph + h, pw : pw + w]


# ---------------------------------------------------------------- attention (Challenge 3)
def causal_mask(query_length: int, key_length: int | None = None) -> Array:
    """Boolean (L, S) mask, True where query i may attend key j <= i (torch's is_causal)."""
    key_length = query_length if key_length is None else key_length
    return np.tril(np.ones((query_length, key_length), dtype=bool))


def scaled_dot_product_attention(
    Q: Array, K: Array, V: Array, mask: Array | None = None, scale: float | None = None
) -> tuple[Array, Array]:
    """softmax(Q K^T * scale + mask) V, as torch.nn.functional.scaled_dot_product_attention.

    Q (..., L, d), K (..., S, d), V (..., S, d_v) -> output (..., L, d_v), weights (..., L, S).
    `mask` broadcasts to (..., L, S): boolean True = may attend, or a float added to the
    scores (-inf = blocked). scale defaults to 1 / sqrt(d). A query row with every key
    blocked gets zero weights and a zero output (torch >= 2.5 does the same).
    """
    scale = 1.0 / math.sqrt(Q.shape[-1]) if scale is None else scale
    scores = Q @ np.swapaxes(K, -1, -2) * scale  # (..., L, S)
    if mask is not None:
        mask = np.asarray(mask)
        scores = np.where(mask, scores, -np.inf) if mask.dtype == bool else scores + mask
    # softmax of an all -inf row is 0/0; give it zeros (it has nothing to attend to)
    blocked = np.all(np.isneginf(scores), axis=-1, keepdims=True)  # (..., L, 1)
    weights = np.where(blocked, 0.0, softmax(np.where(blocked, 0.0, scores), axis=-1))
    return weights @ V, weights


def _sum_to_shape(grad: Array, shape: tuple[int, ...]) -> Array:
    """Undo broadcasting: sum `grad` over the leading axes an input was broadcast along."""
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape)))) if grad.ndim > len(shape) else grad
    axes = tuple(i for i, size in enumerate(shape) if size == 1 and grad.shape[i] != 1)
    return grad.sum(axis=axes, keepdims=True) if axes else grad


def scaled_dot_product_attention_backward(
    grad_output: Array, Q: Array, K: Array, V: Array, weights: Array, scale: float | None = None
) -> tuple[Array, Array, Array]:
    """dL/dQ, dL/dK, dL/dV from dL/doutput (..., L, d_v) and the forward's `weights`.

    Blocked keys have weight 0, so softmax_backward gives them zero score-gradient: the
    mask needs no special case here.
    """
    scale = 1.0 / math.sqrt(Q.shape[-1]) if scale is None else scale
    dV = np.swapaxes(weights, -1, -2) @ grad_output  # (..., S, d_v)
    dweights = grad_output @ np.swapaxes(V, -1, -2)  # (..., L, S)
    dscores = softmax_backward(weights, dweights, axis=-1) * scale  # (..., L, S)
    dQ = dscores @ K  # (..., L, d)
    dK = np.swapaxes(dscores, -1, -2) @ Q  # (..., S, d)
    return _sum_to_shape(dQ, Q.shape), _sum_to_shape(dK, K.shape), _sum_to_shape(dV, V.shape)


class ScaledDotProductAttention:
    """The curriculum's class shape: `forward` caches what `backward` needs."""

    def __init__(self, scale: float | None = None) -> None:
        self.scale = scale
        self.weights: Array | None = None
        self._inputs: tuple[Array, Array, Array] | None = None

    def forward(self, Q: Array, K: Array, V: Array, mask: Array | None = None) -> Array:
        output, self.weights = scaled_dot_product_attention(Q, K, V, mask, self.scale)
        self._inputs = (Q, K, V)
        return output

    def backward(self, grad_output: Array) -> tuple[Array, Array, Array]:
        if self._inputs is None or self.weights is None:
            raise RuntimeError("call forward before backward")
        return scaled_dot_product_attention_backward(
            grad_output, *self._inputs, self.weights, self.scale
        )
