"""mlfund.compare over a small store of fake runs tagged the way mlfund.core.tracking tags them."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlfund.compare import Best, best_runs, main, render
from mlfund.core.registry import FAMILY_LIST
from mlfund.core.tracking import experiment_name

NAMES = [family.name for family in FAMILY_LIST]

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

COMMIT_A = "a" * 40
COMMIT_B = "b" * 40


@dataclass(frozen=True)
class FakeRun:
    family: str
    model: str
    exp: str  # DVC_EXP_NAME; "" in the workspace
    metrics: dict[str, float]
    start: int  # ms; later runs win ties
    commit: str = COMMIT_A
    status: str = "FINISHED"
    deleted: bool = False


RUNS = [
    # cnn (higher accuracy wins): exp-a is best
    FakeRun("cnn", "simple_cnn", "exp-a", {"test_accuracy": 0.95, "val_accuracy": 0.9}, 1_000),
    FakeRun("cnn", "simple_cnn", "exp-b", {"test_accuracy": 0.90}, 2_000, commit=COMMIT_B),
    FakeRun("cnn", "simple_cnn", "", {"test_accuracy": 0.80}, 3_000),
    FakeRun("cnn", "simple_cnn", "exp-c", {"test_accuracy": 0.99}, 4_000, status="FAILED"),
    FakeRun("cnn", "simple_cnn", "exp-d", {"test_accuracy": 0.999}, 5_000, deleted=True),
    FakeRun("cnn", "summary", "exp-b", {"val_accuracy": 0.99}, 6_000),  # no primary metric
    # rnn (lower error wins): exp-b is best; a NaN never wins
    FakeRun("rnn", "lstm", "exp-a", {"test_mse": 0.5}, 1_000),
    FakeRun("rnn", "gru", "exp-b", {"test_mse": 0.2}, 2_000, commit=COMMIT_B),
    FakeRun("rnn", "rnn", "exp-b", {"test_mse": float("nan")}, 3_000, commit=COMMIT_B),
    # clustering: a tie goes to the most recent run
    FakeRun("clustering", "kmeans", "exp-a", {"ari": 1.0}, 1_000),
    FakeRun("clustering", "agglomerative", "exp-b", {"ari": 1.0}, 2_000, commit=COMMIT_B),
    # linear: only the classifier has the primary metric; logged in the workspace
    FakeRun("linear", "linear_regression", "", {"test_mse": 3.0}, 1_000),
    FakeRun("linear", "logistic_regression", "", {"test_accuracy": 0.9}, 1_000),
    # generative: the experiment exists but no run has the primary metric
    FakeRun("generative", "comparison", "", {"gan_energy_distance": 0.3}, 1_000),
]


def _log(uri: str, runs: list[FakeRun]) -> dict[tuple[str, str, str], str]:
    """Runs named and tagged like mlfund.core.tracking; returns (family, model, exp) -> run id."""
    import mlflow
    from mlflow.entities import Metric

    client = mlflow.MlflowClient(uri)
    experiments: dict[str, str] = {}
    ids = {}
    for run in runs:
        if run.family not in experiments:
            experiments[run.family] = client.create_experiment(experiment_name(run.family))
        tags = {
            "family": run.family,
            "model": run.model,
            "dataset": "fake",
            "git_commit": run.commit,
            "dvc_stage": f"train_{run.family}",
            "dvc_exp_name": run.exp,
        }
        created = client.create_run(
            experiments[run.family],
            start_time=run.start,
            tags=tags,
            run_name=f"{run.family}/{run.model}",
        )
        run_id = created.info.run_id
        metrics = [Metric(k, v, run.start, 0) for k, v in run.metrics.items()]
        client.log_batch(run_id, metrics=metrics)
        client.set_terminated(run_id, status=run.status, end_time=run.start + 1)
        if run.deleted:
            client.delete_run(run_id)
        ids[run.family, run.model, run.exp] = run_id
    return ids


@pytest.fixture(scope="module")
def store(
    tmp_path_factory: pytest.TempPathFactory, empty_store: Path
) -> tuple[str, dict[tuple[str, str, str], str]]:
    database = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    shutil.copyfile(empty_store, database)  # migrated once per session, not per store
    uri = f"sqlite:///{database}"
    return uri, _log(uri, RUNS)


@pytest.fixture(scope="module")
def results(store: tuple[str, dict]) -> dict[str, Best]:
    uri, _ = store
    return {best.family.name: best for best in best_runs(uri, NAMES)}


def test_higher_is_better_picks_the_best_finished_run(results, store):
    _, ids = store
    cnn = results["cnn"]
    assert cnn.value == pytest.approx(0.95)
    assert cnn.run_id == ids["cnn", "simple_cnn", "exp-a"]
    assert (cnn.run_name, cnn.dvc_exp_name, cnn.git_commit) == ("cnn/simple_cnn", "exp-a", COMMIT_A)
    # the failed and the deleted run, and the run without the metric, are not compared
    assert cnn.compared == 3


def test_lower_is_better_family_picks_the_smallest_and_skips_nan(results, store):
    _, ids = store
    rnn = results["rnn"]
    assert rnn.value == pytest.approx(0.2)
    assert rnn.run_id == ids["rnn", "gru", "exp-b"]
    assert (rnn.dvc_exp_name, rnn.git_commit) == ("exp-b", COMMIT_B)
    assert rnn.compared == 2


def test_a_tie_goes_to_the_most_recent_run(results, store):
    _, ids = store
    assert results["clustering"].run_id == ids["clustering", "agglomerative", "exp-b"]
    assert results["clustering"].compared == 2


def test_runs_without_the_primary_metric_are_skipped(results, store):
    _, ids = store
    assert results["linear"].run_id == ids["linear", "logistic_regression", ""]
    assert results["linear"].compared == 1
    # experiment present, no run with the metric / no experiment at all
    for family in ("generative", "transfer"):
        assert results[family].value is None
        assert results[family].compared == 0


def test_table_lists_every_family(results, store):
    _, ids = store
    table = render(list(results.values()))
    lines = table.splitlines()
    assert lines[0] == (
        "| family | metric | best value | run name | dvc experiment | git commit | run id "
        "| runs compared |"
    )
    assert len(lines) == 2 + len(FAMILY_LIST)
    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines[2:]}
    assert rows["rnn"] == (
        f"| rnn | test_mse (min) | 0.2 | rnn/gru | exp-b | bbbbbbb | {ids['rnn', 'gru', 'exp-b']} "
        "| 2 |"
    )
    assert "| linear_regression" not in table
    assert " | workspace | " in rows["linear"]
    assert rows["transfer"] == "| transfer | test_accuracy (max) | no runs |  |  |  |  | 0 |"


def test_cli_prints_the_chosen_families(store, capsys):
    uri, ids = store
    assert main(["--tracking-uri", uri, "--family", "rnn", "--family", "cnn"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" | ")[0] for line in out[2:]] == ["| rnn", "| cnn"]
    assert ids["cnn", "simple_cnn", "exp-a"] in out[3]


def test_unknown_family_exits_2_naming_the_families(store, capsys):
    uri, _ = store
    with pytest.raises(SystemExit) as exit_info:
        main(["--tracking-uri", uri, "--family", "nope"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "nope" in err
    assert all(family in err for family in NAMES)


def test_store_without_mlfund_experiments_exits_2(tmp_path: Path, empty_store: Path, capsys):
    import mlflow

    shutil.copyfile(empty_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.MlflowClient(uri).create_experiment("someone-else")
    mlflow.MlflowClient(uri).create_experiment("cnn")  # not ours: no prefix
    assert main(["--tracking-uri", uri]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "run `dvc repro` first" in captured.err.lower()


def test_missing_sqlite_file_exits_2_without_creating_it(tmp_path: Path, capsys):
    db = tmp_path / "mlflow.db"
    assert main(["--tracking-uri", f"sqlite:///{db}"]) == 2
    assert "run `dvc repro` first" in capsys.readouterr().err.lower()
    assert not db.exists()


def test_every_registry_family_is_compared_on_its_primary_metric(results):
    assert list(results) == NAMES
    for family in FAMILY_LIST:
        assert results[family.name].family == family
        assert family.primary and family.direction in ("max", "min")
    table = render(list(results.values())).splitlines()[2:]
    assert [row.split(" | ")[1] for row in table] == [
        f"{family.primary} ({family.direction})" for family in FAMILY_LIST
    ]


def test_every_primary_metric_is_in_the_committed_metrics():
    """A typo in a registry primary would leave `make compare` with "no runs" forever."""
    metrics = json.loads((Path(__file__).resolve().parents[1] / "reports/metrics.json").read_text())
    for family in FAMILY_LIST:
        models = metrics[family.name]
        assert any(
            isinstance(scores, dict) and family.primary in scores for scores in models.values()
        ), f"no {family.name} model reports {family.primary}"


def test_tracking_server_that_is_down_exits_2_naming_it(capsys):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    assert main(["--tracking-uri", dead]) == 2
    assert f"MLflow tracking server {dead} did not answer" in capsys.readouterr().err
