"""Seeded three-way splits reproduce the curriculum's train_test_split calls row for row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from mlfund.core.config import Params, SplitSpec
from mlfund.core.datasets import feature_columns
from mlfund.core.splitting import SPLIT_COLUMN, rows_of, three_way_split, with_split

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
        three_way_split(2, spec)  # rounds to 1 test + 1 val row


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
