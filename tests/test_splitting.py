"""Seeded three-way splits reproduce the curriculum's train_test_split calls row for row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from mlfund.core.config import Params, SplitSpec
from mlfund.core.datasets import TARGET, feature_columns
from mlfund.core.splitting import (
    SPLIT_COLUMN,
    remainder_fraction,
    rows_of,
    split_sizes,
    three_way_split,
    with_split,
)

SIXTY_TWENTY_TWENTY = SplitSpec(test_size=0.2, val_size=0.2, shuffle=True, stratify=False, seed=42)


def test_sizes_60_20_20():
    train, val, test = three_way_split(1000, SIXTY_TWENTY_TWENTY)
    assert (len(train), len(val), len(test)) == (600, 200, 200)


def test_disjoint_and_covering():
    train, val, test = three_way_split(1000, SIXTY_TWENTY_TWENTY)
    everything = np.concatenate([train, val, test])
    np.testing.assert_array_equal(np.sort(everything), np.arange(1000))


def test_no_validation_rows_when_val_size_is_zero():
    spec = SIXTY_TWENTY_TWENTY.model_copy(update={"val_size": 0.0})
    train, val, test = three_way_split(100, spec)
    assert (len(train), len(val), len(test)) == (80, 0, 20)


def test_reproduces_curriculum_rows_and_order(datasets: dict[str, pd.DataFrame]):
    frame = datasets["regression_10d"]
    x, y = frame[feature_columns(frame)].to_numpy(), frame["y"].to_numpy()
    x_temp, x_test, y_temp, y_test = train_test_split(x, y, test_size=0.2, random_state=42)
    x_train, x_val, y_train, y_val = train_test_split(
        x_temp, y_temp, test_size=0.25, random_state=42
    )
    train, val, test = three_way_split(len(frame), SIXTY_TWENTY_TWENTY)
    for rows, x_part, y_part in (
        (train, x_train, y_train),
        (val, x_val, y_val),
        (test, x_test, y_test),
    ):
        np.testing.assert_array_equal(x[rows], x_part)
        np.testing.assert_array_equal(y[rows], y_part)

    split = with_split(frame, SIXTY_TWENTY_TWENTY, None)
    np.testing.assert_array_equal(rows_of(split, "train")[feature_columns(frame)], x_train)
    np.testing.assert_array_equal(rows_of(split, "val")["y"], y_val)
    np.testing.assert_array_equal(rows_of(split, "test")["y"], y_test)


def test_unshuffled_test_is_the_last_rows():
    spec = SplitSpec(test_size=0.3, val_size=0.2, shuffle=False, stratify=False, seed=42)
    train, val, test = three_way_split(100, spec)
    np.testing.assert_array_equal(test, np.arange(70, 100))
    np.testing.assert_array_equal(val, np.arange(50, 70))
    np.testing.assert_array_equal(train, np.arange(50))


def test_noisy_sine_default_split_is_an_extrapolation(params: Params, datasets):
    split = with_split(datasets["noisy_sine"], params.split.noisy_sine, None)
    train, test = rows_of(split, "train"), rows_of(split, "test")
    assert (len(train), len(test)) == (70, 30)
    assert train["x0"].max() < 0.7 < test["x0"].min()


def test_stratify_keeps_class_ratio():
    labels = np.array([0] * 800 + [1] * 200)
    spec = SIXTY_TWENTY_TWENTY.model_copy(update={"stratify": True})
    train, val, test = three_way_split(1000, spec, labels)
    assert labels[train].sum() == 120
    assert labels[val].sum() == 40
    assert labels[test].sum() == 40


def test_stratify_without_labels_raises():
    spec = SIXTY_TWENTY_TWENTY.model_copy(update={"stratify": True})
    with pytest.raises(ValueError, match="class labels"):
        three_way_split(1000, spec)


def test_no_training_rows_raises():
    spec = SplitSpec(test_size=0.5, val_size=0.3, shuffle=True, stratify=False, seed=0)
    with pytest.raises(ValueError, match="no training rows"):
        three_way_split(2, spec)  # ceil(0.5 * 2) = 1 test row, ceil(0.6 * 1) = 1 val row


@pytest.mark.parametrize(
    ("n_rows", "test_size", "val_size", "taken"),
    [
        (1, 0.2, 0.0, "takes 1 and val_size 0 takes 0"),  # ceil(0.2) = 1: round() gave 0
        (3, 0.5, 0.3, "takes 2 and val_size 0.3 takes 1"),  # ceil(1.5) = 2, ceil(0.6) = 1
        (4, 0.4, 0.4, "takes 2 and val_size 0.4 takes 2"),  # ceil(1.6) = 2, ceil(2 * 2/3) = 2
    ],
)
def test_no_training_rows_names_the_counts(n_rows, test_size, val_size, taken):
    spec = SplitSpec(test_size=test_size, val_size=val_size, shuffle=True, stratify=False, seed=0)
    with pytest.raises(ValueError, match=f"no training rows out of {n_rows}: .*{taken}"):
        three_way_split(n_rows, spec)


def test_smallest_split_with_a_training_row():
    """0.5 / 0.3 of 5 rows: 3 test, then ceil(0.6 * 2) = 2 val; of 6 rows: 3, 2 and 1 left."""
    spec = SplitSpec(test_size=0.5, val_size=0.3, shuffle=True, stratify=False, seed=0)
    for n_rows in range(1, 6):
        with pytest.raises(ValueError, match="no training rows"):
            three_way_split(n_rows, spec)
    assert split_sizes(6, spec) == (1, 2, 3)
    assert [len(rows) for rows in three_way_split(6, spec)] == [1, 2, 3]


def test_with_split_rows_of_round_trip(datasets: dict[str, pd.DataFrame]):
    frame = datasets["salary"]
    split = with_split(frame, SIXTY_TWENTY_TWENTY, None)
    assert list(split.columns) == [*frame.columns, SPLIT_COLUMN]
    assert split[SPLIT_COLUMN].value_counts().to_dict() == {"train": 600, "val": 200, "test": 200}
    assert list(split[SPLIT_COLUMN].drop_duplicates()) == ["train", "val", "test"]

    train, val, test = three_way_split(len(frame), SIXTY_TWENTY_TWENTY)
    for name, rows in (("train", train), ("val", val), ("test", test)):
        part = rows_of(split, name)
        assert SPLIT_COLUMN not in part.columns
        pd.testing.assert_frame_equal(
            part.reset_index(drop=True), frame.iloc[rows].reset_index(drop=True)
        )
    rebuilt = pd.concat([rows_of(split, s) for s in ("train", "val", "test")])
    pd.testing.assert_frame_equal(rebuilt.sort_values("date_joined").reset_index(drop=True), frame)


def test_with_split_stratifies_on_label_column(datasets: dict[str, pd.DataFrame]):
    spec = SIXTY_TWENTY_TWENTY.model_copy(update={"stratify": True})
    split = with_split(datasets["classification_2d"], spec, "y")
    overall = datasets["classification_2d"]["y"].mean()
    for name in ("train", "val", "test"):
        assert rows_of(split, name)["y"].mean() == pytest.approx(overall, abs=0.01)


def test_rows_of_unknown_split_raises(datasets: dict[str, pd.DataFrame]):
    split = with_split(datasets["regression_1d"], SIXTY_TWENTY_TWENTY, None)
    with pytest.raises(ValueError, match="unknown split 'validation'"):
        rows_of(split, "validation")


def test_test_rows_are_the_ceiling_as_in_scikit_learn():
    """The issue's case: 1001 circles with test_size 0.2 have 201 test rows, not 200."""
    spec = SIXTY_TWENTY_TWENTY.model_copy(update={"val_size": 0.0})
    train, val, test = three_way_split(1001, spec)
    rest, expected = train_test_split(np.arange(1001), test_size=0.2, random_state=42)
    assert (len(train), len(val), len(test)) == (800, 0, 201)
    np.testing.assert_array_equal(test, expected)
    np.testing.assert_array_equal(train, rest)


def test_validation_is_a_fraction_of_the_remainder():
    """60/20/20 on 1797 rows: 360 test rows, then ceil(0.25 * 1437) = 360 validation rows."""
    assert split_sizes(1797, SIXTY_TWENTY_TWENTY) == (1077, 360, 360)


@pytest.mark.parametrize(
    ("test_size", "val_size", "literal", "float_expression"),
    [
        (0.2, 0.2, 0.25, 0.25),  # the default: both are exactly 0.25
        (0.3, 0.2, 2 / 7, 0.28571428571428575),
        (0.3, 0.07, 0.1, 0.10000000000000002),
        (0.8, 0.05, 0.25, 0.25000000000000006),
        (0.7, 0.15, 0.5, 0.4999999999999999),
    ],
)
def test_remainder_fraction_is_the_literal(test_size, val_size, literal, float_expression):
    assert val_size / (1 - test_size) == float_expression
    assert remainder_fraction(test_size, val_size) == literal


def test_an_ulp_of_the_float_expression_would_move_a_row():
    """0.07 / (1 - 0.3) in floats is 0.10000000000000002: 2 rows of a 10-row remainder."""
    spec = SplitSpec(test_size=0.3, val_size=0.07, shuffle=True, stratify=False, seed=42)
    train, val, _ = three_way_split(15, spec)  # ceil(4.5) = 5 test rows, 10 left
    rest, _ = train_test_split(np.arange(15), test_size=0.3, random_state=42)
    expected_train, expected_val = train_test_split(rest, test_size=0.1, random_state=42)
    np.testing.assert_array_equal(val, expected_val)
    np.testing.assert_array_equal(train, expected_train)
    assert len(val) == 1
    assert len(train_test_split(rest, test_size=0.07 / (1 - 0.3), random_state=42)[1]) == 2


def test_every_default_split_is_the_curriculums(params: Params, datasets):
    """Each dataset of params.yaml's split section against the curriculum's own two calls."""
    for name, spec in params.split:
        frame = datasets[name]
        x = np.arange(len(frame))
        y = frame[TARGET].to_numpy() if spec.stratify else None
        x_temp, x_test = train_test_split(
            x, test_size=spec.test_size, shuffle=spec.shuffle, stratify=y, random_state=spec.seed
        )
        if spec.val_size:
            assert (spec.test_size, spec.val_size) == (0.2, 0.2), name  # 60/20/20
            x_train, x_val = train_test_split(
                x_temp,
                test_size=0.25,
                shuffle=spec.shuffle,
                stratify=y[x_temp] if spec.stratify else None,
                random_state=spec.seed,
            )
        else:
            x_train, x_val = x_temp, x_temp[:0]
        got = three_way_split(len(frame), spec, y)
        expected_rows = (x_train, x_val, x_test)
        for part, rows, expected in zip(("train", "val", "test"), got, expected_rows, strict=True):
            np.testing.assert_array_equal(rows, expected, err_msg=f"{name} {part}")
