"""The curriculum's PyTorch MLP: shapes, in-model scaling, the manifest round trip, a
one-batch overfit, CPU determinism, accuracy on the split datasets, and the stage."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.figure
import numpy as np
import pytest
import torch
from sklearn.preprocessing import StandardScaler

import stages.common
import stages.train_mlp
from mlfund.config import Params
from mlfund.datasets import TARGET, feature_columns
from mlfund.deep.device import Compute, seeded
from mlfund.deep.mlp import (
    BoundaryPanel,
    accuracy,
    build_mlp,
    comparison_figure,
    positive_probability,
    train_mlp,
)
from mlfund.deep.predictor import TorchPredictor, build
from mlfund.deep.training import count_parameters, fit, make_loader
from mlfund.modelstore import load_card_model, read_manifest
from mlfund.splitting import rows_of, with_split
from stages.common import SplitRows

CPU = Compute(torch.device("cpu"), "fp32")


@pytest.fixture(autouse=True, scope="module")  # before the module's trained models
def one_thread():
    """Tiny models gain nothing from intra-op threads, and lose a lot when cores are busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def splits(params: Params, datasets) -> dict[str, SplitRows]:
    out = {}
    for name in ("classification_2d", "circles"):
        table = with_split(datasets[name], getattr(params.split, name), None)
        parts = (rows_of(table, s) for s in ("train", "val", "test"))
        out[name] = SplitRows(feature_columns(table), *parts)
    return out


def _train(data: SplitRows, params: Params, **changes):
    p = params.mlp.model_copy(update=changes)
    return train_mlp(
        data.train[data.features],
        data.train[TARGET],
        hidden_sizes=p.hidden_sizes,
        dropout=p.dropout,
        learning_rate=p.learning_rate,
        batch_size=p.batch_size,
        epochs=p.epochs,
        seed=p.seed,
        compute=CPU,
    )


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


def test_one_batch_overfit():
    """Eight points with arbitrary labels: without dropout the network memorises them."""
    with seeded(0) as generator:
        x = torch.randn(8, 2)
        y = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1], dtype=torch.float32).reshape(-1, 1)
        model = build_mlp(2, [16, 8], 0.0).fit_scaler(x)
        loader = make_loader(x, y, 8, shuffle=True, generator=generator)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
        history = fit(model, loader, None, torch.nn.BCEWithLogitsLoss(), optimizer, CPU, 400)
    assert history.train_loss[-1] < 0.02
    assert accuracy(model, x.numpy(), y.numpy().ravel(), CPU) == 1.0


def test_two_cpu_runs_are_identical(splits, params: Params):
    first = _train(splits["circles"], params, epochs=3)
    again = _train(splits["circles"], params, epochs=3)
    other = _train(splits["circles"], params, epochs=3, seed=params.mlp.seed + 1)
    assert first.history.train_loss == again.history.train_loss
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key])
    assert first.history.train_loss != other.history.train_loss


@pytest.fixture(scope="module")
def trained(splits, params: Params):
    """classification_2d with the default params (about 3 s on a free core); circles is
    already perfect on its test rows after 100 of the 300 epochs."""
    return {
        "classification_2d": _train(splits["classification_2d"], params),
        "circles": _train(splits["circles"], params, epochs=100),
    }


def test_accuracy_on_the_split_datasets(trained, splits):
    """circles is learnable to the last point; classification_2d is not: the exact Bayes
    rule of its generating Gaussians scores 0.94 on these test rows (0.959 expected on
    fresh data), so the issue's 0.97 is out of reach; the MLP reaches that 0.94."""
    scores = {}
    for name, fitted in trained.items():
        test = splits[name].test
        scores[name] = accuracy(fitted.model, test[splits[name].features], test[TARGET], CPU)
    assert scores["circles"] == 1.0
    assert scores["classification_2d"] >= 0.93


def test_the_manifest_builder_reproduces_the_model(trained, splits):
    fitted, data = trained["classification_2d"], splits["classification_2d"]
    config = {"n_features": 2, "hidden_sizes": [16, 8], "dropout": 0.2}
    json.dumps(config)  # the manifest stores it as JSON
    rebuilt = build("mlfund.deep.mlp:build_mlp", config)
    rebuilt.load_state_dict(fitted.model.state_dict())
    predictor = TorchPredictor(rebuilt, "classification", [0, 1])
    test = data.test[data.features]
    proba = predictor.predict_proba(test)
    np.testing.assert_allclose(proba[:, 1], positive_probability(fitted.model, test.to_numpy()))
    assert set(predictor.predict(test)) <= {0, 1}
    assert np.mean(predictor.predict(test) == data.test[TARGET]) == pytest.approx(
        accuracy(fitted.model, test, data.test[TARGET], CPU)
    )


def test_comparison_figure(trained, splits, close_figures):
    fitted, data = trained["circles"], splits["circles"]
    panel = BoundaryPanel(
        "PyTorch",
        "Adam",
        lambda points: positive_probability(fitted.model, points),
        fitted.history.train_loss,
        1.0,
    )
    x, y = data.test[data.features].to_numpy(), data.test[TARGET].to_numpy()
    figure = comparison_figure([("circles", x, y, [panel, panel])], step=0.1)
    assert isinstance(figure, matplotlib.figure.Figure)
    loss_axis = figure.axes[0]
    assert len(loss_axis.lines) == 2 and loss_axis.get_xscale() == "log"
    assert "test acc 1.000" in figure.axes[1].get_title()


class _Run:
    run_id = "r"

    def __init__(self, log: dict) -> None:
        self.log = log

    def metrics(self, values, step=None):
        self.log.setdefault("metrics", []).append((dict(values), step))

    def history(self, key, values):
        self.log.setdefault("history", {})[key] = list(values)

    def set_tags(self, tags):
        self.log["tags"] = dict(tags)

    def artifact(self, path, folder="figures"):
        self.log.setdefault("artifacts", []).append(Path(path))

    def torch_model(self, model, example):
        self.log["example_shape"] = np.asarray(example).shape
        return "m-1"


class _Tracker:
    def __init__(self) -> None:
        self.run_ids: dict[str, str] = {}
        self.logs: dict[str, dict] = {}

    def run(self, model, dataset, params):
        import contextlib

        self.run_ids[model] = "r"
        self.logs[model] = {"params": dict(params)}
        return contextlib.nullcontext(_Run(self.logs[model]))


def test_the_stage_writes_models_metrics_and_figures(
    splits, params: Params, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    track = _Tracker()
    monkeypatch.setattr(stages.common, "MODELS", tmp_path / "models")
    monkeypatch.setattr(stages.common, "REPORTS", tmp_path / "reports")
    monkeypatch.setattr(stages.train_mlp, "tracker", lambda family: track)
    monkeypatch.setattr(stages.train_mlp, "load_split", lambda name: splits[name])
    quick = params.model_copy(
        update={
            "mlp": params.mlp.model_copy(update={"epochs": 5}),
            "compute": params.compute.model_copy(update={"device": "cpu", "threads": 1}),
        }
    )
    stages.train_mlp.main(quick)

    folder = tmp_path / "models" / "mlp"
    cards = read_manifest(folder)
    assert [c.name for c in cards] == ["mlp_classification_2d", "mlp_circles"]
    metrics = json.loads((tmp_path / "reports" / "train" / "mlp.json").read_text())
    for card in cards:
        assert card.format == "torch" and card.classes == [0, 1] and card.task == "classification"
        data = splits[card.dataset]
        test = data.test
        predictions = load_card_model(folder, card).predict(test[card.features])
        values = metrics["metrics"]["mlp"][card.name]
        assert set(values) == {
            "train_accuracy",
            "final_train_loss",
            "train_seconds",
            "numpy_mlp_test_accuracy",
        }
        assert 0.5 < np.mean(predictions == test[TARGET]) <= 1.0
        log = track.logs[card.name]
        assert len(log["history"]["train_loss"]) == 5  # per-epoch, with steps
        assert log["tags"]["device"] == "cpu" and log["tags"]["precision"] == "fp32"
        assert log["example_shape"] == (len(data.train), 2)
        assert (
            tmp_path / "reports" / "figures" / "mlp" / f"comparison_{card.dataset}.png"
        ).exists()
    # the from-scratch reference is the numpy_nn stage's model: same settings, same score
    reference = metrics["metrics"]["mlp"]["mlp_classification_2d"]["numpy_mlp_test_accuracy"]
    assert reference == pytest.approx(0.93)
