"""Row-wise feature engineering of the salary table (the featurize stage).

Every transform here looks at one row at a time, with fixed categories and a fixed
reference date, so it can run before the split without leaking anything. Transforms that
learn from data (scaling, selection) are fitted on the training split, in the features
family.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from mlfund.core.tables import EDUCATION_DUMMIES, EDUCATION_LEVELS

TARGET = "salary"


def engineer_salary_features(
    table: pd.DataFrame, reference_date: dt.date, age_bins: list[float], age_labels: list[str]
) -> pd.DataFrame:
    """The curriculum's engineered columns added to the raw salary table.

    - log_income: log1p(income); incomes are >= 0 (generate clips, validate checks), and a
      negative one here raises instead of turning into NaN.
    - education_encoded: the ordinal rank High School < Bachelor < Master < PhD. The
      curriculum's LabelEncoder ranks alphabetically (Bachelor first), which no model
      should read as an order.
    - days_since_joining: counted to `reference_date`, not "now", so features are
      reproducible.
    """
    if (table["income"] < 0).any():
        raise ValueError("salary table: negative income; log1p would give NaN")
    unknown = set(table["education"].unique()) - set(EDUCATION_LEVELS)
    if unknown:
        raise ValueError(f"salary table: unknown education levels {sorted(unknown)}")

    joined = table["date_joined"]
    features = table.assign(
        log_income=np.log1p(table["income"]),
        age_squared=table["age"] ** 2,
        income_experience_interaction=table["income"] * table["experience_years"],
        age_group=pd.cut(table["age"], bins=age_bins, labels=age_labels).astype("string"),
        education_encoded=table["education"]
        .map({level: rank for rank, level in enumerate(EDUCATION_LEVELS)})
        .astype("int64"),
        join_year=joined.dt.year,
        join_month=joined.dt.month,
        join_day_of_week=joined.dt.day_of_week,
        join_quarter=joined.dt.quarter,
        days_since_joining=(pd.Timestamp(reference_date) - joined).dt.days,
    )
    for level, column in zip(EDUCATION_LEVELS, EDUCATION_DUMMIES, strict=True):
        features[column] = (table["education"] == level).astype("int64")
    if features["age_group"].isna().any():
        raise ValueError(f"salary table: ages outside age_bins {age_bins}")
    with_nan = features.columns[features.isna().any()].tolist()
    if with_nan:  # nothing downstream may ever see a NaN
        raise ValueError(f"salary features: NaN in columns {with_nan}")
    return features
