"""Figures of the clustering family."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.figure
import numpy as np
from sklearn.cluster import DBSCAN, KMeans
from sklearn.metrics import adjusted_rand_score

from mlfund.core.figures import new_figure

if TYPE_CHECKING:
    from mlfund.families.clustering import Clustering

NOISE = -1  # DBSCAN's label for points in no cluster
CAPTIONS = {"clusters": "True clusters and the three algorithms (DBSCAN noise circled)."}


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
