"""The features family through its pure entry point, on the default salary split.

Forests of 20 trees instead of params' 50 keep the file fast; the linear learners do not
depend on them, so their validation R² are the pipeline's.
"""

from __future__ import annotations

import pytest

from mlfund.core import registry
from mlfund.core.tables import model_columns

pytestmark = pytest.mark.usefixtures("close_figures")

TREES = 20


def titles(figure) -> list[str]:
    return [ax.get_title() for ax in figure.axes if ax.get_visible()]


@pytest.fixture(scope="module")
def section(params):
    return (
        registry.get("features").section(params).model_copy(update={"forest_n_estimators": TREES})
    )


@pytest.fixture(scope="module")
def result(section, inputs):
    return registry.get("features").run(section, inputs, None)


def test_runs_and_saved_models(result, section) -> None:
    runs = {run.name: run for run in result.runs}
    assert list(runs) == [
        "selection",
        "linear_raw",
        "linear_engineered",
        "linear_kbest",
        "forest_raw",
        "forest_engineered",
    ]
    assert runs["selection"].model is None and list(runs["selection"].figures) == ["engineering"]
    for name, run in runs.items():
        if name == "selection":
            continue
        engineered = not name.endswith("_raw")
        assert run.params == {**section.model_dump(), "engineered": engineered}
        assert list(run.model.features.columns) == model_columns(engineered)
        assert run.model.task == "regression" and run.model.target == "salary"
        assert run.metrics["n_inputs"] == len(model_columns(engineered))
        assert not run.figures
    # the comparison figure is saved but attached to no run
    assert list(result.figures) == ["engineering", "engineering_comparison"]
    assert list(result.captions) == list(result.figures)


def test_does_engineering_help(result) -> None:
    """The family's question, answered on validation rows: salary is linear in the raw
    inputs, so engineering does not help the linear learner, and the forests trail it."""
    val_r2 = {
        name: values["val_r2"] for name, values in result.metrics.items() if name != "selection"
    }
    assert val_r2 == pytest.approx(
        {
            "linear_raw": 0.9799320105176872,
            "linear_engineered": 0.9792552864192628,
            "linear_kbest": 0.9792073825604306,
            "forest_raw": 0.9554896767648738,  # 20 trees
            "forest_engineered": 0.9567431209038322,
        },
        abs=1e-6,
    )
    assert val_r2["linear_raw"] > 0.97
    assert 0 < val_r2["linear_raw"] - val_r2["linear_engineered"] < 0.002
    assert max(val_r2["forest_raw"], val_r2["forest_engineered"]) < val_r2["linear_raw"] - 0.01


def test_selection(result, section) -> None:
    selection = result.runs[0]
    kbest, rfe = result.extras["selection"]["kbest"], result.extras["selection"]["rfe"]
    assert selection.metrics == {"n_candidates": 16, "n_kbest": section.k_best, "n_rfe": 8}
    assert len(kbest) == section.k_best and len(rfe) == section.rfe_n_features
    assert set(kbest) | set(rfe) <= set(model_columns(engineered=True))
    # income and its log carry the target: every selector keeps them
    assert {"income", "log_income"} <= set(kbest) & set(rfe)
    assert selection.tags == {"kbest_features": ",".join(kbest), "rfe_features": ",".join(rfe)}
    assert [note.text for note in result.notes] == [
        f"SelectKBest keeps {', '.join(kbest)}. RFE keeps {', '.join(rfe)}."
    ]
    importances = result.plots["importances"]
    assert list(importances.columns) == ["feature", "importance"] and len(importances) == 16
    assert importances["importance"].is_monotonic_decreasing
    assert importances["importance"].sum() == pytest.approx(1.0)


@pytest.mark.parametrize(("k", "rfe_n"), [(17, 3), (5, 17), (0, 3)])
def test_bad_selection_counts_are_rejected(section, inputs, k: int, rfe_n: int) -> None:
    bad = section.model_copy(update={"k_best": k, "rfe_n_features": rfe_n})
    with pytest.raises(ValueError, match=r"must be in 1\.\.16"):
        registry.get("features").run(bad, inputs, None)


def test_figures(result) -> None:
    engineering = result.figures["engineering"]
    assert len([ax for ax in engineering.axes if ax.get_visible()]) == 6
    assert "Age Group Distribution (Binning Result)" in titles(engineering)
    comparison = result.figures["engineering_comparison"]
    assert titles(comparison) == ["Does feature engineering help? (validation R²)"]
    lowest = min(v["val_r2"] for k, v in result.metrics.items() if k != "selection")
    assert comparison.axes[0].get_ylim()[0] == pytest.approx(lowest - 0.05)
