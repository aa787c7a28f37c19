"""The hand-written XOR backprop against torch autograd / torch.optim, and its figures."""

from __future__ import annotations

import json
from dataclasses import fields

import matplotlib.figure
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mlfund.families.numpy_nn.figures import functions as ff
from mlfund.numpy_nn import backprop as bp

pytestmark = pytest.mark.usefixtures("close_figures")


@pytest.fixture(scope="module")
def net() -> bp.XorNetwork:
    return bp.init_xor_network(bp.DEFAULT_SEED)


@pytest.fixture(scope="module")
def trained(net: bp.XorNetwork) -> tuple[bp.XorNetwork, list[float]]:
    return bp.train_xor(net)  # the defaults: lr 1.0, 5000 epochs


def torch_parameters(net: bp.XorNetwork) -> dict[str, torch.Tensor]:
    return {k: torch.tensor(v, requires_grad=True) for k, v in net.parameters().items()}


def torch_forward(p: dict[str, torch.Tensor], X: np.ndarray) -> dict[str, torch.Tensor]:
    z1 = torch.tensor(X) @ p["W1"] + p["b1"]
    a1 = torch.sigmoid(z1)
    z2 = a1 @ p["W2"] + p["b2"]
    for t in (z1, z2):
        t.retain_grad()  # so autograd keeps dL/dz1 and dL/dz2 for the comparison
    return {"z1": z1, "a1": a1, "z2": z2, "a2": torch.sigmoid(z2)}


# ---------------------------------------------------------------- network
def test_init_is_seeded_standard_normal_times_scale():
    net = bp.init_xor_network(seed=7, scale=0.3)
    rng = np.random.default_rng(7)
    np.testing.assert_array_equal(net.W1, rng.standard_normal((2, 3)) * 0.3)
    np.testing.assert_array_equal(net.W2, rng.standard_normal((3, 1)) * 0.3)
    np.testing.assert_array_equal(net.b1, np.zeros((1, 3)))
    np.testing.assert_array_equal(net.b2, np.zeros((1, 1)))
    np.testing.assert_array_equal(bp.init_xor_network(7, 0.3).W1, net.W1)
    assert not np.allclose(bp.init_xor_network(8, 0.3).W1, net.W1)


def test_trace_matches_torch_autograd(net: bp.XorNetwork):
    trace = bp.forward_backward(net, bp.XOR_X, bp.XOR_Y)
    p = torch_parameters(net)
    out = torch_forward(p, bp.XOR_X)
    loss = F.binary_cross_entropy(out["a2"], torch.tensor(bp.XOR_Y))
    loss.backward()
    expected = {
        **{k: v.detach().numpy() for k, v in out.items()},
        "loss": loss.item(),
        "dz2": out["z2"].grad.numpy(),
        "dz1": out["z1"].grad.numpy(),
        **{f"d{k}": v.grad.numpy() for k, v in p.items()},
    }
    assert {f.name for f in fields(trace)} == set(expected)
    for name, value in expected.items():
        ours = getattr(trace, name)
        assert np.shape(ours) == np.shape(value), name
        np.testing.assert_allclose(ours, value, rtol=1e-12, atol=1e-17, err_msg=name)


def test_curriculum_dz2_is_the_bce_gradient_not_the_mse_one(net: bp.XorNetwork):
    """a2 - y back-propagated (the curriculum) are the gradients of BCE; MSE's differ."""
    trace = bp.forward_backward(net, bp.XOR_X, bp.XOR_Y)
    m = len(bp.XOR_X)
    np.testing.assert_allclose(trace.dz2 * m, trace.a2 - bp.XOR_Y, rtol=1e-13)
    p = torch_parameters(net)
    F.mse_loss(torch_forward(p, bp.XOR_X)["a2"], torch.tensor(bp.XOR_Y)).backward()
    assert not np.allclose(trace.dW2, p["W2"].grad.numpy(), rtol=0.1)


@pytest.mark.parametrize("seed", [0, 1, 2, bp.DEFAULT_SEED])
def test_gradient_check_passes(seed: int):
    net = bp.init_xor_network(seed)
    assert bp.gradient_check(net, bp.XOR_X, bp.XOR_Y) <= 1e-6


def test_gradient_check_passes_after_training(trained):
    assert bp.gradient_check(trained[0], bp.XOR_X, bp.XOR_Y) <= 1e-6


def test_numerical_gradients_detect_a_wrong_gradient(net: bp.XorNetwork):
    numeric = bp.numerical_gradients(net, bp.XOR_X, bp.XOR_Y)
    analytic = bp.forward_backward(net, bp.XOR_X, bp.XOR_Y).gradients()
    assert set(numeric) == set(bp.PARAMETER_NAMES)
    # Forgetting the 1/m of the mean is caught: off by a factor 4 everywhere
    for name in bp.PARAMETER_NAMES:
        assert not np.allclose(analytic[name] * 4, numeric[name], rtol=0.5)
        np.testing.assert_allclose(analytic[name], numeric[name], rtol=1e-6, atol=1e-12)


# ---------------------------------------------------------------- training
def test_training_matches_torch_sgd(net: bp.XorNetwork):
    epochs, learning_rate = 100, 1.0
    trained, losses = bp.train_xor(net, learning_rate=learning_rate, epochs=epochs)
    p = torch_parameters(net)
    optimizer = torch.optim.SGD(list(p.values()), lr=learning_rate)
    expected = []
    for _ in range(epochs):
        optimizer.zero_grad()
        z2 = torch_forward(p, bp.XOR_X)["z2"]
        loss = F.binary_cross_entropy_with_logits(z2, torch.tensor(bp.XOR_Y))
        expected.append(loss.item())
        loss.backward()
        optimizer.step()
    np.testing.assert_allclose(losses, expected, rtol=1e-10)
    for name, value in trained.parameters().items():
        np.testing.assert_allclose(value, p[name].detach().numpy(), rtol=1e-9, atol=1e-12)


def test_training_does_not_mutate_the_input(net: bp.XorNetwork):
    before = net.copy()
    bp.train_xor(net, epochs=10)
    for name, value in before.parameters().items():
        np.testing.assert_array_equal(getattr(net, name), value)


def test_defaults_solve_xor(trained):
    model, losses = trained
    assert len(losses) == bp.DEFAULT_EPOCHS
    assert losses[0] == pytest.approx(bp.bce_loss(bp.init_xor_network(), bp.XOR_X, bp.XOR_Y))
    assert losses[-1] < 0.01 < 0.5 < losses[0]
    assert bp.xor_accuracy(model) == 1.0
    proba = bp.predict_proba(model, bp.XOR_X)
    assert np.all((proba >= 0.5) == (bp.XOR_Y == 1))


# ---------------------------------------------------------------- trace table
def test_trace_rows_list_every_quantity_to_four_decimals(net: bp.XorNetwork):
    trace = bp.forward_backward(net, bp.XOR_X, bp.XOR_Y)
    rows = bp.trace_rows(trace)
    names = ["z1", "a1", "z2", "a2", "loss", "dz2", "dW2", "db2", "dz1", "dW1", "db1"]
    assert [row[0] for row in rows] == names
    for name, shape, values in rows:
        value = np.asarray(getattr(trace, name))
        assert shape == str(value.shape)
        assert "\n" not in values
        parsed = np.asarray(json.loads(values))  # "[[0.1234, -0.5678], ...]" is valid JSON
        np.testing.assert_allclose(parsed, value, atol=5e-5 + 1e-12)
    assert dict((r[0], r[2]) for r in rows)["loss"] == f"{trace.loss:.4f}"


# ---------------------------------------------------------------- figures
def titles(figure: matplotlib.figure.Figure) -> list[str]:
    return [ax.get_title() for ax in figure.axes if ax.get_title()]


def test_activations_figure():
    figure = ff.activations_figure()
    assert isinstance(figure, matplotlib.figure.Figure)
    expected = [title for _, title in ff.ACTIVATION_PANELS] + [ff.DERIVATIVES_TITLE]
    assert titles(figure) == expected
    for ax in figure.axes[: len(ff.ACTIVATION_PANELS)]:
        assert len(ax.get_lines()) >= 3  # function, derivative, y = 0 line
        x = ax.get_lines()[0].get_xdata()
        assert x.min() == -5.0 and x.max() == 5.0


def test_losses_figure():
    figure = ff.losses_figure()
    assert isinstance(figure, matplotlib.figure.Figure)
    assert titles(figure) == list(ff.LOSS_TITLES)
    bce = figure.axes[0].get_lines()[0]  # y = 1: -log(p)
    np.testing.assert_allclose(bce.get_ydata(), -np.log(bce.get_xdata()), rtol=1e-12)
    labels = [line.get_label() for line in figure.axes[2].get_lines()]
    assert labels == ["MSE", "MAE", "Huber δ=1", "Huber δ=2"]


def test_xor_figure(trained):
    model, losses = trained
    figure = ff.xor_figure(losses, model)
    assert isinstance(figure, matplotlib.figure.Figure)
    assert titles(figure) == list(ff.XOR_TITLES)
    np.testing.assert_array_equal(figure.axes[0].get_lines()[0].get_ydata(), losses)
    surface = figure.axes[1]
    assert (surface.get_xlim(), surface.get_ylim()) == ((-0.5, 1.5), (-0.5, 1.5))
