"""params.yaml validation: defaults load, and every kind of mistake names its key path."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlfund import preflight
from mlfund.core.config import Params, ParamsError, load_params, parse_params

ROOT = Path(__file__).resolve().parents[1]
PARAMS_FILE = ROOT / "params.yaml"


@pytest.fixture
def raw() -> dict:
    """A fresh, mutable copy of the default params as plain YAML data."""
    return yaml.safe_load(PARAMS_FILE.read_text())


def error_of(raw: dict) -> str:
    with pytest.raises(ParamsError) as info:
        parse_params(raw)
    return str(info.value)


def test_defaults_load(params: Params):
    assert params.linear.poly_degree == 3
    assert params.regularization.cv_folds == 5
    assert params.regularization.degrees == [1, 3, 9, 15]
    assert params.split.regression_10d.test_size == 0.2
    assert params.split.noisy_sine.shuffle is False
    assert params.clustering.kmeans_n_init == "auto"
    assert params.featurize.reference_date == dt.date(2026, 1, 1)
    assert params.data.salary.start_date == dt.date(2020, 1, 1)
    assert params.data.regression_sparse.n_informative == 5
    assert params.data.regression_1d.n_informative is None


def test_parse_params_accepts_the_raw_defaults(raw: dict, params: Params):
    assert parse_params(raw) == params


def test_params_are_frozen(params: Params):
    with pytest.raises(ValueError, match="frozen"):
        params.linear.poly_degree = 5


def test_unknown_key_names_full_path(raw: dict):
    raw["regularization"]["cv_fold"] = 5
    message = error_of(raw)
    assert "regularization.cv_fold" in message
    assert "unknown key" in message


def test_unknown_top_level_section(raw: dict):
    raw["trainig"] = {}
    assert "trainig: unknown key" in error_of(raw)


def test_wrong_type_names_path(raw: dict):
    raw["linear"]["poly_degree"] = "three"
    message = error_of(raw)
    assert "linear.poly_degree" in message
    assert "'three'" in message  # the offending value is echoed


def test_missing_key_names_path(raw: dict):
    del raw["clustering"]["dbscan_eps"]
    message = error_of(raw)
    assert "clustering.dbscan_eps" in message
    assert "Field required" in message


@pytest.mark.parametrize(
    ("section", "key", "value", "path"),
    [
        ("regularization", "cv_folds", 1, "regularization.cv_folds"),
        ("clustering", "dbscan_eps", 0.0, "clustering.dbscan_eps"),
        ("clustering", "linkage", "median", "clustering.linkage"),
        ("clustering", "kmeans_n_init", "many", "clustering.kmeans_n_init"),
        ("embedding", "tsne_perplexity", 1.0, "embedding.tsne_perplexity"),
    ],
)
def test_out_of_range_names_path(raw: dict, section: str, key: str, value, path: str):
    raw[section][key] = value
    assert f"  {path}" in error_of(raw)


@pytest.mark.parametrize(
    ("change", "path", "expected"),
    [
        ({"rotation": -5.0}, "transfer.target_shift.rotation", "greater than or equal to 0"),
        ({"noise": 1.5}, "transfer.target_shift.noise", "less than or equal to 1"),
        ({"blur": 1.0}, "transfer.target_shift.blur", "unknown key"),
    ],
)
def test_transfer_target_shift_is_validated(raw: dict, change: dict, path: str, expected: str):
    raw["transfer"]["target_shift"].update(change)
    message = error_of(raw)
    assert f"  {path}" in message and expected in message


def test_transfer_classes_are_distinct(raw: dict):
    raw["transfer"]["target_classes"] = [5, 6, 6]
    assert "a digit is listed twice in [5, 6, 6]" in error_of(raw)


def test_split_fraction_out_of_range(raw: dict):
    raw["split"]["salary"]["test_size"] = 1.5
    message = error_of(raw)
    assert "split.salary.test_size" in message
    assert "1.5" in message


def test_negative_seed_rejected(raw: dict):
    raw["data"]["blobs"]["seed"] = -1
    assert "data.blobs.seed" in error_of(raw)


def test_age_labels_must_match_bins(raw: dict):
    raw["featurize"]["age_labels"] = ["Young", "Old"]
    message = error_of(raw)
    assert "featurize" in message
    assert "age_labels has 2 names but age_bins defines 4 bins" in message


def test_age_bins_must_increase(raw: dict):
    raw["featurize"]["age_bins"] = [0, 50, 30, 65, 100]
    assert "age_bins must increase strictly" in error_of(raw)


def test_split_must_leave_training_rows(raw: dict):
    raw["split"]["regression_10d"]["test_size"] = 0.5
    raw["split"]["regression_10d"]["val_size"] = 0.4
    message = error_of(raw)
    assert "split.regression_10d" in message
    assert "test_size + val_size = 0.9" in message


def test_stratify_needs_shuffle(raw: dict):
    raw["split"]["classification_2d"].update(stratify=True, shuffle=False)
    message = error_of(raw)
    assert "split.classification_2d" in message
    assert "stratify: true needs shuffle: true" in message


@pytest.mark.parametrize(
    ("section", "dataset", "change", "expected"),
    [
        ("data", "classification_2d", {"n_informative": 3}, "exceeds n_features (2)"),
        ("data", "regression_sparse", {"n_informative": 21}, "n_informative (21) exceeds"),
        ("split", "salary", {"test_size": 0}, "greater than 0"),
    ],
)
def test_values_that_would_fail_a_later_stage_fail_now(
    raw: dict, section: str, dataset: str, change: dict, expected: str
):
    raw[section][dataset].update(change)
    message = error_of(raw)
    assert f"{section}.{dataset}" in message
    assert expected in message


def test_selection_sizes_bounded_by_the_engineered_features(raw: dict):
    raw["features"]["k_best"] = 50
    raw["features"]["rfe_n_features"] = 17
    found = preflight.problems(parse_params(raw))  # the schema alone cannot know the count
    assert found == [
        "features.k_best (50) exceeds the 16 engineered features",
        "features.rfe_n_features (17) exceeds the 16 engineered features",
    ]


def test_default_params_pass_preflight(params: Params):
    assert preflight.problems(params) == []


@pytest.mark.parametrize("stop", [-4, -5])
def test_logspace_stop_must_exceed_start(raw: dict, stop: int):
    raw["regularization"]["ridge_alphas"]["stop"] = stop
    message = error_of(raw)
    assert "regularization.ridge_alphas" in message
    assert "must be greater than start" in message


def test_several_errors_reported_at_once(raw: dict):
    raw["regularization"]["cv_fold"] = 5
    raw["linear"]["poly_degree"] = "three"
    raw["split"]["salary"]["test_size"] = 1.5
    message = error_of(raw)
    assert "3 invalid parameter(s)" in message
    for path in ("regularization.cv_fold", "linear.poly_degree", "split.salary.test_size"):
        assert path in message


def test_load_params_reports_the_file_and_path(raw: dict, tmp_path: Path):
    raw["regularization"]["cv_folds"] = 1
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError) as info:
        load_params(path)
    assert str(info.value).startswith(f"{path}: 1 invalid parameter(s)")
    assert "regularization.cv_folds" in str(info.value)


def test_missing_file(tmp_path: Path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ParamsError, match="file not found") as info:
        load_params(path)
    assert str(path) in str(info.value)


def test_invalid_yaml(tmp_path: Path):
    path = tmp_path / "params.yaml"
    path.write_text("linear: {poly_degree: 3\n  broken: [\n")
    with pytest.raises(ParamsError, match="not valid YAML") as info:
        load_params(path)
    assert str(path) in str(info.value)


def test_empty_file_is_a_params_error(tmp_path: Path):
    path = tmp_path / "params.yaml"
    path.write_text("")
    with pytest.raises(ParamsError, match=re.escape(str(path))):
        load_params(path)


# ---------------------------------------------------------------- the check_params stage
def run_check_params(raw: dict, work: Path) -> subprocess.CompletedProcess:
    """`python -m stages.check_params` in a scratch checkout holding `raw` as params.yaml.

    The code is copied into `work` so the stage reads `work/params.yaml` and writes
    under `work/reports`, whether it locates the checkout from its own file or from DVC_ROOT;
    the repository's own params and reports are never touched.
    """
    for package in ("stages", "src"):  # stages import their own checkout's library
        shutil.copytree(
            ROOT / package, work / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    (work / "params.yaml").write_text(yaml.safe_dump(raw))
    env = {**os.environ, "DVC_ROOT": str(work), "MLFLOW_DISABLE_TELEMETRY": "true"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(work), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "stages.check_params"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_params_stage_fails_with_code_2(raw: dict, tmp_path: Path):
    raw["regularization"]["cv_fold"] = 5
    result = run_check_params(raw, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "regularization.cv_fold" in result.stderr
    assert "unknown key" in result.stderr
    assert str(tmp_path / "params.yaml") in result.stderr
    assert not (tmp_path / "reports").exists()  # failed before writing anything


def test_check_params_stage_passes_on_defaults(raw: dict, tmp_path: Path):
    result = run_check_params(raw, tmp_path)
    assert result.returncode == 0, result.stderr
    check = json.loads((tmp_path / "reports" / "params_check.json").read_text())
    assert check == {"valid": True, "sections": sorted(Params.model_fields)}
