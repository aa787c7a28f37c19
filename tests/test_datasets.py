"""Every dataset has the curriculum's shape and draws, and is reproducible."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlfund.core.config import Params
from mlfund.core.datasets import (
    EDUCATION_LEVELS,
    feature_columns,
    make_all,
    make_noisy_sine,
    make_salary_table,
)

# name -> (rows, number of x<i> features, dtype of y)
TABULAR = {
    "classification_2d": (1000, 2, "int64"),
    "regression_1d": (100, 1, "float64"),
    "regression_10d": (1000, 10, "float64"),
    "regression_sparse": (100, 20, "float64"),
    "blobs": (300, 2, "int64"),
    "circles": (1000, 2, "int64"),
    "digits": (1797, 64, "int64"),
    "noisy_sine": (100, 1, "float64"),
    "sine_sequences": (2000, 30, "float64"),
}


def test_make_all_names(datasets: dict[str, pd.DataFrame]):
    assert set(datasets) == {*TABULAR, "salary"}


@pytest.mark.parametrize("name", TABULAR)
def test_tabular_shape_columns_dtypes(datasets: dict[str, pd.DataFrame], name: str):
    rows, n_features, target_dtype = TABULAR[name]
    frame = datasets[name]
    expected = [f"x{i}" for i in range(n_features)]
    assert list(frame.columns) == [*expected, "y"]
    assert feature_columns(frame) == expected
    assert frame.shape == (rows, n_features + 1)
    assert (frame[expected].dtypes == "float64").all()
    assert frame["y"].dtype == target_dtype
    assert not frame.isna().any().any()


def test_circles_are_the_curriculums(datasets: dict[str, pd.DataFrame]):
    from sklearn.datasets import make_circles

    points, labels = make_circles(n_samples=1000, factor=0.3, noise=0.1, random_state=42)
    np.testing.assert_array_equal(datasets["circles"][["x0", "x1"]].to_numpy(), points)
    np.testing.assert_array_equal(datasets["circles"]["y"].to_numpy(), labels)


def test_sine_sequences_follow_their_waves(datasets: dict[str, pd.DataFrame]):
    windows = datasets["sine_sequences"]
    values = windows.to_numpy()  # (n, 31): 30 inputs then the next value
    # every row is one sine wave plus N(0, 0.1) noise: steps are small, amplitudes in range
    assert np.abs(values).max() < 2.0 + 5 * 0.1
    assert np.abs(np.diff(values, axis=1)).mean() < 1.0
    # rows are different waves (random frequency and phase), not copies
    assert np.corrcoef(values[:50]).mean() < 0.5


def test_feature_columns_sorts_numerically():
    frame = pd.DataFrame(columns=["x10", "y", "x2", "xa", "x0", "extra"])
    assert feature_columns(frame) == ["x0", "x2", "x10"]


def test_label_sets(datasets: dict[str, pd.DataFrame]):
    assert set(datasets["classification_2d"]["y"]) == {0, 1}
    assert set(datasets["blobs"]["y"]) == {0, 1, 2, 3}
    assert set(datasets["circles"]["y"]) == {0, 1}
    assert set(datasets["digits"]["y"]) == set(range(10))
    pixels = datasets["digits"][feature_columns(datasets["digits"])]
    assert pixels.min().min() == 0 and pixels.max().max() == 16


def test_datasets_are_deterministic(params: Params, datasets: dict[str, pd.DataFrame]):
    again = make_all(params.data)
    for name, frame in datasets.items():
        pd.testing.assert_frame_equal(again[name], frame, check_exact=True)


def test_noisy_sine_is_the_curriculum_draw(datasets: dict[str, pd.DataFrame]):
    # The curriculum's own code, on numpy's legacy global generator (restored afterwards).
    saved = np.random.get_state()  # noqa: NPY002
    try:
        np.random.seed(42)  # noqa: NPY002
        x = np.linspace(0, 1, 100)
        y = 1.5 * x + np.sin(10 * x) + np.random.normal(0, 0.3, 100)  # noqa: NPY002
    finally:
        np.random.set_state(saved)  # noqa: NPY002
    frame = datasets["noisy_sine"]
    np.testing.assert_array_equal(frame["x0"].to_numpy(), x)
    np.testing.assert_array_equal(frame["y"].to_numpy(), y)


def test_noisy_sine_leaves_global_random_state_alone(params: Params):
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    make_noisy_sine(params.data.noisy_sine)
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # noqa: NPY002


# ---------------------------------------------------------------- salary
@pytest.fixture(scope="module")
def curriculum_draws() -> dict[str, np.ndarray]:
    """The curriculum's salary draws, in its order, before any clipping."""
    rng = np.random.RandomState(42)
    n = 1000
    draws = {
        "age": rng.randint(18, 80, n),
        "income": rng.normal(50000, 20000, n),
        "education": rng.choice(list(EDUCATION_LEVELS), n),
        "experience_years": rng.randint(0, 40, n),
    }
    draws["noise"] = rng.normal(0, 5000, n)
    return draws


def test_salary_columns_and_dtypes(datasets: dict[str, pd.DataFrame]):
    table = datasets["salary"]
    assert table.shape == (1000, 6)
    assert table.dtypes.astype(str).to_dict() == {
        "age": "int64",
        "income": "float64",
        "education": "string",
        "experience_years": "int64",
        "date_joined": "datetime64[ns]",
        "salary": "float64",
    }


def test_salary_same_draws_as_curriculum(datasets: dict[str, pd.DataFrame], curriculum_draws):
    table = datasets["salary"]
    np.testing.assert_array_equal(table["age"], curriculum_draws["age"])
    np.testing.assert_array_equal(table["experience_years"], curriculum_draws["experience_years"])
    np.testing.assert_array_equal(table["education"].to_numpy(str), curriculum_draws["education"])
    np.testing.assert_array_equal(table["income"], np.maximum(curriculum_draws["income"], 0.0))


def test_salary_income_clipped_at_zero(datasets: dict[str, pd.DataFrame], curriculum_draws):
    income = datasets["salary"]["income"]
    drawn_negative = curriculum_draws["income"] < 0
    assert drawn_negative.sum() >= 1  # the default draw does hit the floor
    assert (income >= 0).all()
    np.testing.assert_array_equal(income[drawn_negative], 0.0)
    kept = ~drawn_negative
    np.testing.assert_array_equal(income[kept], curriculum_draws["income"][kept])


def test_salary_consistent_with_clipped_income(datasets: dict[str, pd.DataFrame], curriculum_draws):
    table = datasets["salary"]
    expected = (
        table["income"].to_numpy() * 0.5
        + curriculum_draws["age"] * 1000
        + curriculum_draws["experience_years"] * 2000
        + curriculum_draws["noise"]
    )
    np.testing.assert_array_equal(table["salary"], expected)


def test_salary_dates_one_per_day(datasets: dict[str, pd.DataFrame]):
    joined = datasets["salary"]["date_joined"]
    assert joined.iloc[0] == pd.Timestamp("2020-01-01")
    assert (joined.diff().iloc[1:] == pd.Timedelta(days=1)).all()


def test_salary_income_floor_param(params: Params):
    floor = 10_000.0
    table = make_salary_table(params.data.salary.model_copy(update={"income_floor": floor}))
    assert table["income"].min() == floor
    assert (table["income"] == floor).sum() > 1
