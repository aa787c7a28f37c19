"""Stage train_rnn: RNN, LSTM and GRU predicting the next value of noisy sine windows.

Each model trains on mini-batches with early stopping on the validation rows (per-epoch
train and validation MSE go to its MLflow run as they happen). The figures compare the
three on the test rows against the noise floor noise_std**2 that no model can beat; the
test scores in reports/metrics.json come from evaluate.
"""

from __future__ import annotations

from mlfund.config import Params
from mlfund.datasets import TARGET
from mlfund.deep.device import Compute
from mlfund.deep.rnn import CELLS, SequenceFit, mse, predict, train_sequence_model
from mlfund.deep.sequence_figures import (
    SequenceResult,
    curves_and_predictions_figure,
    mse_comparison_figure,
)
from mlfund.deep.training import NonFiniteLossError
from mlfund.figures import save_figure
from mlfund.modelstore import ModelCard, write_manifest
from mlfund.tracking import Tracker
from stages.common import (
    FamilyOutputs,
    SplitRows,
    family_compute,
    load_split,
    run_stage,
    save_logged_torch_model,
    tracker,
)

FAMILY = "rnn"
DATASET = "sine_sequences"
BUILDER = "mlfund.deep.rnn:build_sequence_model"
NAMES = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}  # figure labels, as the curriculum's
SHOWN_WINDOWS = 3  # test windows drawn per model, as the curriculum


def train_one(
    params: Params, cell: str, data: SplitRows, compute: Compute, out: FamilyOutputs, track: Tracker
) -> tuple[ModelCard, dict[str, float], SequenceFit]:
    """Train one cell type with early stopping (per-epoch MSE to MLflow live) and save it."""
    p = params.rnn
    x, train, val = data.features, data.train, data.val
    with track.run(cell, DATASET, p.model_dump()) as run:
        run.set_tags(compute.describe())
        result = train_sequence_model(
            cell,
            (train[x], train[TARGET]),
            (val[x], val[TARGET]),
            hidden_size=p.hidden_size,
            num_layers=p.num_layers,
            learning_rate=p.learning_rate,
            batch_size=p.batch_size,
            epochs=p.epochs,
            patience=p.patience,
            seed=p.seed,
            compute=compute,
            on_epoch=lambda epoch, values: run.metrics(values, step=epoch),
        )
        history = result.history
        metrics = {
            "val_mse": history.val_loss[history.best_epoch],
            "best_epoch": history.best_epoch,
            "epochs_run": len(history.train_loss),
            "train_seconds": result.seconds,
        }
        run.metrics(metrics)
        config = {
            "cell": cell,
            "seq_length": len(x),
            "hidden_size": p.hidden_size,
            "num_layers": p.num_layers,
        }
        card = save_logged_torch_model(
            run,
            out,
            cell,
            result.model,
            builder=BUILDER,
            config=config,
            dataset=DATASET,
            task="regression",
            features=train[x],
            target=TARGET,
        )
    return card, metrics, result


def main(params: Params) -> None:
    p = params.rnn
    compute = family_compute(params, FAMILY)
    noise_floor = params.data.sine_sequences.noise_std**2
    out = FamilyOutputs(FAMILY)
    track = tracker(FAMILY)
    data = load_split(DATASET)
    x, test = data.features, data.test
    shown = test[x].to_numpy()[:SHOWN_WINDOWS]
    cards: list[ModelCard] = []
    metrics, results, scores = {}, {}, {}
    for cell in CELLS:
        try:
            card, metrics[cell], fitted = train_one(params, cell, data, compute, out, track)
        except NonFiniteLossError as error:
            out.discard(cards)
            raise SystemExit(
                f"error: {FAMILY}/{cell}: {error} (rnn.learning_rate is {p.learning_rate}); "
                "no model was written"
            ) from None
        cards.append(card)
        label = NAMES[cell]
        results[label] = SequenceResult(
            fitted.history,
            shown,
            test[TARGET].to_numpy()[:SHOWN_WINDOWS],
            predict(fitted.model, shown, compute),
        )
        scores[label] = {
            "val_mse": metrics[cell]["val_mse"],
            "test_mse": mse(fitted.model, test[x], test[TARGET], compute),
        }
    # The figures compare all three models, so they belong to a study run of their own.
    with track.run("comparison", DATASET, p.model_dump()) as run:
        run.set_tags(compute.describe())
        for figure, name in (
            (curves_and_predictions_figure(results, noise_floor), "curves_and_predictions"),
            (mse_comparison_figure(scores, noise_floor), "mse_comparison"),
        ):
            run.artifact(save_figure(figure, out.figure(name)))
    write_manifest(out.models, cards)
    out.write_metrics(metrics, track)


if __name__ == "__main__":
    run_stage(main)
