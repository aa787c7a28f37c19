"""The vanishing-gradient study: manual backprop vs torch autograd, and the headline ratios."""

from __future__ import annotations

import matplotlib.figure
import numpy as np
import pytest
import torch

from mlfund.families.numpy_nn.figures import vanishing_figure
from mlfund.numpy_nn.vanishing import (
    KINDS,
    first_to_last_ratio,
    gradient_norms,
    loss_and_gradients,
    make_problem,
)


def torch_loss_and_gradients(x, y, weights, kind):
    """The same network written directly in torch; autograd does the backward."""
    params = [torch.tensor(W, requires_grad=True) for W in weights]
    act = torch.sigmoid if kind == "sigmoid" else torch.relu
    h = torch.tensor(x)
    for layer, W in enumerate(params[:-1], start=1):
        h = h + act(h @ W) if kind == "relu_skip" and layer >= 2 else act(h @ W)
    loss = torch.nn.functional.mse_loss(h @ params[-1], torch.tensor(y))
    loss.backward()
    return loss.item(), [p.grad.numpy() for p in params]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kind", KINDS)
def test_manual_backprop_matches_torch_autograd(kind, seed):
    x, y, weights = make_problem(depth=10, width=32, seed=seed)
    loss, grads = loss_and_gradients(x, y, weights, kind)
    expected_loss, expected = torch_loss_and_gradients(x, y, weights, kind)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    assert len(grads) == 10
    for mine, theirs in zip(grads, expected, strict=True):
        assert mine.shape == theirs.shape
        np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-10 * np.abs(theirs).max())


def test_problem_is_seeded_and_shared_by_every_kind():
    a, b = make_problem(seed=3), make_problem(seed=3)
    for left, right in zip([a[0], a[1], *a[2]], [b[0], b[1], *b[2]], strict=True):
        np.testing.assert_array_equal(left, right)
    x, y, weights = a
    assert x.shape == (256, 32) and y.shape == (256, 1)
    assert [W.shape for W in weights] == [(32, 32)] * 9 + [(32, 1)]
    assert weights[0].std() == pytest.approx(np.sqrt(1 / 32), rel=0.1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigmoid_vanishes_and_skip_connections_do_not(seed):
    ratios = {kind: first_to_last_ratio(gradient_norms(kind, seed=seed)) for kind in KINDS}
    assert ratios["sigmoid"] < 1e-4  # the first layer gets ~1e-6 of the last one's gradient
    assert ratios["relu_skip"] > 1e3 * ratios["sigmoid"]  # orders of magnitude apart
    assert ratios["relu"] > 1e3 * ratios["sigmoid"]
    # sigmoid' <= 1/4: the norms fall monotonically toward the input
    assert np.all(np.diff(gradient_norms("sigmoid", seed=seed)) > 0)


def test_first_to_last_ratio_and_unknown_kind():
    assert first_to_last_ratio(np.array([1e-3, 5.0, 10.0])) == pytest.approx(1e-4)
    x, y, weights = make_problem(depth=3, width=4)
    with pytest.raises(ValueError, match="unknown kind"):
        loss_and_gradients(x, y, weights, "tanh_skip")


@pytest.mark.usefixtures("close_figures")
def test_vanishing_figure_has_one_titled_log_panel():
    figure = vanishing_figure({kind: gradient_norms(kind, depth=4, width=8) for kind in KINDS})
    assert isinstance(figure, matplotlib.figure.Figure)
    (ax,) = figure.axes
    assert ax.get_title() == (
        "Per-layer gradient norms, same weights: sigmoid vanishes toward the input"
    )
    assert ax.get_yscale() == "log"
    assert len(ax.get_lines()) == len(KINDS)
