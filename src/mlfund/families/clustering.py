"""Clustering: k-means, DBSCAN and agglomerative on blobs; ARI and silhouette.

Curriculum: "Basic Concepts > Unsupervised Learning > Clustering". Scores are computed
on all points, as the curriculum does: clustering has no held-out rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import matplotlib.figure
import numpy as np
from sklearn.base import ClusterMixin
from sklearn.cluster import DBSCAN, AgglomerativeClustering, KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score

from mlfund.figures import new_figure

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


def clusters_figure(
    points: np.ndarray, truth: np.ndarray, results: list[Clustering]
) -> matplotlib.figure.Figure:
    """True clusters, then each algorithm's; k-means centres as red crosses."""
    figure, axes = new_figure(ncols=2, nrows=2, width=6, height=5)
    panels = [("Original Data (True Clusters)", truth)] + [
        (f"{r.name} (ARI {adjusted_rand_score(truth, r.labels):.3f})", r.labels) for r in results
    ]
    for ax, (title, labels) in zip(axes.ravel(), panels, strict=False):
        ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="viridis", alpha=0.6)
        ax.set_title(title)
    for ax, result in zip(axes.ravel()[1:], results, strict=False):
        if isinstance(result.model, KMeans):
            centres = result.model.cluster_centers_
            ax.scatter(centres[:, 0], centres[:, 1], marker="x", s=200, c="red", linewidths=3)
        if isinstance(result.model, DBSCAN) and np.any(result.labels == NOISE):
            noise = points[result.labels == NOISE]
            ax.scatter(
                noise[:, 0], noise[:, 1], facecolors="none", edgecolors="k", s=60, label="noise"
            )
            ax.legend()
    return figure
