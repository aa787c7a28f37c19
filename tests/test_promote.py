"""`make promote`: `champion` on exactly the registered versions the manifests name, and
`mlflow models serve` answering for `models:/<name>@champion`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlfund.core.modelstore import ModelCard, write_manifest
from mlfund.core.tracking import Tracker, tracking_uri
from mlfund.promote import main
from tests.services import free_port

SERVE_TIMEOUT = 180.0  # seconds for `mlflow models serve` to answer /ping (imports, uvicorn)


@pytest.fixture
def root(tmp_path: Path, empty_store: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository root with a fresh store; promote's default paths point into it."""
    for name in ("MLFLOW_TRACKING_URI", "MLFUND_EXPERIMENT_PREFIX", "MLFUND_MODEL_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    shutil.copyfile(empty_store, tmp_path / "mlflow.db")
    return tmp_path


def card(run_id: str, ref, name: str = "line") -> ModelCard:
    return ModelCard(
        name=name,
        dataset="toy",
        task="regression",
        features=["x0"],
        target="y",
        file=f"{name}.skops",
        run_id=run_id,
        model_id=ref.model_id,
        registered_model=ref.registered_model,
        registered_version=ref.registered_version,
    )


def registered_runs(root: Path, family: str, model: str, count: int) -> list[ModelCard]:
    """`count` runs of one model, each registering a version (no model files: the registry
    only needs a logged model to point at); their cards."""
    import mlflow

    track = Tracker(root, family)
    cards = []
    for _ in range(count):
        with track.run(model, "toy", {}) as run:
            experiment = mlflow.active_run().info.experiment_id
            logged = mlflow.MlflowClient().create_logged_model(
                experiment, name="model", source_run_id=run.run_id
            )
            cards.append(card(run.run_id, run.register(logged.model_id), model))
    return cards


def champions(root: Path) -> dict[str, str]:
    import mlflow

    models = mlflow.MlflowClient(tracking_uri(root)).search_registered_models()
    return {m.name: str(m.aliases["champion"]) for m in models if "champion" in m.aliases}


def test_champion_follows_the_manifests(root: Path, capsys) -> None:
    first, second = registered_runs(root, "linear", "line", 2)
    (other,) = registered_runs(root, "mlp", "net", 1)
    write_manifest(root / "models" / "linear", [first])
    write_manifest(root / "models" / "mlp", [other])
    assert main([]) == 0
    assert champions(root) == {"mlfund.linear.line": "1", "mlfund.mlp.net": "1"}
    promoted = f"mlfund.linear.line version 1 (run {first.run_id}) -> @champion"
    assert promoted in capsys.readouterr().out

    # retrained (version 2), and mlp's model left its family: the alias follows
    write_manifest(root / "models" / "linear", [second])
    write_manifest(root / "models" / "mlp", [])
    assert main(["--dry-run"]) == 0
    assert champions(root) == {"mlfund.linear.line": "1", "mlfund.mlp.net": "1"}  # dry run
    assert main([]) == 0
    assert champions(root) == {"mlfund.linear.line": "2"}
    assert "mlfund.mlp.net: @champion removed" in capsys.readouterr().out


def test_nothing_moves_unless_every_card_can_be_promoted(root: Path, capsys) -> None:
    good, other = registered_runs(root, "linear", "line", 2)
    cards = [
        good,
        replace(good, name="untracked", registered_model="", registered_version=""),
        replace(good, name="elsewhere", registered_version="7"),  # not in this store
        replace(other, name="restored", run_id=good.run_id),  # its version: another run's
    ]
    write_manifest(root / "models" / "linear", cards)
    assert main([]) == 1
    err = capsys.readouterr().err
    assert "linear/untracked: its card names no registered version" in err
    assert "dvc repro -f train@linear" in err
    assert "linear/elsewhere: mlfund.linear.line version 7 is not here" in err
    assert f"linear/restored: mlfund.linear.line version 2 comes from run {other.run_id}" in err
    assert "linear/line" not in err
    assert champions(root) == {}


def test_no_manifest_is_exit_2(root: Path, capsys) -> None:
    assert main([]) == 2
    assert "run `dvc repro`" in capsys.readouterr().err


def _get(url: str, payload: dict | None = None) -> tuple[int, bytes]:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.status, answer.read()


@pytest.mark.e2e
def test_mlflow_serves_the_champion(root: Path, tmp_path: Path) -> None:
    """Train and log a model the way a stage does, promote it, serve
    `models:/mlfund.linear.line@champion` on 127.0.0.1 and get its predictions."""
    from sklearn.linear_model import LinearRegression

    x = pd.DataFrame({"x0": [0.0, 1.0, 2.0, 3.0]})
    model = LinearRegression().fit(x, [1.0, 3.0, 5.0, 7.0])  # y = 2 x + 1
    track = Tracker(root, "linear")
    cards = []
    for _ in range(2):  # version 2 is the one the manifest names
        with track.run("line", "toy", {}) as run:
            cards.append(card(run.run_id, run.sklearn_model(model, x)))
    write_manifest(root / "models" / "linear", cards[1:])
    assert main([]) == 0

    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    start = time.monotonic()
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "mlflow", "models", "serve"),
            *("-m", "models:/mlfund.linear.line@champion", "--env-manager", "local"),
            *("-h", "127.0.0.1", "-p", str(port)),
        ],
        env={
            **os.environ,
            "MLFLOW_TRACKING_URI": tracking_uri(root),
            # it execs `uvicorn` through a shell: the venv's, as with an activated venv
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        },
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # uvicorn's workers too: killed as one group
    )
    try:
        while True:
            try:
                if _get(f"http://127.0.0.1:{port}/ping")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            if server.poll() is not None or time.monotonic() - start > SERVE_TIMEOUT:
                log.flush()
                pytest.fail(
                    f"mlflow models serve did not answer in {SERVE_TIMEOUT} s "
                    f"(exit {server.poll()}):\n{(tmp_path / 'serve.log').read_text()[-3000:]}"
                )
            time.sleep(0.5)
        ready = time.monotonic() - start
        payload = {"dataframe_split": {"columns": ["x0"], "data": [[4.0], [-1.0], [0.5]]}}
        status, body = _get(f"http://127.0.0.1:{port}/invocations", payload)
        assert status == 200
        np.testing.assert_allclose(json.loads(body)["predictions"], [9.0, -1.0, 2.0], atol=1e-9)
        print(f"mlflow models serve answered after {ready:.1f} s")
    finally:
        try:
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:  # it exited on its own
            pass
        server.wait()
        log.close()
