"""Stage evaluate@<family>: score a family's saved models on their held-out test rows.

    python -m stages.evaluate <family>

Writes reports/eval/<family>/test_metrics.json (`{family: {model: {metric: value}}}`)
and the plot tables (confusion, roc, predictions) beside it, and adds the test scores
to each model's MLflow run. The `metrics` stage merges every family's files.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mlfund.core import registry
from mlfund.core.config import Params
from mlfund.core.modelstore import ModelCard, load_card_model, read_manifest
from stages.common import MODELS, REPORTS, TRACKING_ROOT, log, run_stage, write_json
from stages.family_io import split_table


def score(family: str, cards: list[ModelCard], out: Path, params: Params) -> dict:
    from mlfund.core.splitting import rows_of
    from mlfund.core.tracking import connect, log_test_metrics
    from mlfund.evaluation import evaluate_model

    tracking = connect(TRACKING_ROOT, params.tracking.on_unreachable)
    scores = {}
    for card in cards:
        test = rows_of(split_table(card.dataset), "test")
        model = load_card_model(MODELS / family, card)
        result = evaluate_model(model, card.task, test[card.features], test[card.target])
        scores[card.name] = result.scores
        for plot, rows in result.plots.items():
            (out / plot).mkdir(parents=True, exist_ok=True)
            rows.to_csv(out / plot / f"{card.name}.csv", index=False)
        if tracking:
            log_test_metrics(tracking, card.run_id, result.scores)
        log.info("%s/%s: %s", family, card.name, result.scores)
    return scores


def main(params: Params) -> None:
    family = registry.get(sys.argv[1]).name
    out = REPORTS / "eval" / family
    cards = read_manifest(MODELS / family)  # none for clustering and embedding
    scores = score(family, cards, out, params) if cards else {}
    write_json(out / "test_metrics.json", {family: scores} if scores else {})


if __name__ == "__main__":
    run_stage(main)
