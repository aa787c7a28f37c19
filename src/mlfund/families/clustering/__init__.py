"""Clustering: k-means, DBSCAN and agglomerative on blobs; ARI and silhouette.

Curriculum: "Basic Concepts > Unsupervised Learning > Clustering". Scores are computed
on all points, as the curriculum does: clustering has no held-out rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn.base import ClusterMixin
from sklearn.cluster import DBSCAN, AgglomerativeClustering, KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score

from mlfund.core.config import ClusteringParams
from mlfund.core.datasets import TARGET, feature_columns
from mlfund.core.family import FamilyResult, Inputs, ModelRun
from mlfund.families.clustering.figures import CAPTIONS, clusters_figure

NOISE = -1  # DBSCAN's label for points in no cluster


def clusterers(
    n_clusters: int,
    n_init: int | Literal["auto"],
    eps: float,
    min_samples: int,
    linkage: str,
    seed: int,
) -> dict[str, ClusterMixin]:
    return {
        "kmeans": KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed),
        "dbscan": DBSCAN(eps=eps, min_samples=min_samples),
        "agglomerative": AgglomerativeClustering(n_clusters=n_clusters, linkage=linkage),
    }


@dataclass(frozen=True)
class Clustering:
    name: str
    model: ClusterMixin
    labels: np.ndarray

    def scores(self, points: np.ndarray, truth: np.ndarray) -> dict[str, float]:
        """ARI against the true clusters and silhouette of the found ones.

        DBSCAN's noise points count as one more group, as in the curriculum; the share
        of noise is reported beside it. Silhouette needs two groups or more: NaN otherwise.
        """
        groups = np.unique(self.labels)
        silhouette = silhouette_score(points, self.labels) if len(groups) > 1 else float("nan")
        return {
            "ari": float(adjusted_rand_score(truth, self.labels)),
            "silhouette": float(silhouette),
            "n_clusters": float(len(groups[groups != NOISE])),
            "noise_fraction": float(np.mean(self.labels == NOISE)),
        }


def run_clusterers(points: np.ndarray, models: dict[str, ClusterMixin]) -> list[Clustering]:
    return [Clustering(name, model, model.fit_predict(points)) for name, model in models.items()]


def run(p: ClusteringParams, inputs: Inputs, compute: None = None) -> FamilyResult:
    """The three clusterers on all the blobs, scored against the true clusters."""
    blobs = inputs.raw("blobs")
    points, truth = blobs[feature_columns(blobs)].to_numpy(), blobs[TARGET].to_numpy()
    models = clusterers(
        p.n_clusters, p.kmeans_n_init, p.dbscan_eps, p.dbscan_min_samples, p.linkage, p.seed
    )
    results = run_clusterers(points, models)
    runs = [
        ModelRun(
            c.name, "blobs", c.model.get_params(), c.scores(points, truth), figures=["clusters"]
        )
        for c in results
    ]
    figures = {"clusters": clusters_figure(points, truth, results)}
    return FamilyResult(runs, figures=figures, captions=CAPTIONS)
