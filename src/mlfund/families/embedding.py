"""Dimensionality reduction on the 64-pixel digits: PCA and t-SNE.

Curriculum: "Basic Concepts > Unsupervised Learning > Dimensionality Reduction".
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.figure
import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE, trustworthiness

from mlfund.figures import new_figure


@dataclass(frozen=True)
class Embeddings:
    pca_2d: np.ndarray  # (n, 2)
    tsne_2d: np.ndarray  # (n, 2)
    explained_variance_ratio: np.ndarray  # of every component of a full PCA


def trustworthiness_scores(pixels: np.ndarray, result: Embeddings, k: int) -> dict[str, float]:
    """How well each 2-D map keeps every point's k nearest neighbours (1.0 = perfectly)."""
    return {
        "pca_trustworthiness": float(trustworthiness(pixels, result.pca_2d, n_neighbors=k)),
        "tsne_trustworthiness": float(trustworthiness(pixels, result.tsne_2d, n_neighbors=k)),
    }


def embed(pixels: np.ndarray, perplexity: float, max_iter: int, seed: int) -> Embeddings:
    full = PCA().fit(pixels)
    # The first two components of the full PCA are the 2-D PCA (same SVD, same signs).
    pca_2d = full.transform(pixels)[:, :2]
    tsne = TSNE(n_components=2, perplexity=perplexity, max_iter=max_iter, random_state=seed)
    return Embeddings(pca_2d, tsne.fit_transform(pixels), full.explained_variance_ratio_)


def projections_figure(
    pixels: np.ndarray, labels: np.ndarray, result: Embeddings
) -> matplotlib.figure.Figure:
    figure, axes = new_figure(ncols=3, width=6, height=5)
    variance_2d = result.explained_variance_ratio[:2].sum()
    # The curriculum plots pixels 0 and 1, which are blank in every digit (a single dot);
    # the two most variable pixels show what raw coordinates actually look like.
    first, second = np.argsort(pixels.var(axis=0))[::-1][:2]
    panels = [
        (
            pixels[:, [first, second]],
            "Raw Pixels (the two most variable)",
            (f"pixel {first}", f"pixel {second}"),
        ),
        (result.pca_2d, f"PCA (Explained Variance: {variance_2d:.3f})", ("PC 1", "PC 2")),
        (result.tsne_2d, "t-SNE", ("t-SNE component 1", "t-SNE component 2")),
    ]
    for ax, (coords, title, (xlabel, ylabel)) in zip(axes[0], panels, strict=True):
        points = ax.scatter(coords[:, 0], coords[:, 1], c=labels, cmap="tab10", alpha=0.6, s=8)
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        figure.colorbar(points, ax=ax, label="digit")
    return figure


def variance_figure(ratio: np.ndarray, n_components: int) -> matplotlib.figure.Figure:
    shown = ratio[:n_components]
    components = np.arange(1, len(shown) + 1)
    figure, axes = new_figure(ncols=2, width=6)
    axes[0, 0].plot(components, shown, "bo-")
    axes[0, 0].set(
        title="Individual Explained Variance",
        xlabel="Principal component",
        ylabel="Explained variance ratio",
    )
    axes[0, 1].plot(components, np.cumsum(shown), "ro-")
    axes[0, 1].set(
        title="Cumulative Explained Variance",
        xlabel="Number of components",
        ylabel="Cumulative explained variance",
    )
    for ax in axes[0]:
        ax.grid(True)
    return figure
