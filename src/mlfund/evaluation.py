"""Held-out scores and plot data for any saved model, by task.

Metric names put the split first (`test_accuracy`, `test_mse`) so reports/metrics.json,
MLflow and the CI gate all use the same paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics

from mlfund.core.modelstore import Task


@dataclass(frozen=True)
class Evaluation:
    scores: dict[str, float]
    # plot name -> rows for `dvc plots` (confusion: actual/predicted; roc: fpr/tpr; ...)
    plots: dict[str, pd.DataFrame] = field(default_factory=dict)


def evaluate_model(model: Any, task: Task, features: pd.DataFrame, target: pd.Series) -> Evaluation:
    if len(features) == 0:
        raise ValueError("no test rows to evaluate on")
    predicted = model.predict(features)
    actual = target.to_numpy()
    if task == "classification":
        return _classification(model, features, actual, predicted)
    return _regression(actual, predicted)


def _classification(
    model: Any, features: pd.DataFrame, actual: np.ndarray, predicted: np.ndarray
) -> Evaluation:
    scores = {
        "test_accuracy": metrics.accuracy_score(actual, predicted),
        "test_f1_macro": metrics.f1_score(actual, predicted, average="macro"),
    }
    plots = {"confusion": pd.DataFrame({"actual": actual, "predicted": predicted})}
    if len(np.unique(actual)) == 2 and hasattr(model, "predict_proba"):
        # the second of the model's classes is the positive one, whatever its label
        positive = model.predict_proba(features)[:, 1]
        positive_label = model.classes_[1]
        scores["test_roc_auc"] = metrics.roc_auc_score(actual == positive_label, positive)
        fpr, tpr, _ = metrics.roc_curve(actual, positive, pos_label=positive_label)
        plots["roc"] = pd.DataFrame({"fpr": fpr, "tpr": tpr})
    return Evaluation({k: float(v) for k, v in scores.items()}, plots)


def _regression(actual: np.ndarray, predicted: np.ndarray) -> Evaluation:
    scores = {
        "test_mse": metrics.mean_squared_error(actual, predicted),
        "test_mae": metrics.mean_absolute_error(actual, predicted),
        "test_r2": metrics.r2_score(actual, predicted),
    }
    plots = {"predictions": pd.DataFrame({"actual": actual, "predicted": predicted})}
    return Evaluation({k: float(v) for k, v in scores.items()}, plots)
