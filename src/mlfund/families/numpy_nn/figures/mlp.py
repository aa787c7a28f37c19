"""The curriculum's MLP experiment and its 2 x 3 figure.

Curriculum: "Feedforward Networks > Building a Multi-Layer Perceptron from Scratch": split
80/20, scale with a StandardScaler fitted on the training part, train [2, 8, 4, 1] ReLU
for 1000 full-batch epochs at learning rate 0.1, then plot the data, the loss curve and
the predicted probability over a mesh with the test points.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.figure
import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from mlfund.core.figures import model_input, new_figure
from mlfund.numpy_nn.mlp import MLPClassifier

Array = np.ndarray


@dataclass(frozen=True)
class MlpResult:
    """What one row of `mlp_figure` needs; `model` maps original-unit points to
    probabilities (the scaler is inside it)."""

    name: str
    X: Array  # (n, 2) every sample, original units
    y: Array  # (n,)
    X_test: Array  # (n_test, 2)
    y_test: Array  # (n_test,)
    model: Pipeline  # StandardScaler -> MLPClassifier, fitted on the training part
    loss_curve: Array  # (epochs,) mean training loss per epoch
    train_accuracy: float
    test_accuracy: float


def fit_mlp_experiment(
    name: str,
    X: Array,
    y: Array,
    *,
    hidden_layer_sizes: tuple[int, ...] = (8, 4),
    activation: str = "relu",
    learning_rate: float = 0.1,
    epochs: int = 1000,
    batch_size: int | None = None,
    random_state: int | None = 1,
    test_size: float = 0.2,
    split_seed: int = 42,
) -> MlpResult:
    """Split, fit StandardScaler + MLPClassifier on the training part, score both parts.

    `random_state=1`: the curriculum leaves the init unseeded; with seed 1 its settings
    reach 0.935 test accuracy on its linearly separable data (seeds 0-19 give 0.865-0.94).
    """
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=split_seed
    )
    mlp = MLPClassifier(
        hidden_layer_sizes, activation, learning_rate, epochs, batch_size, random_state
    )
    model = make_pipeline(StandardScaler(), mlp).fit(X_train, y_train)
    return MlpResult(
        name=name,
        X=np.asarray(X),
        y=np.asarray(y),
        X_test=np.asarray(X_test),
        y_test=np.asarray(y_test),
        model=model,
        loss_curve=mlp.loss_curve_,
        train_accuracy=float(model.score(X_train, y_train)),
        test_accuracy=float(model.score(X_test, y_test)),
    )


def mlp_figure(results: list[MlpResult], step: float = 0.02) -> matplotlib.figure.Figure:
    """Per result a row: the data, the training loss per epoch, and the predicted
    probability of the second class over a mesh (one unit of margin, spacing `step`)
    with the test points on top."""
    figure, axes = new_figure(ncols=3, nrows=len(results), width=6, height=5)
    for row, result in zip(axes, results, strict=True):
        X, y = result.X, result.y
        row[0].scatter(X[:, 0], X[:, 1], c=y, cmap="coolwarm", alpha=0.7)
        row[0].set(title=f"{result.name}\nOriginal data (all {len(y)} samples)")
        row[0].set(xlabel="Feature 1", ylabel="Feature 2")

        row[1].plot(result.loss_curve)
        row[1].set(title=f"{result.name}\nTraining loss curve (cross-entropy)")
        row[1].set(xlabel="Epoch", ylabel="Cost")
        row[1].grid(True)

        x_min, x_max = X[:, 0].min() - 1, X[:, 0].max() + 1
        y_min, y_max = X[:, 1].min() - 1, X[:, 1].max() + 1
        # mesh of shape (n_y, n_x) covering the data
        xx, yy = np.meshgrid(np.arange(x_min, x_max, step), np.arange(y_min, y_max, step))
        mesh = model_input(result.model, np.c_[xx.ravel(), yy.ravel()])
        proba = result.model.predict_proba(mesh)  # (n_y * n_x, n_classes)
        surface = proba[:, 1].reshape(xx.shape)  # P(second class)
        filled = row[2].contourf(xx, yy, surface, levels=50, alpha=0.8, cmap="coolwarm")
        figure.colorbar(filled, ax=row[2], label="P(class 1)")
        row[2].scatter(
            result.X_test[:, 0],
            result.X_test[:, 1],
            c=result.y_test,
            cmap="coolwarm",
            edgecolors="black",
        )
        row[2].set(
            title=f"{result.name}\nDecision boundary: P(class 1), test points\n"
            f"Test Acc: {result.test_accuracy:.3f}",
            xlabel="Feature 1",
            ylabel="Feature 2",
        )
    return figure
