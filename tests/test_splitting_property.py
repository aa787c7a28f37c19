"""Property test: `three_way_split` is the curriculum's two `train_test_split` calls at any size.

A seeded grid of (n, test_size, val_size, seed) for shuffled, stratified and unshuffled
splits. The reference is the curriculum's code, called directly with scikit-learn:

    X_temp, X_test, y_temp, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    X_train, X_val, y_train, y_val = train_test_split(X_temp, y_temp, test_size=0.25, ...)

with X the row numbers, so the rows and their order are compared. The second fraction is
written here as the curriculum writes it: a literal (0.25, 0.5) or a quotient of integers
(2/7), never the float expression `val_size / (1 - test_size)`.
"""

from __future__ import annotations

from math import ceil

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from mlfund.core.config import SplitSpec
from mlfund.core.splitting import split_sizes, three_way_split

# (test_size, val_size, the curriculum's fraction of the remainder); None: no second call.
CASES = [
    (0.2, 0.2, 0.25),  # the defaults: 60/20/20
    (0.2, 0.0, None),
    (0.3, 0.0, None),
    (0.2, 0.1, 0.125),
    (0.1, 0.1, 1 / 9),
    (0.3, 0.2, 2 / 7),  # 0.2 / (1 - 0.3) in floats: 20.000000000000004 rows of 70
    (0.25, 0.25, 1 / 3),
    (0.3, 0.35, 0.5),
    (0.4, 0.3, 0.5),
    (0.15, 0.15, 3 / 17),
    (0.3, 0.1, 1 / 7),
    (0.3, 0.07, 0.1),  # 0.07 / (1 - 0.3) in floats: 0.10000000000000002
    (0.65, 0.07, 0.2),  # in floats: 0.20000000000000004
    (0.8, 0.05, 0.25),  # in floats: 0.25000000000000006
    (0.7, 0.15, 0.5),  # in floats: 0.4999999999999999
    (0.33, 0.33, 33 / 67),
    (0.05, 0.05, 1 / 19),
    (0.5, 0.25, 0.5),
    (0.01, 0.33, 1 / 3),
    (0.55, 0.3, 2 / 3),
]
MODES = ("shuffled", "stratified", "unshuffled")
# Small sizes where a ceiling or an ulp decides a row, the issue's 1001 and digits' 1797.
FIXED_SIZES = [1, 2, 3, 5, 7, 10, 15, 20, 21, 100, 1001, 1797]
RANDOM_SIZES = 6  # more per (case, mode), drawn from a seeded generator


def curriculum(x, y, test_size, fraction, seed, shuffle, stratify):
    """The curriculum's three-way split: train_test_split, then again on the remainder."""
    x_temp, x_test, y_temp, _ = train_test_split(
        x, y, test_size=test_size, random_state=seed, shuffle=shuffle,
        stratify=y if stratify else None,
    )  # fmt: skip
    if fraction is None:
        return x_temp, x_temp[:0], x_test
    x_train, x_val, _, _ = train_test_split(
        x_temp, y_temp, test_size=fraction, random_state=seed, shuffle=shuffle,
        stratify=y_temp if stratify else None,
    )  # fmt: skip
    return x_train, x_val, x_test


def draws(case_index: int, mode: str) -> list[tuple[int, int, np.ndarray | None]]:
    """(n, seed, labels) for one case and mode, from a generator seeded by both."""
    rng = np.random.default_rng([case_index, MODES.index(mode), 2024])
    sizes = FIXED_SIZES + sorted(rng.integers(2, 2500, RANDOM_SIZES).tolist())
    out = []
    for n in sizes:
        seed = int(rng.integers(0, 2**32 - 1))
        labels = None
        if mode == "stratified":
            n_classes = int(rng.choice([2, 3, 5]))
            weights = rng.dirichlet(np.full(n_classes, 3.0))
            labels = rng.choice(n_classes, size=n, p=weights)
        out.append((n, seed, labels))
    return out


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("test_size", "val_size", "fraction"), CASES)
def test_rows_and_order_are_the_curriculums(test_size, val_size, fraction, mode):
    stratify, shuffle = mode == "stratified", mode != "unshuffled"
    spec = SplitSpec(
        test_size=test_size, val_size=val_size, shuffle=shuffle, stratify=stratify, seed=0
    )
    compared = 0
    for n, seed, labels in draws(CASES.index((test_size, val_size, fraction)), mode):
        spec = spec.model_copy(update={"seed": seed})
        x = np.arange(n)
        y = labels if stratify else np.zeros(n)
        where = f"n={n} seed={seed}"
        try:
            expected = curriculum(x, y, test_size, fraction, seed, shuffle, stratify)
        except ValueError:  # an empty train set, or too few rows of a class to stratify
            with pytest.raises(ValueError):
                three_way_split(n, spec, labels)
            continue
        got = three_way_split(n, spec, labels)
        for name, rows, reference in zip(("train", "val", "test"), got, expected, strict=True):
            np.testing.assert_array_equal(rows, reference, err_msg=f"{name} rows, {where}")
        assert split_sizes(n, spec) == tuple(len(rows) for rows in got), where
        compared += 1
    assert compared >= RANDOM_SIZES, "the grid must compare sizes, not only errors"


def test_grid_tells_the_literal_fraction_from_the_float_expression():
    """Somewhere in the grid `val_size / (1 - test_size)` in floats takes another row count.

    So an implementation that passed the float expression would fail the property test.
    """
    differs = []
    for index, (test_size, val_size, fraction) in enumerate(CASES):
        if fraction is None:
            continue
        for mode in MODES:
            for n, _, _ in draws(index, mode):
                rest = n - ceil(test_size * n)
                if ceil(val_size / (1 - test_size) * rest) != ceil(fraction * rest):
                    differs.append((test_size, val_size, n))
    assert len(differs) >= 10, differs


def test_grid_covers_sizes_the_old_rounding_got_wrong():
    """round() of the fraction of all rows, the old rule, disagrees somewhere in the grid."""
    disagree = 0
    for index, (test_size, val_size, _) in enumerate(CASES):
        for n, _, _ in draws(index, "shuffled"):
            old = (round(test_size * n), round(val_size * n))
            spec = SplitSpec(
                test_size=test_size, val_size=val_size, shuffle=True, stratify=False, seed=0
            )
            _, n_val, n_test = split_sizes(n, spec)
            disagree += old != (n_test, n_val)
    assert disagree >= 50
