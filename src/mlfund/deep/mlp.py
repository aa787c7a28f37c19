"""The curriculum's PyTorch MLP ("Using PyTorch for Neural Networks") as a pipeline model.

Linear-ReLU-Dropout blocks (hidden 16 and 8, dropout 0.2) and one output, trained with Adam
(lr 1e-3) on mini-batches of 32. What changed from the curriculum, and why:
- The network ends in a logit and the loss is `BCEWithLogitsLoss`, not `Sigmoid` +
  `BCELoss`: the fused loss computes log(sigmoid(z)) by log-sum-exp, so a confident wrong
  prediction costs a large finite loss instead of log(0) (which `BCELoss` clamps to -100,
  killing the gradient). The probability is `sigmoid(logit)`, applied at prediction time.
- Standardisation lives inside the model: the training mean and standard deviation are
  buffers saved with the weights, so the saved model takes raw feature rows (the
  curriculum scaled outside the model with a StandardScaler it never saved).
- The epoch loss is the sample-weighted mean (the curriculum averaged batch means, which
  over-weights a short last batch), and shuffling, init and dropout are seeded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import matplotlib.figure
import numpy as np
import torch
from torch import nn

from mlfund.deep.device import Compute, seeded
from mlfund.deep.training import History, evaluate, fit, make_loader
from mlfund.figures import new_figure

OnEpoch = Callable[[int, dict[str, float]], None]


class TorchMLP(nn.Module):
    """Raw rows (batch, n_features) -> standardised -> hidden blocks -> logits (batch, 1)."""

    def __init__(
        self, n_features: int, hidden_sizes: Sequence[int], dropout: float, n_outputs: int = 1
    ) -> None:
        super().__init__()
        # Buffers, not parameters: saved in the state_dict, never trained.
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))
        layers: list[nn.Module] = []
        previous = n_features
        for size in hidden_sizes:
            layers += [nn.Linear(previous, size), nn.ReLU(), nn.Dropout(dropout)]
            previous = size
        layers.append(nn.Linear(previous, n_outputs))
        self.network = nn.Sequential(*layers)

    @torch.no_grad()
    def fit_scaler(self, features: torch.Tensor) -> TorchMLP:
        """Set the buffers to the mean and population std of the training rows (n, d), as
        StandardScaler does; a constant feature gets scale 1 instead of a division by 0."""
        std = features.std(dim=0, unbiased=False)
        self.mean.copy_(features.mean(dim=0))
        self.scale.copy_(torch.where(std > 0, std, torch.ones_like(std)))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network((x - self.mean) / self.scale)  # (batch, n_outputs) logits


def build_mlp(n_features: int, hidden_sizes: list[int], dropout: float) -> TorchMLP:
    """The untrained binary classifier (one logit) the manifest's builder names."""
    return TorchMLP(n_features, hidden_sizes, dropout)


@dataclass
class MlpFit:
    model: TorchMLP  # on the CPU, in eval mode
    history: History  # train_loss per epoch (dropout active, so above the eval loss)
    seconds: float  # wall time of the training loop


def train_mlp(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    hidden_sizes: Sequence[int],
    dropout: float,
    learning_rate: float,
    batch_size: int,
    epochs: int,
    seed: int,
    compute: Compute,
    on_epoch: OnEpoch | None = None,
) -> MlpFit:
    """Fit the MLP on 0/1 `labels` (n,) from raw `features` (n, d) for `epochs` epochs.

    The curriculum trains for a fixed number of epochs without validation, and its datasets
    here have no validation rows, so the model keeps its last weights.
    """
    x = torch.tensor(np.asarray(features, dtype=np.float32))  # (n, d)
    y = torch.tensor(np.asarray(labels, dtype=np.float32)).reshape(-1, 1)  # (n, 1)
    with seeded(seed) as generator:  # init, dropout masks and shuffling all from `seed`
        model = build_mlp(x.shape[1], list(hidden_sizes), dropout).fit_scaler(x)
        model.to(compute.device)
        loader = make_loader(x, y, batch_size, shuffle=True, generator=generator)
        optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
        start = time.perf_counter()
        history = fit(
            model,
            loader,
            None,
            nn.BCEWithLogitsLoss(),
            optimizer,
            compute,
            epochs,
            on_epoch=on_epoch,
        )
        seconds = time.perf_counter() - start
    return MlpFit(model.cpu().eval(), history, seconds)


def accuracy(model: nn.Module, features: np.ndarray, labels: np.ndarray, compute: Compute) -> float:
    """Share of rows whose logit sign matches the 0/1 label."""
    x = torch.tensor(np.asarray(features, dtype=np.float32))
    y = torch.tensor(np.asarray(labels, dtype=np.float32)).reshape(-1, 1)
    loader = make_loader(x, y, 1024, shuffle=False)
    result = evaluate(model.to(compute.device), loader, nn.BCEWithLogitsLoss(), compute)
    model.cpu()
    correct = int(((result.outputs > 0).float() == result.targets).sum())
    return correct / len(result.targets)  # exact in float64, not a float32 mean


def positive_probability(model: nn.Module, points: np.ndarray) -> np.ndarray:
    """P(class 1) (n,) for raw points (n, d), on the CPU (for decision-boundary meshes)."""
    model = model.cpu().eval()
    with torch.inference_mode():
        logits = model(torch.tensor(np.asarray(points, dtype=np.float32)))  # (n, 1)
    return torch.sigmoid(logits).reshape(-1).numpy()


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
