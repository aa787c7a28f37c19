"""Stage split: train/validation/test rows of every supervised dataset into data/split/.

Unsupervised studies (blobs; digits for the embedding) use all their rows, as the
curriculum does, and read data/raw directly.
"""

from __future__ import annotations

from mlfund.core.config import Params
from mlfund.core.datasets import TARGET
from mlfund.core.feature_engineering import TARGET as SALARY_TARGET
from mlfund.core.splitting import SPLIT_COLUMN, with_split
from stages.common import FEATURES, RAW, SPLIT, log, read_table, run_stage, write_table


def main(params: Params) -> None:
    for name, spec in params.split:
        if name == "salary":
            source, target = FEATURES / "salary.parquet", SALARY_TARGET
        else:
            source, target = RAW / f"{name}.parquet", TARGET
        table = with_split(read_table(source), spec, target if spec.stratify else None)
        write_table(SPLIT / f"{name}.parquet", table)
        counts = table[SPLIT_COLUMN].value_counts().to_dict()
        log.info("split %s: %s", name, counts)


if __name__ == "__main__":
    run_stage(main)
