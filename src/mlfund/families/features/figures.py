"""Figures of the features family."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.figure
import pandas as pd
from matplotlib.patches import Patch
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from mlfund.core.figures import new_figure

if TYPE_CHECKING:
    from mlfund.families.features import Selection


# Report captions, in the order the report shows the figures.
CAPTIONS = {
    "engineering": "Feature engineering on the salary table (training split).",
    "engineering_comparison": "The same learners with raw and engineered inputs.",
}


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
