"""The MLP family's figure: the PyTorch MLP beside the from-scratch NumPy one, per dataset
(training losses, then each model's decision boundary over the test points)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import matplotlib.figure
import numpy as np

from mlfund.core.figures import new_figure

CAPTIONS = {
    "comparison_classification_2d": "PyTorch MLP vs the from-scratch NumPy MLP: loss curves "
    "and decision boundaries (linearly separable set).",
    "comparison_circles": "The same comparison on circles.",
}


@dataclass(frozen=True)
class BoundaryPanel:
    """One fitted model of the comparison figure: its P(class 1) over raw points, its
    training loss per epoch, its test accuracy, and how it was trained (legend text)."""

    label: str  # e.g. "NumPy (from scratch)"
    settings: str  # e.g. "full-batch GD, lr 0.1"
    probability: Callable[[np.ndarray], np.ndarray]  # (n, 2) raw points -> (n,)
    loss_curve: Sequence[float]
    test_accuracy: float


def comparison_figure(
    rows: Sequence[tuple[str, np.ndarray, np.ndarray, Sequence[BoundaryPanel]]],
    step: float = 0.02,
) -> matplotlib.figure.Figure:
    """Per dataset `(name, X_test (n, 2), y_test (n,), panels)` a row: every panel's
    training loss on one axes (log epochs: the runs have different lengths), then each
    panel's decision boundary, P(class 1) over a mesh, with the test points on top."""
    ncols = 1 + max(len(panels) for *_, panels in rows)
    figure, axes = new_figure(ncols=ncols, nrows=len(rows), width=5.5, height=4.5)
    for row, (name, X, y, panels) in zip(axes, rows, strict=True):
        for panel in panels:
            epochs = np.arange(1, len(panel.loss_curve) + 1)
            row[0].plot(epochs, panel.loss_curve, label=f"{panel.label}: {panel.settings}")
        row[0].set(xscale="log", xlabel="Epoch (log scale)", ylabel="Training loss (BCE)")
        row[0].set_title(f"{name}\nTraining loss comparison")
        row[0].legend(fontsize="small")
        row[0].grid(True)
        # mesh (n_y, n_x) one unit beyond the test points
        xx, yy = np.meshgrid(
            np.arange(X[:, 0].min() - 1, X[:, 0].max() + 1, step),
            np.arange(X[:, 1].min() - 1, X[:, 1].max() + 1, step),
        )
        mesh = np.c_[xx.ravel(), yy.ravel()]  # (n_y * n_x, 2)
        for axis, panel in zip(row[1:], panels, strict=False):
            surface = panel.probability(mesh).reshape(xx.shape)
            filled = axis.contourf(xx, yy, surface, levels=50, alpha=0.8, cmap="coolwarm")
            axis.contour(xx, yy, surface, levels=[0.5], colors="black", linewidths=1)
            figure.colorbar(filled, ax=axis, label="P(class 1)")
            axis.scatter(X[:, 0], X[:, 1], c=y, cmap="coolwarm", edgecolors="black", s=20)
            axis.set(xlabel="Feature 1", ylabel="Feature 2")
            axis.set_title(
                f"{name}: {panel.label}\nDecision boundary, test points "
                f"(test acc {panel.test_accuracy:.3f})"
            )
    return figure
