"""MLflow conventions shared by every family.

- Store: `MLFLOW_TRACKING_URI` when set (a server), else `sqlite:///<root>/mlflow.db` with
  artifacts under `<root>/mlruns`; the stages pass the repository root (DVC_ROOT), so
  queued `dvc exp run` copies log into the same store as the workspace.
- One experiment per family, run names `<family>/<model>`, metric names as in
  reports/metrics.json, tags for the git commit, DVC stage and experiment, and dataset.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlfund.modelstore import model_trusted_types

log = logging.getLogger(__name__)
# No machine we build on reaches the internet; don't let MLflow try.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

# Pinned so logging a model never spends seconds inferring its environment.
_SKLEARN_REQUIREMENTS = ("scikit-learn", "skops", "numpy", "pandas")


def tracking_uri(root: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root.resolve() / 'mlflow.db'}"


def _git_commit(root: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _pinned(packages: tuple[str, ...]) -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in packages]


class Tracker:
    """Opens MLflow runs for one family, all tagged alike."""

    def __init__(self, root: Path, family: str) -> None:
        import mlflow

        self.family = family
        self._mlflow = mlflow
        mlflow.set_tracking_uri(tracking_uri(root))
        experiment = mlflow.get_experiment_by_name(family)
        if experiment is None:
            # Artifacts beside the sqlite file, whatever the working directory.
            location = None
            if not os.environ.get("MLFLOW_TRACKING_URI"):
                location = (root.resolve() / "mlruns" / family).as_uri()
            mlflow.create_experiment(family, artifact_location=location)
        mlflow.set_experiment(family)
        self._tags = {
            "family": family,
            "git_commit": _git_commit(root),
            "dvc_stage": os.environ.get("DVC_STAGE", ""),
            "dvc_exp_name": os.environ.get("DVC_EXP_NAME", ""),
        }
        self.run_ids: dict[str, str] = {}  # model -> run id, for the report

    @contextmanager
    def run(self, model: str, dataset: str, params: Mapping[str, Any]) -> Iterator[Run]:
        """An MLflow run named `<family>/<model>` with flat params and the standard tags."""
        tags = {**self._tags, "model": model, "dataset": dataset}
        with self._mlflow.start_run(run_name=f"{self.family}/{model}", tags=tags) as active:
            self.run_ids[model] = active.info.run_id
            self._mlflow.log_params({k: _param_value(v) for k, v in params.items()})
            yield Run(self._mlflow, active.info.run_id)


class Run:
    def __init__(self, mlflow: Any, run_id: str) -> None:
        self._mlflow = mlflow
        self.run_id = run_id

    def metrics(self, values: Mapping[str, float], step: int | None = None) -> None:
        self._mlflow.log_metrics({k: float(v) for k, v in values.items()}, step=step)

    def history(self, key: str, values: Sequence[float]) -> None:
        """A per-step curve (loss per epoch) in batches: one request per 1000 points."""
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        points = [Metric(key, float(v), now, step) for step, v in enumerate(values)]
        client = self._mlflow.MlflowClient()
        for start in range(0, len(points), 1000):
            client.log_batch(self.run_id, metrics=points[start : start + 1000])

    def torch_model(self, model: Any, example: np.ndarray) -> str:
        """Log a torch module as pt2 (torch.export, no pickle) with a signature; its model id."""
        import torch
        from mlflow.models import infer_signature

        example = np.asarray(example[:5], dtype=np.float32)
        model = model.eval().cpu()
        with torch.inference_mode():
            output = model(torch.from_numpy(example)).numpy()
        info = self._mlflow.pytorch.log_model(
            model,
            name="model",
            signature=infer_signature(example, output),
            input_example=example,
            pip_requirements=_pinned(("torch", "numpy")),
            serialization_format="pt2",
        )
        return info.model_id

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self._mlflow.set_tags(dict(tags))

    def set_tag(self, key: str, value: str) -> None:
        self._mlflow.set_tag(key, value)

    def artifact(self, path: Path, folder: str = "figures") -> None:
        self._mlflow.log_artifact(str(path), folder)

    def sklearn_model(self, model: Any, example: pd.DataFrame | np.ndarray) -> str:
        """Log a fitted scikit-learn model (skops format, no pickle); returns its model id."""
        from mlflow.models import infer_signature

        example = example[:5]
        trusted = model_trusted_types(model)
        # A model made of this package's own estimators carries the package with it, so
        # `mlflow models serve` works without mlfund installed.
        own_code = (
            [str(Path(__file__).parent)] if any(t.startswith("mlfund.") for t in trusted) else None
        )
        info = self._mlflow.sklearn.log_model(
            model,
            name="model",
            serialization_format="skops",
            signature=infer_signature(example, model.predict(example)),
            input_example=example,
            pip_requirements=_pinned(_SKLEARN_REQUIREMENTS),
            skops_trusted_types=trusted,
            code_paths=own_code,
        )
        return info.model_id


def _param_value(value: Any) -> str | float | int | bool:
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def log_test_metrics(root: Path, run_id: str, values: Mapping[str, float]) -> bool:
    """Add held-out metrics to a training run; False (with a warning) when the run is gone.

    A training stage restored from DVC's run cache logged no run in this store, so its
    recorded run id may be unknown here; the metrics still land in reports/metrics.json.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(tracking_uri(root))
    try:
        client.get_run(run_id)
    except MlflowException:
        log.warning("MLflow run %s not found in %s; test metrics not logged", run_id, root)
        return False
    for key, value in values.items():
        client.log_metric(run_id, key, float(value))
    return True
