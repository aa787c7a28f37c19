"""The agreement numbers the numpy_nn family records are real comparisons with torch."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs, make_circles

from mlfund.families.numpy_nn import agreement, metric_key
from mlfund.numpy_nn.mlp import MLPClassifier


@pytest.mark.parametrize("seed", [0, 7])
def test_conv2d_and_attention_agree_with_torch(seed: int):
    assert agreement.conv2d_agreement(seed) < 1e-12
    assert agreement.attention_agreement(seed) < 1e-12


def test_least_squares_agreement():
    rng = np.random.default_rng(0)
    features = rng.standard_normal((200, 4))
    target = features @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.7 + 0.1 * rng.standard_normal(200)
    assert agreement.least_squares_agreement(features, target) < 1e-10
    assert agreement.least_squares_agreement(features, target, epochs=5) > 1e-3  # unconverged


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_mlp_agreement_binary_and_multiclass(activation: str):
    x, y = make_circles(200, factor=0.3, noise=0.1, random_state=0)
    binary = MLPClassifier((6,), activation, epochs=20, random_state=0).fit(x, y)
    assert agreement.mlp_agreement(binary, x, y) < 1e-12
    x, y = make_blobs(150, centers=3, random_state=0)
    multi = MLPClassifier((5, 4), activation, epochs=20, random_state=0).fit(x, y)
    assert agreement.mlp_agreement(multi, x, y) < 1e-12


class WrongWeightGradients(MLPClassifier):
    """An MLP whose weight gradients are off by 1e-3: a backprop bug to be caught."""

    def gradients(self, X, y):
        weights, biases = super().gradients(X, y)
        return [g + 1e-3 for g in weights], biases


def test_mlp_agreement_detects_a_wrong_gradient():
    x, y = make_circles(100, random_state=1)
    model = WrongWeightGradients((4,), epochs=5, random_state=0).fit(x, y)
    assert agreement.mlp_agreement(model, x, y) == pytest.approx(1e-3, rel=1e-6)


@pytest.mark.parametrize(
    ("label", "key"),
    [("Mini-batch GD", "mini_batch_gd"), ("Momentum (EMA)", "momentum_ema"), ("SGD", "sgd")],
)
def test_metric_key(label: str, key: str):
    assert metric_key(label) == key
