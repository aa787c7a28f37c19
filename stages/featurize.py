"""Stage featurize: the salary table's row-wise engineered features into data/features/."""

from __future__ import annotations

from mlfund.core.config import Params
from mlfund.core.feature_engineering import engineer_salary_features
from stages.common import FEATURES, RAW, log, read_table, run_stage, write_table


def main(params: Params) -> None:
    p = params.featurize
    table = engineer_salary_features(
        read_table(RAW / "salary.parquet"), p.reference_date, p.age_bins, p.age_labels
    )
    write_table(FEATURES / "salary.parquet", table)
    log.info("salary features: %d rows x %d columns", *table.shape)


if __name__ == "__main__":
    run_stage(main)
