"""Stage generate: make every classical dataset of the curriculum into data/raw/.

One dataset at a time, so only one table is in memory at once. check_params has already
compared each table's estimated size with the machine's memory; a maker that still fails
names its params section instead of printing a traceback.
"""

from __future__ import annotations

from mlfund.core.config import Params
from mlfund.core.datasets import makers
from mlfund.core.errors import DatasetError
from stages.common import RAW, log, run_stage, write_table


def main(params: Params) -> None:
    for name, make in makers(params.data).items():
        try:
            frame = make()
        except (MemoryError, OverflowError, ValueError) as error:
            what = "lower its sizes" if isinstance(error, MemoryError) else "check its values"
            raise DatasetError(
                f"data.{name}: could not make this dataset ({type(error).__name__}: {error}); "
                f"{what} in params.yaml"
            ) from error
        write_table(RAW / f"{name}.parquet", frame)
        log.info("generated %s: %d rows x %d columns", name, *frame.shape)
        del frame  # before the next one is made


if __name__ == "__main__":
    run_stage(main)
