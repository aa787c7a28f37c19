"""Stage evaluate: score every saved model on its held-out test rows.

Writes reports/metrics.json (`{family: {model: {metric: value}}}`: the train-side
metrics of each family plus the test scores computed here), the plot data that
`dvc plots show` renders, and adds the test scores to each model's MLflow run.
"""

from __future__ import annotations

from mlfund.config import Params
from mlfund.evaluation import evaluate_model, merge_metrics
from mlfund.modelstore import MANIFEST, load_card_model, read_manifest
from mlfund.splitting import rows_of
from mlfund.tracking import connect, log_test_metrics
from stages.common import (
    MODELS,
    REPORTS,
    TRACKING_ROOT,
    log,
    read_json,
    run_stage,
    split_table,
    write_json,
)

FAMILIES = (
    "linear",
    "regularization",
    "clustering",
    "embedding",
    "features",
    "numpy_nn",
    "mlp",
    "cnn",
    "rnn",
    "transformer",
    "generative",
    "transfer",
)
PLOTS = REPORTS / "plots"


def main(params: Params) -> None:
    tracking = connect(TRACKING_ROOT, params.tracking.on_unreachable)
    train_side = [read_json(REPORTS / "train" / f"{family}.json")["metrics"] for family in FAMILIES]
    test_side: dict[str, dict[str, dict[str, float]]] = {}
    for family in FAMILIES:
        folder = MODELS / family
        if not (folder / MANIFEST).exists():
            continue  # a family without predictive models (clustering, embedding)
        for card in read_manifest(folder):
            test = rows_of(split_table(card.dataset), "test")
            result = evaluate_model(
                load_card_model(folder, card), card.task, test[card.features], test[card.target]
            )
            test_side.setdefault(family, {})[card.name] = result.scores
            for plot, rows in result.plots.items():
                path = PLOTS / plot / f"{family}.{card.name}.csv"
                path.parent.mkdir(parents=True, exist_ok=True)
                rows.to_csv(path, index=False)
            if tracking:
                log_test_metrics(tracking, card.run_id, result.scores)
            log.info("%s/%s: %s", family, card.name, result.scores)
    write_json(REPORTS / "metrics.json", merge_metrics(*train_side, test_side))


if __name__ == "__main__":
    run_stage(main)
