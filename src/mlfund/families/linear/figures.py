"""Figures of the linear family."""

from __future__ import annotations

import matplotlib.figure
import numpy as np
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline

from mlfund.core.figures import model_input, new_figure

# Report captions, in the order the report shows the figures.
CAPTIONS = {
    "decision_boundary": "Logistic regression decision boundary over the test points.",
    "regression_fits": "Linear vs cubic regression on the test set, and their residuals.",
}


def decision_boundary_figure(
    model: LogisticRegression, features: np.ndarray, labels: np.ndarray, step: float, title: str
) -> matplotlib.figure.Figure:
    """Predicted class over a mesh (filled) with the given points on top."""
    x_min, x_max = features[:, 0].min() - 1, features[:, 0].max() + 1
    y_min, y_max = features[:, 1].min() - 1, features[:, 1].max() + 1
    # mesh of shape (n_y, n_x) covering the data with a one-unit margin
    xx, yy = np.meshgrid(np.arange(x_min, x_max, step), np.arange(y_min, y_max, step))
    mesh = model_input(model, np.c_[xx.ravel(), yy.ravel()])
    predicted = model.predict(mesh).reshape(xx.shape)

    figure, axes = new_figure(width=7, height=6)
    ax = axes[0, 0]
    ax.contourf(xx, yy, predicted, alpha=0.6, cmap="RdYlBu")
    points = ax.scatter(features[:, 0], features[:, 1], c=labels, cmap="RdYlBu", edgecolors="k")
    figure.colorbar(points, ax=ax, label="class")
    ax.set(title=title, xlabel="Feature 1", ylabel="Feature 2")
    return figure


def regression_fits_figure(
    x_test: np.ndarray,
    y_test: np.ndarray,
    models: dict[str, LinearRegression | Pipeline],
) -> matplotlib.figure.Figure:
    """One panel per model (test points and the fitted curve), then a residual panel.

    The curriculum draws a y-range diagonal on the x axis here; the fitted curve over the
    feature's range is what the panel is meant to show.
    """
    grid = np.linspace(x_test.min(), x_test.max(), 200).reshape(-1, 1)
    figure, axes = new_figure(ncols=len(models) + 1)
    residual_ax = axes[0, -1]
    for ax, (name, model) in zip(axes[0], models.items(), strict=False):
        predicted = model.predict(model_input(model, x_test))
        ax.scatter(x_test, y_test, color="tab:blue", alpha=0.6, label="Actual")
        ax.scatter(x_test, predicted, color="tab:red", alpha=0.6, label="Predicted")
        ax.plot(grid, model.predict(model_input(model, grid)), "k--", lw=1.5, label="Fit")
        ax.set(title=name, xlabel="Feature", ylabel="Target")
        ax.legend()
        residual_ax.scatter(predicted, y_test - predicted, alpha=0.6, label=name)
    residual_ax.axhline(0, color="k", linestyle="--")
    residual_ax.set(title="Residuals (test set)", xlabel="Predicted value", ylabel="Residual")
    residual_ax.legend()
    return figure
