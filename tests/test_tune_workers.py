"""`make tune` as users run it: worker processes sharing one study on the local store and
on PostgreSQL, a worker killed mid-trial, and the best params back through `dvc exp run`.

One module-scoped git copy of the project runs `dvc repro split` (the data every trial
reads); the studies tune the clustering family, whose trials take about a second.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from mlfund.core.tracking import experiment_name
from tests.e2e import clean_env, commit, dvc, run, small_project
from tests.services import create_database

pytestmark = pytest.mark.e2e
TUNE = (sys.executable, "-m", "mlfund.tune", "--family", "clustering")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = small_project(tmp_path_factory.mktemp("tune") / "repo")
    dvc(work, "repro", "split")
    commit(work, "data for the trials")  # `dvc exp run` starts from HEAD
    return work


def start(work: Path, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*TUNE, *args],
        cwd=work,
        env=clean_env(work, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 240) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"tune exited {process.returncode}:\n{out}\n{err}"
    return out


def trials_of(study: str, storage: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=storage).get_trials()


def assert_tracked(trials: list, study: str, tracking: str) -> None:
    """Every trial is one MLflow run of the clustering experiment, tagged with the study
    and its number, with its params and the objective."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name(experiment_name("clustering"))
    runs = client.search_runs([experiment.experiment_id], f"tags.optuna_study = '{study}'")
    by_number = {int(r.data.tags["optuna_trial"]): r for r in runs}
    assert sorted(by_number) == sorted(t.number for t in trials)
    for trial in trials:
        logged = by_number[trial.number]
        assert logged.info.run_name == f"clustering/trial-{trial.number}"
        if trial.state == TrialState.COMPLETE:
            assert logged.data.params == {k: str(v) for k, v in trial.params.items()}
            assert logged.data.metrics["silhouette"] == pytest.approx(trial.value)
            assert logged.data.tags["state"] == "COMPLETE"


def test_two_local_workers_share_one_study(project: Path) -> None:
    """WORKERS=2 on one machine: the default sqlite store beside the MLflow store."""
    out = finish(start(project, "--trials", "6", "--workers", "2", "--study", "two-local"))
    trials = trials_of("two-local", f"sqlite:///{project / 'optuna.db'}")
    assert sorted(t.number for t in trials) == list(range(6))  # unique, and the budget
    assert {t.state for t in trials} == {TrialState.COMPLETE}
    assert len({t.user_attrs["pid"] for t in trials}) == 2, "both workers ran trials"
    assert_tracked(trials, "two-local", f"sqlite:///{project / 'mlflow.db'}")
    assert out.startswith("dvc exp run -S clustering.n_clusters=")


def test_two_machines_share_a_study_on_postgres(
    project: Path, postgres: str, tracking_server: str
) -> None:
    """The many-machine recipe on loopback: the study in a database of the PostgreSQL
    that backs the MLflow server, two workers started alike, each joining the study."""
    storage = create_database(postgres.rsplit("/", 1)[0], "optuna")
    args = ("--trials", "6", "--study", "two-pg", "--storage", storage)
    workers = [start(project, *args, MLFLOW_TRACKING_URI=tracking_server) for _ in range(2)]
    outs = [finish(worker) for worker in workers]
    trials = trials_of("two-pg", storage)
    assert sorted(t.number for t in trials) == list(range(6))
    assert {t.state for t in trials} == {TrialState.COMPLETE}
    assert len({t.user_attrs["pid"] for t in trials}) == 2, "both workers ran trials"
    assert_tracked(trials, "two-pg", tracking_server)
    assert outs[0] == outs[1]  # both print the same best params


def test_a_killed_worker_does_not_stall_the_study(project: Path, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.storages.RDBStorage(storage)  # its tables, before this test polls it
    args = ("--trials", "6", "--study", "killed", "--storage", storage)
    args += ("--heartbeat", "1", "--grace", "3", "--retries", "1")
    victim, survivor = start(project, *args), start(project, *args)
    deadline = time.monotonic() + 120
    killed = None
    while killed is None and time.monotonic() < deadline and victim.poll() is None:
        try:
            running = [t for t in trials_of("killed", storage) if t.state == TrialState.RUNNING]
        except KeyError:  # the study is not created yet
            running = []
        mine = [t for t in running if t.user_attrs.get("pid") == victim.pid]
        if mine:
            os.kill(victim.pid, signal.SIGKILL)
            killed = mine[0].number
        time.sleep(0.05)
    victim.communicate()
    assert killed is not None, "the victim never ran a trial"
    finish(survivor)
    trials = trials_of("killed", storage)
    stale = [t for t in trials if t.state == TrialState.FAIL]
    assert [t.number for t in stale] == [killed]  # failed by heartbeat, no reason recorded
    assert "fail_reason" not in stale[0].user_attrs
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    assert retry.state == TrialState.COMPLETE
    if stale[0].params:  # killed after drawing its params: the retry draws none of its own
        assert retry.params == stale[0].params
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 6  # the whole budget
    assert len(trials) == 7


def test_the_best_params_come_back_through_dvc_exp_run(project: Path) -> None:
    """`--apply` runs the printed `dvc exp run -S ...`: the pipeline retrains the family
    with the best params, and its metrics are the best trial's."""
    result = run(
        project,
        *TUNE,
        "--trials",
        "4",
        "--study",
        "round-trip",
        "--target",
        "evaluate@clustering",
        "--apply",
    )
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("dvc exp run ")]
    command = shlex.split(line)  # what tune printed, then ran; DVC's own output follows
    assert command[:3] == ["dvc", "exp", "run"] and command[-1] == "evaluate@clustering"
    best = optuna.load_study(
        study_name="round-trip", storage=f"sqlite:///{project / 'optuna.db'}"
    ).best_trial
    overrides = dict(arg.split("=", 1) for arg in command[4:-1:2])
    assert {k: yaml.safe_load(v) for k, v in overrides.items()} == best.params
    params = yaml.safe_load((project / "params.yaml").read_text())["clustering"]
    assert {
        f"clustering.{k}": v for k, v in params.items() if f"clustering.{k}" in best.params
    } == (best.params)
    trained = json.loads((project / "reports/train/clustering.json").read_text())
    scores = trained["metrics"]["clustering"]
    reproduced = (scores["kmeans"]["silhouette"] + scores["agglomerative"]["silhouette"]) / 2
    assert reproduced == pytest.approx(best.value)
    shown = json.loads(dvc(project, "exp", "show", "--json").stdout)
    experiments = [e for rev in shown for e in (rev.get("experiments") or [])]
    assert experiments, "dvc exp run recorded no experiment"
