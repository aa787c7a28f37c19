"""Stage report: every family's metrics merged (reports/metrics.json) with their headline,
each family's primary metric per model (reports/headline.json: what `dvc exp show` and
`dvc metrics diff` show), the evaluate plot tables as reports/plots/<plot>/<family>.<model>.csv,
and reports/report.md and a self-contained report.html, headed by git HEAD and a digest
of params.yaml. One stage, not a merge and a report: each stage DVC runs costs about a
second of its own (it rewrites dvc.lock), and any metric change re-runs both."""

from __future__ import annotations

import os
import shutil

import yaml

from mlfund.core import git, report
from mlfund.core.calibration import load_calibration, params_digest
from mlfund.core.config import Params
from mlfund.core.family import headline_metrics, merge_metrics
from mlfund.core.registry import FAMILY_LIST, NAMES
from stages.common import PARAMS_FILE, REPORTS, ROOT, read_json, run_stage, write_json

TITLE = "Machine Learning Fundamentals: pipeline report"
PLOTS = ("confusion", "roc", "predictions")


def main(_: Params) -> None:
    trained = {name: read_json(REPORTS / "train" / f"{name}.json") for name in NAMES}
    tested = [read_json(REPORTS / "eval" / name / "test_metrics.json") for name in NAMES]
    metrics = merge_metrics(*(train["metrics"] for train in trained.values()), *tested)
    write_json(REPORTS / "metrics.json", metrics)
    primary = {family.name: family.primary for family in FAMILY_LIST}
    write_json(REPORTS / "headline.json", headline_metrics(metrics, primary))
    for plot, name in ((plot, name) for plot in PLOTS for name in NAMES):
        (REPORTS / "plots" / plot).mkdir(parents=True, exist_ok=True)
        for table in sorted((REPORTS / "eval" / name / plot).glob("*.csv")):
            shutil.copyfile(table, REPORTS / "plots" / plot / f"{name}.{table.name}")

    raw_params = yaml.safe_load(PARAMS_FILE.read_text())
    calibration = load_calibration(REPORTS / "calibration.json")  # from `make calibrate`
    pages = [
        report.FamilyPage(
            family,
            trained[family.name]["runs"],
            sorted((REPORTS / "figures" / family.name).glob("*.png")),
            dict(trained[family.name]["captions"]),
            [report.note_from_json(note) for note in trained[family.name]["notes"]],
            calibration.seed_spread(family.name, family.primary, raw_params)
            if calibration
            else None,
        )
        for family in FAMILY_LIST
    ]
    run = report.RunInfo(
        commit=git.commit(ROOT) or "unknown",
        params_sha256=params_digest(raw_params, sorted(raw_params)),
        experiment=os.environ.get("DVC_EXP_NAME", ""),
    )
    stale = calibration.fresh(raw_params)[1] if calibration else []
    blocks = report.document(run, metrics, pages, stale)
    (REPORTS / "report.md").write_text(report.to_markdown(TITLE, blocks, REPORTS))
    (REPORTS / "report.html").write_text(report.to_html(TITLE, blocks))


if __name__ == "__main__":
    run_stage(main)
