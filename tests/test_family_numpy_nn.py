"""The numpy_nn family through its pure entry point, with short training settings.

The pieces themselves are checked in tests/test_nn_*.py; this checks what the family
hands the pipeline: its runs, models, figures, metrics table, trace and report notes.
"""

from __future__ import annotations

import pytest

from mlfund.core import registry
from mlfund.core.config import NumpyNNParams, Params
from mlfund.core.report import Paragraph, Table
from mlfund.families.numpy_nn import GradientCheckError

FIGURES = {"activations", "losses", "xor", "mlp", "optimizers", "batch_variants", "geometry"}


def short(params: Params, **changes: dict) -> NumpyNNParams:
    """The default numpy_nn params with a few short studies (about 2 s instead of 30 s)."""
    section = params.numpy_nn.model_dump()
    quick = {
        "mlp": {"epochs": 300},
        "optimizers": {"epochs": 100, "agreement_steps": 20},
        "batch_variants": {"n_samples": 200, "epochs": 5},
        "geometry": {"max_steps": 200},
        "softmax": {"epochs": 100, "perceptron_epochs": 10},
        **changes,
    }
    for key, values in quick.items():
        section[key].update(values)
    return NumpyNNParams.model_validate(section)


@pytest.fixture(scope="module")
def result(params, inputs):
    family = registry.get("numpy_nn")
    done = family.run(short(params), inputs, None)
    yield done
    for figure in done.figures.values():
        figure.clear()


def test_runs_models_and_figures(result) -> None:
    runs = {run.name: run for run in result.runs}
    assert list(runs) == [
        "xor_backprop",
        "mlp_classification_2d",
        "mlp_circles",
        "softmax_digits",
        "perceptron_digits",
        "gradient_descent",
        "vanishing_gradients",
    ]
    saved = {name for name, run in runs.items() if run.model is not None}
    assert saved == {"mlp_classification_2d", "mlp_circles", "softmax_digits"}
    assert all(runs[name].model.task == "classification" for name in saved)
    assert set(result.figures) == FIGURES | {"vanishing"} == set(result.captions)
    assert runs["gradient_descent"].figures == ["optimizers", "batch_variants", "geometry"]
    assert runs["xor_backprop"].figures == ["xor"]
    assert runs["vanishing_gradients"].figures == ["vanishing"]
    assert len(runs["mlp_circles"].history["train_loss"]) == 300
    assert len(runs["perceptron_digits"].history["mistakes"]) <= 10


def test_metrics_table_keeps_the_pipeline_layout(result) -> None:
    table = result.metrics
    assert {"xor_backprop", "mlp_circles", "softmax_digits", "optimizers", "agreement"} <= set(
        table
    )
    assert {"batch_gd", "mini_batch_gd", "stochastic_gd"} <= set(table)
    assert {f"vanishing_{kind}" for kind in ("sigmoid", "relu", "relu_skip")} <= set(table)
    assert {k for k in table if k.startswith("geometry_lr_")} == {
        "geometry_lr_0p01",
        "geometry_lr_0p1",
        "geometry_lr_0p3",
        "geometry_lr_0p5",
        "geometry_lr_0p6",
    }
    # one MLflow run logs a study's rows flat, agreement included
    descent_run = next(run for run in result.runs if run.name == "gradient_descent")
    assert "agreement.optimizer_adam_max_abs_diff" in descent_run.metrics
    assert descent_run.metrics["geometry_lr_0p6.diverged"] == 1.0


def test_from_scratch_pieces_agree_with_torch(result) -> None:
    """The family's claim: every from-scratch piece matches its trusted counterpart."""
    agreement = dict(result.metrics["agreement"])
    # backprop against finite differences: a relative error, under its params tolerance
    assert agreement.pop("gradient_check_max_rel_error") < 1e-6
    assert len(agreement) == 7  # four optimizers, conv2d, attention, least squares
    assert all(value < 1e-10 for value in agreement.values()), agreement
    assert result.metrics["mlp_circles"]["torch_max_abs_diff"] < 1e-12


def test_the_studies_show_what_the_curriculum_claims(result) -> None:
    m = result.metrics
    assert m["xor_backprop"]["accuracy"] == 1.0
    assert m["mlp_circles"]["train_accuracy"] > 0.95  # non-linear boundary learned
    assert m["softmax_digits"]["val_accuracy"] > 0.9
    assert m["vanishing_sigmoid"]["first_to_last_ratio"] < 1e-4
    assert m["vanishing_relu"]["first_to_last_ratio"] > 0.1
    assert m["geometry_lr_0p1"]["converged"] == 1.0
    assert m["batch_gd"]["gradient_variance"] == 0.0 < m["mini_batch_gd"]["gradient_variance"]


def test_backprop_trace_goes_to_extras_and_the_report(result) -> None:
    trace = result.extras["backprop_trace"]
    assert [row[0] for row in trace["rows"]][:4] == ["z1", "a1", "z2", "a2"]
    assert trace["initial_loss"] > 0.5  # an untrained net on XOR: near log 2
    paragraph, table = result.notes
    assert isinstance(paragraph, Paragraph) and f"{trace['initial_loss']:.4f}" in paragraph.text
    assert isinstance(table, Table) and len(table.rows) == len(trace["rows"])


def test_failed_gradient_check_names_the_params_key(params, inputs) -> None:
    family = registry.get("numpy_nn")
    strict = short(params, backprop={"gradient_check_tolerance": 1e-300})
    with pytest.raises(GradientCheckError, match=r"numpy_nn\.backprop\.gradient_check_tolerance"):
        family.run(strict, inputs, None)
