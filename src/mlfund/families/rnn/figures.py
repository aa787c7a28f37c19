"""Figures of the recurrent family: the curriculum's 2 x N panel (training curves, then
next-value predictions on a few test windows) and a bar chart comparing the models' MSE
with the noise floor no model can beat."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib.figure
import numpy as np

from mlfund.core.figures import new_figure
from mlfund.deep.training import History

CAPTIONS = {
    "curves_and_predictions": "RNN, LSTM and GRU: training curves and next-value predictions "
    "on test sequences.",
    "mse_comparison": "Validation and test MSE against the noise floor (0.01).",
}


@dataclass(frozen=True)
class SequenceResult:
    """What one column of `curves_and_predictions_figure` needs."""

    history: History  # per-epoch train_loss and val_loss (MSE), best_epoch
    windows: np.ndarray  # (k, seq_length) a few test windows
    targets: np.ndarray  # (k,) their true next values
    predictions: np.ndarray  # (k,) the model's next values


def curves_and_predictions_figure(
    results: Mapping[str, SequenceResult], noise_floor: float
) -> matplotlib.figure.Figure:
    """Top row: train and validation MSE per epoch (log scale), the kept epoch and the
    noise floor; bottom row: each test window, its true and predicted next value."""
    figure, axes = new_figure(ncols=len(results), nrows=2, width=6, height=4.5)
    for column, (name, result) in enumerate(results.items()):
        top, bottom = axes[0, column], axes[1, column]
        history = result.history
        epochs = np.arange(len(history.train_loss))
        top.plot(epochs, history.train_loss, label="Train loss")
        top.plot(epochs, history.val_loss, label="Validation loss")
        top.axvline(history.best_epoch, color="grey", linestyle=":", label="Kept (best val)")
        top.axhline(noise_floor, color="black", linestyle="--", label="Noise floor")
        top.set(yscale="log", xlabel="Epoch", ylabel="MSE", title=f"{name} training curve")
        top.legend(fontsize="small")
        top.grid(True)

        length = result.windows.shape[1]
        steps = np.arange(length)
        for j, (window, target, prediction) in enumerate(
            zip(result.windows, result.targets, result.predictions, strict=True)
        ):
            first = j == 0  # one legend entry per kind
            input_label = "Input sequence" if first else None
            bottom.plot(steps, window, "b-", alpha=0.7, label=input_label)
            bottom.scatter(
                [length], [target], color="green", s=50, label="True next value" if first else None
            )
            bottom.scatter(
                [length],
                [prediction],
                color="red",
                marker="x",
                s=60,
                label="Predicted next value" if first else None,
            )
        bottom.set(xlabel="Time step", ylabel="Value", title=f"{name} predictions (test windows)")
        bottom.legend(fontsize="small")
        bottom.grid(True)
    return figure


def mse_comparison_figure(
    scores: Mapping[str, Mapping[str, float]],
    noise_floor: float,
    splits: Sequence[str] = ("val_mse", "test_mse"),
) -> matplotlib.figure.Figure:
    """Grouped bars `scores[model][split]` per model, with the noise floor drawn."""
    figure, axes = new_figure(width=7, height=4.5)
    axis = axes[0, 0]
    names = list(scores)
    width = 0.8 / len(splits)
    positions = np.arange(len(names))
    for i, split in enumerate(splits):
        values = [scores[name][split] for name in names]
        bars = axis.bar(positions + (i - (len(splits) - 1) / 2) * width, values, width, label=split)
        axis.bar_label(bars, fmt="%.4f", fontsize="small")
    axis.axhline(noise_floor, color="black", linestyle="--", label=f"Noise floor {noise_floor:g}")
    axis.set_xticks(positions, names)
    axis.set(ylabel="MSE", title="Next-value MSE by model (lower is better)")
    axis.legend()
    axis.grid(True, axis="y")
    return figure
