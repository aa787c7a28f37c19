"""Figures of the regularization family."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.figure
import numpy as np

from mlfund.core.figures import model_input, new_figure

if TYPE_CHECKING:
    from mlfund.families.regularization import CoefficientPaths, CurveFit, LearningCurve, RidgeSweep


# Report captions, in the order the report shows the figures.
CAPTIONS = {
    "model_selection": "Ridge alpha chosen on the validation split (log-log), 5-fold "
    "learning curve of the chosen model, and its test residuals.",
    "degrees": "Polynomial degree study: the test rows (x > 0.7) are an extrapolation.",
    "ridge_strengths": "Ridge strength on the degree-9 model: shrinkage tames extrapolation.",
    "coefficient_paths": "Ridge shrinks every coefficient; lasso sets most to exactly zero.",
}


def selection_figure(
    sweep: RidgeSweep, curve: LearningCurve, test_pred: np.ndarray, y_test: np.ndarray
) -> matplotlib.figure.Figure:
    """Validation curve, learning curve and test residuals of the selected ridge."""
    figure, axes = new_figure(ncols=3)
    ax = axes[0, 0]
    # log-log: the minimum sits near the noise floor, far below the large-alpha plateau
    ax.loglog(sweep.alphas, sweep.train_mse, "b-", label="Training MSE")
    ax.loglog(sweep.alphas, sweep.val_mse, "r-", label="Validation MSE")
    ax.axvline(sweep.best_alpha, color="g", linestyle="--", label=f"Best α={sweep.best_alpha:.4g}")
    ax.set(title="Validation Curve", xlabel="Regularization parameter α", ylabel="MSE")
    ax.legend()
    ax.grid(True)

    ax = axes[0, 1]
    for scores, color, label in ((curve.train_mse, "b", "Training"), (curve.val_mse, "r", "CV")):
        mean, std = scores.mean(axis=1), scores.std(axis=1)
        ax.plot(curve.train_sizes, mean, f"{color}-", label=f"{label} MSE")
        ax.fill_between(curve.train_sizes, mean - std, mean + std, alpha=0.2, color=color)
    folds = curve.val_mse.shape[1]
    ax.set(title=f"Learning Curve ({folds}-fold CV)", xlabel="Training set size", ylabel="MSE")
    ax.legend()
    ax.grid(True)

    ax = axes[0, 2]
    ax.scatter(test_pred, y_test - test_pred, alpha=0.6)
    ax.axhline(0, color="r", linestyle="--")
    ax.set(title="Residual Plot (Test Set)", xlabel="Predicted value", ylabel="Residual")
    ax.grid(True)
    return figure


def curves_figure(
    fits: list[CurveFit],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    ncols: int,
) -> matplotlib.figure.Figure:
    """Each fit over the data, flagged when test MSE is more than twice the train MSE.

    The curriculum prints "OVERFITTING!" for that, but on this extrapolation split the
    straight line (an under-fit) trips it too, so the flag states the measured fact.
    """
    nrows = -(-len(fits) // ncols)
    figure, axes = new_figure(ncols=ncols, nrows=nrows)
    grid = np.linspace(min(x_train.min(), x_test.min()), max(x_train.max(), x_test.max()), 200)
    everything = np.concatenate([y_train, y_test])
    margin = 0.5 * np.ptp(everything)
    for ax, fit in zip(axes.ravel(), fits, strict=False):
        ax.scatter(x_train, y_train, alpha=0.6, label="Training data")
        ax.scatter(x_test, y_test, alpha=0.6, color="red", label="Test data")
        ax.plot(
            grid,
            fit.model.predict(model_input(fit.model, grid.reshape(-1, 1))),
            color="green",
            lw=2,
            label="Fit",
        )
        # High degrees shoot off to +-1e4 outside the training range; keep the data in view.
        ax.set_ylim(everything.min() - margin, everything.max() + margin)
        ax.set_title(f"{fit.label}\nTrain MSE: {fit.train_mse:.3f}, Test MSE: {fit.test_mse:.3g}")
        ax.legend(loc="lower left", fontsize="small")
        ax.grid(True)
        if fit.test_mse > 2 * fit.train_mse:
            ax.text(
                0.5,
                0.93,
                "test MSE > 2x train MSE",
                transform=ax.transAxes,
                fontsize=11,
                color="red",
                weight="bold",
                ha="center",
            )
    for ax in axes.ravel()[len(fits) :]:
        ax.set_visible(False)
    return figure


def paths_figure(paths: CoefficientPaths, lasso_alpha: float) -> matplotlib.figure.Figure:
    figure, axes = new_figure(ncols=2, width=7)
    for ax, coefs, name in ((axes[0, 0], paths.ridge, "Ridge"), (axes[0, 1], paths.lasso, "Lasso")):
        ax.semilogx(paths.alphas, coefs)
        ax.set(
            title=f"{name} Regression Coefficient Path",
            xlabel="Regularization parameter α",
            ylabel="Coefficient value",
        )
        ax.grid(True)
    axes[0, 1].axvline(
        lasso_alpha, color="k", linestyle=":", lw=1, label=f"selection α={lasso_alpha:g}"
    )
    axes[0, 1].legend()
    return figure
