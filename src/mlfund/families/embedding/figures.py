"""Figures of the embedding family."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.figure
import numpy as np

from mlfund.core.figures import new_figure

if TYPE_CHECKING:
    from mlfund.families.embedding import Embeddings


# Report captions, in the order the report shows the figures.
CAPTIONS = {
    "projections": "Digits: two raw pixels, PCA, and t-SNE.",
    "explained_variance": "PCA explained variance per component and cumulated.",
}


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
