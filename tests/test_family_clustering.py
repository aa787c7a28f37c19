"""The clustering family: its pure entry point on the default blobs, its functions and figure."""

from __future__ import annotations

import matplotlib.figure
import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import DBSCAN

from mlfund.core import registry
from mlfund.core.config import Params
from mlfund.core.datasets import TARGET, feature_columns
from mlfund.families import clustering

pytestmark = pytest.mark.usefixtures("close_figures")


def titles(figure: matplotlib.figure.Figure) -> list[str]:
    return [ax.get_title() for ax in figure.axes if ax.get_visible()]


def test_all_noise_dbscan_scores_nan_silhouette(datasets: dict[str, pd.DataFrame]):
    blobs = datasets["blobs"]
    points, truth = blobs[feature_columns(blobs)].to_numpy(), blobs[TARGET].to_numpy()
    [result] = clustering.run_clusterers(points, {"dbscan": DBSCAN(eps=1e-6, min_samples=5)})
    scores = result.scores(points, truth)
    assert np.isnan(scores["silhouette"])
    assert scores["n_clusters"] == 0
    assert scores["noise_fraction"] == 1.0
    assert scores["ari"] == 0.0


def test_clusterers_use_params():
    models = clustering.clusterers(3, 10, 0.3, 7, "average", 1)
    assert models["kmeans"].get_params()["n_clusters"] == 3
    assert models["kmeans"].get_params()["n_init"] == 10
    assert models["dbscan"].get_params()["eps"] == 0.3
    assert models["agglomerative"].get_params()["linkage"] == "average"


def test_clusters_figure(params: Params, datasets: dict[str, pd.DataFrame]):
    p = params.clustering
    blobs = datasets["blobs"]
    points, truth = blobs[feature_columns(blobs)].to_numpy(), blobs[TARGET].to_numpy()
    models = clustering.clusterers(
        p.n_clusters, p.kmeans_n_init, p.dbscan_eps, p.dbscan_min_samples, p.linkage, p.seed
    )
    figure = clustering.clusters_figure(points, truth, clustering.run_clusterers(points, models))
    assert titles(figure) == [
        "Original Data (True Clusters)",
        "kmeans (ARI 1.000)",
        "dbscan (ARI 0.940)",
        "agglomerative (ARI 1.000)",
    ]


def test_run_scores_the_three_clusterers(params, inputs, close_figures) -> None:
    family = registry.get("clustering")
    result = family.run(family.section(params), inputs, None)
    metrics = result.metrics
    assert set(metrics) == {"kmeans", "dbscan", "agglomerative"}
    # the curriculum's numbers (tests/test_curriculum_numbers.py pins them too)
    assert metrics["kmeans"]["ari"] == 1.0 and metrics["agglomerative"]["ari"] == 1.0
    assert metrics["dbscan"]["ari"] == pytest.approx(0.9401, abs=1e-4)
    assert set(result.figures) == {"clusters"}
    assert all(run.figures == ["clusters"] and run.model is None for run in result.runs)


def test_dbscan_eps_changes_only_dbscan(params, inputs, close_figures) -> None:
    family = registry.get("clustering")
    wider = family.section(params).model_copy(update={"dbscan_eps": 0.9})
    default = family.run(family.section(params), inputs, None).metrics
    changed = family.run(wider, inputs, None).metrics
    assert changed["dbscan"]["ari"] > default["dbscan"]["ari"]
    assert changed["kmeans"] == default["kmeans"]
