"""Behaviour of the family functions and their figures, beyond the pinned curriculum numbers."""

from __future__ import annotations

import matplotlib.figure
import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import DBSCAN
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error

from mlfund.config import Params
from mlfund.datasets import TARGET, feature_columns
from mlfund.families import clustering, embedding, features, linear
from mlfund.families import regularization as reg
from mlfund.feature_engineering import engineer_salary_features, model_columns
from mlfund.splitting import rows_of, with_split

pytestmark = pytest.mark.usefixtures("close_figures")


@pytest.fixture(scope="module")
def split(params: Params, datasets: dict[str, pd.DataFrame]):
    """`split(name)` -> (x columns, train, val, test) of the default split of a dataset."""

    def get(name: str):
        table = with_split(datasets[name], getattr(params.split, name), None)
        return (feature_columns(table), *(rows_of(table, s) for s in ("train", "val", "test")))

    return get


@pytest.fixture(scope="module")
def salary_split(params: Params, datasets: dict[str, pd.DataFrame]):
    p = params.featurize
    table = engineer_salary_features(datasets["salary"], p.reference_date, p.age_bins, p.age_labels)
    split = with_split(table, params.split.salary, None)
    return rows_of(split, "train"), rows_of(split, "val")


def visible_axes(figure: matplotlib.figure.Figure) -> list:
    return [ax for ax in figure.axes if ax.get_visible()]


# ---------------------------------------------------------------- regularization
def test_ridge_sweep_matches_sklearn_on_scaled_data(split):
    x, train, val, _ = split("regression_10d")
    alphas = np.array([0.1, 1.0, 10.0, 100.0, 1000.0])
    sweep = reg.ridge_sweep(train[x], train[TARGET], val[x], val[TARGET], alphas)
    assert sweep.best_index == int(np.argmin(sweep.val_mse))
    assert sweep.best_alpha == alphas[sweep.best_index]
    assert sweep.val_mse[sweep.best_index] == sweep.val_mse.min()

    mean, std = train[x].mean(), train[x].std(ddof=0)  # StandardScaler, fitted on train only
    for alpha, train_mse, val_mse in zip(alphas, sweep.train_mse, sweep.val_mse, strict=True):
        model = Ridge(alpha=alpha).fit((train[x] - mean) / std, train[TARGET])
        assert train_mse == pytest.approx(
            mean_squared_error(train[TARGET], model.predict((train[x] - mean) / std)), rel=1e-9
        )
        assert val_mse == pytest.approx(
            mean_squared_error(val[TARGET], model.predict((val[x] - mean) / std)), rel=1e-9
        )
    assert sweep.train_mse[-1] > sweep.train_mse[0]  # heavy shrinkage under-fits


def test_learning_curve_shapes(split):
    x, train, _, _ = split("regression_10d")
    curve = reg.ridge_learning_curve(train[x], train[TARGET], alpha=1.0, folds=3, points=4)
    assert curve.train_mse.shape == curve.val_mse.shape == (4, 3)
    assert curve.train_sizes[-1] == 400  # 2/3 of 600 training rows
    assert (curve.train_mse >= 0).all()


def test_lasso_zeroes_more_coefficients_than_ridge(split):
    x, train, _, _ = split("regression_sparse")
    alphas = np.logspace(-2, 2, 5)
    paths = reg.coefficient_paths(train[x].to_numpy(), train[TARGET].to_numpy(), alphas, 2000)
    assert paths.ridge.shape == paths.lasso.shape == (5, 20)
    lasso_zeros = (paths.lasso == 0).sum(axis=1)
    ridge_zeros = (paths.ridge == 0).sum(axis=1)
    assert lasso_zeros[-1] > ridge_zeros[-1]
    assert lasso_zeros[-1] > lasso_zeros[0]  # stronger alpha, sparser model


def test_selected_features_threshold():
    model = Ridge().fit(np.eye(3), [1.0, 0.0, -1.0])
    model.coef_ = np.array([0.5, 0.005, -0.2])
    assert reg.selected_features(model, 0.01) == [0, 2]
    assert reg.selected_features(model, 1.0) == []


@pytest.mark.parametrize(
    ("value", "slug"),
    [(0.1, "0p1"), (0, "0"), (100, "100"), (1.0, "1"), (-0.5, "m0p5"), (1e-5, "1em05")],
)
def test_number_slug(value: float, slug: str):
    assert reg.number_slug(value) == slug
    assert "." not in reg.number_slug(value)


def test_polynomial_model_head():
    assert type(reg.polynomial_model(3).steps[-1][1]).__name__ == "LinearRegression"
    ridge = reg.polynomial_model(9, 0.1).steps[-1][1]
    assert isinstance(ridge, Ridge) and ridge.alpha == 0.1


# ---------------------------------------------------------------- clustering
def test_all_noise_dbscan_scores_nan_silhouette(datasets: dict[str, pd.DataFrame]):
    blobs = datasets["blobs"]
    points, truth = blobs[feature_columns(blobs)].to_numpy(), blobs[TARGET].to_numpy()
    [result] = clustering.run_clusterers(points, {"dbscan": DBSCAN(eps=1e-6, min_samples=5)})
    scores = result.scores(points, truth)
    assert np.isnan(scores["silhouette"])
    assert scores["n_clusters"] == 0
    assert scores["noise_fraction"] == 1.0
    assert scores["ari"] == 0.0


def test_clusterers_use_params():
    models = clustering.clusterers(3, 10, 0.3, 7, "average", 1)
    assert models["kmeans"].get_params()["n_clusters"] == 3
    assert models["kmeans"].get_params()["n_init"] == 10
    assert models["dbscan"].get_params()["eps"] == 0.3
    assert models["agglomerative"].get_params()["linkage"] == "average"


# ---------------------------------------------------------------- features
def test_select_features_counts(salary_split):
    train, _ = salary_split
    inputs = features.inputs(train, engineered=True)
    selection = features.select_features(
        inputs, train["salary"], k=5, rfe_n=3, n_estimators=10, seed=0
    )
    assert len(selection.kbest) == 5 and len(selection.rfe) == 3
    assert set(selection.kbest) <= set(inputs.columns)
    assert set(selection.rfe) <= set(inputs.columns)
    assert selection.importances.is_monotonic_decreasing
    assert selection.importances.sum() == pytest.approx(1.0)
    assert selection.correlations.is_monotonic_decreasing


@pytest.mark.parametrize(("k", "rfe_n"), [(17, 3), (5, 17), (0, 3)])
def test_select_features_rejects_bad_counts(salary_split, k: int, rfe_n: int):
    train, _ = salary_split
    inputs = features.inputs(train, engineered=True)
    assert inputs.shape[1] == 16
    with pytest.raises(ValueError, match=r"must be in 1\.\.16"):
        features.select_features(inputs, train["salary"], k, rfe_n, n_estimators=5, seed=0)


def test_engineering_models_validation_r2(salary_split):
    train, val = salary_split
    val_r2 = {}
    for name, (model, engineered) in features.engineering_models(10, 50, 42).items():
        x_train = features.inputs(train, engineered)
        assert list(x_train.columns) == model_columns(engineered)
        model.fit(x_train, train["salary"])
        val_r2[name] = features.r2(model, features.inputs(val, engineered), val["salary"])
    print(val_r2)
    assert val_r2["linear_raw"] > 0.97
    assert val_r2 == pytest.approx(
        {
            "linear_raw": 0.9799320105176872,
            "linear_engineered": 0.9792552864192628,
            "linear_kbest": 0.9792073825604306,
            "forest_raw": 0.9557388536010147,
            "forest_engineered": 0.9583439293440563,
        },
        abs=1e-6,
    )


# ---------------------------------------------------------------- figures
def titles(figure: matplotlib.figure.Figure) -> list[str]:
    return [ax.get_title() for ax in visible_axes(figure)]


def test_decision_boundary_figure(split):
    x, train, _, test = split("classification_2d")
    model = linear.fit_logistic(train[x], train[TARGET], 1.0)
    figure = linear.decision_boundary_figure(
        model,
        test[x].to_numpy(),
        test[TARGET].to_numpy(),
        0.1,
        "Logistic Regression Decision Boundary",
    )
    assert isinstance(figure, matplotlib.figure.Figure)
    assert len(visible_axes(figure)) == 2  # the panel and its colorbar
    assert "Decision Boundary" in titles(figure)[0]


def test_regression_fits_figure(split):
    x, train, _, test = split("regression_1d")
    models = {
        "Linear": linear.fit_linear(train[x], train[TARGET]),
        "Cubic": linear.fit_polynomial(train[x], train[TARGET], 3),
    }
    figure = linear.regression_fits_figure(test[x].to_numpy(), test[TARGET].to_numpy(), models)
    assert titles(figure) == ["Linear", "Cubic", "Residuals (test set)"]


def test_curves_figure_hides_unused_panels(split):
    x, train, _, test = split("noisy_sine")
    fits = reg.fit_curves(
        {f"Degree {d}": reg.polynomial_model(d) for d in (1, 3, 9)},
        train[x],
        train[TARGET],
        test[x],
        test[TARGET],
    )
    figure = reg.curves_figure(
        fits,
        train[x].to_numpy(),
        train[TARGET].to_numpy(),
        test[x].to_numpy(),
        test[TARGET].to_numpy(),
        ncols=2,
    )
    assert len(figure.axes) == 4
    assert [t.split("\n")[0] for t in titles(figure)] == ["Degree 1", "Degree 3", "Degree 9"]


def test_selection_and_paths_figures(split):
    x, train, val, test = split("regression_10d")
    sweep = reg.ridge_sweep(train[x], train[TARGET], val[x], val[TARGET], np.logspace(-2, 2, 5))
    curve = reg.ridge_learning_curve(train[x], train[TARGET], sweep.best_alpha, 3, 3)
    model = reg.scaled_ridge(sweep.best_alpha).fit(train[x], train[TARGET])
    figure = reg.selection_figure(sweep, curve, model.predict(test[x]), test[TARGET].to_numpy())
    assert titles(figure) == [
        "Validation Curve",
        "Learning Curve (3-fold CV)",
        "Residual Plot (Test Set)",
    ]

    paths = reg.CoefficientPaths(np.logspace(-2, 2, 3), np.ones((3, 4)), np.zeros((3, 4)))
    assert titles(reg.paths_figure(paths, 1.0)) == [
        "Ridge Regression Coefficient Path",
        "Lasso Regression Coefficient Path",
    ]


def test_clusters_figure(params: Params, datasets: dict[str, pd.DataFrame]):
    p = params.clustering
    blobs = datasets["blobs"]
    points, truth = blobs[feature_columns(blobs)].to_numpy(), blobs[TARGET].to_numpy()
    models = clustering.clusterers(
        p.n_clusters, p.kmeans_n_init, p.dbscan_eps, p.dbscan_min_samples, p.linkage, p.seed
    )
    figure = clustering.clusters_figure(points, truth, clustering.run_clusterers(points, models))
    assert titles(figure) == [
        "Original Data (True Clusters)",
        "kmeans (ARI 1.000)",
        "dbscan (ARI 0.940)",
        "agglomerative (ARI 1.000)",
    ]


def test_embedding_figures(datasets: dict[str, pd.DataFrame]):
    digits = datasets["digits"].iloc[:200]
    pixels, labels = digits[feature_columns(digits)].to_numpy(), digits[TARGET].to_numpy()
    ratio = np.array([0.5, 0.25, 0.125, 0.125])
    result = embedding.Embeddings(pixels[:, :2], pixels[:, 2:4], ratio)
    figure = embedding.projections_figure(pixels, labels, result)
    assert len(visible_axes(figure)) == 6  # three panels, three colorbars
    assert "PCA (Explained Variance: 0.750)" in titles(figure)
    assert "Raw Pixels (the two most variable)" in titles(figure)
    assert titles(embedding.variance_figure(ratio, 3)) == [
        "Individual Explained Variance",
        "Cumulative Explained Variance",
    ]


def test_tsne_keeps_neighbourhoods_better_than_pca(datasets: dict[str, pd.DataFrame]):
    digits = datasets["digits"].iloc[:300]
    pixels = digits[feature_columns(digits)].to_numpy()
    result = embedding.embed(pixels, perplexity=30.0, max_iter=250, seed=0)
    scores = embedding.trustworthiness_scores(pixels, result, k=5)
    assert 0.5 < scores["pca_trustworthiness"] < scores["tsne_trustworthiness"] <= 1.0


def test_features_figures(salary_split):
    train, _ = salary_split
    selection = features.select_features(
        features.inputs(train, engineered=True), train["salary"], 5, 3, 5, 0
    )
    figure = features.engineering_figure(train, selection)
    assert len(visible_axes(figure)) == 6
    assert "Age Group Distribution (Binning Result)" in titles(figure)
    comparison = features.comparison_figure({"linear_raw": 0.98, "forest_engineered": 0.95})
    assert titles(comparison) == ["Does feature engineering help? (validation R²)"]
    assert comparison.axes[0].get_ylim()[0] == pytest.approx(0.90)
