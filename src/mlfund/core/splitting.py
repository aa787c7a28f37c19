"""Seeded train / validation / test splits.

A split is stored as a `split` column ("train", "val", "test") next to the data, so one
file per dataset carries everything and every family reads its rows the same way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from mlfund.core.config import SplitSpec

SPLIT_COLUMN = "split"


def three_way_split(
    n_rows: int, spec: SplitSpec, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices of (train, val, test), each in the order the curriculum sees them.

    Test rows are taken first, then validation rows from the remainder, each with
    `train_test_split(random_state=seed)`: with test 0.2 and validation 0.2 this is the
    curriculum's `test_size=0.2` then `test_size=0.25` (60/20/20), row for row and in the
    same order (order matters to unshuffled K-fold learning curves). Sizes are passed as
    row counts so floating-point fractions can't shift a row. With `shuffle: false` the
    test rows are the last ones (an extrapolation split).
    """
    n_test = round(spec.test_size * n_rows)
    n_val = round(spec.val_size * n_rows)
    if n_rows - n_test - n_val < 1:
        raise ValueError(f"split leaves no training rows out of {n_rows}")
    if spec.stratify and labels is None:
        raise ValueError("stratify: true needs class labels")

    def take(rows: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        if count == 0:
            return rows, rows[:0]
        stratify = labels[rows] if spec.stratify and labels is not None else None
        return train_test_split(
            rows,
            test_size=count,
            shuffle=spec.shuffle,
            stratify=stratify,
            random_state=spec.seed if spec.shuffle else None,
        )

    rest, test = take(np.arange(n_rows), n_test)
    train, val = take(rest, n_val)
    return train, val, test


def with_split(frame: pd.DataFrame, spec: SplitSpec, label_column: str | None) -> pd.DataFrame:
    """`frame` reordered as train, val, test rows, with a `split` column naming each."""
    labels = frame[label_column].to_numpy() if label_column else None
    rows = three_way_split(len(frame), spec, labels)
    parts = [
        frame.iloc[part].assign(**{SPLIT_COLUMN: name})
        for name, part in zip(("train", "val", "test"), rows, strict=True)
    ]
    return pd.concat(parts, ignore_index=True)


def rows_of(frame: pd.DataFrame, split: str) -> pd.DataFrame:
    """The rows of one split, without the `split` column."""
    if split not in {"train", "val", "test"}:
        raise ValueError(f"unknown split {split!r}; expected train, val or test")
    return frame.loc[frame[SPLIT_COLUMN] == split].drop(columns=SPLIT_COLUMN)
