"""Tracking conventions that only show under load or failure: a server that is down, parallel
writers on a fresh sqlite store, and the run that `mlflow run .` hands to its command."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlfund.core.tracking import (
    OfflineRun,
    Tracker,
    TrackingUnavailable,
    check_server,
    connect,
    log_test_metrics,
    tracking_uri,
)


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def dead_server(monkeypatch: pytest.MonkeyPatch) -> str:
    uri = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def test_unreachable_server_fails_fast_naming_the_uri(dead_server: str, tmp_path: Path) -> None:
    start = time.perf_counter()
    with pytest.raises(TrackingUnavailable) as error:
        Tracker(tmp_path, "linear")
    # MLflow's own client would retry for about two minutes before giving up.
    assert time.perf_counter() - start < 10
    assert dead_server in str(error.value)
    assert "tracking.on_unreachable: warn" in str(error.value)


def test_warn_opt_out_trains_untracked(
    dead_server: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="mlfund.core.tracking"):
        track = Tracker(tmp_path, "linear", on_unreachable="warn")
    assert not track.enabled
    assert dead_server in caplog.text
    with track.run("logistic_regression", "classification_2d", {"c": 1.0}) as run:
        assert isinstance(run, OfflineRun)
        run.metrics({"train_accuracy": 0.9})
        run.history("loss", [1.0, 0.5])
        assert run.sklearn_model(object(), None) == ""
    assert track.run_ids == {}
    assert not (tmp_path / "mlflow.db").exists()
    assert connect(tmp_path, "warn") is None
    assert log_test_metrics(dead_server, "", {"test_accuracy": 1.0}) is False


def test_non_http_stores_are_not_probed(tmp_path: Path) -> None:
    check_server(f"sqlite:///{tmp_path / 'mlflow.db'}")  # nothing to reach, nothing raised


def _open_tracker(root: str, family: str) -> str:
    track = Tracker(Path(root), family)
    with track.run("model", "dataset", {"seed": 0}) as run:
        run.metrics({"test_accuracy": 1.0})
    return run.run_id


def test_parallel_stages_share_a_fresh_sqlite_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `dvc queue start -j 3` does to an empty store: migrations and experiment
    creation race, unless serialised."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        run_ids = pool.starmap(_open_tracker, [(str(tmp_path), "linear")] * 3)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri(tmp_path))
    (experiment,) = [e for e in client.search_experiments() if e.name == "linear"]
    assert experiment.artifact_location == (tmp_path / "mlruns" / "linear").resolve().as_uri()
    found = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_id for r in found) == sorted(run_ids)
    assert len(set(run_ids)) == 3


def test_project_run_is_a_tag_not_the_run_we_log_into(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mlflow run .` exports MLFLOW_RUN_ID; start_run() would resume that one run."""
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mlflow.set_tracking_uri(tracking_uri(tmp_path))
    project_run = mlflow.MlflowClient().create_run("0").info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", project_run)
    track = Tracker(tmp_path, "linear")
    with track.run("logistic_regression", "classification_2d", {}) as run:
        pass
    assert run.run_id != project_run
    logged = mlflow.MlflowClient().get_run(run.run_id)
    assert logged.data.tags["mlflow_project_run_id"] == project_run
    assert logged.info.run_name == "linear/logistic_regression"


_KILLED_STAGE = """
import sys, time
from pathlib import Path
from mlfund.core.tracking import Tracker

track = Tracker(Path(sys.argv[1]), "linear")
with track.run("logistic_regression", "classification_2d", {}) as run:
    print(run.run_id, flush=True)
    time.sleep(600)
"""


def test_a_killed_stage_run_is_marked_killed_by_the_next_run_of_its_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL leaves no chance to end the MLflow run; the stage's next Tracker ends it, and
    only it: a live process's run, another stage's or another host's stay RUNNING."""
    from mlflow import MlflowClient

    root = Path(__file__).resolve().parents[1]
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_STAGE", "train@linear")
    monkeypatch.setenv("DVC_EXP_NAME", "exp-1")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])}
    stage = subprocess.Popen(
        [sys.executable, "-c", _KILLED_STAGE, str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        killed = stage.stdout.readline().strip()  # the run is open once its id is printed
        assert killed, stage.stderr.read()
    finally:
        stage.send_signal(signal.SIGKILL)
        stage.wait(timeout=30)
        stage.stdout.close()
        stage.stderr.close()
    client = MlflowClient(tracking_uri(tmp_path))
    assert client.get_run(killed).info.status == "RUNNING"  # what SIGKILL leaves

    experiment = client.get_experiment_by_name("linear").experiment_id
    own = client.get_run(killed).data.tags
    assert own["pid"] == str(stage.pid)
    alive = {**own, "pid": str(os.getpid())}
    others = {
        "live process": alive,
        "other stage": {**own, "dvc_stage": "train@clustering"},
        "other experiment": {**own, "dvc_exp_name": "exp-2"},
        "other host": {**own, "host": f"not-{own['host']}"},
        "no pid": {k: v for k, v in own.items() if k != "pid"},
    }
    left = {
        name: client.create_run(experiment, tags=tags).info.run_id for name, tags in others.items()
    }

    Tracker(tmp_path, "linear")  # the next run of train@linear in exp-1
    assert client.get_run(killed).info.status == "KILLED"
    assert client.get_run(killed).info.end_time is not None
    assert {name: client.get_run(i).info.status for name, i in left.items()} == dict.fromkeys(
        others, "RUNNING"
    )
