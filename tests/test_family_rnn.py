"""RNN, LSTM and GRU on the sine sequences: shapes, a one-batch overfit per cell, CPU
determinism, and `run` on half the default rows: every cell forecasts (its test MSE far
below what predicting the mean scores, above the noise floor), keeps its best validation
weights, and its saved model rebuilds as evaluate rebuilds it."""

from __future__ import annotations

import dataclasses
import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from mlfund.core import registry
from mlfund.core.config import Params
from mlfund.core.datasets import TARGET
from mlfund.core.errors import NonFiniteLossError
from mlfund.deep.device import Compute
from mlfund.deep.predictor import TorchPredictor, build
from mlfund.deep.training import train_model
from mlfund.families.rnn import RnnSection
from mlfund.families.rnn.model import CELLS, build_sequence_model, mse, predict, train_cell
from tests.conftest import FrameInputs

CPU = Compute(torch.device("cpu"), "fp32")
FAMILY = registry.get("rnn")
QUICK = {"epochs": 10, "hidden_size": 32}  # ~2 s for the three cells on half the rows


def _section(params: Params, **changes) -> RnnSection:
    s = FAMILY.section(params)
    return dataclasses.replace(s, rnn=s.rnn.model_copy(update=changes))


@pytest.fixture(scope="module")
def half(split_tables) -> FrameInputs:
    """The first half of each split's rows of the default sine_sequences table."""
    table = split_tables["sine_sequences"]
    parts = [table[table["split"] == s] for s in ("train", "val", "test")]
    return FrameInputs({"sine_sequences": pd.concat(p.iloc[: len(p) // 2] for p in parts)})


@pytest.fixture(scope="module")
def result(params: Params, half: FrameInputs):
    result = FAMILY.run(_section(params, **QUICK), half, CPU)
    yield result
    for figure in result.figures.values():
        plt.close(figure)


def test_section_reads_the_noise_of_the_data(params: Params):
    s = FAMILY.section(params)
    assert s.rnn == params.rnn and s.noise_std == params.data.sine_sequences.noise_std
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.noise_std = 0.0  # type: ignore[misc]


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
def test_one_batch_overfit(cell: str, half: FrameInputs):
    """Sixteen windows: each cell drives the training MSE far below the noise floor."""
    data = half.split("sine_sequences")
    x = torch.tensor(data.train[data.features].to_numpy()[:16], dtype=torch.float32)
    y = torch.tensor(data.train[TARGET].to_numpy()[:16], dtype=torch.float32).reshape(-1, 1)
    fitted = train_model(
        lambda: build_sequence_model(cell, 30, 32, 1), (x, y), None, torch.nn.MSELoss(), CPU,
        seed=0, learning_rate=0.01, batch_size=16, epochs=150,
    )  # fmt: skip
    assert fitted.history.train_loss[-1] < 1e-3 < fitted.history.train_loss[0]


def test_two_cpu_runs_are_identical(params: Params, half: FrameInputs):
    data = half.split("sine_sequences")
    x = data.features
    p = params.rnn.model_copy(update={"hidden_size": 16, "epochs": 2})
    train, val = (data.train[x], data.train[TARGET]), (data.val[x], data.val[TARGET])
    first, again = (train_cell("gru", p, train, val, CPU) for _ in range(2))
    assert first.history.train_loss == again.history.train_loss
    assert first.history.val_loss == again.history.val_loss
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key])


def test_run_gives_a_run_and_model_per_cell_and_a_comparison_run(result):
    assert [r.name for r in result.runs] == [*CELLS, "comparison"]
    assert set(result.metrics) == set(CELLS)  # the comparison run is not a model
    assert set(result.figures) == {"curves_and_predictions", "mse_comparison"}
    for run in result.runs[:3]:
        assert set(run.metrics) == {"val_mse", "best_epoch", "epochs_run", "train_seconds"}
        assert run.metrics["epochs_run"] == QUICK["epochs"] == len(run.history["val_loss"])
        assert set(run.history) == {"train_loss", "val_loss"} and run.first_step == 0
        assert run.tags["device"] == "cpu" and run.figures == ()
        saved = run.model
        assert saved.scored and saved.task == "regression" and saved.config["cell"] == run.name
        json.dumps(saved.config)
    comparison = result.runs[-1]
    assert comparison.model is None and comparison.metrics == {}
    # the per-epoch curves, as reports/plots/rnn/history_<cell>.csv for `dvc plots`
    assert set(result.plots) == {f"history_{cell}" for cell in CELLS}
    for run in result.runs[:3]:
        table = result.plots[f"history_{run.name}"]
        assert list(table.columns) == ["epoch", "train_loss", "val_loss"]
        assert table["epoch"].tolist() == list(range(run.metrics["epochs_run"]))
        assert table["val_loss"].tolist() == run.history["val_loss"]
        assert table["val_loss"].idxmin() == run.metrics["best_epoch"]
    assert list(comparison.figures) == ["curves_and_predictions", "mse_comparison"]


def test_every_cell_forecasts_and_keeps_its_best_epoch(result, half: FrameInputs, params):
    """Predicting the mean scores the next value's variance (0.89 here); a noise of std 0.1
    means nothing beats 0.01. Ten epochs on half the rows already take every cell more than
    ten times below the former (the default params reach 0.02-0.03)."""
    data = half.split("sine_sequences")
    test, val = data.test, data.val
    variance = float(test[TARGET].var())
    noise_floor = params.data.sine_sequences.noise_std**2
    for run in result.runs[:3]:
        saved = run.model
        rebuilt = build(saved.builder, saved.config)  # as evaluate does
        rebuilt.load_state_dict(saved.estimator.state_dict())
        predictions = TorchPredictor(rebuilt, "regression").predict(test[data.features])
        np.testing.assert_allclose(
            predictions, predict(saved.estimator, test[data.features], CPU), rtol=1e-5, atol=1e-6
        )
        test_mse = float(np.mean((predictions - test[TARGET].to_numpy()) ** 2))
        assert noise_floor < test_mse < variance / 10, run.name
        # fit kept the best validation epoch's weights
        history = run.history["val_loss"]
        assert run.metrics["val_mse"] == min(history) == history[run.metrics["best_epoch"]]
        assert mse(saved.estimator, val[data.features], val[TARGET], CPU) == pytest.approx(
            run.metrics["val_mse"], rel=1e-4
        )


def test_the_figures(result):
    curves = result.figures["curves_and_predictions"]
    top = curves.axes[0]
    assert top.get_yscale() == "log" and "RNN training curve" in top.get_title()
    bottom = curves.axes[len(CELLS)]  # row-major: the first model's predictions
    assert len(bottom.lines) == 3 and len(bottom.collections) == 6  # windows; true, predicted
    bars = result.figures["mse_comparison"].axes[0]
    assert len(bars.patches) == 2 * len(CELLS)  # val and test per model
    assert any(line.get_ydata()[0] == pytest.approx(0.01) for line in bars.lines)  # noise floor


def test_a_non_finite_loss_names_the_key_and_returns_no_model(params: Params, half):
    with pytest.raises(NonFiniteLossError) as caught:
        FAMILY.run(_section(params, learning_rate=1e30, epochs=3, hidden_size=4), half, CPU)
    message = str(caught.value)
    assert message.startswith("rnn/rnn: training loss is")
    assert "rnn.learning_rate is 1e+30" in message and "no model was written" in message
