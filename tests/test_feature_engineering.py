"""Row-wise salary features on a hand-made table, and their error cases."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from mlfund.core.config import Params
from mlfund.core.feature_engineering import engineer_salary_features
from mlfund.core.tables import EDUCATION_DUMMIES, model_columns

REFERENCE = dt.date(2026, 1, 1)
BINS = [0, 30, 50, 65, 100]
LABELS = ["Young", "Middle", "Senior", "Elder"]


@pytest.fixture
def table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [30, 50, 70],  # right-closed bins: 30 is Young, 50 is Middle
            "income": [0.0, 50_000.0, 100_000.0],
            "education": pd.Series(["PhD", "High School", "Bachelor"], dtype="string"),
            "experience_years": [0, 10, 30],
            "date_joined": pd.to_datetime(["2020-01-01", "2023-06-15", "2025-12-31"]),
            "salary": [1.0, 2.0, 3.0],
        }
    )


def engineer(table: pd.DataFrame, reference: dt.date = REFERENCE) -> pd.DataFrame:
    return engineer_salary_features(table, reference, BINS, LABELS)


def test_numeric_transforms(table: pd.DataFrame):
    out = engineer(table)
    np.testing.assert_allclose(out["log_income"], [0.0, np.log1p(50_000), np.log1p(100_000)])
    assert out["age_squared"].tolist() == [900, 2500, 4900]
    assert out["income_experience_interaction"].tolist() == [0.0, 500_000.0, 3_000_000.0]


def test_age_group_bins_are_right_closed(table: pd.DataFrame):
    assert engineer(table)["age_group"].tolist() == ["Young", "Middle", "Elder"]


def test_education_ordinal_rank(table: pd.DataFrame):
    # High School=0 < Bachelor=1 < Master=2 < PhD=3 (not alphabetical)
    out = engineer(table)
    assert out["education_encoded"].tolist() == [3, 0, 1]
    assert out["education_encoded"].dtype == "int64"


def test_education_one_hot(table: pd.DataFrame):
    out = engineer(table)
    assert EDUCATION_DUMMIES == [
        "education_High School",
        "education_Bachelor",
        "education_Master",
        "education_PhD",
    ]
    assert out[EDUCATION_DUMMIES].to_numpy().tolist() == [
        [0, 0, 0, 1],
        [1, 0, 0, 0],
        [0, 1, 0, 0],
    ]


def test_date_parts(table: pd.DataFrame):
    out = engineer(table)
    assert out["join_year"].tolist() == [2020, 2023, 2025]
    assert out["join_month"].tolist() == [1, 6, 12]
    assert out["join_day_of_week"].tolist() == [2, 3, 2]  # Wed, Thu, Wed (Monday=0)
    assert out["join_quarter"].tolist() == [1, 2, 4]


def test_days_since_joining_counts_to_reference_date(table: pd.DataFrame):
    assert engineer(table)["days_since_joining"].tolist() == [2192, 931, 1]


def test_days_since_joining_does_not_depend_on_today(table: pd.DataFrame):
    # A reference date long past and one shifted by ten days: only the reference matters.
    past = engineer(table, dt.date(2019, 1, 1))["days_since_joining"]
    assert past.tolist() == [-365, -1626, -2556]
    shifted = engineer(table, REFERENCE + dt.timedelta(days=10))["days_since_joining"]
    assert (shifted - engineer(table)["days_since_joining"]).tolist() == [10, 10, 10]


def test_input_table_is_not_modified(table: pd.DataFrame):
    before = table.copy()
    out = engineer(table)
    pd.testing.assert_frame_equal(table, before)
    pd.testing.assert_frame_equal(out[list(table.columns)], before)


def test_negative_income_raises(table: pd.DataFrame):
    table.loc[1, "income"] = -1.0
    with pytest.raises(ValueError, match="income"):
        engineer(table)


def test_unknown_education_raises(table: pd.DataFrame):
    table.loc[0, "education"] = "Doctorate"
    with pytest.raises(ValueError, match=r"unknown education levels \['Doctorate'\]"):
        engineer(table)


@pytest.mark.parametrize("age", [0, 101])  # (0, 30] excludes 0; 101 is past the last edge
def test_age_outside_bins_raises(table: pd.DataFrame, age: int):
    table.loc[2, "age"] = age
    with pytest.raises(ValueError, match="outside age_bins"):
        engineer(table)


def test_default_salary_table_has_no_nan(params: Params, datasets: dict[str, pd.DataFrame]):
    p = params.featurize
    out = engineer_salary_features(datasets["salary"], p.reference_date, p.age_bins, p.age_labels)
    assert len(out) == 1000
    assert not out.isna().any().any()
    assert set(model_columns(engineered=True)) <= set(out.columns)
    assert set(out["age_group"]) <= set(p.age_labels)
    assert (out["log_income"] >= 0).all()


def test_model_columns():
    assert model_columns(engineered=False) == [
        "age",
        "income",
        "experience_years",
        "education_encoded",
    ]
    engineered = model_columns(engineered=True)
    assert len(engineered) == len(set(engineered)) == 3 + 8 + 4 + 1
    assert set(model_columns(engineered=False)) <= set(engineered)
