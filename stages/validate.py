"""Stage validate: a Great Expectations suite per raw dataset; fail on any violation.

Writes one JSON result per dataset, a summary (the file downstream stages depend on,
so nothing runs on data that failed) and HTML Data Docs under reports/validation/.
"""

from __future__ import annotations

import sys

from mlfund.core.config import Params
from mlfund.validation import DATASETS, validate_datasets
from stages.common import RAW, VALIDATION, log, read_table, run_stage, write_json


def main(params: Params) -> None:
    frames = {name: read_table(RAW / f"{name}.parquet") for name in DATASETS}
    results = validate_datasets(frames, params.data, docs_dir=VALIDATION / "docs")
    for name, outcome in results.items():
        write_json(VALIDATION / "results" / f"{name}.json", outcome.result)
    failures = [line for outcome in results.values() for line in outcome.failures]
    if failures:
        print(f"validation failed: {len(failures)} expectation(s) not met", file=sys.stderr)
        for line in failures:
            print(f"  {line}", file=sys.stderr)
        raise SystemExit(1)
    summary = {
        name: {"success": o.success, "expectations": len(o.result["results"])}
        for name, o in results.items()
    }
    write_json(VALIDATION / "summary.json", summary)
    log.info("all %d datasets passed validation", len(results))


if __name__ == "__main__":
    run_stage(main)
