"""Model selection and regularization.

Curriculum: "Training, Validation, and Testing" (ridge alpha sweep on a 60/20/20 split,
learning curve) and "Overfitting and Regularization" (polynomial degrees, ridge strengths
on degree 9, ridge vs lasso coefficient paths, lasso feature selection).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import Lasso, LinearRegression, Ridge
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import learning_curve
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from mlfund.core.config import LogSpace, RegularizationParams
from mlfund.core.datasets import TARGET
from mlfund.core.family import FamilyResult, Inputs, ModelRun, SavedModel
from mlfund.core.figures import number_slug
from mlfund.core.report import Paragraph
from mlfund.families.regularization.figures import (
    CAPTIONS,
    curves_figure,
    paths_figure,
    selection_figure,
)


def logspace(spec: LogSpace) -> np.ndarray:
    return np.logspace(spec.start, spec.stop, spec.num)


# ---------------------------------------------------------------- ridge alpha sweep
@dataclass(frozen=True)
class RidgeSweep:
    alphas: np.ndarray
    train_mse: np.ndarray
    val_mse: np.ndarray

    @property
    def best_index(self) -> int:
        return int(np.argmin(self.val_mse))

    @property
    def best_alpha(self) -> float:
        return float(self.alphas[self.best_index])


def scaled_ridge(alpha: float) -> Pipeline:
    """Ridge on standardized features; the scaler is fitted on the training rows only."""
    return make_pipeline(StandardScaler(), Ridge(alpha=alpha))


def ridge_sweep(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    alphas: np.ndarray,
) -> RidgeSweep:
    """Train and validation MSE of a scaled ridge for every alpha."""
    train_mse, val_mse = [], []
    for alpha in alphas:
        model = scaled_ridge(alpha).fit(x_train, y_train)
        train_mse.append(mean_squared_error(y_train, model.predict(x_train)))
        val_mse.append(mean_squared_error(y_val, model.predict(x_val)))
    return RidgeSweep(np.asarray(alphas), np.array(train_mse), np.array(val_mse))


@dataclass(frozen=True)
class LearningCurve:
    train_sizes: np.ndarray
    train_mse: np.ndarray  # (n_sizes, n_folds)
    val_mse: np.ndarray  # (n_sizes, n_folds)


def ridge_learning_curve(
    x_train: np.ndarray, y_train: np.ndarray, alpha: float, folds: int, points: int
) -> LearningCurve:
    """K-fold learning curve of the chosen ridge, sizes from 10% to 100% of a fold's train."""
    sizes, train_scores, val_scores = learning_curve(
        scaled_ridge(alpha),
        x_train,
        y_train,
        cv=folds,
        train_sizes=np.linspace(0.1, 1.0, points),
        scoring="neg_mean_squared_error",
    )
    return LearningCurve(sizes, -train_scores, -val_scores)


# ---------------------------------------------------------------- over-fitting studies
def polynomial_model(degree: int, alpha: float | None = None) -> Pipeline:
    """Polynomial features then least squares (alpha None) or ridge(alpha)."""
    head = LinearRegression() if alpha is None else Ridge(alpha=alpha)
    return make_pipeline(PolynomialFeatures(degree=degree), head)


@dataclass(frozen=True)
class CurveFit:
    label: str
    model: Pipeline
    train_mse: float
    test_mse: float


def fit_curves(
    models: dict[str, Pipeline],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
) -> list[CurveFit]:
    fits = []
    for label, model in models.items():
        model.fit(x_train, y_train)
        fits.append(
            CurveFit(
                label,
                model,
                float(mean_squared_error(y_train, model.predict(x_train))),
                float(mean_squared_error(y_test, model.predict(x_test))),
            )
        )
    return fits


# ---------------------------------------------------------------- ridge vs lasso
@dataclass(frozen=True)
class CoefficientPaths:
    alphas: np.ndarray
    ridge: np.ndarray  # (n_alphas, n_features)
    lasso: np.ndarray  # (n_alphas, n_features)


def fit_lasso(features: pd.DataFrame, target: pd.Series, alpha: float) -> Lasso:
    return Lasso(alpha=alpha).fit(features, target)


def coefficient_paths(
    features: np.ndarray, target: np.ndarray, alphas: np.ndarray, max_iter: int
) -> CoefficientPaths:
    ridge = [Ridge(alpha=a).fit(features, target).coef_ for a in alphas]
    lasso = [Lasso(alpha=a, max_iter=max_iter).fit(features, target).coef_ for a in alphas]
    return CoefficientPaths(np.asarray(alphas), np.array(ridge), np.array(lasso))


def selected_features(model: Lasso, threshold: float) -> list[int]:
    """Indices of the coefficients whose magnitude exceeds `threshold`."""
    return np.flatnonzero(np.abs(model.coef_) > threshold).tolist()


# ---------------------------------------------------------------- the family
def run(p: RegularizationParams, inputs: Inputs, compute: None = None) -> FamilyResult:
    """Ridge selection, the over-fitting studies, then ridge vs lasso, in that order."""
    ridge = select_ridge(p, inputs)
    curves = overfitting_studies(p, inputs)
    lasso = lasso_selection(p, inputs)
    parts = (ridge, curves, lasso)
    return FamilyResult(
        [r for part in parts for r in part.runs],
        figures={k: v for part in parts for k, v in part.figures.items()},
        plots=ridge.plots,
        extras=lasso.extras,
        captions=CAPTIONS,
        notes=lasso.notes,
    )


def select_ridge(p: RegularizationParams, inputs: Inputs) -> FamilyResult:
    """Three-way split: alpha chosen on validation rows; test is scored once, in evaluate."""
    data = inputs.split("regression_10d")
    x, train, val, test = data.features, data.train, data.val, data.test
    sweep = ridge_sweep(train[x], train[TARGET], val[x], val[TARGET], logspace(p.ridge_alphas))
    curve = ridge_learning_curve(
        train[x], train[TARGET], sweep.best_alpha, p.cv_folds, p.learning_curve_points
    )
    model = scaled_ridge(sweep.best_alpha).fit(train[x], train[TARGET])
    ridge = ModelRun(
        "ridge_selected",
        "regression_10d",
        p.model_dump(),
        {
            "best_alpha": sweep.best_alpha,
            "val_mse": sweep.val_mse[sweep.best_index],
            "train_mse": sweep.train_mse[sweep.best_index],
            "cv_val_mse": curve.val_mse[-1].mean(),
        },
        SavedModel(model, "regression", train[x], TARGET),
        history={
            "sweep_alpha": sweep.alphas,
            "sweep_train_mse": sweep.train_mse,
            "sweep_val_mse": sweep.val_mse,
        },
        figures=["model_selection"],
    )
    figure = selection_figure(sweep, curve, model.predict(test[x]), test[TARGET])
    plots = {
        "validation_curve": pd.DataFrame(
            {"alpha": sweep.alphas, "train_mse": sweep.train_mse, "val_mse": sweep.val_mse}
        ),
        "learning_curve": pd.DataFrame(
            {
                "train_size": curve.train_sizes,
                "train_mse": curve.train_mse.mean(axis=1),
                "val_mse": curve.val_mse.mean(axis=1),
            }
        ),
    }
    return FamilyResult([ridge], figures={"model_selection": figure}, plots=plots)


def overfitting_studies(p: RegularizationParams, inputs: Inputs) -> FamilyResult:
    """Polynomial degrees, then ridge strengths on one high degree (noisy sine)."""
    data = inputs.split("noisy_sine")
    x, train, test = data.features, data.train, data.test
    studies = {
        "degrees": {
            f"polynomial_degree_{d}": (f"Degree {d}", polynomial_model(d)) for d in p.degrees
        },
        "ridge_strengths": {
            f"ridge_degree{p.ridge_degree}_alpha_{number_slug(a)}": (
                f"Ridge α={a:g} (degree {p.ridge_degree})",
                polynomial_model(p.ridge_degree, a),
            )
            for a in p.ridge_strengths
        },
    }
    result = FamilyResult([])
    for study, entries in studies.items():
        fits = fit_curves(dict(entries.values()), train[x], train[TARGET], test[x], test[TARGET])
        result.figures[study] = curves_figure(
            fits,
            train[x].to_numpy(),
            train[TARGET].to_numpy(),
            test[x].to_numpy(),
            test[TARGET].to_numpy(),
            ncols=2 if study == "degrees" else len(fits),
        )
        result.runs += [
            ModelRun(
                name,
                "noisy_sine",
                {"study": study, "model": fit.label},
                {"train_mse": fit.train_mse},
                SavedModel(fit.model, "regression", train[x], TARGET),
                figures=[study],
            )
            for name, fit in zip(entries, fits, strict=True)
        ]
    return result


def lasso_selection(p: RegularizationParams, inputs: Inputs) -> FamilyResult:
    """Ridge vs lasso coefficient paths, and the features the final lasso keeps."""
    data = inputs.split("regression_sparse")
    x, train = data.features, data.train
    paths = coefficient_paths(
        train[x].to_numpy(), train[TARGET].to_numpy(), logspace(p.path_alphas), p.lasso_max_iter
    )
    lasso = fit_lasso(train[x], train[TARGET], p.lasso_alpha)
    selected = selected_features(lasso, p.selection_threshold)
    run = ModelRun(
        "lasso",
        "regression_sparse",
        p.model_dump(),
        {"n_features": len(x), "n_selected": len(selected)},
        SavedModel(lasso, "regression", train[x], TARGET),
        figures=["coefficient_paths"],
        tags={"selected_features": ",".join(map(str, selected))},
    )
    return FamilyResult(
        [run],
        figures={"coefficient_paths": paths_figure(paths, p.lasso_alpha)},
        extras={
            "lasso_selection": {
                "selected_feature_indices": selected,
                "threshold": p.selection_threshold,
            }
        },
        notes=[
            Paragraph(
                f"Lasso (alpha from params) keeps features {selected} "
                f"(|coef| > {p.selection_threshold})."
            )
        ],
    )
