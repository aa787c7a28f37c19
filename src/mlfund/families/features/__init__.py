"""Feature scaling and selection on the salary table, and whether engineering helps.

Curriculum: "Feature Engineering". Scalers, selectors and models are fitted on the
training split only; the engineering question is answered on held-out rows by comparing
the same learners with raw and with engineered inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.ensemble import RandomForestRegressor
from sklearn.feature_selection import RFE, SelectKBest, f_regression
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from mlfund.core.config import FeaturesParams
from mlfund.core.family import FamilyResult, Inputs, ModelRun, SavedModel
from mlfund.core.feature_engineering import TARGET
from mlfund.core.report import Paragraph
from mlfund.core.tables import model_columns
from mlfund.families.features.figures import CAPTIONS, comparison_figure, engineering_figure


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


def design_matrix(table: pd.DataFrame, engineered: bool) -> pd.DataFrame:
    """A learner's inputs: the raw or the engineered model columns, as floats."""
    return table[model_columns(engineered)].astype("float64")


def r2(model: Pipeline, features: pd.DataFrame, target: pd.Series) -> float:
    return float(model.score(features, target))


def run(p: FeaturesParams, inputs: Inputs, compute: None = None) -> FamilyResult:
    """Selection on the engineered training columns, then raw vs engineered learners."""
    salary = inputs.split("salary")
    train, val = salary.train, salary.val
    selection = select_features(
        design_matrix(train, engineered=True),
        train[TARGET],
        p.k_best,
        p.rfe_n_features,
        p.forest_n_estimators,
        p.seed,
    )
    runs = [
        ModelRun(
            "selection",
            "salary",
            p.model_dump(),
            {
                "n_candidates": len(model_columns(engineered=True)),
                "n_kbest": len(selection.kbest),
                "n_rfe": len(selection.rfe),
            },
            figures=["engineering"],
            tags={
                "kbest_features": ",".join(selection.kbest),
                "rfe_features": ",".join(selection.rfe),
            },
        )
    ]
    figures = {"engineering": engineering_figure(train, selection)}

    val_r2 = {}
    for name, (model, engineered) in engineering_models(
        p.k_best, p.forest_n_estimators, p.seed
    ).items():
        x_train, x_val = design_matrix(train, engineered), design_matrix(val, engineered)
        model.fit(x_train, train[TARGET])
        val_r2[name] = r2(model, x_val, val[TARGET])
        metrics = {
            "train_r2": r2(model, x_train, train[TARGET]),
            "val_r2": val_r2[name],
            "n_inputs": x_train.shape[1],
        }
        runs.append(
            ModelRun(
                name,
                "salary",
                {**p.model_dump(), "engineered": engineered},
                metrics,
                SavedModel(model, "regression", x_train, TARGET),
            )
        )
    # saved beside the others but attached to no run, as before the registry
    figures["engineering_comparison"] = comparison_figure(val_r2)
    importances = selection.importances.rename("importance").rename_axis("feature").reset_index()
    return FamilyResult(
        runs,
        figures=figures,
        plots={"importances": importances},
        extras={"selection": {"kbest": selection.kbest, "rfe": selection.rfe}},
        captions=CAPTIONS,
        notes=[
            Paragraph(
                f"SelectKBest keeps {', '.join(selection.kbest)}. "
                f"RFE keeps {', '.join(selection.rfe)}."
            )
        ],
    )
