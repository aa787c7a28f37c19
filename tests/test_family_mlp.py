"""The PyTorch MLP family: the curriculum's architecture, in-model scaling, a one-batch
overfit, CPU determinism, and `run` on the default split: the saved models rebuild as
evaluate rebuilds them and score what the from-scratch NumPy MLP scores."""

from __future__ import annotations

import dataclasses
import json

import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from sklearn.preprocessing import StandardScaler

from mlfund.core import registry
from mlfund.core.config import Params
from mlfund.core.datasets import TARGET
from mlfund.core.errors import NonFiniteLossError
from mlfund.deep.device import Compute
from mlfund.deep.predictor import TorchPredictor, build
from mlfund.deep.training import count_parameters
from mlfund.families.mlp import MlpSection
from mlfund.families.mlp.model import accuracy, build_mlp, positive_probability, train_mlp

CPU = Compute(torch.device("cpu"), "fp32")
FAMILY = registry.get("mlp")
# 40 epochs at lr 3e-3 reach what 300 at 1e-3 (the default) do on these sets, in ~3 s
QUICK = {"epochs": 40, "learning_rate": 3e-3}


def _section(params: Params, **changes) -> MlpSection:
    s = FAMILY.section(params)
    return dataclasses.replace(s, mlp=s.mlp.model_copy(update=changes))


@pytest.fixture(scope="module")
def result(params: Params, inputs):
    result = FAMILY.run(_section(params, **QUICK), inputs, CPU)
    yield result
    for figure in result.figures.values():
        plt.close(figure)


def test_section_reads_the_numpy_mlp_it_is_compared_with(params: Params):
    s = FAMILY.section(params)
    assert s.mlp == params.mlp
    assert s.numpy_seed == params.numpy_nn.seed and s.numpy_mlp == params.numpy_nn.mlp
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.numpy_seed = 0  # type: ignore[misc]


def test_the_curriculum_architecture():
    model = build_mlp(2, [16, 8], 0.2)
    assert model(torch.zeros(5, 2)).shape == (5, 1)
    kinds = [type(layer).__name__ for layer in model.network]
    assert kinds == ["Linear", "ReLU", "Dropout"] * 2 + ["Linear"]  # no sigmoid: logits
    assert model.network[2].p == 0.2
    assert count_parameters(model) == (2 * 16 + 16) + (16 * 8 + 8) + (8 + 1)
    # the scaler is saved with the weights but never trained
    assert {"mean", "scale"} <= set(model.state_dict())
    assert count_parameters(model, trainable_only=False) == count_parameters(model)


def test_the_scaler_matches_standard_scaler_and_survives_a_constant_column():
    rng = np.random.default_rng(0)
    features = np.c_[rng.normal(3, 2, 50), rng.normal(-1, 0.1, 50), np.full(50, 4.0)]
    model = build_mlp(3, [4], 0.0).fit_scaler(torch.tensor(features, dtype=torch.float32))
    reference = StandardScaler().fit(features)
    np.testing.assert_allclose(model.mean.numpy(), reference.mean_, rtol=1e-5)
    np.testing.assert_allclose(model.scale.numpy(), reference.scale_, rtol=1e-5)
    assert torch.isfinite(model(torch.tensor(features, dtype=torch.float32))).all()


def test_one_batch_overfit(params: Params):
    """Eight points with arbitrary labels: without dropout the network memorises them."""
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0)).numpy()
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    update = {"dropout": 0.0, "learning_rate": 0.02, "batch_size": 8, "epochs": 400, "seed": 0}
    fitted = train_mlp(params.mlp.model_copy(update=update), x, y, CPU)
    assert fitted.history.train_loss[-1] < 0.02
    assert accuracy(fitted.model, x, y, CPU) == 1.0


def test_two_cpu_runs_are_identical(params: Params, inputs):
    data = inputs.split("circles")
    x, y = data.train[data.features], data.train[TARGET]
    p = params.mlp.model_copy(update={"epochs": 3, "seed": 42})
    first, again = (train_mlp(p, x, y, CPU) for _ in range(2))
    other = train_mlp(p.model_copy(update={"seed": 43}), x, y, CPU)
    assert first.history.train_loss == again.history.train_loss
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key])
    assert first.history.train_loss != other.history.train_loss


def test_run_gives_one_run_model_and_figure_per_dataset(result):
    assert [r.name for r in result.runs] == ["mlp_classification_2d", "mlp_circles"]
    assert set(result.figures) == {"comparison_classification_2d", "comparison_circles"}
    for run in result.runs:
        assert run.figures == [f"comparison_{run.dataset}"]
        assert set(run.metrics) == {
            "train_accuracy",
            "final_train_loss",
            "train_seconds",
            "numpy_mlp_test_accuracy",
        }
        assert len(run.history["train_loss"]) == QUICK["epochs"]  # per epoch, for MLflow
        assert run.metrics["final_train_loss"] == run.history["train_loss"][-1]
        assert run.tags["device"] == "cpu" and run.tags["precision"] == "fp32"
        assert run.params["learning_rate"] == QUICK["learning_rate"]
        saved = run.model
        assert saved.scored and saved.task == "classification" and saved.classes == [0, 1]
        assert saved.builder == "mlfund.families.mlp.model:build_mlp"
        assert list(saved.features.columns) == ["x0", "x1"] and saved.target == TARGET
        json.dumps(saved.config)  # the manifest stores it as JSON


def test_the_rebuilt_models_score_what_the_numpy_mlp_scores(result, inputs):
    """The family's claim: PyTorch's MLP matches the from-scratch one on the same split.
    circles is learnable to the last point; classification_2d is not: the exact Bayes rule
    of its generating Gaussians scores 0.94 on these test rows, and both MLPs reach 0.93."""
    scores = {}
    for run in result.runs:
        saved, data = run.model, inputs.split(run.dataset)
        rebuilt = build(saved.builder, saved.config)  # as evaluate does
        rebuilt.load_state_dict(saved.estimator.state_dict())
        predictor = TorchPredictor(rebuilt, saved.task, saved.classes)
        test = data.test[data.features]
        np.testing.assert_allclose(
            predictor.predict_proba(test)[:, 1],
            positive_probability(saved.estimator, test.to_numpy()),
        )
        scores[run.dataset] = float(np.mean(predictor.predict(test) == data.test[TARGET]))
        assert scores[run.dataset] == pytest.approx(
            run.metrics["numpy_mlp_test_accuracy"], abs=0.02
        )
    assert scores["circles"] == 1.0
    assert scores["classification_2d"] >= 0.93
    # the from-scratch reference is the numpy_nn family's model: same settings, same score
    assert result.metrics["mlp_classification_2d"]["numpy_mlp_test_accuracy"] == pytest.approx(0.93)


def test_the_comparison_figure(result):
    figure = result.figures["comparison_circles"]
    assert isinstance(figure, matplotlib.figure.Figure)
    loss_axis = figure.axes[0]
    assert len(loss_axis.lines) == 2 and loss_axis.get_xscale() == "log"  # NumPy and PyTorch
    titles = [axis.get_title() for axis in figure.axes]
    assert any("NumPy from scratch" in t and "test acc 1.000" in t for t in titles)
    assert any("PyTorch" in t and "test acc 1.000" in t for t in titles)


def test_a_non_finite_loss_names_the_key_and_returns_no_model(params: Params, inputs):
    with pytest.raises(NonFiniteLossError) as caught:
        FAMILY.run(_section(params, learning_rate=1e30, epochs=3), inputs, CPU)
    message = str(caught.value)
    assert message.startswith("mlp/mlp_classification_2d: training loss is")
    assert "mlp.learning_rate is 1e+30" in message and "no model was written" in message
