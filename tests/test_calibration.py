"""`make calibrate`: the spread statistics, the params digest that marks a family stale,
the calibration file, and one real calibration of a cheap seeded family."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from mlfund import calibrate
from mlfund.core import registry
from mlfund.core.calibration import (
    Calibration,
    CalibrationError,
    FamilyRun,
    dumps,
    load_calibration,
    lookup,
    params_digest,
    parse_calibration,
    spread,
)
from mlfund.core.config import Params, parse_params
from tests.conftest import PARAMS_FILE, ROOT


def test_spread_is_the_sample_standard_deviation():
    values = [0.9944, 0.9972, 0.9889, 0.9917, 0.9944]
    result = spread(values)
    assert result.n == 5
    assert result.mean == pytest.approx(np.mean(values), rel=1e-15)
    assert result.std == pytest.approx(np.std(values, ddof=1), rel=1e-12)
    assert (result.min, result.max) == (0.9889, 0.9972)


def test_spread_leaves_out_non_finite_values_and_needs_two():
    result = spread([1.0, math.nan, 3.0, math.inf])
    assert result.n == 2 and result.mean == 2.0 and result.std == pytest.approx(math.sqrt(2))
    assert result.values == [1.0, None, 3.0, None]
    assert spread([1.0]).std is None


def test_digest_follows_the_listed_keys_only():
    raw = {"cnn": {"seed": 42, "epochs": 20}, "rnn": {"seed": 42}}
    keys = ["cnn", "data"]  # `data` is absent: it hashes as None
    assert params_digest(raw, keys) == params_digest({**raw, "rnn": {"seed": 7}}, keys)
    assert params_digest(raw, keys) != params_digest(
        {**raw, "cnn": {"seed": 43, "epochs": 20}}, keys
    )


def calibration(**digests: str) -> Calibration:
    runs = {
        name: FamilyRun(
            k=2,
            threads=1,
            seeds={f"{name}.seed": [42, 43]},
            params_keys=[name],
            params_sha256=digest,
            seconds=2.0,
            seconds_per_seed=[1.0, 1.0],
        )
        for name, digest in digests.items()
    }
    metrics = {
        "cnn.simple_cnn.test_accuracy": spread([0.99, 0.97]),
        "cnn.simple_cnn.val_accuracy": spread([0.98, 0.98]),
        "rnn.gru.test_mse": spread([0.016, 0.018]),
    }
    return Calibration(machine={}, seconds=4.0, families=runs, metrics=metrics)


def test_a_family_whose_params_changed_is_stale():
    raw = {"cnn": {"seed": 42}, "rnn": {"seed": 42}}
    made = calibration(cnn=params_digest(raw, ["cnn"]), rnn=params_digest(raw, ["rnn"]))
    changed = {**raw, "rnn": {"seed": 42, "epochs": 1}}
    fresh, stale = made.fresh(changed)
    assert (list(fresh), stale) == (["cnn"], ["rnn"])
    assert made.sigmas(changed) == {
        "cnn.simple_cnn.test_accuracy": pytest.approx(0.02 / math.sqrt(2)),
        "cnn.simple_cnn.val_accuracy": 0.0,
    }
    spread_ = made.seed_spread("cnn", "test_accuracy", changed)
    assert spread_.by_model == {"simple_cnn": (pytest.approx(0.98), pytest.approx(0.0141421356))}
    assert (spread_.k, spread_.seeds) == (2, "cnn.seed = 42..43")
    assert made.seed_spread("rnn", "test_mse", changed) is None


def test_the_file_round_trips_and_bad_files_say_so(tmp_path: Path):
    made = calibration(cnn="a" * 64)
    path = tmp_path / "calibration.json"
    path.write_text(dumps(made))
    assert load_calibration(path) == made
    assert '    "rnn.gru.test_mse": {"n": 2' in path.read_text()  # one line per metric
    assert load_calibration(tmp_path / "none.json") is None
    path.write_text("{")
    with pytest.raises(CalibrationError, match="unreadable"):
        load_calibration(path)
    with pytest.raises(CalibrationError, match=r"not a calibration file \(families: Field"):
        parse_calibration({"machine": {}, "seconds": 1, "metrics": {}}, "x.json")


def test_every_family_with_a_seed_lists_its_seed_keys(params: Params):
    """A family whose params have a seed is calibrated, over every seed its run reads."""
    raw = yaml.safe_load(PARAMS_FILE.read_text())
    for family in registry.FAMILY_LIST:
        own = getattr(params, family.name)
        expected = {f"{family.name}.seed"} if "seed" in type(own).model_fields else set()
        assert expected <= set(family.seeds), family.name
        for key in family.seeds:
            moved = calibrate.seeded(raw, [key], 3)
            assert parse_params(moved)  # still valid params
            assert lookup(moved, key) == lookup(raw, key) + 3
    assert registry.get("mlp").seeds == ["mlp.seed", "numpy_nn.seed"]  # and the NumPy MLP's
    assert not registry.get("linear").seeds and not registry.get("regularization").seeds


def test_family_metrics_are_what_the_pipeline_writes(params: Params, inputs):
    """Train-side and test scores, named and computed as train@ and evaluate@ do: the
    deterministic linear family gives reports/metrics.json's numbers."""
    committed = json.loads((ROOT / "reports" / "metrics.json").read_text())["linear"]
    expected = {
        f"linear.{model}.{metric}": value
        for model, values in committed.items()
        for metric, value in values.items()
    }
    measured = calibrate.family_metrics(registry.get("linear"), params, inputs, None)
    assert measured == pytest.approx(expected, rel=1e-9)


@pytest.mark.usefixtures("close_figures")
def test_calibrate_a_seeded_family_and_keep_the_others(inputs):
    raw = yaml.safe_load(PARAMS_FILE.read_text())
    previous = calibration(rnn="b" * 64)
    clustering = registry.get("clustering")
    result = calibrate.calibrate([clustering], raw, 2, 1, inputs, None, previous)
    assert list(result.families) == ["clustering", "rnn"]  # rnn kept as it was
    assert result.families["rnn"] == previous.families["rnn"]
    run = result.families["clustering"]
    assert run.seeds == {"clustering.seed": [42, 43]}
    assert run.params_keys == ["data", "featurize", "split", "compute", "clustering"]
    assert run.params_sha256 == params_digest(raw, run.params_keys)
    assert result.seconds == pytest.approx(run.seconds + 2.0)
    # the first seed is the pipeline's own run
    committed = json.loads((ROOT / "reports" / "metrics.json").read_text())["clustering"]
    names = {f"clustering.{m}.{k}" for m, values in committed.items() for k in values}
    assert names | {"rnn.gru.test_mse"} == set(result.metrics)
    ari = result.metrics["clustering.kmeans.ari"]
    assert ari.n == 2 and ari.values[0] == committed["kmeans"]["ari"]
    with pytest.raises(calibrate.CalibrateError, match="--k 1: a spread needs at least 2"):
        calibrate.calibrate([clustering], raw, 1, 1, inputs, None)
