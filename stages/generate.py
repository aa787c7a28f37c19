"""Stage generate: make every classical dataset of the curriculum into data/raw/."""

from __future__ import annotations

from mlfund.core.config import Params
from mlfund.core.datasets import make_all
from stages.common import RAW, log, run_stage, write_table


def main(params: Params) -> None:
    for name, frame in make_all(params.data).items():
        write_table(RAW / f"{name}.parquet", frame)
        log.info("generated %s: %d rows x %d columns", name, *frame.shape)


if __name__ == "__main__":
    run_stage(main)
