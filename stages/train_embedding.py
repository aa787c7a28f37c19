"""Stage train_embedding: PCA and t-SNE of the 64-pixel digits."""

from __future__ import annotations

from mlfund.config import Params
from mlfund.datasets import TARGET, feature_columns
from mlfund.families import embedding
from mlfund.figures import save_figure
from stages.common import RAW, FamilyOutputs, read_table, run_stage, tracker

FAMILY = "embedding"


def main(params: Params) -> None:
    p = params.embedding
    out = FamilyOutputs(FAMILY)
    digits = read_table(RAW / "digits.parquet")
    pixels, labels = digits[feature_columns(digits)].to_numpy(), digits[TARGET].to_numpy()

    result = embedding.embed(pixels, p.tsne_perplexity, p.tsne_max_iter, p.seed)
    ratio = result.explained_variance_ratio
    metrics = {
        "pca": {
            "explained_variance_2d": ratio[:2].sum(),
            f"explained_variance_{p.n_variance_components}d": ratio[
                : p.n_variance_components
            ].sum(),
            "components_for_90pct_variance": int((ratio.cumsum() < 0.9).sum() + 1),
        },
        "maps_2d": embedding.trustworthiness_scores(pixels, result, k=5),
    }
    track = tracker(FAMILY)
    with track.run("pca_tsne", "digits", p.model_dump()) as run:
        for step, value in enumerate(ratio[: p.n_variance_components], start=1):
            run.metrics({"explained_variance_ratio": value}, step=step)
        run.metrics({**metrics["pca"], **metrics["maps_2d"]})
        run.artifact(
            save_figure(
                embedding.projections_figure(pixels, labels, result), out.figure("projections")
            )
        )
        run.artifact(
            save_figure(
                embedding.variance_figure(ratio, p.n_variance_components),
                out.figure("explained_variance"),
            )
        )
    out.write_metrics(metrics, track)


if __name__ == "__main__":
    run_stage(main)
