"""Gradient descent: optimizer comparison, batch vs stochastic vs mini-batch, geometry.

Curriculum: "Gradient Descent Variants" (`optimization_comparison`), "Gradient Descent"
("Understanding Gradient Descent Geometrically", "Batch vs Stochastic vs Mini-batch") and
Practice Exercise 1 (gradient descent from scratch). What changed from the curriculum's code:

* every random draw comes from `np.random.default_rng(seed)` (it seeds the global RNG);
* batch vs stochastic vs mini-batch: the curriculum plots hard-coded "memory" and "gradient
  variance" numbers (and pairs its iteration counts with the wrong method labels); here they
  are measured. Its epoch losses were also inconsistent (full-data loss for batch GD, a
  running mean over changing parameters for the others); here every variant records the
  full-data loss at the end of each epoch;
* geometry: divergence is detected and the run stopped instead of iterating blindly, and
  "steps to convergence" is only reported for runs that actually met the tolerance (the
  curriculum printed the iteration cap). Its function (x + y)^2 + (x + y) has a singular
  Hessian with eigenvalues {4, 0}, so 0.5 = 2 / 4 is exactly the stability edge: that rate
  oscillates forever, neither converging nor diverging. `LEARNING_RATES` adds 0.6 to show a
  detected divergence.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from mlfund.numpy_nn.losses import mse, mse_grad
from mlfund.numpy_nn.optimizers import SGD, Adam, HeavyBall, Momentum, Optimizer

Array = np.ndarray


# ---------------------------------------------------------------- optimizer comparison
@dataclass(frozen=True)
class OptimizerRun:
    losses: Array  # (epochs,) full-batch MSE before each update, as the curriculum logs it
    trajectory: Array  # (epochs + 1, 3): [w1, w2, b] before the first and after each update
    optimum: Array  # (3,) least-squares [w1, w2, b] of the same problem (np.linalg.lstsq)
    optimal_loss: float  # the MSE at `optimum`


def quadratic_target_data(seed: int = 42, n: int = 100) -> tuple[Array, Array, Array]:
    """The curriculum's problem: X (n, 2) ~ N(0, 1), y = x1^2 + x2^2 (n, 1), w0 (2, 1)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2))
    y = (x[:, 0] ** 2 + x[:, 1] ** 2).reshape(-1, 1)
    return x, y, rng.standard_normal((2, 1)) * 0.5


def default_optimizers(lr: float = 0.01, beta: float = 0.9) -> dict[str, Optimizer]:
    return {
        "SGD": SGD(lr),
        "Momentum (EMA)": Momentum(lr, beta),
        "Heavy ball": HeavyBall(lr, beta),
        "Adam": Adam(lr),
    }


def compare_optimizers(
    optimizers: dict[str, Optimizer], epochs: int = 1000, seed: int = 42, n: int = 100
) -> dict[str, OptimizerRun]:
    """Full-batch linear least squares fitted by each optimizer from the same start."""
    x, y, w0 = quadratic_target_data(seed, n)
    design = np.column_stack([x, np.ones(n)])  # (n, 3): bias column for the lstsq optimum
    optimum = np.linalg.lstsq(design, y, rcond=None)[0]
    optimal_loss = mse(design @ optimum, y)
    runs = {}
    for name, optimizer in optimizers.items():
        params = [w0.copy(), np.zeros((1, 1))]  # weights (2, 1), bias (1, 1)
        losses, trajectory = np.empty(epochs), np.empty((epochs + 1, 3))
        trajectory[0] = np.r_[params[0].ravel(), params[1].ravel()]
        for epoch in range(epochs):
            predictions = x @ params[0] + params[1]  # (n, 1)
            losses[epoch] = mse(predictions, y)
            d_pred = mse_grad(predictions, y)  # (n, 1)
            optimizer.step(params, [x.T @ d_pred, d_pred.sum(axis=0, keepdims=True)])
            trajectory[epoch + 1] = np.r_[params[0].ravel(), params[1].ravel()]
        runs[name] = OptimizerRun(losses, trajectory, optimum.ravel(), optimal_loss)
    return runs


# ---------------------------------------------------------------- batch / stochastic / mini
@dataclass(frozen=True)
class VariantResult:
    name: str
    batch_size: int
    steps_per_epoch: int
    losses: Array  # (epochs + 1,) full-data MSE at the start and after each epoch
    weights: Array  # (3,) final [bias, w1, w2]
    gradient_variance: float  # mean over steps of ||g_batch - g_full||^2 at the same params
    gradient_variance_per_epoch: Array  # (epochs,)
    bytes_per_step: int  # X_batch.nbytes + y_batch.nbytes, largest over steps (peak)
    seconds_per_epoch: float  # median over epochs, diagnostics excluded
    epoch_seconds: Array  # (epochs,)

    @property
    def final_loss(self) -> float:
        return float(self.losses[-1])


def linear_data(seed: int = 42, n: int = 1000, noise: float = 0.1) -> tuple[Array, Array, Array]:
    """The curriculum's data: [1, x1, x2] (n, 3), y = 3 x1 + 2 x2 + noise (n, 1), w0 (3, 1)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2))
    y = (3 * x[:, 0] + 2 * x[:, 1] + rng.standard_normal(n) * noise).reshape(-1, 1)
    return np.column_stack([np.ones(n), x]), y, rng.standard_normal((3, 1)) * 0.1


def mse_gradient(x: Array, y: Array, weights: Array) -> Array:
    """d/dw mean((x w - y)^2) = 2 x^T (x w - y) / m, shape (d, 1); y is (m, 1)."""
    return x.T @ mse_grad(x @ weights, y)  # chain rule through predictions (m, 1)


def expected_gradient_variance(x: Array, y: Array, weights: Array, batch_size: int) -> float:
    """Closed form of E||g_batch - g_full||^2 at fixed weights, averaged over one epoch.

    A batch of b rows drawn without replacement from n has variance S^2 / b * (n - b) / (n - 1),
    S^2 = mean_i ||g_i - g||^2 over the per-sample gradients g_i = 2 x_i (x_i w - y_i).
    The epoch's batches are `batch_size` rows except a smaller last one.
    """
    n = x.shape[0]
    per_sample = 2.0 * x * (x @ weights - y)  # (n, d)
    s2 = float(np.mean(np.sum((per_sample - per_sample.mean(axis=0)) ** 2, axis=1)))
    sizes = np.diff(np.r_[np.arange(0, n, batch_size), n])  # (steps_per_epoch,)
    return float(np.mean(s2 / sizes * (n - sizes) / max(n - 1, 1)))


def run_variant(
    name: str,
    x: Array,
    y: Array,
    initial_weights: Array,
    batch_size: int,
    learning_rate: float,
    epochs: int,
    seed: int,
) -> VariantResult:
    """Gradient descent on shuffled batches of `batch_size` rows (>= n: the full batch).

    Only the training work (shuffle, gather, gradient, update) is timed; the diagnostics
    (full-batch gradient for the variance, epoch loss) are computed outside the timer.
    """
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    full_batch = batch_size >= n
    starts = range(0, n, batch_size)
    weights = initial_weights.copy()
    losses = [mse(x @ weights, y)]
    variance_sums, epoch_seconds = np.zeros(epochs), np.zeros(epochs)
    bytes_per_step = 0
    for epoch in range(epochs):
        tic = time.perf_counter()
        order = None if full_batch else rng.permutation(n)
        for start in starts:
            if order is None:
                x_batch, y_batch = x, y  # the whole data set, no copy
            else:
                rows = order[start : start + batch_size]
                x_batch, y_batch = x[rows], y[rows]  # (b, 3), (b, 1)
            gradient = mse_gradient(x_batch, y_batch, weights)
            toc = time.perf_counter()
            deviation = gradient - mse_gradient(x, y, weights)  # same params, all rows
            variance_sums[epoch] += float(np.sum(deviation**2))
            bytes_per_step = max(bytes_per_step, x_batch.nbytes + y_batch.nbytes)
            tic += time.perf_counter() - toc  # exclude the diagnostic from the epoch time
            weights -= learning_rate * gradient
        epoch_seconds[epoch] = time.perf_counter() - tic
        losses.append(mse(x @ weights, y))
    variance_per_epoch = variance_sums / len(starts)
    return VariantResult(
        name=name,
        batch_size=min(batch_size, n),
        steps_per_epoch=len(starts),
        losses=np.array(losses),
        weights=weights.ravel(),
        gradient_variance=float(variance_per_epoch.mean()),
        gradient_variance_per_epoch=variance_per_epoch,
        bytes_per_step=bytes_per_step,
        seconds_per_epoch=float(np.median(epoch_seconds)),
        epoch_seconds=epoch_seconds,
    )


def compare_batch_variants(
    n: int = 1000,
    batch_size: int = 32,
    learning_rate: float = 0.01,
    epochs: int = 100,
    seed: int = 42,
) -> list[VariantResult]:
    """Batch, mini-batch and stochastic (batch size 1) GD from the same start and data."""
    x, y, w0 = linear_data(seed, n)
    sizes = {"Batch GD": n, "Mini-batch GD": batch_size, "Stochastic GD": 1}
    return [
        run_variant(name, x, y, w0, size, learning_rate, epochs, seed + 1)
        for name, size in sizes.items()
    ]


# ---------------------------------------------------------------- geometry
LEARNING_RATES = (0.01, 0.1, 0.3, 0.5, 0.6)  # the curriculum's four, plus a diverging 0.6
QUADRATIC_MINIMUM = -0.25  # at every point of the valley x + y = -1/2


def quadratic(x: Array | float, y: Array | float) -> Array | float:
    """The curriculum's surface f(x, y) = x^2 + y^2 + 2xy + x + y = (x + y)^2 + (x + y)."""
    return x**2 + y**2 + 2 * x * y + x + y


def quadratic_gradient(point: Array) -> Array:
    x, y = point
    return np.array([2 * x + 2 * y + 1, 2 * y + 2 * x + 1])


@dataclass(frozen=True)
class PathResult:
    learning_rate: float
    path: Array  # (steps + 1, 2) points visited, start included
    losses: Array  # (steps + 1,) f along the path
    converged: bool  # |grad| < grad_tol reached
    diverged: bool  # loss non-finite or above divergence_factor x the initial loss
    steps: int  # updates made: to convergence, to divergence, or max_steps

    @property
    def status(self) -> str:
        return "converged" if self.converged else "diverged" if self.diverged else "not converged"


def descend(
    start: Array,
    learning_rate: float,
    max_steps: int = 1000,
    grad_tol: float = 1e-6,
    divergence_factor: float = 1e6,
) -> PathResult:
    """Gradient descent on `quadratic`, stopped at convergence or detected divergence."""
    point = np.asarray(start, dtype=np.float64).copy()
    path, losses = [point.copy()], [float(quadratic(*point))]
    # scale floor of 1 so a start at f = 0 does not flag every nonzero loss as divergence
    limit = divergence_factor * max(abs(losses[0]), 1.0)
    converged = diverged = False
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is detected, not warned
        for _ in range(max_steps):
            gradient = quadratic_gradient(point)
            if np.linalg.norm(gradient) < grad_tol:  # checked before stepping: no extra step
                converged = True
                break
            point = point - learning_rate * gradient
            path.append(point.copy())
            losses.append(float(quadratic(*point)))
            if not np.isfinite(losses[-1]) or abs(losses[-1]) > limit:
                diverged = True
                break
    return PathResult(
        learning_rate, np.array(path), np.array(losses), converged, diverged, len(path) - 1
    )


def learning_rate_study(
    start: tuple[float, float] = (2.0, 1.5),
    learning_rates: tuple[float, ...] = LEARNING_RATES,
    max_steps: int = 1000,
    grad_tol: float = 1e-6,
    divergence_factor: float = 1e6,
) -> list[PathResult]:
    return [
        descend(np.array(start), lr, max_steps, grad_tol, divergence_factor)
        for lr in learning_rates
    ]


# ---------------------------------------------------------------- exercise 1
def gradient_descent_linear_regression(
    x: Array, y: Array, learning_rate: float = 0.1, epochs: int = 1000
) -> tuple[Array, float, Array]:
    """Full-batch gradient descent on MSE for y ~ x w + b, from w = 0, b = 0.

    x (n, d), y (n,). Returns weights (d,), bias, and losses (epochs,): the MSE after
    each update, so `losses[-1]` is the loss of the returned parameters.
    """
    weights, bias = np.zeros(x.shape[1]), 0.0
    losses = np.empty(epochs)
    for epoch in range(epochs):
        d_pred = mse_grad(x @ weights + bias, y)  # (n,)
        weights = weights - learning_rate * (x.T @ d_pred)  # (d,)
        bias -= learning_rate * float(d_pred.sum())
        losses[epoch] = mse(x @ weights + bias, y)
    return weights, bias, losses
