"""Activations, softmax and losses of `mlfund.numpy_nn` against torch and finite differences.

Everything runs in float64. "Stable" means: no overflow, no invalid operation (NaN) and
no division by zero for inputs up to |z| = 1e4, and no warning of any kind. Underflow is
allowed: exp(-1e4) *is* 0 in float64 (torch returns the same 0), so forbidding the
underflow flag would forbid the correctly rounded answer.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mlfund.numpy_nn import losses as L
from mlfund.numpy_nn.activations import (
    ACTIVATIONS,
    get_activation,
    log_softmax,
    softmax,
    softmax_backward,
)

EXTREMES = np.array([-1e4, -700.0, -30.0, -1e-8, 0.0, 1e-8, 30.0, 700.0, 1e4])
GRID = np.concatenate([EXTREMES, np.linspace(-6.0, 6.0, 49)])  # 0 and ±1e-8 included

TORCH_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "tanh": torch.tanh,
    "linear": torch.nn.Identity(),
    "leaky_relu": lambda t: F.leaky_relu(t, negative_slope=0.01),
    "elu": lambda t: F.elu(t, alpha=1.0),
    "swish": F.silu,
}
KINKED = {"relu", "leaky_relu", "elu"}  # not (twice) differentiable at 0


@contextmanager
def strict_floats() -> Iterator[None]:
    """Overflow / invalid / divide-by-zero raise, and so does any warning."""
    with np.errstate(all="raise", under="ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def torch_value_and_grad(fn, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """fn(x) and d sum(fn(x)) / dx by autograd, both as float64 arrays."""
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = fn(t)
    out.sum().backward()
    return out.detach().numpy(), t.grad.numpy()


def central_difference(fn, x: np.ndarray) -> np.ndarray:
    h = 1e-6 * np.maximum(1.0, np.abs(x))  # relative step: x ± h must differ from x
    return (fn(x + h) - fn(x - h)) / (2.0 * h)


# ---------------------------------------------------------------- activations
def test_every_activation_has_a_torch_reference():
    assert set(ACTIVATIONS) == set(TORCH_ACTIVATIONS)
    with pytest.raises(ValueError, match="unknown activation"):
        get_activation("softplus")


@pytest.mark.parametrize("name", sorted(TORCH_ACTIVATIONS))
def test_activation_and_derivative_match_torch(name: str):
    activation = get_activation(name)
    value, grad = torch_value_and_grad(TORCH_ACTIVATIONS[name], GRID)
    ours = activation.forward(GRID)
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours, value, rtol=1e-12, atol=1e-300)
    # atol: swish' crosses 0 near x = -1.28, where the two formulas cancel differently
    np.testing.assert_allclose(activation.derivative(GRID), grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_derivative_matches_central_differences(name: str):
    activation = get_activation(name)
    z = GRID
    if name in KINKED:  # the difference quotient straddles the kink there
        z = z[np.abs(z) > 1e-3]
    numeric = central_difference(activation.forward, z)
    np.testing.assert_allclose(activation.derivative(z), numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_is_stable_for_huge_inputs(name: str):
    activation = get_activation(name)
    z = np.concatenate([EXTREMES, [-1e3, -745.0, -746.0, 710.0, 1e3]])
    with strict_floats():
        value, derivative = activation.forward(z), activation.derivative(z)
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(derivative))


def test_saturated_sigmoid_and_tanh_hit_their_limits():
    z = np.array([-1e4, 1e4])
    np.testing.assert_array_equal(get_activation("sigmoid").forward(z), [0.0, 1.0])
    np.testing.assert_array_equal(get_activation("tanh").forward(z), [-1.0, 1.0])
    np.testing.assert_array_equal(get_activation("sigmoid").derivative(z), [0.0, 0.0])


# ---------------------------------------------------------------- softmax
@pytest.fixture
def logits() -> np.ndarray:
    """(8, 3): random rows plus rows that overflow a naive exp."""
    random_rows = np.random.default_rng(0).normal(0.0, 3.0, size=(4, 3))
    extreme_rows = [[1e4, 0.0, -1e4], [700.0, -700.0, 0.0], [1e-8, 0.0, -1e-8], [5.0, 5.0, 5.0]]
    return np.vstack([random_rows, extreme_rows])


@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_and_log_softmax_match_torch(logits: np.ndarray, axis: int):
    t = torch.tensor(logits, dtype=torch.float64)
    np.testing.assert_allclose(
        softmax(logits, axis=axis), torch.softmax(t, dim=axis).numpy(), rtol=1e-12, atol=1e-300
    )
    np.testing.assert_allclose(
        log_softmax(logits, axis=axis), torch.log_softmax(t, dim=axis).numpy(), rtol=1e-12
    )


def test_softmax_is_stable_and_normalised(logits: np.ndarray):
    with strict_floats():
        probs, log_probs = softmax(logits), log_softmax(logits)
    assert np.all(np.isfinite(probs)) and np.all(np.isfinite(log_probs))
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-15)
    np.testing.assert_array_equal(log_softmax(np.array([1e4, 0.0, -1e4])), [0.0, -1e4, -2e4])


def test_softmax_backward_matches_autograd(logits: np.ndarray):
    upstream = np.random.default_rng(1).normal(size=logits.shape)  # dL/dsoftmax
    t = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    (torch.softmax(t, dim=-1) * torch.tensor(upstream)).sum().backward()
    ours = softmax_backward(softmax(logits), upstream)
    np.testing.assert_allclose(ours, t.grad.numpy(), rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------- losses
def _bce_inputs(rng: np.random.Generator):
    p = rng.uniform(0.01, 0.99, size=(6, 3))
    y = np.vstack([rng.integers(0, 2, size=(3, 3)), rng.uniform(size=(3, 3))])  # hard + soft
    return p, y, torch.tensor(y)


def _logit_inputs(rng: np.random.Generator):
    z = rng.normal(0.0, 3.0, size=(6, 3))
    z[0] = [1e4, -1e4, 0.0]
    z[1] = [-1e4, 1e4, 700.0]
    y = np.vstack([rng.integers(0, 2, size=(3, 3)), rng.uniform(size=(3, 3))])
    y[0], y[1] = [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]  # the worst cases for the ±1e4 logits
    return z, y, torch.tensor(y)


def _class_inputs(rng: np.random.Generator, logits: bool):
    z = rng.normal(0.0, 3.0, size=(7, 4))
    if logits:
        z[0], z[1] = [1e4, 0.0, -1e4, 1.0], [-1e4, 1e4, 0.0, 0.0]
    classes = rng.integers(0, 4, size=7)
    classes[0], classes[1] = 2, 0  # true class at -1e4: loss 2e4, still finite
    one_hot = np.eye(4)[classes]
    return (z if logits else softmax(z)), one_hot, torch.tensor(classes)


def _regression_inputs(rng: np.random.Generator):
    target = rng.normal(size=(5, 4))
    residual = rng.normal(0.0, 2.0, size=(5, 4))
    residual[0] = [0.0, 1.0, -2.0, 2.0]  # ties for MAE, |r| == delta for Huber
    return target + residual, target, torch.tensor(target)


LOSS_CASES = {
    "bce": (
        L.binary_cross_entropy,
        L.binary_cross_entropy_grad,
        F.binary_cross_entropy,
        _bce_inputs,
    ),
    "bce_with_logits": (
        L.binary_cross_entropy_with_logits,
        L.binary_cross_entropy_with_logits_grad,
        F.binary_cross_entropy_with_logits,
        _logit_inputs,
    ),
    "cross_entropy_with_logits": (
        L.cross_entropy_with_logits,
        L.cross_entropy_with_logits_grad,
        F.cross_entropy,
        lambda rng: _class_inputs(rng, logits=True),
    ),
    "categorical_cross_entropy": (
        L.categorical_cross_entropy,
        L.categorical_cross_entropy_grad,
        lambda p, classes: F.nll_loss(torch.log(p), classes),
        lambda rng: _class_inputs(rng, logits=False),
    ),
    "mse": (L.mse, L.mse_grad, F.mse_loss, _regression_inputs),
    "mae": (L.mae, L.mae_grad, F.l1_loss, _regression_inputs),
    **{
        f"huber_delta{d:g}": (
            lambda p, t, d=d: L.huber(p, t, delta=d),
            lambda p, t, d=d: L.huber_grad(p, t, delta=d),
            lambda p, t, d=d: F.huber_loss(p, t, delta=d),
            _regression_inputs,
        )
        for d in (1.0, 2.0)
    },
}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", sorted(LOSS_CASES))
def test_loss_and_gradient_match_torch(case: str, seed: int):
    loss, grad, torch_loss, make_inputs = LOSS_CASES[case]
    predictions, targets, torch_targets = make_inputs(np.random.default_rng(seed))
    t = torch.tensor(predictions, dtype=torch.float64, requires_grad=True)
    expected = torch_loss(t, torch_targets)  # reduction="mean", torch's default
    expected.backward()

    with strict_floats():
        value, gradient = loss(predictions, targets), grad(predictions, targets)
    assert isinstance(value, float) and np.isfinite(value)
    assert gradient.shape == predictions.shape and np.all(np.isfinite(gradient))
    assert value == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(gradient, t.grad.numpy(), rtol=1e-12, atol=1e-18)


def test_logit_losses_reach_their_asymptotes():
    """A logit of ±1e4 on the wrong side costs exactly 1e4, and the gradient saturates."""
    z, y = np.array([1e4, -1e4]), np.array([0.0, 1.0])
    with strict_floats():
        assert L.binary_cross_entropy_with_logits(z, y) == 1e4
        np.testing.assert_array_equal(L.binary_cross_entropy_with_logits_grad(z, y), [0.5, -0.5])
        assert L.cross_entropy_with_logits(np.array([[1e4, -1e4]]), np.array([[0.0, 1.0]])) == 2e4
