"""Dimensionality reduction on the 64-pixel digits: PCA and t-SNE.

Curriculum: "Basic Concepts > Unsupervised Learning > Dimensionality Reduction". One
MLflow run, `pca_tsne`, holds the whole study; reports/metrics.json splits its numbers
into `pca` (explained variance) and `maps_2d` (how well each 2-D map keeps neighbours).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE, trustworthiness

from mlfund.core.config import EmbeddingParams
from mlfund.core.datasets import TARGET, feature_columns
from mlfund.core.family import FamilyResult, Inputs, ModelRun
from mlfund.families.embedding.figures import CAPTIONS, projections_figure, variance_figure

NEIGHBOURS = 5  # k of the trustworthiness scores


@dataclass(frozen=True)
class Embeddings:
    pca_2d: np.ndarray  # (n, 2)
    tsne_2d: np.ndarray  # (n, 2)
    explained_variance_ratio: np.ndarray  # of every component of a full PCA


def principal_components(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 2-D PCA map and the explained variance ratio of every component."""
    full = PCA().fit(pixels)
    # The first two components of the full PCA are the 2-D PCA (same SVD, same signs).
    return full.transform(pixels)[:, :2], full.explained_variance_ratio_


def tsne_map(pixels: np.ndarray, perplexity: float, max_iter: int, seed: int) -> np.ndarray:
    tsne = TSNE(n_components=2, perplexity=perplexity, max_iter=max_iter, random_state=seed)
    return tsne.fit_transform(pixels)


def embed(pixels: np.ndarray, perplexity: float, max_iter: int, seed: int) -> Embeddings:
    pca_2d, ratio = principal_components(pixels)
    return Embeddings(pca_2d, tsne_map(pixels, perplexity, max_iter, seed), ratio)


def variance_scores(ratio: np.ndarray, n_components: int) -> dict[str, float]:
    """Variance the first 2 and `n_components` components explain; components for 90%."""
    return {
        "explained_variance_2d": ratio[:2].sum(),
        f"explained_variance_{n_components}d": ratio[:n_components].sum(),
        "components_for_90pct_variance": int((ratio.cumsum() < 0.9).sum() + 1),
    }


def trustworthiness_scores(pixels: np.ndarray, result: Embeddings, k: int) -> dict[str, float]:
    """How well each 2-D map keeps every point's k nearest neighbours (1.0 = perfectly)."""
    return {
        "pca_trustworthiness": float(trustworthiness(pixels, result.pca_2d, n_neighbors=k)),
        "tsne_trustworthiness": float(trustworthiness(pixels, result.tsne_2d, n_neighbors=k)),
    }


def run(p: EmbeddingParams, inputs: Inputs, compute: None = None) -> FamilyResult:
    """PCA and t-SNE of every digit, one run reported as `pca` and `maps_2d`."""
    digits = inputs.raw("digits")
    pixels, labels = digits[feature_columns(digits)].to_numpy(), digits[TARGET].to_numpy()
    result = embed(pixels, p.tsne_perplexity, p.tsne_max_iter, p.seed)
    ratio = result.explained_variance_ratio
    table = {
        "pca": variance_scores(ratio, p.n_variance_components),
        "maps_2d": trustworthiness_scores(pixels, result, k=NEIGHBOURS),
    }
    study = ModelRun(
        "pca_tsne",
        "digits",
        p.model_dump(),
        {**table["pca"], **table["maps_2d"]},
        history={"explained_variance_ratio": ratio[: p.n_variance_components]},
        first_step=1,  # component 1 first
        figures=["projections", "explained_variance"],
    )
    figures = {
        "projections": projections_figure(pixels, labels, result),
        "explained_variance": variance_figure(ratio, p.n_variance_components),
    }
    return FamilyResult([study], figures=figures, captions=CAPTIONS, metrics_table=table)
