"""RNN, LSTM and GRU predicting the next value of noisy sine windows.

Curriculum: "Recurrent Neural Networks". Each model trains on
mini-batches with early stopping on the validation rows (per-epoch train and validation
MSE go to its MLflow run). The figures compare the three on the test rows against the
noise floor noise_std**2 that no model can beat, in a study run of their own; the test
scores in reports/metrics.json come from evaluate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlfund.core.datasets import TARGET
from mlfund.core.errors import diverging
from mlfund.core.family import FamilyResult, Inputs, ModelRun, SavedModel, epoch_tables
from mlfund.families.rnn.figures import (
    CAPTIONS,
    SequenceResult,
    curves_and_predictions_figure,
    mse_comparison_figure,
)
from mlfund.families.rnn.model import CELLS, mse, predict, train_cell

if TYPE_CHECKING:
    from mlfund.core.config import Params, RnnParams
    from mlfund.deep.device import Compute

DATASET = "sine_sequences"
BUILDER = "mlfund.families.rnn.model:build_sequence_model"
NAMES = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}  # figure labels, as the curriculum's
SHOWN_WINDOWS = 3  # test windows drawn per model, as the curriculum


@dataclass(frozen=True)
class RnnSection:
    """The family's own params and the noise of the data it forecasts."""

    rnn: RnnParams
    noise_std: float  # data.sine_sequences.noise_std: the noise floor is its square


def section(params: Params) -> RnnSection:
    return RnnSection(params.rnn, params.data.sine_sequences.noise_std)


def run(s: RnnSection, inputs: Inputs, compute: Compute) -> FamilyResult:
    """The three cells, one run and model each, then a comparison run with the figures."""
    p = s.rnn
    data = inputs.split(DATASET)
    x, train, val, test = data.features, data.train, data.val, data.test
    shown = test[x].to_numpy()[:SHOWN_WINDOWS]
    shown_targets = test[TARGET].to_numpy()[:SHOWN_WINDOWS]
    runs, results, scores = [], {}, {}
    for cell in CELLS:
        with diverging(f"rnn/{cell}", "rnn.learning_rate", p.learning_rate):
            fitted = train_cell(cell, p, (train[x], train[TARGET]), (val[x], val[TARGET]), compute)
        history = fitted.history
        metrics = {
            "val_mse": history.val_loss[history.best_epoch],
            "best_epoch": history.best_epoch,
            "epochs_run": len(history.train_loss),
            "train_seconds": fitted.seconds,
        }
        config = {
            "cell": cell,
            "seq_length": len(x),
            "hidden_size": p.hidden_size,
            "num_layers": p.num_layers,
        }
        model = SavedModel(
            fitted.model, "regression", train[x], TARGET, builder=BUILDER, config=config
        )
        curves = {"train_loss": history.train_loss, "val_loss": history.val_loss}
        runs.append(
            ModelRun(cell, DATASET, p.model_dump(), metrics, model, curves, tags=compute.describe())
        )
        label = NAMES[cell]
        results[label] = SequenceResult(
            history, shown, shown_targets, predict(fitted.model, shown, compute)
        )
        scores[label] = {
            "val_mse": metrics["val_mse"],
            "test_mse": mse(fitted.model, test[x], test[TARGET], compute),
        }
    noise_floor = s.noise_std**2
    figures = {
        "curves_and_predictions": curves_and_predictions_figure(results, noise_floor),
        "mse_comparison": mse_comparison_figure(scores, noise_floor),
    }
    # The figures compare all three models, so they belong to a study run of their own.
    comparison = ModelRun(
        "comparison", DATASET, p.model_dump(), {}, figures=list(figures), tags=compute.describe()
    )
    return FamilyResult(
        [*runs, comparison],
        figures=figures,
        plots=epoch_tables(runs),
        captions=CAPTIONS,
        metrics_table={r.name: r.metrics for r in runs},
    )
