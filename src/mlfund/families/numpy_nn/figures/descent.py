"""Figures for `descent`: optimizer comparison, batch-size variants, descent geometry.

Each function takes the results of the matching `descent` function and returns a Figure.
"""

from __future__ import annotations

import matplotlib.figure
import numpy as np

from mlfund.core.figures import new_figure
from mlfund.numpy_nn.descent import QUADRATIC_MINIMUM, OptimizerRun, PathResult, VariantResult
from mlfund.numpy_nn.descent import quadratic as surface

FLOOR = 1e-16  # log-scale floor: excess losses reach 0 (or -1e-16 by rounding)


def _label_bars(ax, bars, values, fmt: str) -> None:
    ax.bar_label(bars, labels=[format(v, fmt) for v in values], fontsize=8)


# ---------------------------------------------------------------- optimizer comparison
def optimizer_comparison_figure(runs: dict[str, OptimizerRun]) -> matplotlib.figure.Figure:
    """Loss curves, last 100 epochs, final weights and weight-space paths per optimizer.

    The curriculum plots the raw loss on a log scale; its floor is the least-squares minimum
    (about 2.7 here), so the first panel plots the loss above that minimum instead.
    """
    figure, axes = new_figure(ncols=4)
    excess, tail, bars, paths = axes[0]
    names = list(runs)
    for name, run in runs.items():
        excess.plot(np.maximum(run.losses - run.optimal_loss, FLOOR), label=name, lw=2)
        tail.plot(np.arange(len(run.losses))[-100:], run.losses[-100:], label=name, lw=2)
        paths.plot(run.trajectory[:, 0], run.trajectory[:, 1], label=name, lw=1.5)
    optimum = next(iter(runs.values())).optimum
    excess.set(yscale="log", xlabel="Epoch", ylabel="MSE - least-squares MSE")
    excess.set_title("Training loss above the optimum (log scale)")
    tail.set(title="Last 100 epochs (convergence)", xlabel="Epoch", ylabel="MSE")
    positions = np.arange(len(names))
    for i, label in enumerate(("w1", "w2", "bias")):
        values = [runs[name].trajectory[-1, i] for name in names]
        bars.bar(positions + i * 0.25, values, width=0.25, label=label, alpha=0.8)
        bars.axhline(optimum[i], color=f"C{i}", ls="--", lw=1)
    bars.set_xticks(positions + 0.25, names, rotation=15)
    bars.set(title="Final learned weights (dashed: least squares)", ylabel="Value")
    start = next(iter(runs.values())).trajectory[0]
    paths.scatter(*start[:2], color="k", zorder=5, label="start")
    paths.scatter(*optimum[:2], color="r", marker="*", s=150, zorder=5, label="least squares")
    paths.set(title="Weight trajectories (w1, w2)", xlabel="w1", ylabel="w2")
    for ax in axes.flat:
        ax.legend(fontsize=8)
        ax.grid(True, alpha=0.3)
    return figure


# ---------------------------------------------------------------- batch / stochastic / mini
def batch_variants_figure(
    results: list[VariantResult], true_weights: tuple[float, ...] = (0.0, 3.0, 2.0)
) -> matplotlib.figure.Figure:
    """Loss curves and the measured costs (gradient noise, bytes, time) per batch size."""
    figure, axes = new_figure(ncols=4, nrows=2)
    names = [r.name for r in results]
    colors = [f"C{i}" for i in range(len(results))]
    curves, tail, weights, clock = axes[0]
    for r, color in zip(results, colors, strict=True):
        curves.plot(r.losses, label=r.name, color=color, lw=2)
        tail.plot(np.arange(len(r.losses))[-50:], r.losses[-50:], label=r.name, color=color)
        # from the end of epoch 1: t = 0 has no place on a log axis
        clock.plot(np.cumsum(r.epoch_seconds), r.losses[1:], label=r.name, color=color)
    curves.set(title="Full-data loss per epoch (log scale)", xlabel="Epoch", ylabel="MSE")
    curves.set_yscale("log")
    tail.set(title="Convergence: last 50 epochs", xlabel="Epoch", ylabel="MSE")
    clock.set(title="Loss vs measured training time", xlabel="Seconds", ylabel="MSE")
    clock.set(xscale="log", yscale="log")

    positions = np.arange(len(results))
    for i, label in enumerate(("bias", "w1", "w2")):
        values = [r.weights[i] for r in results]
        weights.bar(positions + i * 0.25, values, width=0.25, label=label, alpha=0.8)
        weights.axhline(true_weights[i], color=f"C{i}", ls="--", lw=1)
    weights.set_xticks(positions + 0.25, names, rotation=10)
    weights.set(title="Final weights (dashed: true)", ylabel="Value")
    for ax in (curves, tail, weights, clock):
        ax.legend(fontsize=8)
        ax.grid(True, alpha=0.3)

    steps, variance, memory, timing = axes[1]
    panels = (
        (steps, [r.steps_per_epoch for r in results], "Updates per epoch", "d", "log"),
        # symlog: batch GD's variance is exactly 0, which a log axis cannot show
        (variance, [r.gradient_variance for r in results], "Measured gradient variance",
         ".3g", "symlog"),
        (memory, [r.bytes_per_step for r in results], "Batch bytes touched per step", "d", "log"),
        (timing, [r.seconds_per_epoch for r in results], "Measured time per epoch (median, s)",
         ".2g", "log"),
    )  # fmt: skip
    for ax, values, title, fmt, scale in panels:
        bars = ax.bar(names, values, color=colors, alpha=0.7)
        _label_bars(ax, bars, values, fmt)
        if scale == "symlog":
            positive = [v for v in values if v > 0]
            ax.set_yscale("symlog", linthresh=min(positive, default=1.0) / 10)
        else:
            ax.set_yscale(scale)
        ax.set_title(f"{title} ({scale} scale)")
        ax.margins(y=0.15)  # room for the value labels
        ax.tick_params(axis="x", labelrotation=10)
    variance.set_ylabel("mean ||g_batch - g_full||^2")
    memory.set_ylabel("X_batch.nbytes + y_batch.nbytes")
    return figure


# ---------------------------------------------------------------- geometry
def geometry_figure(
    results: list[PathResult], bounds: tuple[float, float] = (-3.0, 3.0)
) -> matplotlib.figure.Figure:
    """3-D surface with every path, f - f_min curves, steps per rate, one contour per rate.

    The curriculum's mesh stops at 2, the start's x; `bounds` reaches a bit past it.
    """
    ncols = 4
    nrows = -(-(3 + len(results)) // ncols)  # ceil: three summary panels + one per rate
    figure, axes = new_figure(ncols=ncols, nrows=nrows)
    grid = np.linspace(*bounds, 100)
    xx, yy = np.meshgrid(grid, grid)  # (100, 100)
    zz = surface(xx, yy)

    axes[0, 0].remove()  # the first panel is 3-D: replace it with a 3-D axes
    view = figure.add_subplot(nrows, ncols, 1, projection="3d")
    view.plot_surface(xx, yy, zz, alpha=0.5, cmap="viridis")
    losses, steps = axes[0, 1], axes[0, 2]
    for i, r in enumerate(results):
        color, label = f"C{i}", f"lr={r.learning_rate}"
        inside = np.all((r.path >= bounds[0]) & (r.path <= bounds[1]), axis=1)  # (steps+1,)
        view.plot(*r.path[inside].T, r.losses[inside], color=color, marker="o", ms=2, label=label)
        gap = np.maximum(r.losses - QUADRATIC_MINIMUM, FLOOR)
        losses.plot(gap, color=color, label=f"{label} ({r.status})")
    view.set(title="Surface f(x, y) with each rate's path", xlabel="x", ylabel="y")
    view.legend(fontsize=7)
    losses.set(yscale="log", title="f - f_min per iteration (log scale)", xlabel="Iteration")
    losses.legend(fontsize=8)

    labels = [str(r.learning_rate) for r in results]
    counts = [r.steps for r in results]
    colors = ["C2" if r.converged else "C3" if r.diverged else "C7" for r in results]
    bars = steps.bar(labels, counts, color=colors, alpha=0.8)
    notes = [
        f"{r.steps}" if r.converged else f"diverged at {r.steps}" if r.diverged else "not converged"
        for r in results
    ]
    steps.bar_label(bars, labels=notes, fontsize=8)
    for bar, r in zip(bars, results, strict=True):
        if r.diverged:
            bar.set_hatch("//")
    steps.set(yscale="log", xlabel="learning rate", ylabel="updates")
    steps.set_title("Steps to convergence (red: diverged, grey: cap)")

    for r, ax in zip(results, axes.flat[3:], strict=False):
        contour = ax.contour(xx, yy, zz, levels=20)
        ax.clabel(contour, inline=True, fontsize=7)
        ax.plot(*r.path.T, "r-", marker="o", ms=3, lw=1.5)
        ax.scatter(*r.path[0], color="r", s=80, zorder=5, label="start")
        ax.scatter(*r.path[-1], color="g", s=80, zorder=5, label="end")
        ax.set(xlim=bounds, ylim=bounds, xlabel="x", ylabel="y")
        ax.set_title(f"Contours, lr={r.learning_rate}: {r.status} after {r.steps} steps")
        ax.legend(fontsize=8)
    for ax in axes.flat[3 + len(results) :]:
        ax.set_visible(False)
    return figure
