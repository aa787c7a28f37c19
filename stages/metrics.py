"""Stage metrics: merge every family's train-side and test metrics into reports/metrics.json,
and write its headline, each family's primary metric per model, to reports/headline.json
(dvc.yaml's declared metrics: what `dvc exp show` and `dvc metrics diff` show by default).

Also gathers the evaluate plot tables into reports/plots/{confusion,roc,predictions}/
as `<family>.<model>.csv`, where dvc.yaml's plots read them.
"""

from __future__ import annotations

import shutil

from mlfund.core.config import Params
from mlfund.core.family import headline_metrics, merge_metrics
from mlfund.core.registry import FAMILY_LIST, NAMES
from stages.common import REPORTS, read_json, run_stage, write_json

PLOTS = ("confusion", "roc", "predictions")


def main(_: Params) -> None:
    train = [read_json(REPORTS / "train" / f"{family}.json")["metrics"] for family in NAMES]
    test = [read_json(REPORTS / "eval" / family / "test_metrics.json") for family in NAMES]
    metrics = merge_metrics(*train, *test)
    write_json(REPORTS / "metrics.json", metrics)
    primary = {family.name: family.primary for family in FAMILY_LIST}
    write_json(REPORTS / "headline.json", headline_metrics(metrics, primary))
    for plot in PLOTS:
        (REPORTS / "plots" / plot).mkdir(parents=True, exist_ok=True)
        for family in NAMES:
            for table in sorted((REPORTS / "eval" / family / plot).glob("*.csv")):
                shutil.copyfile(table, REPORTS / "plots" / plot / f"{family}.{table.name}")


if __name__ == "__main__":
    run_stage(main)
