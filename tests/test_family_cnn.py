"""The cnn family through its pure entry point on the digits split (short training), its
figures, and the NaN guard's message. The CIFAR-10 path is in test_cifar10.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mlfund.core import registry
from mlfund.core.errors import NonFiniteLossError
from mlfund.deep.cnn import predict
from mlfund.deep.device import setup_compute
from mlfund.deep.predictor import build
from mlfund.deep.training import History
from mlfund.families.cnn import figures as figs
from tests.conftest import FrameInputs

pytestmark = pytest.mark.usefixtures("close_figures")

CPU = setup_compute("cpu", "fp32", 0)
FIGURES = ["components", "feature_maps", "prediction_grid", "confusion_matrix", "curves"]


def small(params, **update):
    """A CNN a second can train: two narrow blocks on 16x16 digits, three faster epochs."""
    family = registry.get("cnn")
    short = {"channels": [8, 16], "fc_size": 32, "image_size": 16, "epochs": 3, "patience": 3}
    short |= {"learning_rate": 3e-3, "augment": False}
    return family.section(params).model_copy(update={**short, **update})


@pytest.fixture(scope="module")
def result(params, inputs):
    return registry.get("cnn").run(small(params), inputs, CPU)


def test_run_trains_one_scored_model_with_its_figures(result, params) -> None:
    (run,) = result.runs
    assert (run.name, run.dataset) == ("simple_cnn", "digits")
    assert list(result.figures) == list(run.figures) == FIGURES
    assert list(result.captions) == FIGURES
    assert set(run.history) == {"train_loss", "val_loss", "val_accuracy"}
    assert run.metrics["epochs_run"] == len(run.history["train_loss"]) == 3
    assert run.params == small(params).model_dump()
    saved = run.model
    assert saved.scored and saved.builder == "mlfund.deep.cnn:build_cnn"
    assert list(saved.features.columns) == [f"x{i}" for i in range(64)]
    assert saved.classes == list(range(10)) and "test_accuracy" not in run.metrics


def test_the_cnn_reads_digits_far_above_chance(result, inputs) -> None:
    """The family's claim: three short epochs of a small CNN already read held-out digits
    far above chance (0.1); evaluate scores the test rows through the saved builder."""
    (run,) = result.runs
    assert run.metrics["val_accuracy"] > 0.8
    saved = run.model
    rebuilt = build(saved.builder, json.loads(json.dumps(saved.config)))
    rebuilt.load_state_dict(saved.estimator.state_dict())
    test = inputs.split("digits").test
    rows = torch.tensor(test[[f"x{i}" for i in range(64)]].to_numpy(), dtype=torch.float32)
    accuracy = float((predict(rebuilt, rows, CPU, 64) == test["y"].to_numpy()).mean())
    assert accuracy > 0.8


def test_non_finite_loss_names_the_param_to_change(params, split_tables) -> None:
    table = split_tables["digits"].copy()
    table.loc[table.index[table["split"] == "train"][0], "x10"] = np.nan
    family = registry.get("cnn")
    with pytest.raises(NonFiniteLossError, match=r"cnn/simple_cnn: .*cnn\.learning_rate is 0\.003"):
        family.run(small(params, epochs=1), FrameInputs({"digits": table}), CPU)


def test_figure_titles() -> None:
    rng = np.random.default_rng(0)
    image, maps = rng.random((16, 16)), rng.random((8, 16, 16))
    components = figs.components_figure(image, maps, "digit 3")
    titles = [a.get_title() for a in components.axes]
    assert titles == [
        "Original Image (digit 3)",
        "Edge Detection Filter",
        "Blur Filter",
        "Before Pooling (16x16)",
        "After Max Pooling (8x8)",
        "First 6 Feature Maps (trained)",
    ]
    feature = figs.feature_maps_figure(image, maps, "digit 3")
    assert feature.axes[1].get_title() == "All 8 first-layer maps (conv-BN-ReLU)"
    true, pred = np.array([1, 2, 3, 4]), np.array([1, 2, 0, 4])
    assert figs.grid_indices(true, pred, 2).tolist() == [0, 2]  # the wrong one is shown
    grid = figs.prediction_grid_figure(rng.random((4, 8, 8)), true, pred, list("0123456789"), 1, 4)
    assert "1 of 4 overall" in grid._suptitle.get_text()
    assert [a.get_title() for a in grid.axes[:4]][2] == "True: 3\nPred: 0"
    assert grid.axes[2].title.get_color() == "red" and grid.axes[0].title.get_color() == "black"
    confusion = figs.confusion_figure(true, pred, list("0123456789"))
    assert confusion.axes[0].get_title() == "Confusion matrix, test set (accuracy 0.750)"
    history = History([1.0, 0.5], [0.9, 0.6], [0.5, 0.8], best_epoch=1)
    curves = figs.curves_figure(history)
    assert [a.get_title() for a in curves.axes] == [
        "Loss per epoch (cross-entropy)",
        "Validation accuracy per epoch",
    ]
