"""Loss functions and their gradients, averaged like torch's `reduction="mean"`.

Each `*_grad` returns d(loss)/d(first argument), same shape. Cross-entropies are also
given from logits: that form is what training uses (no log(0), no overflow), and its
gradient is the famous `softmax(z) - y` (or `sigmoid(z) - y`) over the batch size.
"""

from __future__ import annotations

import numpy as np

from mlfund.numpy_nn.activations import log_softmax, sigmoid, softmax

Array = np.ndarray
EPS = 1e-12  # probability clip for the from-probabilities cross-entropies


# ---------------------------------------------------------------- classification
def binary_cross_entropy(probs: Array, targets: Array) -> float:
    p = np.clip(probs, EPS, 1.0 - EPS)
    return float(-np.mean(targets * np.log(p) + (1.0 - targets) * np.log1p(-p)))


def binary_cross_entropy_grad(probs: Array, targets: Array) -> Array:
    p = np.clip(probs, EPS, 1.0 - EPS)
    return (p - targets) / (p * (1.0 - p)) / probs.size


def binary_cross_entropy_with_logits(logits: Array, targets: Array) -> float:
    # log(1 + exp(-|z|)) + max(z, 0) - z*y: the log-sum-exp form, stable for any z
    loss = np.maximum(logits, 0.0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))
    return float(np.mean(loss))


def binary_cross_entropy_with_logits_grad(logits: Array, targets: Array) -> Array:
    return (sigmoid(logits) - targets) / logits.size


def categorical_cross_entropy(probs: Array, one_hot: Array) -> float:
    """Mean over rows of -sum(y * log p); `probs` rows sum to 1."""
    return float(-np.mean(np.sum(one_hot * np.log(np.clip(probs, EPS, 1.0)), axis=-1)))


def categorical_cross_entropy_grad(probs: Array, one_hot: Array) -> Array:
    return -one_hot / np.clip(probs, EPS, 1.0) / probs.shape[0]


def cross_entropy_with_logits(logits: Array, one_hot: Array) -> float:
    return float(-np.mean(np.sum(one_hot * log_softmax(logits), axis=-1)))


def cross_entropy_with_logits_grad(logits: Array, one_hot: Array) -> Array:
    return (softmax(logits) - one_hot) / logits.shape[0]


# ---------------------------------------------------------------- regression
def mse(predictions: Array, targets: Array) -> float:
    return float(np.mean((predictions - targets) ** 2))


def mse_grad(predictions: Array, targets: Array) -> Array:
    return 2.0 * (predictions - targets) / predictions.size


def mae(predictions: Array, targets: Array) -> float:
    return float(np.mean(np.abs(predictions - targets)))


def mae_grad(predictions: Array, targets: Array) -> Array:
    # sign(0) = 0: the subgradient torch's autograd picks
    return np.sign(predictions - targets) / predictions.size


def huber(predictions: Array, targets: Array, delta: float = 1.0) -> float:
    """Quadratic within `delta` of the target, linear beyond (torch.nn.HuberLoss)."""
    r = np.abs(predictions - targets)
    return float(np.mean(np.where(r <= delta, 0.5 * r**2, delta * (r - 0.5 * delta))))


def huber_grad(predictions: Array, targets: Array, delta: float = 1.0) -> Array:
    r = predictions - targets
    return np.clip(r, -delta, delta) / predictions.size
