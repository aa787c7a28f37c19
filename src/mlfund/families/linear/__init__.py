"""Linear models: logistic regression, and linear vs polynomial regression.

Curriculum: "Basic Concepts > Supervised Learning" (classification and regression).
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import PolynomialFeatures

from mlfund.core.config import LinearParams
from mlfund.core.datasets import TARGET
from mlfund.core.family import FamilyResult, Inputs, ModelRun, SavedModel
from mlfund.families.linear.figures import (
    CAPTIONS,
    decision_boundary_figure,
    regression_fits_figure,
)


def fit_logistic(features: np.ndarray, labels: np.ndarray, c: float) -> LogisticRegression:
    return LogisticRegression(C=c).fit(features, labels)


def fit_linear(features: np.ndarray, target: np.ndarray) -> LinearRegression:
    return LinearRegression().fit(features, target)


def fit_polynomial(features: np.ndarray, target: np.ndarray, degree: int) -> Pipeline:
    """Least squares on polynomial features (bias column included, as the curriculum)."""
    model = make_pipeline(PolynomialFeatures(degree=degree), LinearRegression())
    return model.fit(features, target)


def run(p: LinearParams, inputs: Inputs, compute: None = None) -> FamilyResult:
    """Logistic regression on the 2-D classes; linear and polynomial fits of the 1-D curve."""
    data = inputs.split("classification_2d")
    x, train, test = data.features, data.train, data.test
    model = fit_logistic(train[x], train[TARGET], p.logistic_c)
    runs = [
        ModelRun(
            "logistic_regression",
            "classification_2d",
            p.model_dump(),
            {"train_accuracy": model.score(train[x], train[TARGET])},
            SavedModel(model, "classification", train[x], TARGET),
            figures=["decision_boundary"],
        )
    ]
    figures = {
        "decision_boundary": decision_boundary_figure(
            model,
            test[x].to_numpy(),
            test[TARGET].to_numpy(),
            p.boundary_grid_step,
            "Logistic Regression Decision Boundary (test set)",
        )
    }

    data = inputs.split("regression_1d")
    x, train, test = data.features, data.train, data.test
    models = {
        "linear_regression": fit_linear(train[x], train[TARGET]),
        "polynomial_regression": fit_polynomial(train[x], train[TARGET], p.poly_degree),
    }
    titles = ["Linear Regression", f"Polynomial Regression (degree {p.poly_degree})"]
    figures["regression_fits"] = regression_fits_figure(
        test[x].to_numpy(), test[TARGET].to_numpy(), dict(zip(titles, models.values(), strict=True))
    )
    runs += [
        ModelRun(
            name,
            "regression_1d",
            p.model_dump(),
            {"train_r2": model.score(train[x], train[TARGET])},
            SavedModel(model, "regression", train[x], TARGET),
            figures=["regression_fits"],
        )
        for name, model in models.items()
    ]
    return FamilyResult(runs, figures=figures, captions=CAPTIONS)
