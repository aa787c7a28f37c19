"""The linear family through its pure entry point, on the default splits."""

from __future__ import annotations

import matplotlib.figure
import pytest

from mlfund.core import registry
from mlfund.evaluation import evaluate_model

pytestmark = pytest.mark.usefixtures("close_figures")


def titles(figure: matplotlib.figure.Figure) -> list[str]:
    return [ax.get_title() for ax in figure.axes if ax.get_visible()]


@pytest.fixture(scope="module")
def result(params, inputs):
    family = registry.get("linear")
    return family.run(family.section(params), inputs, None)


def test_run_fits_and_saves_the_three_models(result) -> None:
    assert [(run.name, run.dataset, run.model.task, list(run.figures)) for run in result.runs] == [
        ("logistic_regression", "classification_2d", "classification", ["decision_boundary"]),
        ("linear_regression", "regression_1d", "regression", ["regression_fits"]),
        ("polynomial_regression", "regression_1d", "regression", ["regression_fits"]),
    ]
    assert all(
        list(run.model.features.columns) == ["x0", "x1"][: run.model.features.shape[1]]
        for run in result.runs
    )
    assert list(result.captions) == list(result.figures) == ["decision_boundary", "regression_fits"]


def test_linear_models_fit_their_data(result, inputs) -> None:
    """The curriculum's claims: the two classes are nearly linearly separable (the test
    accuracy is the curriculum's 0.9), and the 1-D curve is nearly a line (a cubic adds
    almost nothing)."""
    metrics = result.metrics
    assert metrics["logistic_regression"]["train_accuracy"] > 0.88
    line = metrics["linear_regression"]["train_r2"]
    cubic = metrics["polynomial_regression"]["train_r2"]
    assert line > 0.95 and 0 <= cubic - line < 0.01

    logistic = result.runs[0].model
    test = inputs.split("classification_2d").test
    x = list(logistic.features.columns)
    scores = evaluate_model(logistic.estimator, "classification", test[x], test[logistic.target])
    assert scores.scores["test_accuracy"] == pytest.approx(0.9)


def test_figures(result) -> None:
    boundary = result.figures["decision_boundary"]
    assert len(boundary.axes) == 2  # the panel and its colorbar
    assert titles(boundary)[0] == "Logistic Regression Decision Boundary (test set)"
    assert titles(result.figures["regression_fits"]) == [
        "Linear Regression",
        "Polynomial Regression (degree 3)",
        "Residuals (test set)",
    ]


def test_poly_degree_changes_only_the_polynomial(params, inputs, result) -> None:
    family = registry.get("linear")
    quintic = family.section(params).model_copy(update={"poly_degree": 5})
    changed = family.run(quintic, inputs, None)
    assert changed.metrics["linear_regression"] == result.metrics["linear_regression"]
    assert changed.metrics["polynomial_regression"] != result.metrics["polynomial_regression"]
    assert titles(changed.figures["regression_fits"])[1] == "Polynomial Regression (degree 5)"
