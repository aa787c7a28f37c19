"""The curriculum's deterministic results, reproduced by our library on the default data.

Each test calls the library the way its stage does (split with `with_split`, read rows
with `rows_of`, fit with the family functions). Expected values come from running the
curriculum's own code. t-SNE is skipped (slow); PCA runs through `principal_components`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from sklearn.metrics import mean_squared_error

from mlfund.core.config import Params
from mlfund.core.datasets import TARGET, feature_columns
from mlfund.core.splitting import rows_of, with_split
from mlfund.evaluation import evaluate_model
from mlfund.families import clustering, embedding, linear
from mlfund.families import regularization as reg

EXACT = 1e-9
ILL_CONDITIONED = 1e-6  # degree 15, and degree 9 with alpha 0


@pytest.fixture(scope="module")
def split(params: Params, datasets: dict[str, pd.DataFrame]):
    """`split(name)` -> (x columns, train, val, test) of the default split of a dataset."""

    def get(name: str):
        table = with_split(datasets[name], getattr(params.split, name), None)
        return (feature_columns(table), *(rows_of(table, s) for s in ("train", "val", "test")))

    return get


def test_logistic_regression_accuracy(params: Params, split):
    x, train, _, test = split("classification_2d")
    model = linear.fit_logistic(train[x], train[TARGET], params.linear.logistic_c)
    scores = evaluate_model(model, "classification", test[x], test[TARGET]).scores
    assert scores["test_accuracy"] == pytest.approx(0.9, rel=EXACT)


@pytest.mark.parametrize(
    ("degree", "mse", "r2"),
    [
        (None, 104.20222653187027, 0.9374151607623286),
        (3, 105.5903822638268, 0.9365814213479909),
    ],
)
def test_linear_and_cubic_regression(split, degree, mse, r2):
    x, train, _, test = split("regression_1d")
    if degree is None:
        model = linear.fit_linear(train[x], train[TARGET])
    else:
        model = linear.fit_polynomial(train[x], train[TARGET], degree)
    scores = evaluate_model(model, "regression", test[x], test[TARGET]).scores
    assert scores["test_mse"] == pytest.approx(mse, rel=EXACT)
    assert scores["test_r2"] == pytest.approx(r2, rel=EXACT)


def test_clustering_scores(params: Params, datasets: dict[str, pd.DataFrame]):
    p = params.clustering
    blobs = datasets["blobs"]
    points, truth = blobs[feature_columns(blobs)].to_numpy(), blobs[TARGET].to_numpy()
    models = clustering.clusterers(
        p.n_clusters, p.kmeans_n_init, p.dbscan_eps, p.dbscan_min_samples, p.linkage, p.seed
    )
    scores = {r.name: r.scores(points, truth) for r in clustering.run_clusterers(points, models)}
    expected = {
        "kmeans": (1.0, 0.8756469540734731),
        "dbscan": (0.9401365471984884, 0.798445504327423),
        "agglomerative": (1.0, 0.8756469540734731),
    }
    for name, (ari, silhouette) in expected.items():
        assert scores[name]["ari"] == pytest.approx(ari, rel=EXACT), name
        assert scores[name]["silhouette"] == pytest.approx(silhouette, rel=EXACT), name
    assert scores["kmeans"]["n_clusters"] == 4
    assert scores["dbscan"]["noise_fraction"] > 0  # DBSCAN leaves some points as noise


def test_pca_explained_variance(datasets):
    digits = datasets["digits"]
    pixels = digits[feature_columns(digits)].to_numpy()
    pca_2d, ratio = embedding.principal_components(pixels)
    assert ratio[:2].sum() == pytest.approx(0.28509364823699285, rel=EXACT)
    assert ratio[:10] == pytest.approx(
        [
            0.14890593584063844,
            0.1361877123963544,
            0.11794593763975791,
            0.08409979421009181,
            0.057824146640055286,
            0.04916910317124002,
            0.04315987010825783,
            0.03661372577084056,
            0.033532480979671306,
            0.030788062089045515,
        ],
        rel=EXACT,
    )
    # The curriculum's PCA(n_components=2), same signs.
    np.testing.assert_allclose(pca_2d, PCA(n_components=2).fit_transform(pixels), atol=1e-9)


def test_ridge_alpha_selection(params: Params, split):
    x, train, val, test = split("regression_10d")
    spec = params.regularization.ridge_alphas
    sweep = reg.ridge_sweep(
        train[x], train[TARGET], val[x], val[TARGET], np.logspace(spec.start, spec.stop, spec.num)
    )
    assert sweep.best_alpha == pytest.approx(7.9060432109076855, rel=EXACT)
    assert sweep.val_mse[sweep.best_index] == pytest.approx(90.22307576777956, rel=EXACT)
    model = reg.scaled_ridge(sweep.best_alpha).fit(train[x], train[TARGET])
    test_mse = evaluate_model(model, "regression", test[x], test[TARGET]).scores["test_mse"]
    assert test_mse == pytest.approx(96.5531263666043, rel=EXACT)


DEGREES = {
    1: (0.3806821997544343, 2.2192254319621663, EXACT),
    3: (0.0824400909129623, 83.20761179225407, EXACT),
    9: (0.06123834397236351, 59359.28248496911, EXACT),
    15: (0.059078655912884886, 14580887.073050428, ILL_CONDITIONED),
}

RIDGE_DEGREE_9 = {
    0: (0.05981665599856753, 761967.4230207932, ILL_CONDITIONED),
    0.1: (0.22417351903211047, 18.584867445470525, EXACT),
    1: (0.33122875384374667, 1.1085376203922002, EXACT),
    10: (0.37771785582945444, 1.6130456186726636, EXACT),
    100: (0.38384102775855616, 1.8014151813063606, EXACT),
}


def fit_noisy_sine(split, models: dict[str, object]) -> list[reg.CurveFit]:
    x, train, _, test = split("noisy_sine")
    return reg.fit_curves(models, train[x], train[TARGET], test[x], test[TARGET])


def test_polynomial_degree_study(params: Params, split):
    assert params.regularization.degrees == list(DEGREES)
    fits = fit_noisy_sine(split, {f"Degree {d}": reg.polynomial_model(d) for d in DEGREES})
    for fit, (degree, (train_mse, test_mse, rel)) in zip(fits, DEGREES.items(), strict=True):
        assert fit.label == f"Degree {degree}"
        assert fit.train_mse == pytest.approx(train_mse, rel=rel), degree
        assert fit.test_mse == pytest.approx(test_mse, rel=rel), degree


def test_ridge_strengths_on_degree_9(params: Params, split):
    p = params.regularization
    assert p.ridge_degree == 9 and p.ridge_strengths == list(RIDGE_DEGREE_9)
    fits = fit_noisy_sine(split, {f"alpha {a}": reg.polynomial_model(9, a) for a in RIDGE_DEGREE_9})
    for fit, (alpha, (train_mse, test_mse, rel)) in zip(fits, RIDGE_DEGREE_9.items(), strict=True):
        assert fit.train_mse == pytest.approx(train_mse, rel=rel), alpha
        assert fit.test_mse == pytest.approx(test_mse, rel=rel), alpha


def test_lasso_feature_selection(params: Params, split):
    p = params.regularization
    x, train, _, test = split("regression_sparse")
    lasso = reg.fit_lasso(train[x], train[TARGET], p.lasso_alpha)
    assert reg.selected_features(lasso, p.selection_threshold) == [0, 2, 4, 6, 8, 9, 13, 15, 17, 18]
    test_mse = mean_squared_error(test[TARGET], lasso.predict(test[x]))
    assert test_mse == pytest.approx(170.20708976706385, rel=EXACT)
