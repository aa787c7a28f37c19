"""Stage metrics: merge every family's train-side and test metrics into reports/metrics.json.

Also gathers the evaluate plot tables into reports/plots/{confusion,roc,predictions}/
as `<family>.<model>.csv`, where dvc.yaml's plots read them.
"""

from __future__ import annotations

import shutil

from mlfund.core.config import Params
from mlfund.core.family import merge_metrics
from mlfund.core.registry import NAMES
from stages.common import REPORTS, read_json, run_stage, write_json

PLOTS = ("confusion", "roc", "predictions")


def main(_: Params) -> None:
    train = [read_json(REPORTS / "train" / f"{family}.json")["metrics"] for family in NAMES]
    test = [read_json(REPORTS / "eval" / family / "test_metrics.json") for family in NAMES]
    write_json(REPORTS / "metrics.json", merge_metrics(*train, *test))
    for plot in PLOTS:
        (REPORTS / "plots" / plot).mkdir(parents=True, exist_ok=True)
        for family in NAMES:
            for table in sorted((REPORTS / "eval" / family / plot).glob("*.csv")):
                shutil.copyfile(table, REPORTS / "plots" / plot / f"{family}.{table.name}")


if __name__ == "__main__":
    run_stage(main)
