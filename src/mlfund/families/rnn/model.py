"""The curriculum's recurrent networks ("Recurrent Neural Networks"): RNN, LSTM and GRU
predicting the next value of a noisy sine window.

One recurrent layer stack (input size 1, hidden 64) and a linear head on the hidden state
of the last time step. What changed from the curriculum, and why:
- The curriculum trains on the whole training set as one batch for 50 steps and reports
  the test loss at every step (so it selects on test data); here training runs on seeded
  mini-batches with a validation split, early stopping on the validation loss, and the
  best weights kept; the test rows are scored only by the evaluate stage.
- Targets are (n, 1) like the outputs, so MSE never broadcasts; the curriculum's
  `squeeze()` would turn a batch of one into a scalar.
- No explicit zero initial state: PyTorch's default is zeros on the input's device, where
  the curriculum's `torch.zeros(...)` pins the state to the CPU.
- No input scaling: every time step of every window has mean ~0 and a similar spread
  (amplitudes in [0.5, 2], uniform phases), so the raw values are already well scaled,
  and scaling each step separately would distort the wave shape the network reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from mlfund.deep.device import Compute
from mlfund.deep.training import Fit, evaluate, make_loader, train_model

if TYPE_CHECKING:
    from mlfund.core.config import RnnParams

CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class SequenceRegressor(nn.Module):
    """Raw window (batch, seq_length) -> recurrent layers -> next value (batch, 1)."""

    def __init__(self, cell: str, seq_length: int, hidden_size: int, num_layers: int = 1) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"unknown cell {cell!r}; expected one of {sorted(CELLS)}")
        self.seq_length = seq_length
        self.recurrent = CELLS[cell](1, hidden_size, num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = x.reshape(-1, self.seq_length, 1)  # (batch, time, 1 input feature)
        outputs, _ = self.recurrent(steps)  # (batch, time, hidden); initial state zeros
        return self.head(outputs[:, -1])  # (batch, 1) from the last step's hidden state


def build_sequence_model(
    cell: str, seq_length: int, hidden_size: int, num_layers: int
) -> SequenceRegressor:
    """The untrained model the manifest's builder names."""
    return SequenceRegressor(cell, seq_length, hidden_size, num_layers)


def tensors(features: np.ndarray, targets: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows (n, seq_length) and next values as (n, 1) float32 targets, like the outputs."""
    x = torch.tensor(np.asarray(features, dtype=np.float32))  # (n, seq_length)
    y = torch.tensor(np.asarray(targets, dtype=np.float32)).reshape(-1, 1)  # (n, 1)
    return x, y


def train_cell(
    cell: str,
    p: RnnParams,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    compute: Compute,
) -> Fit:
    """Fit one cell type with Adam on MSE; `train` and `val` are (windows (n, L), next (n,)).

    Init and shuffling come from `p.seed`; the model keeps the weights of its best
    validation epoch (history: train_loss and val_loss (MSE) per epoch, best_epoch).
    """
    x, y = tensors(*train)
    return train_model(
        lambda: build_sequence_model(cell, x.shape[1], p.hidden_size, p.num_layers),
        (x, y),
        tensors(*val),
        nn.MSELoss(),
        compute,
        seed=p.seed,
        learning_rate=p.learning_rate,
        batch_size=p.batch_size,
        epochs=p.epochs,
        patience=p.patience,
        val_batch_size=1024,
        name=f"rnn/{cell}",
    )


def predict(model: nn.Module, features: np.ndarray, compute: Compute) -> np.ndarray:
    """Next-value predictions (n,) for windows (n, L)."""
    loader = make_loader(*tensors(features, np.zeros(len(features))), 1024, shuffle=False)
    result = evaluate(model.to(compute.device), loader, nn.MSELoss(), compute)
    model.cpu()
    return result.outputs.reshape(-1).numpy()


def mse(model: nn.Module, features: np.ndarray, targets: np.ndarray, compute: Compute) -> float:
    """Mean squared error of the next-value predictions."""
    return float(np.mean((predict(model, features, compute) - np.asarray(targets)) ** 2))
