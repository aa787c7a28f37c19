"""RNN, LSTM and GRU on the sine sequences: shapes, a one-batch overfit per cell, CPU
determinism, the issue's test-MSE targets with the default params, and the stage end to
end with a real MLflow store (per-epoch metrics, pt2 export of every cell)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import stages.common
import stages.train_rnn
from mlfund.config import Params
from mlfund.datasets import TARGET, feature_columns
from mlfund.deep.device import Compute, seeded
from mlfund.deep.predictor import TorchPredictor, build
from mlfund.deep.rnn import (
    CELLS,
    build_sequence_model,
    mse,
    predict,
    train_sequence_model,
)
from mlfund.deep.sequence_figures import (
    SequenceResult,
    curves_and_predictions_figure,
    mse_comparison_figure,
)
from mlfund.deep.training import fit, make_loader
from mlfund.modelstore import load_card_model, read_manifest
from mlfund.splitting import rows_of, with_split
from stages.common import SplitRows

CPU = Compute(torch.device("cpu"), "fp32")
TARGETS = {"rnn": 0.05, "lstm": 0.02, "gru": 0.02}  # test MSE the issue asks for


@pytest.fixture(autouse=True, scope="module")  # before the module's trained models
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(params: Params, datasets) -> SplitRows:
    table = with_split(datasets["sine_sequences"], params.split.sine_sequences, None)
    return SplitRows(feature_columns(table), *(rows_of(table, s) for s in ("train", "val", "test")))


def _train(cell: str, data: SplitRows, params: Params, **changes):
    p = params.rnn.model_copy(update=changes)
    x = data.features
    return train_sequence_model(
        cell,
        (data.train[x], data.train[TARGET]),
        (data.val[x], data.val[TARGET]),
        hidden_size=p.hidden_size,
        num_layers=p.num_layers,
        learning_rate=p.learning_rate,
        batch_size=p.batch_size,
        epochs=p.epochs,
        patience=p.patience,
        seed=p.seed,
        compute=CPU,
    )


@pytest.mark.parametrize("cell", CELLS)
def test_shapes_and_the_reshape_inside_forward(cell: str):
    model = build_sequence_model(cell, 30, 8, 2).eval()
    rows = torch.randn(4, 30)  # raw rows of the split table
    assert model(rows).shape == (4, 1)
    with torch.no_grad():
        outputs, _ = model.recurrent(rows.unsqueeze(-1))  # (4, 30, 8): step t is column t
        assert torch.allclose(model(rows), model.head(outputs[:, -1]))
    assert model.recurrent.num_layers == 2 and model.recurrent.input_size == 1


def test_an_unknown_cell_is_refused():
    with pytest.raises(ValueError, match="unknown cell 'transformer'"):
        build_sequence_model("transformer", 30, 8, 1)


@pytest.mark.parametrize("cell", CELLS)
def test_one_batch_overfit(cell: str, data: SplitRows):
    """Sixteen windows: each cell drives the training MSE far below the noise floor."""
    x = torch.tensor(data.train[data.features].to_numpy()[:16], dtype=torch.float32)
    y = torch.tensor(data.train[TARGET].to_numpy()[:16], dtype=torch.float32).reshape(-1, 1)
    with seeded(0) as generator:
        model = build_sequence_model(cell, 30, 32, 1)
        loader = make_loader(x, y, 16, shuffle=True, generator=generator)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        history = fit(model, loader, None, torch.nn.MSELoss(), optimizer, CPU, 300)
    assert history.train_loss[-1] < 1e-3 < history.train_loss[0]


def test_two_cpu_runs_are_identical(data: SplitRows, params: Params):
    first = _train("gru", data, params, epochs=2)
    again = _train("gru", data, params, epochs=2)
    assert first.history.train_loss == again.history.train_loss
    assert first.history.val_loss == again.history.val_loss
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key])


@pytest.fixture(scope="module")
def trained(data: SplitRows, params: Params):
    """The three default-params models (a few seconds each on one core)."""
    return {cell: _train(cell, data, params) for cell in CELLS}


@pytest.mark.parametrize("cell", CELLS)
def test_default_params_reach_the_issue_targets(cell: str, trained, data: SplitRows):
    fitted = trained[cell]
    history = fitted.history
    test_mse = mse(fitted.model, data.test[data.features], data.test[TARGET], CPU)
    assert 0.01 < test_mse <= TARGETS[cell]  # noise std 0.1: nothing beats 0.01
    # fit kept the best validation epoch's weights
    assert mse(fitted.model, data.val[data.features], data.val[TARGET], CPU) == pytest.approx(
        min(history.val_loss), rel=1e-4
    )
    assert history.val_loss[history.best_epoch] == min(history.val_loss)


def test_the_manifest_builder_reproduces_the_model(trained, data: SplitRows):
    config = {"cell": "lstm", "seq_length": 30, "hidden_size": 64, "num_layers": 1}
    json.dumps(config)
    rebuilt = build("mlfund.deep.rnn:build_sequence_model", config)
    rebuilt.load_state_dict(trained["lstm"].model.state_dict())
    test = data.test[data.features]
    np.testing.assert_allclose(
        TorchPredictor(rebuilt, "regression").predict(test),
        predict(trained["lstm"].model, test.to_numpy(), CPU),
        rtol=1e-5,
        atol=1e-6,
    )


def test_figures(trained, data: SplitRows, close_figures):
    windows = data.test[data.features].to_numpy()[:3]
    results = {
        cell.upper(): SequenceResult(
            fitted.history,
            windows,
            data.test[TARGET].to_numpy()[:3],
            predict(fitted.model, windows, CPU),
        )
        for cell, fitted in trained.items()
    }
    figure = curves_and_predictions_figure(results, 0.01)
    top = figure.axes[0]
    assert top.get_yscale() == "log" and "RNN training curve" in top.get_title()
    bottom = figure.axes[len(results)]  # row-major: the first model's predictions
    assert len(bottom.lines) == 3 and len(bottom.collections) == 6  # windows; true, predicted
    scores = {
        "RNN": {"val_mse": 0.02, "test_mse": 0.025},
        "GRU": {"val_mse": 0.015, "test_mse": 0.016},
    }
    bars = mse_comparison_figure(scores, 0.01).axes[0]
    assert len(bars.patches) == 4
    assert any(line.get_ydata()[0] == 0.01 for line in bars.lines)  # the noise floor


@pytest.mark.filterwarnings("ignore:The tensor attributes self.recurrent:UserWarning")
def test_the_stage_end_to_end(
    data: SplitRows, params: Params, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Two epochs on a slice of the rows, logged to a real MLflow store in tmp_path."""
    from mlflow import MlflowClient

    from mlfund.tracking import Tracker, tracking_uri

    small = SplitRows(data.features, data.train[:256], data.val[:128], data.test[:128])
    monkeypatch.setattr(stages.common, "MODELS", tmp_path / "models")
    monkeypatch.setattr(stages.common, "REPORTS", tmp_path / "reports")
    monkeypatch.setattr(stages.train_rnn, "tracker", lambda family: Tracker(tmp_path, family))
    monkeypatch.setattr(stages.train_rnn, "load_split", lambda name: small)
    quick = params.model_copy(
        update={
            "rnn": params.rnn.model_copy(update={"epochs": 2, "hidden_size": 16}),
            "compute": params.compute.model_copy(update={"device": "cpu", "threads": 1}),
        }
    )
    stages.train_rnn.main(quick)

    folder = tmp_path / "models" / "rnn"
    cards = read_manifest(folder)
    assert [c.name for c in cards] == list(CELLS)
    written = json.loads((tmp_path / "reports" / "train" / "rnn.json").read_text())
    client = MlflowClient(tracking_uri(tmp_path))
    for card in cards:
        assert card.task == "regression" and card.config["cell"] == card.name
        predictions = load_card_model(folder, card).predict(small.test[card.features])
        assert predictions.shape == (128,) and np.isfinite(predictions).all()
        values = written["metrics"]["rnn"][card.name]
        assert values["epochs_run"] == 2 and values["val_mse"] > 0
        run = client.get_run(written["runs"][card.name])
        assert run.data.tags["device"] == "cpu" and run.data.tags["precision"] == "fp32"
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")]
        assert steps == [0, 1]  # per-epoch, with step
        assert run.outputs.model_outputs  # the pt2 model was logged
    for name in ("curves_and_predictions", "mse_comparison"):
        assert (tmp_path / "reports" / "figures" / "rnn" / f"{name}.png").exists()
