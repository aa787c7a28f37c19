"""Stage train_clustering: k-means, DBSCAN and agglomerative clustering of the blobs."""

from __future__ import annotations

from mlfund.config import Params
from mlfund.datasets import TARGET, feature_columns
from mlfund.families import clustering
from mlfund.figures import save_figure
from stages.common import RAW, FamilyOutputs, read_table, run_stage, tracker

FAMILY = "clustering"


def main(params: Params) -> None:
    p = params.clustering
    out = FamilyOutputs(FAMILY)
    track = tracker(FAMILY)
    blobs = read_table(RAW / "blobs.parquet")
    points, truth = blobs[feature_columns(blobs)].to_numpy(), blobs[TARGET].to_numpy()

    models = clustering.clusterers(
        p.n_clusters, p.kmeans_n_init, p.dbscan_eps, p.dbscan_min_samples, p.linkage, p.seed
    )
    results = clustering.run_clusterers(points, models)
    figure_path = save_figure(
        clustering.clusters_figure(points, truth, results), out.figure("clusters")
    )
    metrics = {}
    for result in results:
        with track.run(result.name, "blobs", result.model.get_params()) as run:
            metrics[result.name] = result.scores(points, truth)
            run.metrics(metrics[result.name])
            run.artifact(figure_path)
    out.write_metrics(metrics, track)


if __name__ == "__main__":
    run_stage(main)
