"""Activation functions and their derivatives, numerically stable for any float input.

Each derivative is written next to its function and takes the same pre-activation `z`
(`derivative(z) = d forward(z) / dz`, elementwise). Nothing overflows for |z| up to 1e4:
exponentials only ever see non-positive arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Array = np.ndarray


def sigmoid(z: Array) -> Array:
    # exp(-|z|) <= 1, so neither branch can overflow
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_derivative(z: Array) -> Array:
    s = sigmoid(z)
    return s * (1.0 - s)


def relu(z: Array) -> Array:
    return np.maximum(z, 0.0)


def relu_derivative(z: Array) -> Array:
    # 0 at z == 0, as torch's autograd does
    return (z > 0).astype(np.result_type(z, np.float32))


def tanh(z: Array) -> Array:
    return np.tanh(z)


def tanh_derivative(z: Array) -> Array:
    return 1.0 - np.tanh(z) ** 2


def linear(z: Array) -> Array:
    return np.asarray(z, dtype=np.result_type(z, np.float32))


def linear_derivative(z: Array) -> Array:
    return np.ones_like(z, dtype=np.result_type(z, np.float32))


def leaky_relu(z: Array, alpha: float = 0.01) -> Array:
    return np.where(z > 0, z, alpha * z)


def leaky_relu_derivative(z: Array, alpha: float = 0.01) -> Array:
    return np.where(z > 0, 1.0, alpha).astype(np.result_type(z, np.float32))


def elu(z: Array, alpha: float = 1.0) -> Array:
    # expm1 of min(z, 0): exact near 0 and never overflows on the unused branch
    return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0.0)))


def elu_derivative(z: Array, alpha: float = 1.0) -> Array:
    return np.where(z > 0, 1.0, alpha * np.exp(np.minimum(z, 0.0)))


def swish(z: Array) -> Array:
    return z * sigmoid(z)


def swish_derivative(z: Array) -> Array:
    s = sigmoid(z)
    return s + z * s * (1.0 - s)


def softmax(z: Array, axis: int = -1) -> Array:
    """exp(z) / sum(exp(z)) along `axis`, shifted by the max so exp never overflows."""
    shifted = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return shifted / np.sum(shifted, axis=axis, keepdims=True)


def log_softmax(z: Array, axis: int = -1) -> Array:
    """log(softmax(z)) by log-sum-exp: finite even where softmax underflows to 0."""
    shifted = z - np.max(z, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def softmax_backward(probs: Array, grad_output: Array, axis: int = -1) -> Array:
    """Vector-Jacobian product of softmax: dL/dz from dL/dsoftmax and softmax(z)."""
    return probs * (grad_output - np.sum(grad_output * probs, axis=axis, keepdims=True))


@dataclass(frozen=True)
class Activation:
    name: str
    forward: Callable[[Array], Array]
    derivative: Callable[[Array], Array]


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("sigmoid", sigmoid, sigmoid_derivative),
        Activation("relu", relu, relu_derivative),
        Activation("tanh", tanh, tanh_derivative),
        Activation("linear", linear, linear_derivative),
        Activation("leaky_relu", leaky_relu, leaky_relu_derivative),
        Activation("elu", elu, elu_derivative),
        Activation("swish", swish, swish_derivative),
    )
}


def get_activation(name: str) -> Activation:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}"
        ) from None
