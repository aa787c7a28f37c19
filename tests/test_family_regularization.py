"""The regularization family through its pure entry point, on short sweeps of the default data.

The curriculum's numbers at the default params are pinned in test_curriculum_numbers.py.
"""

from __future__ import annotations

import matplotlib.figure
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.metrics import mean_squared_error

from mlfund.core import registry
from mlfund.core.config import LogSpace
from mlfund.core.datasets import TARGET
from mlfund.core.figures import number_slug
from mlfund.families import regularization as reg

pytestmark = pytest.mark.usefixtures("close_figures")

SHORT = {
    "ridge_alphas": LogSpace(start=-2, stop=3, num=6),
    "cv_folds": 3,
    "learning_curve_points": 4,
    "degrees": [1, 3, 9],
    "ridge_strengths": [0, 0.1, 10],
    "path_alphas": LogSpace(start=-2, stop=2, num=5),
}


def titles(figure: matplotlib.figure.Figure) -> list[str]:
    return [ax.get_title() for ax in figure.axes if ax.get_visible()]


@pytest.fixture(scope="module")
def section(params):
    return registry.get("regularization").section(params).model_copy(update=SHORT)


@pytest.fixture(scope="module")
def result(section, inputs):
    return reg.run(section, inputs)


def test_runs_models_and_figures(result) -> None:
    runs = {run.name: run for run in result.runs}
    assert list(runs) == [
        "ridge_selected",
        "polynomial_degree_1",
        "polynomial_degree_3",
        "polynomial_degree_9",
        "ridge_degree9_alpha_0",
        "ridge_degree9_alpha_0p1",
        "ridge_degree9_alpha_10",
        "lasso",
    ]
    assert all(run.model is not None and run.model.task == "regression" for run in result.runs)
    assert runs["polynomial_degree_9"].params == {"study": "degrees", "model": "Degree 9"}
    head = runs["ridge_degree9_alpha_0p1"].model.estimator.steps[-1][1]
    assert isinstance(head, Ridge) and head.alpha == 0.1
    assert isinstance(runs["polynomial_degree_3"].model.estimator.steps[-1][1], LinearRegression)
    assert [list(run.figures) for run in result.runs] == [["model_selection"]] + [
        ["degrees"]
    ] * 3 + [["ridge_strengths"]] * 3 + [["coefficient_paths"]]
    assert list(result.figures) == [
        "model_selection",
        "degrees",
        "ridge_strengths",
        "coefficient_paths",
    ]
    assert list(result.captions) == list(result.figures)


def test_ridge_sweep_matches_sklearn_on_scaled_training_rows(result, inputs) -> None:
    """Alpha is chosen on validation rows; the scaler is fitted on the training rows only."""
    ridge = result.runs[0]
    alphas = np.logspace(-2, 3, 6)
    assert ridge.history["sweep_alpha"] == pytest.approx(alphas)
    assert ridge.first_step == 0
    data = inputs.split("regression_10d")
    x, train, val = data.features, data.train, data.val
    mean, std = train[x].mean(), train[x].std(ddof=0)
    for alpha, train_mse, val_mse in zip(
        alphas, ridge.history["sweep_train_mse"], ridge.history["sweep_val_mse"], strict=True
    ):
        model = Ridge(alpha=alpha).fit((train[x] - mean) / std, train[TARGET])
        assert train_mse == pytest.approx(
            mean_squared_error(train[TARGET], model.predict((train[x] - mean) / std)), rel=1e-9
        )
        assert val_mse == pytest.approx(
            mean_squared_error(val[TARGET], model.predict((val[x] - mean) / std)), rel=1e-9
        )
    best = int(np.argmin(ridge.history["sweep_val_mse"]))
    assert ridge.metrics["best_alpha"] == alphas[best]
    assert ridge.metrics["val_mse"] == ridge.history["sweep_val_mse"][best]
    assert ridge.model.estimator.steps[-1][1].alpha == alphas[best]
    # heavy shrinkage under-fits: the largest alpha is far worse on both splits
    assert ridge.history["sweep_train_mse"][-1] > 2 * ridge.history["sweep_train_mse"][0]
    assert ridge.history["sweep_val_mse"][-1] > 2 * ridge.metrics["val_mse"]


def test_plot_tables(result) -> None:
    validation, learning = result.plots["validation_curve"], result.plots["learning_curve"]
    assert list(validation.columns) == ["alpha", "train_mse", "val_mse"] and len(validation) == 6
    assert list(learning.columns) == ["train_size", "train_mse", "val_mse"] and len(learning) == 4
    assert learning["train_size"].iloc[-1] == 400  # 2/3 of 600 training rows (3 folds)
    # more data, smaller gap between training and cross-validation error
    gap = learning["val_mse"] - learning["train_mse"]
    assert gap.iloc[-1] < gap.iloc[0]
    assert result.runs[0].metrics["cv_val_mse"] == pytest.approx(learning["val_mse"].iloc[-1])


def test_ridge_tames_the_degree_9_extrapolation(result, inputs) -> None:
    """The over-fitting study's claim: high degrees fit the training rows better but blow
    up on the extrapolated test rows; a little ridge shrinkage brings them back."""
    data = inputs.split("noisy_sine")

    def mse(name: str, split: str = "test") -> float:
        model = next(run for run in result.runs if run.name == name).model.estimator
        rows = getattr(data, split)
        return mean_squared_error(rows[TARGET], model.predict(rows[data.features]))

    assert mse("polynomial_degree_9", "train") < mse("polynomial_degree_1", "train")
    assert mse("polynomial_degree_9") > 1000 * mse("polynomial_degree_1")
    assert mse("ridge_degree9_alpha_10") < mse("ridge_degree9_alpha_0") / 1000


def test_lasso_selection(result, section) -> None:
    lasso = result.runs[-1]
    selected = result.extras["lasso_selection"]["selected_feature_indices"]
    assert result.extras["lasso_selection"]["threshold"] == section.selection_threshold
    # the sparse truth: lasso keeps about half of the 20 features
    assert lasso.metrics == {"n_features": 20, "n_selected": len(selected)}
    assert 5 <= len(selected) <= 12
    assert lasso.tags == {"selected_features": ",".join(map(str, selected))}
    coefficients = np.abs(lasso.model.estimator.coef_)
    assert selected == np.flatnonzero(coefficients > section.selection_threshold).tolist()
    assert [note.text for note in result.notes] == [
        f"Lasso (alpha from params) keeps features {selected} (|coef| > 0.01)."
    ]


def test_figures(result) -> None:
    assert titles(result.figures["model_selection"]) == [
        "Validation Curve",
        "Learning Curve (3-fold CV)",
        "Residual Plot (Test Set)",
    ]
    degrees = result.figures["degrees"]
    assert len(degrees.axes) == 4  # 2x2 grid, the unused panel hidden
    assert [t.split("\n")[0] for t in titles(degrees)] == ["Degree 1", "Degree 3", "Degree 9"]
    assert len(titles(result.figures["ridge_strengths"])) == 3  # one row
    assert titles(result.figures["coefficient_paths"]) == [
        "Ridge Regression Coefficient Path",
        "Lasso Regression Coefficient Path",
    ]


def test_lasso_zeroes_more_coefficients_than_ridge(inputs) -> None:
    data = inputs.split("regression_sparse")
    x, train = data.features, data.train
    alphas = np.logspace(-2, 2, 5)
    paths = reg.coefficient_paths(train[x].to_numpy(), train[TARGET].to_numpy(), alphas, 2000)
    assert paths.ridge.shape == paths.lasso.shape == (5, 20)
    lasso_zeros = (paths.lasso == 0).sum(axis=1)
    ridge_zeros = (paths.ridge == 0).sum(axis=1)
    assert lasso_zeros[-1] > ridge_zeros[-1]
    assert lasso_zeros[-1] > lasso_zeros[0]  # stronger alpha, sparser model


@pytest.mark.parametrize(
    ("value", "slug"),
    [(0.1, "0p1"), (0, "0"), (100, "100"), (1.0, "1"), (-0.5, "m0p5"), (1e-5, "1em05")],
)
def test_number_slug(value: float, slug: str) -> None:
    assert number_slug(value) == slug
    assert "." not in number_slug(value)
