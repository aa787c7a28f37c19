"""numpy_nn.descent against closed forms (lstsq, linear recurrences, sampling theory)."""

from __future__ import annotations

import itertools

import matplotlib.figure
import numpy as np
import pytest
import torch

from mlfund.families.numpy_nn.figures import (
    batch_variants_figure,
    geometry_figure,
    optimizer_comparison_figure,
)
from mlfund.numpy_nn import descent

pytestmark = pytest.mark.usefixtures("close_figures")


# ---------------------------------------------------------------- optimizer comparison
@pytest.fixture(scope="module")
def optimizer_runs() -> dict[str, descent.OptimizerRun]:
    return descent.compare_optimizers(descent.default_optimizers(), epochs=1000)


def test_every_optimizer_reaches_the_least_squares_fit(optimizer_runs):
    for run in optimizer_runs.values():
        assert run.losses[0] == next(iter(optimizer_runs.values())).losses[0]  # same start
        assert run.losses[-1] - run.optimal_loss < 1e-8
        np.testing.assert_allclose(run.trajectory[-1], run.optimum, atol=1e-4)


def test_heavy_ball_is_faster_than_plain_sgd(optimizer_runs):
    gap = {name: run.losses[200] - run.optimal_loss for name, run in optimizer_runs.items()}
    assert gap["Heavy ball"] < 1e-3 * gap["SGD"]


def test_optimizer_comparison_is_deterministic():
    a = descent.compare_optimizers(descent.default_optimizers(), epochs=20, seed=3)
    b = descent.compare_optimizers(descent.default_optimizers(), epochs=20, seed=3)
    for name in a:
        np.testing.assert_array_equal(a[name].trajectory, b[name].trajectory)


# ---------------------------------------------------------------- batch / stochastic / mini
EPOCHS = 30


@pytest.fixture(scope="module")
def variants() -> dict[str, descent.VariantResult]:
    results = descent.compare_batch_variants(n=1000, batch_size=32, epochs=EPOCHS)
    return {r.name: r for r in results}


def test_variant_bookkeeping(variants):
    batch, mini, single = variants["Batch GD"], variants["Mini-batch GD"], variants["Stochastic GD"]
    assert [batch.steps_per_epoch, mini.steps_per_epoch, single.steps_per_epoch] == [1, 32, 1000]
    # float64: rows of [1, x1, x2] (24 bytes) plus y (8 bytes)
    assert [batch.bytes_per_step, mini.bytes_per_step, single.bytes_per_step] == [32000, 1024, 32]
    for r in variants.values():
        assert r.losses.shape == (EPOCHS + 1,)
        assert r.losses[0] == batch.losses[0]  # same data, same start
        assert np.all(r.epoch_seconds > 0)
        assert r.seconds_per_epoch == np.median(r.epoch_seconds)


def test_batch_gd_follows_the_closed_form_recurrence(variants):
    """w_k - w* = (I - lr H)^k (w_0 - w*), H = 2 X^T X / n: exact for full-batch GD."""
    x, y, w0 = descent.linear_data(42, 1000)
    optimum = np.linalg.lstsq(x, y, rcond=None)[0]
    contraction = np.eye(3) - 0.01 * 2 * x.T @ x / len(x)
    expected = optimum + np.linalg.matrix_power(contraction, EPOCHS) @ (w0 - optimum)
    np.testing.assert_allclose(variants["Batch GD"].weights, expected.ravel(), atol=1e-12)
    assert variants["Batch GD"].gradient_variance == 0.0  # the estimate is the full gradient


def test_noisy_variants_reach_the_noise_floor(variants):
    for name in ("Mini-batch GD", "Stochastic GD"):
        assert variants[name].final_loss < 0.012  # noise variance 0.1^2 = 0.01
        np.testing.assert_allclose(variants[name].weights, [0, 3, 2], atol=0.03)
    assert variants["Batch GD"].final_loss > 1.0  # 30 full-batch steps at lr 0.01


@pytest.mark.parametrize(("name", "batch_size"), [("Mini-batch GD", 32), ("Stochastic GD", 1)])
def test_measured_variance_matches_sampling_theory(variants, name: str, batch_size: int):
    """Near the end the weights barely move, so the measured variance ~ the closed form."""
    x, y, _ = descent.linear_data(42, 1000)
    result = variants[name]
    expected = descent.expected_gradient_variance(x, y, result.weights.reshape(-1, 1), batch_size)
    measured = result.gradient_variance_per_epoch[-10:].mean()
    assert measured == pytest.approx(expected, rel=0.2)


def test_measured_variance_shrinks_with_batch_size(variants):
    tail = {n: r.gradient_variance_per_epoch[-10:].mean() for n, r in variants.items()}
    assert 0 == tail["Batch GD"] < tail["Mini-batch GD"] < tail["Stochastic GD"]
    assert 20 < tail["Stochastic GD"] / tail["Mini-batch GD"] < 50  # theory: ~33


@pytest.mark.parametrize("batch_size", [1, 2, 3])
def test_expected_variance_by_enumerating_every_batch(batch_size: int):
    """Exact check of the without-replacement formula on 6 rows (all C(6, b) batches)."""
    rng = np.random.default_rng(batch_size)
    x, y, w = rng.standard_normal((6, 3)), rng.standard_normal((6, 1)), rng.standard_normal((3, 1))
    full = descent.mse_gradient(x, y, w)
    deviations = [
        np.sum((descent.mse_gradient(x[list(rows)], y[list(rows)], w) - full) ** 2)
        for rows in itertools.combinations(range(6), batch_size)
    ]
    # 6 rows in batches of `batch_size`: uneven sizes only for 4, 5; these divide evenly
    expected = descent.expected_gradient_variance(x, y, w, batch_size)
    assert np.mean(deviations) == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------- geometry
START = np.array([2.0, 1.5])


@pytest.fixture(scope="module")
def study() -> dict[float, descent.PathResult]:
    return {r.learning_rate: r for r in descent.learning_rate_study(tuple(START))}


def test_quadratic_gradient_matches_autograd():
    rng = np.random.default_rng(0)
    for point in rng.standard_normal((5, 2)) * 3:
        p = torch.tensor(point, requires_grad=True)
        descent.quadratic(p[0], p[1]).backward()
        np.testing.assert_allclose(descent.quadratic_gradient(point), p.grad.numpy(), rtol=1e-14)


def closed_form_steps(lr: float, tol: float = 1e-6) -> int:
    """The gradient is u (1, 1), u = 2(x + y) + 1, and GD maps u -> (1 - 4 lr) u."""
    u0 = 2 * START.sum() + 1
    return int(np.ceil(np.log(tol / (np.sqrt(2) * u0)) / np.log(abs(1 - 4 * lr))))


@pytest.mark.parametrize("lr", [0.01, 0.1, 0.3])
def test_converging_rates(study, lr: float):
    r = study[lr]
    assert r.converged and not r.diverged and r.status == "converged"
    assert r.steps == closed_form_steps(lr) == len(r.path) - 1
    # the gradient is along (1, 1), so x - y is kept: the end is (0, -0.5) on the valley
    np.testing.assert_allclose(r.path[-1], [0.0, -0.5], atol=1e-6)
    assert r.losses[-1] == pytest.approx(descent.QUADRATIC_MINIMUM, abs=1e-12)


def test_edge_of_stability_oscillates(study):
    r = study[0.5]  # 1 - 4 lr = -1: bounces between two points forever
    assert not r.converged and not r.diverged and r.status == "not converged"
    assert r.steps == 1000
    np.testing.assert_allclose(r.path[::2], np.broadcast_to(START, r.path[::2].shape))


def test_divergence_is_detected_early(study):
    r = study[0.6]  # |1 - 4 lr| = 1.4: f - f_min grows by 1.96 per step
    assert r.diverged and not r.converged
    u = (2 * START.sum() + 1) * (-1.4) ** np.arange(200)
    f = (u**2 - 1) / 4  # f = s^2 + s with s = (u - 1) / 2
    assert r.steps == np.argmax(np.abs(f) > 1e6 * descent.quadratic(*START))
    assert r.steps < 30


def test_non_finite_loss_counts_as_divergence():
    r = descent.descend(START, learning_rate=1e3, max_steps=10_000, divergence_factor=np.inf)
    assert r.diverged and not np.isfinite(r.losses[-1]) and r.steps < 10_000


# ---------------------------------------------------------------- exercise 1
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_descent_matches_lstsq(seed: int):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((200, 4))  # well conditioned: X^T X / n ~ I
    y = x @ rng.standard_normal(4) + 0.7 + 0.1 * rng.standard_normal(200)
    weights, bias, losses = descent.gradient_descent_linear_regression(x, y, 0.1, 500)
    solution = np.linalg.lstsq(np.column_stack([x, np.ones(len(x))]), y, rcond=None)[0]
    np.testing.assert_allclose(weights, solution[:4], atol=1e-6)
    assert bias == pytest.approx(solution[4], abs=1e-6)
    assert losses.shape == (500,) and np.all(np.diff(losses) <= 1e-15)
    assert losses[-1] == pytest.approx(np.mean((x @ weights + bias - y) ** 2))


# ---------------------------------------------------------------- figures
def titles(figure: matplotlib.figure.Figure) -> list[str]:
    return [ax.get_title() for ax in figure.axes if ax.get_visible()]


def test_optimizer_comparison_figure():
    runs = descent.compare_optimizers(descent.default_optimizers(), epochs=150)
    figure = optimizer_comparison_figure(runs)
    assert isinstance(figure, matplotlib.figure.Figure)
    assert titles(figure) == [
        "Training loss above the optimum (log scale)",
        "Last 100 epochs (convergence)",
        "Final learned weights (dashed: least squares)",
        "Weight trajectories (w1, w2)",
    ]


def test_batch_variants_figure():
    figure = batch_variants_figure(descent.compare_batch_variants(n=200, epochs=3))
    assert isinstance(figure, matplotlib.figure.Figure)
    assert titles(figure) == [
        "Full-data loss per epoch (log scale)",
        "Convergence: last 50 epochs",
        "Final weights (dashed: true)",
        "Loss vs measured training time",
        "Updates per epoch (log scale)",
        "Measured gradient variance (symlog scale)",
        "Batch bytes touched per step (log scale)",
        "Measured time per epoch (median, s) (log scale)",
    ]
    assert figure.axes[5].get_yscale() == "symlog"


def test_geometry_figure(study):
    figure = geometry_figure(list(study.values()))
    assert isinstance(figure, matplotlib.figure.Figure)
    found = titles(figure)
    assert found[:2] == ["f - f_min per iteration (log scale)", "Steps to convergence"
                         " (red: diverged, grey: cap)"]  # fmt: skip
    assert "Surface f(x, y) with each rate's path" in found  # the 3-D panel, added last
    assert "Contours, lr=0.6: diverged after 21 steps" in found
    assert "Contours, lr=0.5: not converged after 1000 steps" in found
    assert sum(t.startswith("Contours, lr=") for t in found) == len(study)
    assert any(ax.name == "3d" for ax in figure.axes)
