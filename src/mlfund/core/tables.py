"""The generated tables as params describe them, without making one: their sizes and the
salary table's columns.

Pandas-free on purpose: check_params (the first stage of every `dvc repro`) reads these
to check the machine's memory and the feature keys, and importing pandas alone would cost
it most of a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlfund.core.config import DataParams

EDUCATION_LEVELS = ("High School", "Bachelor", "Master", "PhD")

RAW_NUMERIC = ["age", "income", "experience_years"]
ENGINEERED_NUMERIC = [
    "log_income",
    "age_squared",
    "income_experience_interaction",
    "days_since_joining",
    "join_year",
    "join_month",
    "join_day_of_week",
    "join_quarter",
]
EDUCATION_DUMMIES = [f"education_{level}" for level in EDUCATION_LEVELS]


def model_columns(engineered: bool) -> list[str]:
    """Model inputs without (raw) or with (engineered) the curriculum's new features."""
    if not engineered:
        return [*RAW_NUMERIC, "education_encoded"]
    return [*RAW_NUMERIC, *ENGINEERED_NUMERIC, *EDUCATION_DUMMIES, "education_encoded"]


# Peak memory of making one table, in multiples of its size: measured 2.1x (make_regression)
# to 3.3x (make_circles) for tables of 50-500 MB, and room for parquet's buffers.
WORKING_COPIES = 4


@dataclass(frozen=True)
class TableSize:
    key: str  # the params key of its row count, under data.<name>
    rows: int
    columns: int  # features and target
    cell_bytes: int = 8  # float64

    @property
    def peak_bytes(self) -> int:
        """Estimated peak memory of making the table: WORKING_COPIES copies of it."""
        return self.rows * self.columns * self.cell_bytes * WORKING_COPIES


def table_sizes(p: DataParams) -> dict[str, TableSize]:
    """The size of each table `makers` makes, from params alone (digits, a fixed
    1797 x 65, aside). check_params compares them with the machine's memory."""
    r1, r10, rs, sine = p.regression_1d, p.regression_10d, p.regression_sparse, p.sine_sequences
    return {
        "classification_2d": TableSize(
            "n_samples", p.classification_2d.n_samples, p.classification_2d.n_features + 1
        ),
        "regression_1d": TableSize("n_samples", r1.n_samples, r1.n_features + 1),
        "regression_10d": TableSize("n_samples", r10.n_samples, r10.n_features + 1),
        "regression_sparse": TableSize("n_samples", rs.n_samples, rs.n_features + 1),
        "blobs": TableSize("n_samples", p.blobs.n_samples, 3),  # make_blobs' 2 features
        "circles": TableSize("n_samples", p.circles.n_samples, 3),
        "noisy_sine": TableSize("n_samples", p.noisy_sine.n_samples, 2),
        "sine_sequences": TableSize("n_sequences", sine.n_sequences, sine.seq_length + 1),
        # its education strings are Python objects (~60 bytes each), hence 16 bytes a cell;
        # at most ~213,000 rows anyway, one a day within the dates pandas can hold
        "salary": TableSize("n_samples", p.salary.n_samples, 6, cell_bytes=16),
    }
