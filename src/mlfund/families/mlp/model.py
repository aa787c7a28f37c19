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

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from mlfund.deep.device import Compute
from mlfund.deep.training import Fit, evaluate, make_loader, train_model
from mlfund.numpy_nn.mlp import MLPClassifier

if TYPE_CHECKING:
    from mlfund.core.config import NumpyMlpParams, TorchMlpParams


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


def tensors(features: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows (n, d) and 0/1 labels as the (n, 1) float32 targets of the logit."""
    x = torch.tensor(np.asarray(features, dtype=np.float32))  # (n, d)
    y = torch.tensor(np.asarray(labels, dtype=np.float32)).reshape(-1, 1)  # (n, 1)
    return x, y


def train_mlp(
    p: TorchMlpParams,
    features: np.ndarray,
    labels: np.ndarray,
    compute: Compute,
    name: str = "mlp",
) -> Fit:
    """Fit the MLP `name` on 0/1 `labels` (n,) from raw `features` (n, d) for `p.epochs`.

    The curriculum trains for a fixed number of epochs without validation, and its datasets
    here have no validation rows, so the model keeps its last weights. Init, dropout masks
    and shuffling all come from `p.seed`; the history's train_loss is measured with dropout
    active, so it sits above the eval loss.
    """
    x, y = tensors(features, labels)
    return train_model(
        lambda: build_mlp(x.shape[1], list(p.hidden_sizes), p.dropout).fit_scaler(x),
        (x, y),
        None,
        nn.BCEWithLogitsLoss(),
        compute,
        seed=p.seed,
        learning_rate=p.learning_rate,
        batch_size=p.batch_size,
        epochs=p.epochs,
        name=name,
    )


def accuracy(model: nn.Module, features: np.ndarray, labels: np.ndarray, compute: Compute) -> float:
    """Share of rows whose logit sign matches the 0/1 label."""
    loader = make_loader(*tensors(features, labels), 1024, shuffle=False)
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


def numpy_mlp(m: NumpyMlpParams, seed: int, features: np.ndarray, labels: np.ndarray) -> Pipeline:
    """The numpy_nn family's from-scratch MLP (its settings and seed), scaled the same way."""
    classifier = MLPClassifier(
        tuple(m.hidden_layer_sizes), m.activation, m.learning_rate, m.epochs, m.batch_size, seed
    )
    return make_pipeline(StandardScaler(), classifier).fit(features, labels)
