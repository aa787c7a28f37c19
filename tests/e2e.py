"""Helpers of the end-to-end tests: a scratch git copy of the project and its commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlfund.bench import copy_workspace

REPO = Path(__file__).resolve().parents[1]
# Small but complete: fewer t-SNE iterations and short PyTorch trainings.
SMALL = {
    "embedding": {"tsne_max_iter": 250},
    "mlp": {"epochs": 10},
    "cnn": {"epochs": 2, "image_size": 16},
    "rnn": {"epochs": 3},
    "transformer": {"epochs": 2, "n_samples": 400},
    "generative": {"vae_epochs": 5, "gan_epochs": 5},
    "transfer": {"source_epochs": 1, "epochs": 2, "compare_seeds": 2},
}


def clean_env(work: Path, **extra: str) -> dict[str, str]:
    # No MLflow or DVC state from this process: mlflow.set_experiment() in earlier
    # in-process tests exports MLFLOW_EXPERIMENT_ID, which `mlflow run` refuses beside
    # --experiment-name.
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("MLFLOW_", "DVC_"))
    }
    env.update(PYTHONPATH=f"{work / 'src'}:{work}", MLFLOW_DISABLE_TELEMETRY="true")
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    return {**env, **extra}


def run(work: Path, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        args, cwd=work, env=clean_env(work, **env), capture_output=True, text=True
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def dvc(work: Path, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    return run(work, sys.executable, "-m", "dvc", *args, check=check, **env)


def commit(work: Path, message: str) -> None:
    run(work, "git", "add", "-A")
    run(work, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)


def edit_params(work: Path, **sections: dict) -> None:
    path = work / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for section, values in sections.items():
        params[section].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def stages_run(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


def small_project(target: Path) -> Path:
    """A committed git copy of the working tree with SMALL params, nothing reproduced yet."""
    work = copy_workspace(REPO, target)
    edit_params(work, **SMALL)
    # Without a lock every stage runs in the first repro. With it, a stage whose deps SMALL
    # leaves as committed (evaluate@embedding) and whose outs git holds (reports/eval)
    # would be skipped, and tests/test_deps.py would have no trace of it.
    (work / "dvc.lock").unlink()
    commit(work, "e2e")
    return work
