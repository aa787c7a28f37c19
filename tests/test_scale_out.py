"""The day-to-day workflow beyond one `dvc repro`: queued sweeps, logged models served by
`mlflow models predict`, a PostgreSQL-backed tracking server, and a server that is down.

One module-scoped git copy of the project reproduces `train@linear` and `train@mlp` (one
scikit-learn and one PyTorch family, ~40 s); queued experiments restore everything
upstream of them from the DVC cache that run fills.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlfund.bench import copy_workspace
from mlfund.core.tracking import experiment_name
from tests.e2e import commit, dvc, edit_params, run
from tests.services import free_port

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = copy_workspace(REPO, tmp_path_factory.mktemp("scale") / "repo")
    edit_params(work, mlp={"epochs": 10})
    commit(work, "scale-out tests")
    dvc(work, "repro", "train@linear", "train@mlp")
    commit(work, "baseline for queued experiments")  # queued runs start from HEAD
    return work


def queue_sweep(work: Path, values: list[float], **env: str) -> list[str]:
    """Queue one `train@linear` experiment per logistic C, run them two at a time."""
    names = []
    for value in values:
        queued = dvc(
            work, "exp", "run", "--queue", "-S", f"linear.logistic_c={value}", "train@linear", **env
        )
        names += re.findall(r"Queued experiment '([^']+)'", queued.stdout)
    dvc(work, "queue", "start", "-j", "2", **env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status = dvc(work, "queue", "status", **env).stdout
        if not re.search(r"\b(Queued|Running)\b", status):
            break
        time.sleep(2)
    for name in names:
        if not re.search(rf"{name}\s+\S+ \S+\s+Success", status):
            logs = dvc(work, "queue", "logs", name, **env).stdout
            pytest.fail(f"queued experiment {name} did not succeed:\n{status}\n{logs}")
    return names


def linear_runs(tracking: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name(experiment_name("linear"))
    return client.search_runs([experiment.experiment_id], "tags.model = 'logistic_regression'")


def test_queued_sweep_logs_into_the_repository_store(project: Path) -> None:
    names = queue_sweep(project, [0.1, 10.0])
    # DVC runs queued experiments in temporary copies; DVC_ROOT sends their runs here.
    by_experiment = {
        r.data.tags["dvc_exp_name"]: r for r in linear_runs(f"sqlite:///{project / 'mlflow.db'}")
    }
    assert set(names) <= set(by_experiment)
    assert {by_experiment[n].data.params["logistic_c"] for n in names} == {"0.1", "10.0"}
    assert all(by_experiment[n].data.tags["dvc_stage"] == "train@linear" for n in names)
    shown = json.loads(dvc(project, "exp", "show", "--json").stdout)
    listed = {exp["name"] for rev in shown for exp in (rev.get("experiments") or [])}
    assert set(names) <= listed


def _predict(project: Path, model_id: str, payload: dict, tmp_path: Path) -> list:
    request, answer = tmp_path / f"{model_id}.json", tmp_path / f"{model_id}.out.json"
    request.write_text(json.dumps(payload))
    tracking = f"sqlite:///{project / 'mlflow.db'}"
    run(
        project,
        sys.executable,
        "-m",
        "mlflow",
        "models",
        "predict",
        "-m",
        f"models:/{model_id}",
        "-i",
        str(request),
        "-t",
        "json",
        "--env-manager",
        "local",
        "-o",
        str(answer),
        MLFLOW_TRACKING_URI=tracking,
    )
    return json.loads(answer.read_text())["predictions"]


def test_logged_models_answer_mlflow_models_predict(project: Path, tmp_path: Path) -> None:
    from mlfund.core.modelstore import load_card_model, read_manifest

    rows = np.array([[0.5, -1.0], [2.0, 1.0], [-1.5, 0.3], [0.0, 0.0]])
    for family, name, payload in [
        (
            "linear",
            "logistic_regression",
            {"dataframe_split": {"columns": ["x0", "x1"], "data": rows.tolist()}},
        ),
        ("mlp", "mlp_classification_2d", {"inputs": rows.astype(np.float32).tolist()}),
    ]:
        folder = project / "models" / family
        (card,) = [c for c in read_manifest(folder) if c.name == name]
        served = np.asarray(_predict(project, card.model_id, payload, tmp_path))
        local = load_card_model(folder, card).predict(pd.DataFrame(rows, columns=card.features))
        if family == "mlp":  # the logged module returns logits; its class is the argmax
            served = served.argmax(axis=1) if served.shape[1] > 1 else (served[:, 0] > 0)
        np.testing.assert_array_equal(served.astype(int), np.asarray(local).astype(int))


def test_parallel_experiments_against_a_postgres_tracking_server(
    project: Path, tracking_server: str, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    names = queue_sweep(project, [0.5, 2.0], MLFLOW_TRACKING_URI=tracking_server)
    client = MlflowClient(tracking_server)
    experiment = client.get_experiment_by_name(experiment_name("linear"))
    assert experiment.artifact_location.startswith("mlflow-artifacts:")  # proxied by the server
    runs = client.search_runs([experiment.experiment_id])
    assert {r.data.tags["dvc_exp_name"] for r in runs} == set(names)
    assert len(runs) == 3 * len(names)  # logistic, linear and polynomial regression each
    models = client.search_logged_models([experiment.experiment_id])
    assert len(models) == len(runs)
    # Artifacts come back through the server, not from a path on this machine.
    logistic = next(r for r in runs if r.data.tags["model"] == "logistic_regression")
    figures = client.list_artifacts(logistic.info.run_id, "figures")
    assert figures, "no figure artifacts on the server"
    local = client.download_artifacts(logistic.info.run_id, figures[0].path, str(tmp_path))
    assert Path(local).stat().st_size > 0


def test_unreachable_tracking_server_stops_the_stage_naming_it(project: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    start = time.monotonic()
    result = run(
        project,
        sys.executable,
        "-m",
        "stages.train",
        "linear",
        check=False,
        MLFLOW_TRACKING_URI=dead,
    )
    assert result.returncode == 1
    assert time.monotonic() - start < 60  # MLflow's own retries take minutes
    assert f"error: MLflow tracking server {dead} did not answer" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_tracking_server_can_be_tolerated(project: Path) -> None:
    params = project / "params.yaml"
    original = params.read_text()
    try:
        edit_params(project, tracking={"on_unreachable": "warn"})
        dead = f"http://127.0.0.1:{free_port()}"
        result = run(
            project, sys.executable, "-m", "stages.train", "linear", MLFLOW_TRACKING_URI=dead
        )
        assert "Continuing without MLflow tracking" in result.stderr
        written = json.loads((project / "reports/train/linear.json").read_text())
        assert written["metrics"]["linear"]["logistic_regression"]["train_accuracy"] > 0.85
        assert written["runs"] == {}
    finally:
        params.write_text(original)
