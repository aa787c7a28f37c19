"""Seeded train / validation / test splits.

A split is stored as a `split` column ("train", "val", "test") next to the data, so one
file per dataset carries everything and every family reads its rows the same way.
"""

from __future__ import annotations

from fractions import Fraction
from math import ceil

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from mlfund.core.config import SplitSpec

SPLIT_COLUMN = "split"


def remainder_fraction(test_size: float, val_size: float) -> float:
    """The validation fraction of the rows left after the test split, as the curriculum writes it.

    `val_size / (1 - test_size)` computed exactly on the two decimals as written (Python's
    shortest repr of a float is the decimal of params.yaml), then rounded once to a float:
    0.25 for test 0.2 and val 0.2, 0.1 for test 0.3 and val 0.07, 2/7 for test 0.3 and
    val 0.2. Evaluated in floating point the same expression rounds at every step and can
    land an ulp off the literal (0.07 / (1 - 0.3) is 0.10000000000000002,
    0.05 / (1 - 0.8) is 0.25000000000000006, 0.2 / (1 - 0.3) is 0.28571428571428575);
    scikit-learn takes the ceiling of fraction * rows, so where that product is a whole
    number the float expression takes one more validation row than the literal does.
    """
    exact = Fraction(repr(val_size)) / (1 - Fraction(repr(test_size)))
    return float(exact)


def split_sizes(n_rows: int, spec: SplitSpec) -> tuple[int, int, int]:
    """(train, val, test) row counts of `three_way_split`: scikit-learn's ceilings.

    `train_test_split` takes `ceil(fraction * rows)` test rows, so this is
    `n_test = ceil(test_size * n_rows)`, then `n_val = ceil(f * (n_rows - n_test))` with
    `f = remainder_fraction(test_size, val_size)`, and the rest is training.
    """
    n_test = ceil(spec.test_size * n_rows)
    rest = n_rows - n_test
    n_val = ceil(remainder_fraction(spec.test_size, spec.val_size) * rest) if spec.val_size else 0
    return rest - n_val, n_val, n_test


def three_way_split(
    n_rows: int, spec: SplitSpec, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices of (train, val, test), each in the order the curriculum sees them.

    These are the curriculum's two calls, made with the same arguments:

        rest, test = train_test_split(rows, test_size=test_size, random_state=seed)
        train, val = train_test_split(rest, test_size=f, random_state=seed)

    with `shuffle` passed through and, when `stratify` is true, the labels of the rows being
    split (`y`, then `y_temp`). `f` is the validation fraction *of the remainder*: 0.25 for
    test 0.2 and val 0.2 (60/20/20). The fractions go to scikit-learn as fractions, not row
    counts, so its own rounding applies: the ceiling of fraction * rows (a 1001-row set
    with test_size 0.2 has 201 test rows), and the rows and their order are
    scikit-learn's, at any size (order matters to unshuffled K-fold learning curves).

    The curriculum's call is taken to be the one it writes literally: `test_size=0.2`, the
    float of params, and `test_size=0.25`, the exact quotient `val_size / (1 - test_size)`
    of the decimals rounded once to a float (see `remainder_fraction`). That is what
    reproduces it: the same expression evaluated in floats can sit an ulp above the literal
    and take one more validation row. For the default 0.2 and 0.2 both give exactly 0.25.

    With `shuffle: false` the test rows are the last ones (an extrapolation split) and the
    validation rows the last of the rest. `val_size: 0` makes no second call: every
    remaining row trains. A split that leaves no training row raises a `ValueError`
    naming the counts, before scikit-learn is called.
    """
    if spec.stratify and labels is None:
        raise ValueError("stratify: true needs class labels")
    n_train, n_val, n_test = split_sizes(n_rows, spec)
    if n_train < 1:
        raise ValueError(
            f"split leaves no training rows out of {n_rows}: test_size {spec.test_size:g} "
            f"takes {n_test} and val_size {spec.val_size:g} takes {n_val} (scikit-learn "
            "rounds each fraction of rows up); use more rows or smaller fractions"
        )

    def take(rows: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
        stratify = labels[rows] if spec.stratify and labels is not None else None
        return train_test_split(
            rows,
            test_size=fraction,
            shuffle=spec.shuffle,
            stratify=stratify,
            random_state=spec.seed,
        )

    rest, test = take(np.arange(n_rows), spec.test_size)
    if n_val == 0:
        return rest, rest[:0], test
    train, val = take(rest, remainder_fraction(spec.test_size, spec.val_size))
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
