"""The embedding family through its pure entry point, on 300 digits and a short t-SNE.

The PCA numbers of all the digits are pinned in test_curriculum_numbers.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from mlfund.core import registry
from mlfund.core.datasets import feature_columns
from tests.conftest import FrameInputs

pytestmark = pytest.mark.usefixtures("close_figures")

ROWS = 300


def titles(figure) -> list[str]:
    return [ax.get_title() for ax in figure.axes if ax.get_visible()]


@pytest.fixture(scope="module")
def digits(datasets: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return datasets["digits"].iloc[:ROWS]


@pytest.fixture(scope="module")
def section(params):
    # 300 t-SNE iterations (250 of early exaggeration, then 50) on 300 digits
    return registry.get("embedding").section(params).model_copy(update={"tsne_max_iter": 300})


@pytest.fixture(scope="module")
def result(section, digits):
    # One OpenMP thread: about a second, where t-SNE's threads competing with other
    # processes for two cores take half a minute.
    with threadpool_limits(1):
        return registry.get("embedding").run(section, FrameInputs(raw={"digits": digits}), None)


def test_one_run_reported_under_two_keys(result, section) -> None:
    [study] = result.runs
    assert (study.name, study.dataset, study.model) == ("pca_tsne", "digits", None)
    assert study.params == section.model_dump()
    assert set(result.metrics) == {"pca", "maps_2d"}
    assert set(result.metrics["pca"]) == {
        "explained_variance_2d",
        "explained_variance_10d",
        "components_for_90pct_variance",
    }
    assert set(result.metrics["maps_2d"]) == {"pca_trustworthiness", "tsne_trustworthiness"}
    assert study.metrics == {**result.metrics["pca"], **result.metrics["maps_2d"]}
    assert list(study.figures) == list(result.figures) == ["projections", "explained_variance"]
    assert list(result.captions) == list(result.figures)


def test_explained_variance_history_starts_at_component_1(result, digits) -> None:
    [study] = result.runs
    ratio = study.history["explained_variance_ratio"]
    assert study.first_step == 1 and len(ratio) == 10
    assert np.all(np.diff(ratio) <= 0)  # components come in decreasing variance
    assert result.metrics["pca"]["explained_variance_2d"] == pytest.approx(ratio[0] + ratio[1])
    assert result.metrics["pca"]["explained_variance_10d"] == pytest.approx(sum(ratio))
    # 90% takes more than 10 of the 64 pixels' components, fewer than all of them
    assert 10 < result.metrics["pca"]["components_for_90pct_variance"] < 64


def test_tsne_keeps_neighbourhoods_better_than_pca(result) -> None:
    """The family's headline: t-SNE's map keeps each digit's neighbours far better."""
    maps = result.metrics["maps_2d"]
    assert 0.7 < maps["pca_trustworthiness"] < maps["tsne_trustworthiness"] - 0.1
    assert maps["tsne_trustworthiness"] > 0.97


def test_figures(result, digits) -> None:
    projections = result.figures["projections"]
    assert len(projections.axes) == 6  # three panels, three colorbars
    assert titles(projections)[0] == "Raw Pixels (the two most variable)"
    variance_2d = result.metrics["pca"]["explained_variance_2d"]
    assert titles(projections)[1] == f"PCA (Explained Variance: {variance_2d:.3f})"
    # the raw panel plots the two most variable pixels
    pixels = digits[feature_columns(digits)]
    top = pixels.var().sort_values(ascending=False).index[:2]
    shown = {projections.axes[0].get_xlabel(), projections.axes[0].get_ylabel()}
    assert shown == {f"pixel {int(c[1:])}" for c in top}
    assert titles(result.figures["explained_variance"]) == [
        "Individual Explained Variance",
        "Cumulative Explained Variance",
    ]
