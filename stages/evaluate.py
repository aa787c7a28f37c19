"""Stage evaluate@<family>: score a family's saved models on their held-out test rows.

    python -m stages.evaluate <family>

Writes reports/eval/<family>/test_metrics.json (`{family: {model: {metric: value}}}`)
and the plot tables (confusion, roc, predictions) beside it, and adds the test scores
to each model's MLflow run. The `metrics` stage merges every family's files.
"""

from __future__ import annotations

import sys

from mlfund import registry
from mlfund.config import Params
from mlfund.evaluation import evaluate_model
from mlfund.modelstore import load_card_model, read_manifest
from stages.common import MODELS, REPORTS, TRACKING_ROOT, log, run_stage, write_json
from stages.family_io import split_table


def main(params: Params) -> None:
    from mlfund.splitting import rows_of

    family = registry.get(sys.argv[1]).name
    folder, out = MODELS / family, REPORTS / "eval" / family
    cards = read_manifest(folder)
    tracking = None
    if cards:  # clustering and embedding save no model: no MLflow connection needed
        from mlfund.tracking import connect

        tracking = connect(TRACKING_ROOT, params.tracking.on_unreachable)
    scores = {}
    for card in cards:
        test = rows_of(split_table(card.dataset), "test")
        model = load_card_model(folder, card)
        result = evaluate_model(model, card.task, test[card.features], test[card.target])
        scores[card.name] = result.scores
        for plot, rows in result.plots.items():
            (out / plot).mkdir(parents=True, exist_ok=True)
            rows.to_csv(out / plot / f"{card.name}.csv", index=False)
        if tracking:
            from mlfund.tracking import log_test_metrics

            log_test_metrics(tracking, card.run_id, result.scores)
        log.info("%s/%s: %s", family, card.name, result.scores)
    write_json(out / "test_metrics.json", {family: scores} if scores else {})


if __name__ == "__main__":
    run_stage(main)
