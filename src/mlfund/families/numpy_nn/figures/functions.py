"""Figures for the activation functions, the losses and the XOR backprop network.

Curriculum: "Neurons and Activation Functions" (sigmoid/ReLU/tanh/linear panels, then
leaky ReLU vs ReLU, ELU, swish), "Loss Functions" and "Backpropagation". Unlike the
curriculum's plots, every activation panel also draws the derivative, since that is
what backprop multiplies by (and where sigmoid/tanh gradients vanish).
"""

from __future__ import annotations

import matplotlib.figure
import numpy as np

from mlfund.core.figures import new_figure
from mlfund.numpy_nn import activations as act
from mlfund.numpy_nn import losses
from mlfund.numpy_nn.backprop import XOR_X, XOR_Y, XorNetwork, predict_proba

ACTIVATION_PANELS = (
    ("sigmoid", "Sigmoid σ(x) = 1/(1+e^-x) and its derivative"),
    ("relu", "ReLU max(0, x) and its derivative"),
    ("tanh", "Tanh and its derivative 1 - tanh²(x)"),
    ("linear", "Linear f(x) = x and its derivative"),
    ("leaky_relu", "Leaky ReLU (α=0.01) vs ReLU, with derivatives"),
    ("elu", "ELU (α=1) and its derivative"),
    ("swish", "Swish x·σ(x) and its derivative"),
)
DERIVATIVES_TITLE = "All derivatives: sigmoid/tanh vanish for large |x|"

LOSS_TITLES = (
    "Binary cross-entropy vs predicted P(y=1)",
    "Categorical cross-entropy vs P(true class)",
    "Regression losses vs residual (prediction - target)",
    "Regression loss gradients vs residual",
)
HUBER_DELTAS = (1.0, 2.0)

XOR_TITLES = (
    "XOR training loss (BCE) per epoch",
    "Trained 2-3-1 net: P(y=1), boundary P=0.5 (black), XOR points",
)


def activations_figure() -> matplotlib.figure.Figure:
    """Each activation (solid) and its derivative (dashed) on x in [-5, 5]."""
    x = np.linspace(-5.0, 5.0, 1001)  # odd count so x = 0 is on the grid
    figure, axes = new_figure(ncols=4, nrows=2, width=4.5, height=3.6)
    for ax, (name, title) in zip(axes.ravel(), ACTIVATION_PANELS, strict=False):
        activation = act.get_activation(name)
        ax.plot(x, activation.forward(x), linewidth=2, label=f"{name}(x)")
        ax.plot(x, activation.derivative(x), "--", linewidth=1.5, label=f"{name}'(x)")
        if name == "leaky_relu":  # the curriculum's comparison: negative side not flat
            ax.plot(x, act.relu(x), ":", color="red", alpha=0.8, label="relu(x)")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("x")
        ax.axhline(0.0, color="grey", linewidth=0.5)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    summary = axes.ravel()[len(ACTIVATION_PANELS)]
    for name, _ in ACTIVATION_PANELS:
        summary.plot(x, act.get_activation(name).derivative(x), label=name)
    summary.set_title(DERIVATIVES_TITLE, fontsize=10)
    summary.set_xlabel("x")
    summary.grid(True, alpha=0.3)
    summary.legend(fontsize=8)
    return figure


def _pointwise(loss, predictions: np.ndarray, targets: np.ndarray, **kwargs) -> np.ndarray:
    """The (mean-reduced) loss of each single prediction/target pair."""
    return np.array(
        [loss(p[None], t[None], **kwargs) for p, t in zip(predictions, targets, strict=True)]
    )


def losses_figure() -> matplotlib.figure.Figure:
    """BCE and categorical CE against probabilities; MSE, MAE, Huber against the residual."""
    p = np.linspace(0.01, 0.99, 197)
    residual = np.linspace(-5.0, 5.0, 401)
    zeros = np.zeros_like(residual)
    figure, axes = new_figure(ncols=2, nrows=2, width=6, height=4.5)
    bce, cce, regression, gradients = axes.ravel()

    for label in (1.0, 0.0):
        curve = _pointwise(losses.binary_cross_entropy, p, np.full_like(p, label))
        bce.plot(p, curve, linewidth=2, label=f"true label y={label:.0f}")
    bce.set_xlabel("predicted probability P(y=1)")

    # Only P(true class) matters: the rest of the mass can be spread any way
    probs = np.column_stack([p, 1.0 - p])  # (n, 2) rows that sum to 1
    one_hot = np.tile([1.0, 0.0], (len(p), 1))
    cce.plot(p, _pointwise(losses.categorical_cross_entropy, probs, one_hot), linewidth=2)
    cce.set_xlabel("predicted probability of the true class")

    curves = {
        "MSE": (losses.mse, losses.mse_grad, {}),
        "MAE": (losses.mae, losses.mae_grad, {}),
        **{f"Huber δ={d:g}": (losses.huber, losses.huber_grad, {"delta": d}) for d in HUBER_DELTAS},
    }
    for name, (loss, grad, kwargs) in curves.items():
        regression.plot(residual, _pointwise(loss, residual, zeros, **kwargs), label=name)
        # grad is d(mean)/d(prediction): times n gives each point's own derivative
        gradients.plot(residual, grad(residual, zeros, **kwargs) * residual.size, label=name)
    regression.set_ylim(0.0, 10.0)
    for ax in (regression, gradients):
        ax.set_xlabel("residual = prediction - target")

    for ax, title in zip(axes.ravel(), LOSS_TITLES, strict=True):
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # the CE panel has a single curve
            ax.legend(fontsize=8)
    return figure


def xor_figure(losses_per_epoch: list[float], net: XorNetwork) -> matplotlib.figure.Figure:
    """Training loss curve, and the trained net's decision surface on [-0.5, 1.5]^2."""
    figure, axes = new_figure(ncols=2, nrows=1, width=6, height=5)
    curve, surface = axes[0]

    curve.plot(np.arange(len(losses_per_epoch)), losses_per_epoch, linewidth=2)
    curve.set_yscale("log")
    curve.set_xlabel("epoch")
    curve.set_ylabel("binary cross-entropy")

    grid = np.linspace(-0.5, 1.5, 201)
    xx, yy = np.meshgrid(grid, grid)
    points = np.column_stack([xx.ravel(), yy.ravel()])  # (201 * 201, 2)
    proba = predict_proba(net, points).reshape(xx.shape)
    filled = surface.contourf(xx, yy, proba, levels=np.linspace(0, 1, 21), cmap="RdBu_r")
    surface.contour(xx, yy, proba, levels=[0.5], colors="black", linewidths=2)
    figure.colorbar(filled, ax=surface, label="P(y=1)")
    # Marker colours outside the surface's colormap, so the points stay visible on it
    for label, marker, colour in ((0.0, "s", "white"), (1.0, "o", "gold")):
        mask = XOR_Y.ravel() == label
        surface.scatter(
            XOR_X[mask, 0],
            XOR_X[mask, 1],
            marker=marker,
            c=colour,
            s=160,
            edgecolors="black",
            linewidths=2,
            zorder=3,
            label=f"XOR = {label:.0f}",
        )
    surface.legend(loc="upper right", fontsize=8)
    surface.set_xlabel("x1")
    surface.set_ylabel("x2")

    for ax, title in zip(axes[0], XOR_TITLES, strict=True):
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    return figure
