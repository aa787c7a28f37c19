"""Model selection and regularization.

Curriculum: "Training, Validation, and Testing" (ridge alpha sweep on a 60/20/20 split,
learning curve) and "Overfitting and Regularization" (polynomial degrees, ridge strengths
on degree 9, ridge vs lasso coefficient paths, lasso feature selection).
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.figure
import numpy as np
from sklearn.linear_model import Lasso, LinearRegression, Ridge
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import learning_curve
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from mlfund.figures import model_input, new_figure


def number_slug(value: float) -> str:
    """`0.1 -> "0p1"`: a number usable in a metric path (DVC splits paths on dots)."""
    return f"{value:g}".replace(".", "p").replace("-", "m")


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


def selection_figure(
    sweep: RidgeSweep, curve: LearningCurve, test_pred: np.ndarray, y_test: np.ndarray
) -> matplotlib.figure.Figure:
    """Validation curve, learning curve and test residuals of the selected ridge."""
    figure, axes = new_figure(ncols=3)
    ax = axes[0, 0]
    # log-log: the minimum sits near the noise floor, far below the large-alpha plateau
    ax.loglog(sweep.alphas, sweep.train_mse, "b-", label="Training MSE")
    ax.loglog(sweep.alphas, sweep.val_mse, "r-", label="Validation MSE")
    ax.axvline(sweep.best_alpha, color="g", linestyle="--", label=f"Best α={sweep.best_alpha:.4g}")
    ax.set(title="Validation Curve", xlabel="Regularization parameter α", ylabel="MSE")
    ax.legend()
    ax.grid(True)

    ax = axes[0, 1]
    for scores, color, label in ((curve.train_mse, "b", "Training"), (curve.val_mse, "r", "CV")):
        mean, std = scores.mean(axis=1), scores.std(axis=1)
        ax.plot(curve.train_sizes, mean, f"{color}-", label=f"{label} MSE")
        ax.fill_between(curve.train_sizes, mean - std, mean + std, alpha=0.2, color=color)
    folds = curve.val_mse.shape[1]
    ax.set(title=f"Learning Curve ({folds}-fold CV)", xlabel="Training set size", ylabel="MSE")
    ax.legend()
    ax.grid(True)

    ax = axes[0, 2]
    ax.scatter(test_pred, y_test - test_pred, alpha=0.6)
    ax.axhline(0, color="r", linestyle="--")
    ax.set(title="Residual Plot (Test Set)", xlabel="Predicted value", ylabel="Residual")
    ax.grid(True)
    return figure


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


def curves_figure(
    fits: list[CurveFit],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    ncols: int,
) -> matplotlib.figure.Figure:
    """Each fit over the data, flagged when test MSE is more than twice the train MSE.

    The curriculum prints "OVERFITTING!" for that, but on this extrapolation split the
    straight line (an under-fit) trips it too, so the flag states the measured fact.
    """
    nrows = -(-len(fits) // ncols)
    figure, axes = new_figure(ncols=ncols, nrows=nrows)
    grid = np.linspace(min(x_train.min(), x_test.min()), max(x_train.max(), x_test.max()), 200)
    everything = np.concatenate([y_train, y_test])
    margin = 0.5 * np.ptp(everything)
    for ax, fit in zip(axes.ravel(), fits, strict=False):
        ax.scatter(x_train, y_train, alpha=0.6, label="Training data")
        ax.scatter(x_test, y_test, alpha=0.6, color="red", label="Test data")
        ax.plot(
            grid,
            fit.model.predict(model_input(fit.model, grid.reshape(-1, 1))),
            color="green",
            lw=2,
            label="Fit",
        )
        # High degrees shoot off to +-1e4 outside the training range; keep the data in view.
        ax.set_ylim(everything.min() - margin, everything.max() + margin)
        ax.set_title(f"{fit.label}\nTrain MSE: {fit.train_mse:.3f}, Test MSE: {fit.test_mse:.3g}")
        ax.legend(loc="lower left", fontsize="small")
        ax.grid(True)
        if fit.test_mse > 2 * fit.train_mse:
            ax.text(
                0.5,
                0.93,
                "test MSE > 2x train MSE",
                transform=ax.transAxes,
                fontsize=11,
                color="red",
                weight="bold",
                ha="center",
            )
    for ax in axes.ravel()[len(fits) :]:
        ax.set_visible(False)
    return figure


# ---------------------------------------------------------------- ridge vs lasso
@dataclass(frozen=True)
class CoefficientPaths:
    alphas: np.ndarray
    ridge: np.ndarray  # (n_alphas, n_features)
    lasso: np.ndarray  # (n_alphas, n_features)


def coefficient_paths(
    features: np.ndarray, target: np.ndarray, alphas: np.ndarray, max_iter: int
) -> CoefficientPaths:
    ridge = [Ridge(alpha=a).fit(features, target).coef_ for a in alphas]
    lasso = [Lasso(alpha=a, max_iter=max_iter).fit(features, target).coef_ for a in alphas]
    return CoefficientPaths(np.asarray(alphas), np.array(ridge), np.array(lasso))


def selected_features(model: Lasso, threshold: float) -> list[int]:
    """Indices of the coefficients whose magnitude exceeds `threshold`."""
    return np.flatnonzero(np.abs(model.coef_) > threshold).tolist()


def paths_figure(paths: CoefficientPaths, lasso_alpha: float) -> matplotlib.figure.Figure:
    figure, axes = new_figure(ncols=2, width=7)
    for ax, coefs, name in ((axes[0, 0], paths.ridge, "Ridge"), (axes[0, 1], paths.lasso, "Lasso")):
        ax.semilogx(paths.alphas, coefs)
        ax.set(
            title=f"{name} Regression Coefficient Path",
            xlabel="Regularization parameter α",
            ylabel="Coefficient value",
        )
        ax.grid(True)
    axes[0, 1].axvline(
        lasso_alpha, color="k", linestyle=":", lw=1, label=f"selection α={lasso_alpha:g}"
    )
    axes[0, 1].legend()
    return figure
