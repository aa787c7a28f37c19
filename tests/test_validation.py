"""The Great Expectations suites pass on the generated datasets and catch corruptions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlfund.core.config import DataParams, load_params
from mlfund.core.datasets import make_all, make_blob_clusters
from mlfund.validation import (
    DATASETS,
    DatasetValidation,
    expectations_for,
    validate_datasets,
)

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def data() -> DataParams:
    return load_params(ROOT / "params.yaml").data


@pytest.fixture(scope="module")
def frames(data: DataParams) -> dict[str, pd.DataFrame]:
    return make_all(data)


@pytest.fixture(scope="module")
def docs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data_docs")


@pytest.fixture(scope="module")
def default_run(
    frames: dict[str, pd.DataFrame], data: DataParams, docs_dir: Path
) -> dict[str, DatasetValidation]:
    """Every default dataset validated once, with Data Docs; shared by several tests."""
    return validate_datasets(frames, data, docs_dir=docs_dir)


def _validate_one(name: str, frame: pd.DataFrame, data: DataParams) -> DatasetValidation:
    return validate_datasets({name: frame}, data)[name]


def _failures_naming(outcome: DatasetValidation, expectation: str, column: str) -> list[str]:
    """The failure lines that name the dataset, `expectation` and `column`."""
    return [
        line
        for line in outcome.failures
        if line.startswith(f"{outcome.dataset}: ")
        and expectation in line
        and f"column={column!r}" in line
    ]


def test_every_default_dataset_passes(default_run: dict[str, DatasetValidation]) -> None:
    assert set(default_run) == set(DATASETS)
    for name, outcome in default_run.items():
        assert outcome.dataset == name
        assert outcome.success, outcome.failures
        assert outcome.failures == []
        assert outcome.result["success"] is True
        assert outcome.result["suite_name"] == name
        assert outcome.result["statistics"]["unsuccessful_expectations"] == 0


def test_results_are_json_without_run_ids(default_run: dict[str, DatasetValidation]) -> None:
    for outcome in default_run.values():
        text = json.dumps(outcome.result)  # raises on anything not JSON-serialisable
        assert "run_id" not in outcome.result["meta"]
        assert "validation_time" not in outcome.result["meta"]
        assert "ge_load_time" not in text


def test_results_repeat_exactly(frames: dict[str, pd.DataFrame], data: DataParams) -> None:
    first = _validate_one("salary", frames["salary"], data)
    second = _validate_one("salary", frames["salary"], data)
    assert first.result == second.result


def test_data_docs_are_built(default_run: dict[str, DatasetValidation], docs_dir: Path) -> None:
    assert (docs_dir / "index.html").is_file()
    index = (docs_dir / "index.html").read_text()
    pages = list((docs_dir / "validations").rglob("*.html"))
    for name in DATASETS:
        assert name in index
        assert any(page.parts[-4] == name for page in pages), name


def test_expected_values_follow_params(data: DataParams) -> None:
    blobs = data.blobs.model_copy(update={"n_samples": 150, "centers": 3})
    changed = data.model_copy(update={"blobs": blobs})
    frame = make_blob_clusters(blobs)
    assert _validate_one("blobs", frame, changed).success
    # Under the default params the same frame has too few rows (its labels 0..2 still fit).
    outcome = _validate_one("blobs", frame, data)
    assert not outcome.success
    assert any("expect_table_row_count_to_equal" in line for line in outcome.failures)


def test_tabular_columns_come_from_params(data: DataParams) -> None:
    expectations = {e.expectation_type: e for e in expectations_for("regression_10d", data)}
    ordered = expectations["expect_table_columns_to_match_ordered_list"]
    n_features = data.regression_10d.n_features
    assert ordered.column_list == [f"x{i}" for i in range(n_features)] + ["y"]
    assert expectations["expect_table_row_count_to_equal"].value == data.regression_10d.n_samples


# ---------------------------------------------------------------- salary corruptions
def test_null_income_fails_naming_income(frames: dict[str, pd.DataFrame], data: DataParams) -> None:
    salary = frames["salary"].copy()
    salary.loc[[3, 10, 20], "income"] = np.nan
    outcome = _validate_one("salary", salary, data)
    assert not outcome.success
    lines = _failures_naming(outcome, "expect_column_values_to_not_be_null", "income")
    assert len(lines) == 1
    assert "3 unexpected values" in lines[0]


def test_negative_income_fails(frames: dict[str, pd.DataFrame], data: DataParams) -> None:
    salary = frames["salary"].copy()
    salary.loc[5, "income"] = -1.0
    outcome = _validate_one("salary", salary, data)
    assert not outcome.success
    assert _failures_naming(outcome, "expect_column_values_to_be_between", "income")


def test_dropped_column_fails(frames: dict[str, pd.DataFrame], data: DataParams) -> None:
    outcome = _validate_one("salary", frames["salary"].drop(columns="experience_years"), data)
    assert not outcome.success
    ordered = [f for f in outcome.failures if "expect_table_columns_to_match_ordered_list" in f]
    assert len(ordered) == 1
    assert "missing columns ['experience_years']" in ordered[0]


def test_unknown_education_fails(frames: dict[str, pd.DataFrame], data: DataParams) -> None:
    salary = frames["salary"].copy()
    salary.loc[0, "education"] = "Kindergarten"
    outcome = _validate_one("salary", salary, data)
    assert not outcome.success
    lines = _failures_naming(outcome, "expect_column_values_to_be_in_set", "education")
    assert len(lines) == 1
    assert "Kindergarten" in lines[0]


def test_duplicate_join_date_fails(frames: dict[str, pd.DataFrame], data: DataParams) -> None:
    salary = frames["salary"].copy()
    salary.loc[1, "date_joined"] = salary.loc[0, "date_joined"]
    outcome = _validate_one("salary", salary, data)
    assert _failures_naming(outcome, "expect_column_values_to_be_unique", "date_joined")


# ---------------------------------------------------------------- tabular corruptions
def test_null_feature_fails(frames: dict[str, pd.DataFrame], data: DataParams) -> None:
    table = frames["classification_2d"].copy()
    table.loc[0, "x0"] = np.nan
    outcome = _validate_one("classification_2d", table, data)
    assert not outcome.success
    assert _failures_naming(outcome, "expect_column_values_to_not_be_null", "x0")


def test_unknown_label_fails(frames: dict[str, pd.DataFrame], data: DataParams) -> None:
    table = frames["classification_2d"].copy()
    table.loc[0, "y"] = 7
    outcome = _validate_one("classification_2d", table, data)
    assert not outcome.success
    assert _failures_naming(outcome, "expect_column_values_to_be_in_set", "y")


def test_wrong_row_count_fails(frames: dict[str, pd.DataFrame], data: DataParams) -> None:
    n = data.classification_2d.n_samples
    outcome = _validate_one("classification_2d", frames["classification_2d"].iloc[:-1], data)
    assert not outcome.success
    assert outcome.failures == [
        f"classification_2d: expect_table_row_count_to_equal(value={n}): observed {n - 1}"
    ]


def test_infinite_regression_target_fails(
    frames: dict[str, pd.DataFrame], data: DataParams
) -> None:
    table = frames["regression_1d"].copy()
    table.loc[0, "y"] = np.inf
    outcome = _validate_one("regression_1d", table, data)
    assert _failures_naming(outcome, "expect_column_values_to_be_between", "y")


# ---------------------------------------------------------------- unknown datasets
def test_unknown_dataset_raises(frames: dict[str, pd.DataFrame], data: DataParams) -> None:
    with pytest.raises(ValueError, match="mnist"):
        validate_datasets({"salary": frames["salary"], "mnist": frames["digits"]}, data)
    with pytest.raises(ValueError, match="mnist"):
        expectations_for("mnist", data)
