"""Feature scaling and selection on the salary table, and whether engineering helps.

Curriculum: "Feature Engineering". Scalers, selectors and models are fitted on the
training split only; the engineering question is answered on held-out rows by comparing
the same learners with raw and with engineered inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.figure
import pandas as pd
from matplotlib.patches import Patch
from sklearn.ensemble import RandomForestRegressor
from sklearn.feature_selection import RFE, SelectKBest, f_regression
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from mlfund.feature_engineering import model_columns
from mlfund.figures import new_figure


@dataclass(frozen=True)
class Selection:
    kbest: list[str]  # SelectKBest(f_regression)
    rfe: list[str]  # RFE with a random forest
    importances: pd.Series  # random-forest impurity importances, descending
    correlations: pd.Series  # |Pearson r| with the target, descending


def select_features(
    train: pd.DataFrame, target: pd.Series, k: int, rfe_n: int, n_estimators: int, seed: int
) -> Selection:
    """The curriculum's three selectors on standardized training features."""
    columns = list(train.columns)
    if not (0 < k <= len(columns) and 0 < rfe_n <= len(columns)):
        raise ValueError(f"k_best={k} and rfe_n_features={rfe_n} must be in 1..{len(columns)}")
    scaled = pd.DataFrame(StandardScaler().fit_transform(train), columns=columns)
    kbest = SelectKBest(f_regression, k=k).fit(scaled, target)
    forest = RandomForestRegressor(n_estimators=n_estimators, random_state=seed)
    rfe = RFE(forest, n_features_to_select=rfe_n).fit(scaled, target)
    forest.fit(scaled, target)
    return Selection(
        kbest=[c for c, keep in zip(columns, kbest.get_support(), strict=True) if keep],
        rfe=[c for c, keep in zip(columns, rfe.get_support(), strict=True) if keep],
        importances=pd.Series(forest.feature_importances_, index=columns).sort_values(
            ascending=False
        ),
        correlations=scaled.corrwith(target.reset_index(drop=True))
        .abs()
        .sort_values(ascending=False),
    )


def engineering_models(k: int, n_estimators: int, seed: int) -> dict[str, tuple[Pipeline, bool]]:
    """Learners to compare, each with whether it takes the engineered columns."""

    def forest() -> RandomForestRegressor:
        return RandomForestRegressor(n_estimators=n_estimators, random_state=seed)

    return {
        "linear_raw": (make_pipeline(StandardScaler(), LinearRegression()), False),
        "linear_engineered": (make_pipeline(StandardScaler(), LinearRegression()), True),
        "linear_kbest": (
            make_pipeline(StandardScaler(), SelectKBest(f_regression, k=k), LinearRegression()),
            True,
        ),
        "forest_raw": (make_pipeline(StandardScaler(), forest()), False),
        "forest_engineered": (make_pipeline(StandardScaler(), forest()), True),
    }


def inputs(table: pd.DataFrame, engineered: bool) -> pd.DataFrame:
    return table[model_columns(engineered)].astype("float64")


def engineering_figure(
    train: pd.DataFrame, selection: Selection, top: int = 10
) -> matplotlib.figure.Figure:
    """The curriculum's six panels, computed on the training split."""
    figure, axes = new_figure(ncols=3, nrows=2, width=6, height=5)
    axes[0, 0].hist(train["income"], bins=30, alpha=0.7)
    axes[0, 0].set(title="Original Income Distribution", xlabel="Income")
    axes[0, 1].hist(train["log_income"], bins=30, alpha=0.7, color="orange")
    axes[0, 1].set(title="Log-Transformed Income Distribution", xlabel="log(1 + income)")

    for ax, values, title, xlabel in (
        (axes[0, 2], selection.correlations, "Feature Correlation with Target", "|correlation|"),
        (axes[1, 0], selection.importances, "Random Forest Feature Importance", "importance"),
    ):
        shown = values.iloc[:top][::-1]  # largest at the top
        ax.barh(range(len(shown)), shown.to_numpy())
        ax.set_yticks(range(len(shown)), shown.index)
        ax.set(title=title, xlabel=xlabel)

    # Raw income (~5e4) would flatten the scaled boxes; the histogram above shows it.
    income = train[["income"]].to_numpy()
    axes[1, 1].boxplot(
        [
            StandardScaler().fit_transform(income).ravel(),
            MinMaxScaler().fit_transform(income).ravel(),
        ],
        tick_labels=["StandardScaler", "MinMaxScaler"],
    )
    axes[1, 1].set(title="Income After Scaling", ylabel="scaled value")

    groups = train["age_group"].value_counts()
    axes[1, 2].pie(groups.to_numpy(), labels=groups.index, autopct="%1.1f%%")
    axes[1, 2].set_title("Age Group Distribution (Binning Result)")
    return figure


def comparison_figure(val_r2: dict[str, float]) -> matplotlib.figure.Figure:
    """Validation R² per learner: does engineering help?"""
    figure, axes = new_figure(width=7)
    ax = axes[0, 0]
    names = list(val_r2)
    colors = ["tab:orange" if "raw" in n else "tab:blue" for n in names]
    ax.bar(names, [val_r2[n] for n in names], color=colors)
    low = min(val_r2.values())
    ax.set_ylim(max(0.0, low - 0.05), 1.0)
    ax.set(title="Does feature engineering help? (validation R²)", ylabel="R²")
    ax.tick_params(axis="x", rotation=20)
    ax.legend(
        handles=[
            Patch(color="tab:orange", label="raw inputs"),
            Patch(color="tab:blue", label="engineered inputs"),
        ],
        loc="lower left",
    )
    for i, name in enumerate(names):
        ax.text(i, val_r2[name], f"{val_r2[name]:.4f}", ha="center", va="bottom")
    return figure


def r2(model: Pipeline, features: pd.DataFrame, target: pd.Series) -> float:
    return float(model.score(features, target))
