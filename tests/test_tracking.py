"""Tracking conventions: experiment names and kinds, registered models, system metrics, and
what only shows under load or failure: a server that is down, parallel writers on a fresh
sqlite store, and the run that `mlflow run .` hands to its command."""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mlfund.core.tracking import (
    EXPERIMENT_KIND_TAG,
    TRAINING_KIND,
    OfflineRun,
    Tracker,
    TrackingUnavailable,
    check_server,
    connect,
    experiment_name,
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
    with track.training() as training:
        assert training == ""
    with track.run("logistic_regression", "classification_2d", {"c": 1.0}) as run:
        assert isinstance(run, OfflineRun)
        run.metrics({"train_accuracy": 0.9})
        run.history("loss", [1.0, 0.5])
        assert run.sklearn_model(object(), None).model_id == ""
    assert track.run_ids == {}
    assert not (tmp_path / "mlflow.db").exists()
    assert connect(tmp_path, "warn") is None
    assert log_test_metrics(dead_server, "", {"test_accuracy": 1.0}) is False


def test_non_http_stores_are_not_probed(tmp_path: Path) -> None:
    check_server(f"sqlite:///{tmp_path / 'mlflow.db'}")  # nothing to reach, nothing raised


def _open_tracker(root: str, family: str) -> tuple[str, str]:
    track = Tracker(Path(root), family)
    with track.run("model", "dataset", {"seed": 0}) as run:
        run.metrics({"test_accuracy": 1.0})
        # what log_model ends with, without its seconds of imports and serialisation
        import mlflow

        model = mlflow.MlflowClient().create_logged_model(
            mlflow.active_run().info.experiment_id, name="model", source_run_id=run.run_id
        )
        logged = run.register(model.model_id)
    return run.run_id, logged.registered_version


@pytest.mark.e2e  # three stage processes at once: ~9 s, for make test, not test-fast
def test_parallel_stages_share_a_fresh_sqlite_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `dvc queue start -j 3` does to an empty store: migrations, experiment creation
    and versions of one registered model race, unless serialised."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        logged = pool.starmap(_open_tracker, [(str(tmp_path), "linear")] * 3)
    from mlflow import MlflowClient

    run_ids = [run_id for run_id, _ in logged]
    client = MlflowClient(tracking_uri(tmp_path))
    (experiment,) = [e for e in client.search_experiments() if e.name == "mlfund/linear"]
    location = tmp_path / "mlruns" / "mlfund" / "linear"
    assert experiment.artifact_location == location.resolve().as_uri()
    found = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_id for r in found) == sorted(run_ids)
    assert len(set(run_ids)) == 3
    assert sorted(version for _, version in logged) == ["1", "2", "3"]
    versions = client.search_model_versions("name = 'mlfund.linear.model'")
    assert {str(v.version): v.run_id for v in versions} == {v: r for r, v in logged}


def test_project_run_is_a_tag_not_the_run_we_log_into(
    tmp_path: Path, local_store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mlflow run .` exports MLFLOW_RUN_ID; start_run() would resume that one run."""
    import mlflow

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
    tmp_path: Path, local_store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL leaves no chance to end the MLflow run; the stage's next Tracker ends it, and
    only it: a live process's run, another stage's or another host's stay RUNNING."""
    from mlflow import MlflowClient

    root = Path(__file__).resolve().parents[1]
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

    experiment = client.get_experiment_by_name(experiment_name("linear")).experiment_id
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


@pytest.fixture
def local_store(tmp_path: Path, empty_store: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh sqlite store under tmp_path, and a client on it."""
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFUND_EXPERIMENT_PREFIX", raising=False)
    monkeypatch.delenv("MLFUND_MODEL_PREFIX", raising=False)
    shutil.copyfile(empty_store, tmp_path / "mlflow.db")
    return mlflow.MlflowClient(tracking_uri(tmp_path))


def test_experiments_are_prefixed_and_tagged_for_model_training(
    tmp_path: Path, local_store, monkeypatch: pytest.MonkeyPatch
) -> None:
    Tracker(tmp_path, "linear")
    monkeypatch.setenv("MLFUND_EXPERIMENT_PREFIX", "team-a/")
    Tracker(tmp_path, "linear")
    kinds = {e.name: e.tags.get(EXPERIMENT_KIND_TAG) for e in local_store.search_experiments()}
    assert kinds == {
        "Default": None,
        "mlfund/linear": TRAINING_KIND,
        "team-a/linear": TRAINING_KIND,
    }


def test_an_experiment_without_a_kind_gets_one_and_a_kind_is_kept(
    tmp_path: Path, local_store
) -> None:
    """Made before the tag (or by another tool): tagged by the first stage that logs to it.
    A kind someone chose stays."""
    untagged = local_store.create_experiment("mlfund/linear")
    chosen = local_store.create_experiment("mlfund/cnn", tags={EXPERIMENT_KIND_TAG: "finetuning"})
    Tracker(tmp_path, "linear")
    Tracker(tmp_path, "cnn")
    assert local_store.get_experiment(untagged).tags[EXPERIMENT_KIND_TAG] == TRAINING_KIND
    assert local_store.get_experiment(chosen).tags[EXPERIMENT_KIND_TAG] == "finetuning"


def test_a_local_experiment_from_before_the_prefix_is_renamed(tmp_path: Path, local_store) -> None:
    """Its runs stay in the family's experiment: `make compare` and the UI keep the history."""
    old = local_store.create_experiment("linear")
    earlier = local_store.create_run(old, run_name="linear/logistic_regression").info.run_id
    track = Tracker(tmp_path, "linear")
    with track.run("logistic_regression", "classification_2d", {}):
        pass
    experiment = local_store.get_experiment(old)
    assert experiment.name == "mlfund/linear"
    assert experiment.tags[EXPERIMENT_KIND_TAG] == TRAINING_KIND
    found = {r.info.run_id for r in local_store.search_runs([old])}
    assert found == {earlier, track.run_ids["logistic_regression"]}
    assert local_store.get_experiment_by_name("linear") is None


def test_every_logged_model_is_a_registered_version(tmp_path: Path, local_store) -> None:
    """One version per run, pointing at the run and its logged model, tagged like the run;
    registering costs two small writes, not seconds."""
    from sklearn.linear_model import LinearRegression

    x = np.array([[0.0], [1.0], [2.0]])
    model = LinearRegression().fit(x, [1.0, 3.0, 5.0])
    track = Tracker(tmp_path, "linear")
    logged = []
    for _ in range(2):
        with track.run("line", "toy", {}) as run:
            start = time.perf_counter()
            logged.append((run.run_id, run.sklearn_model(model, x)))
            assert time.perf_counter() - start < 30  # the first log_model imports a lot
    assert [ref.registered_version for _, ref in logged] == ["1", "2"]
    for run_id, ref in logged:
        assert ref.registered_model == "mlfund.linear.line"
        version = local_store.get_model_version(ref.registered_model, ref.registered_version)
        assert (version.run_id, version.source) == (run_id, f"models:/{ref.model_id}")
        assert version.tags["family"] == "linear" and version.tags["model"] == "line"
    # the registration alone: a name lookup and a version row
    with track.run("line", "toy", {}) as run:
        registering = []
        for _ in range(3):
            start = time.perf_counter()
            run.register(logged[0][1].model_id)
            registering.append(time.perf_counter() - start)
    assert min(registering) < 1.0, registering


def test_the_training_run_samples_system_metrics_and_holds_the_model_runs(
    tmp_path: Path, local_store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.5")
    track = Tracker(tmp_path, "mlp")
    with track.training() as training:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:  # "training": keep a core busy
            sum(i * i for i in range(10_000))
        with track.run("mlp_classification_2d", "classification_2d", {}) as run:
            pass
    logged = local_store.get_run(training)
    assert logged.info.run_name == "mlp/training"
    assert logged.info.status == "FINISHED"
    system = {k for k in logged.data.metrics if k.startswith("system/")}
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= system
    cpu = local_store.get_metric_history(training, "system/cpu_utilization_percentage")
    assert len(cpu) >= 2 and max(m.value for m in cpu) > 0
    child = local_store.get_run(run.run_id)
    assert child.data.tags["mlflow.parentRunId"] == training
    assert child.info.run_name == "mlp/mlp_classification_2d"
