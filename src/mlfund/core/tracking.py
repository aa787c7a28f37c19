"""MLflow conventions shared by every family.

- Store: `MLFLOW_TRACKING_URI` when set (a server), else `sqlite:///<root>/mlflow.db` with
  artifacts under `<root>/mlruns`; the stages pass the repository root (DVC_ROOT), so
  queued `dvc exp run` copies log into the same store as the workspace.
- One experiment per family, named `<prefix><family>` (prefix `MLFUND_EXPERIMENT_PREFIX`,
  default `mlfund/`, so that families don't collide with other projects on a shared server)
  and tagged as a model-training experiment (`mlflow.experimentKind`), run names
  `<family>/<model>`, metric names as in reports/metrics.json, tags for the git commit, DVC
  stage and experiment, and dataset. A local store's experiment from before the prefix
  (bare `<family>`) is renamed, so its history stays in the family's experiment.
- Every logged model is registered as `<model prefix><family>.<model>` (prefix
  `MLFUND_MODEL_PREFIX`, default `mlfund.`), one version per training run; `mlfund.promote`
  points the alias `champion` at the versions the current manifests come from.
- A PyTorch family's stage opens a `<family>/training` run around its training, with
  MLflow's system metrics (CPU, memory, disk, network; GPU where nvidia-ml-py is
  installed); its model runs are nested under it.
- A server that does not answer is found before any training, with its URI in the error
  (MLflow's own client would retry for minutes); `on_unreachable="warn"` trains untracked.
- Parallel writers (`dvc queue start -j N`) are safe: a lock file serialises the first
  contact with a sqlite store (its schema migrations), experiment creation and model
  registration (a version number is read, then written).
- A stage killed outright (SIGKILL, OOM) cannot end its run, which would stay RUNNING for
  ever. Each run carries its host and process id as tags, and the next Tracker of the same
  stage and DVC experiment marks such runs whose process is gone KILLED (`close_orphans`).
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from mlfund.core import git
from mlfund.core.errors import TrackingUnavailable

log = logging.getLogger(__name__)
# No machine we build on reaches the internet; don't let MLflow try.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

# Pinned so logging a model never spends seconds inferring its environment.
_SKLEARN_REQUIREMENTS = ("scikit-learn", "skops", "numpy", "pandas")


# MLflow's experiment-kind tag and the kind of a model-training experiment (the UI's
# ExperimentKind.CUSTOM_MODEL_DEVELOPMENT; "genai_development" is the GenAI one).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
TRAINING_KIND = "custom_model_development"
# Seconds between two samples of a training run's system metrics (MLflow's default, 10 s,
# leaves a short run with one point or none); MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL wins.
SYSTEM_METRICS_INTERVAL = 2.0

OnUnreachable = Literal["fail", "warn"]
# Seconds to wait for a tracking server's /health before calling it unreachable.
SERVER_TIMEOUT_SECONDS = 5.0


def experiment_name(family: str) -> str:
    """The family's MLflow experiment: `mlfund/<family>` unless MLFUND_EXPERIMENT_PREFIX says."""
    return os.environ.get("MLFUND_EXPERIMENT_PREFIX", "mlfund/") + family


def model_prefix() -> str:
    """What every registered model of ours is named after: MLFUND_MODEL_PREFIX, `mlfund.`."""
    return os.environ.get("MLFUND_MODEL_PREFIX", "mlfund.")


def registered_name(family: str, model: str) -> str:
    """A model's name in the MLflow model registry: `mlfund.<family>.<model>`."""
    return f"{model_prefix()}{family}.{model}"


def tracking_uri(root: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root.resolve() / 'mlflow.db'}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI (relative ones are relative to the cwd)."""
    return Path(uri.removeprefix("sqlite:///")).resolve() if uri.startswith("sqlite:///") else None


def check_server(uri: str, timeout: float = SERVER_TIMEOUT_SECONDS) -> None:
    """Raise TrackingUnavailable, naming `uri`, when an http(s) tracking server is down.

    Any HTTP answer counts as up (a 401 from an authenticating proxy is the user's next
    problem, and MLflow reports it clearly); only no answer at all is "unreachable".
    """
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
            pass
    except urllib.error.HTTPError:
        return
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise TrackingUnavailable(
            f"MLflow tracking server {uri} did not answer ({reason}). Start it, point "
            "MLFLOW_TRACKING_URI at one that runs (or unset it to use the local sqlite "
            "store), or set tracking.on_unreachable: warn in params.yaml to train untracked."
        ) from None


def connect(root: Path, on_unreachable: OnUnreachable = "fail") -> str | None:
    """The tracking URI to log to, or None (after a warning) when tracking is off."""
    uri = tracking_uri(root)
    try:
        check_server(uri)
    except TrackingUnavailable as error:
        if on_unreachable == "fail":
            raise
        log.warning("%s Continuing without MLflow tracking.", error)
        return None
    return uri


def store_lock(uri: str) -> AbstractContextManager[object]:
    """An exclusive lock beside a sqlite store; a server needs none."""
    database = sqlite_path(uri)
    return _file_lock(database.with_name(database.name + ".lock")) if database else nullcontext()


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pinned(packages: tuple[str, ...]) -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in packages]


def _ensure_experiment(mlflow: Any, family: str, uri: str) -> str:
    """The id of the family's experiment, tagged as a model-training one; created once,
    even with several stages starting together."""
    from mlflow.exceptions import MlflowException

    name = experiment_name(family)
    with store_lock(uri):  # the first contact migrates a new sqlite store's schema
        client = mlflow.MlflowClient()
        experiment = client.get_experiment_by_name(name)
        database = sqlite_path(uri)
        if experiment is None and database is not None:
            experiment = _adopt_unprefixed(client, family, name)
        if experiment is None:
            # Artifacts beside a sqlite store, whatever the working directory; a server
            # chooses (and serves) its own artifact location.
            location = (database.parent / "mlruns" / name).as_uri() if database else None
            try:
                return client.create_experiment(
                    name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: TRAINING_KIND}
                )
            except MlflowException:
                # Another process on the same server won the race: theirs is ours.
                experiment = client.get_experiment_by_name(name)
                if experiment is None:
                    raise
        mark_training(client, experiment)
        return experiment.experiment_id


def _adopt_unprefixed(client: Any, family: str, name: str) -> Any:
    """A local store's experiment named by the bare family (before experiment names had a
    prefix), renamed to `name`; None when there is none. A server's is left alone: there,
    `cnn` may well be another project's."""
    legacy = client.get_experiment_by_name(family)
    if legacy is None or legacy.lifecycle_stage != "active" or name == family:
        return None
    client.rename_experiment(legacy.experiment_id, name)
    log.warning("renamed MLflow experiment %r to %r", family, name)
    return client.get_experiment(legacy.experiment_id)


def mark_training(client: Any, experiment: Any) -> bool:
    """Tag an experiment as a model-training one, unless it says what it is; True if tagged.

    The kind decides which view the MLflow UI opens an experiment in (runs and their
    metrics, rather than GenAI traces); an experiment without it, made before this tag or
    by another tool, is fixed the first time a stage logs to it.
    """
    if experiment.tags.get(EXPERIMENT_KIND_TAG):
        return False
    client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, TRAINING_KIND)
    return True


class Tracker:
    """Opens MLflow runs for one family, all tagged alike.

    With `on_unreachable="warn"` and a server that does not answer, it is disabled: runs
    are `OfflineRun`s that log nothing and have empty run and model ids.
    """

    def __init__(self, root: Path, family: str, on_unreachable: OnUnreachable = "fail") -> None:
        import mlflow

        self.family = family
        self._mlflow = mlflow
        self.run_ids: dict[str, str] = {}  # model -> run id, for the report
        self._tags = {
            "family": family,
            "git_commit": git.commit(root) or "unknown",
            "dvc_stage": os.environ.get("DVC_STAGE", ""),
            "dvc_exp_name": os.environ.get("DVC_EXP_NAME", ""),
        }
        # `mlflow run .` hands its own run to the command in MLFLOW_RUN_ID, which
        # start_run() would resume; our runs are per model, so keep it only as a tag.
        project_run = os.environ.pop("MLFLOW_RUN_ID", None)
        if project_run:
            self._tags["mlflow_project_run_id"] = project_run
        uri = connect(root, on_unreachable)
        self.enabled = uri is not None
        self._uri = uri or ""
        if uri is None:
            return
        mlflow.set_tracking_uri(uri)
        experiment_id = _ensure_experiment(mlflow, family, uri)
        mlflow.set_experiment(experiment_id=experiment_id)
        close_orphans(mlflow.MlflowClient(), experiment_id, self._tags)

    @property
    def tags(self) -> dict[str, str]:
        """The tags of its runs: family, git commit, DVC stage and experiment, host, pid."""
        return {**self._tags, **_process_tags()}

    @contextmanager
    def training(self, system_metrics: bool = True) -> Iterator[str]:
        """The stage's `<family>/training` run around training and logging (its id, "" when
        disabled): the model runs opened inside are nested under it, and with
        `system_metrics` MLflow samples CPU, memory (and GPU) into it meanwhile.

        The families train first and log after (their `run` is pure), so a model run lasts
        as long as its logging; only a run around the training sees the training's load.
        """
        if not self.enabled:
            yield ""
            return
        from mlflow.environment_variables import MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL

        if system_metrics and not MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL.defined:
            self._mlflow.set_system_metrics_sampling_interval(SYSTEM_METRICS_INTERVAL)
        with self._mlflow.start_run(
            run_name=f"{self.family}/training",
            tags={**self._tags, **_process_tags()},
            log_system_metrics=system_metrics,
        ) as active:
            yield active.info.run_id

    @contextmanager
    def run(self, model: str, dataset: str, params: Mapping[str, Any]) -> Iterator[Run]:
        """An MLflow run named `<family>/<model>` with flat params and the standard tags,
        nested under the `training` run when one is open."""
        if not self.enabled:
            yield OfflineRun()
            return
        tags = {**self._tags, "model": model, "dataset": dataset, **_process_tags()}
        nested = self._mlflow.active_run() is not None
        with self._mlflow.start_run(
            run_name=f"{self.family}/{model}", tags=tags, nested=nested
        ) as active:
            self.run_ids[model] = active.info.run_id
            self._mlflow.log_params({k: _param_value(v) for k, v in params.items()})
            version_tags = {k: tags[k] for k in (*self._tags, "model") if tags[k]}
            registry = Registration(registered_name(self.family, model), self._uri, version_tags)
            yield Run(self._mlflow, active.info.run_id, registry)


def _process_tags() -> dict[str, str]:
    """Which process logs the run: how the next run of its stage tells it was killed."""
    return {"host": socket.gethostname(), "pid": str(os.getpid())}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def close_orphans(client: Any, experiment_id: str, tags: Mapping[str, str]) -> list[str]:
    """Mark KILLED the RUNNING runs of this stage and DVC experiment (`tags`' dvc_stage and
    dvc_exp_name) whose process, on this host, no longer exists; their ids.

    Runs of other hosts, of live processes, or without a pid tag are left alone: whether
    they still run cannot be told from here.
    """
    host = socket.gethostname()
    running = client.search_runs(
        [experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000
    )
    closed = []
    for run in running:
        own = run.data.tags
        same_stage = all(own.get(k, "") == tags[k] for k in ("dvc_stage", "dvc_exp_name"))
        pid = own.get("pid", "")
        if same_stage and own.get("host") == host and pid.isdigit() and not _alive(int(pid)):
            client.set_terminated(run.info.run_id, status="KILLED")
            closed.append(run.info.run_id)
    if closed:
        log.warning(
            "marked %d MLflow run(s) of stage %r KILLED, left RUNNING by a process that is "
            "gone: %s",
            len(closed),
            tags["dvc_stage"],
            ", ".join(closed),
        )
    return closed


@dataclass(frozen=True)
class Registration:
    """Where a run's model goes in the model registry: its name, the store (for the lock)
    and the tags of each version."""

    name: str
    uri: str
    tags: Mapping[str, str]


@dataclass(frozen=True)
class ModelRef:
    """A model logged to a run and registered: `models:/<model_id>`, and
    `models:/<registered_model>/<registered_version>`; empty strings when untracked."""

    model_id: str
    registered_model: str = ""
    registered_version: str = ""


class Run:
    def __init__(self, mlflow: Any, run_id: str, registry: Registration | None = None) -> None:
        self._mlflow = mlflow
        self.run_id = run_id
        self._registry = registry

    def register(self, model_id: str) -> ModelRef:
        """Register a logged model as a new version of the run's registered model.

        Two MLflow calls (the name, then a version pointing at `models:/<id>` and this run);
        under the sqlite store's lock, since several stages may register versions of one
        name at once and a version number is read before it is written.
        """
        if self._registry is None:
            return ModelRef(model_id)
        from mlflow.exceptions import MlflowException

        name = self._registry.name
        client = self._mlflow.MlflowClient()
        with store_lock(self._registry.uri):
            try:
                client.create_registered_model(name)
            except MlflowException as error:
                if error.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                    raise
            version = client.create_model_version(
                name,
                source=f"models:/{model_id}",
                run_id=self.run_id,
                tags=dict(self._registry.tags),
                await_creation_for=0,  # a local store or MLflow's server: ready at once
                model_id=model_id,
            )
        return ModelRef(model_id, name, str(version.version))

    def metrics(self, values: Mapping[str, float], step: int | None = None) -> None:
        self._mlflow.log_metrics({k: float(v) for k, v in values.items()}, step=step)

    def history(self, key: str, values: Sequence[float], first_step: int = 0) -> None:
        """A per-step curve (loss per epoch) in batches: one request per 1000 points."""
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        points = [
            Metric(key, float(v), now, step) for step, v in enumerate(values, start=first_step)
        ]
        client = self._mlflow.MlflowClient()
        for start in range(0, len(points), 1000):
            client.log_batch(self.run_id, metrics=points[start : start + 1000])

    def torch_model(self, model: Any, example: np.ndarray) -> ModelRef:
        """Log a torch module as pt2 (torch.export, no pickle) with a signature, and register
        it."""
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
        return self.register(info.model_id)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self._mlflow.set_tags(dict(tags))

    def set_tag(self, key: str, value: str) -> None:
        self._mlflow.set_tag(key, value)

    def artifact(self, path: Path, folder: str = "figures") -> None:
        self._mlflow.log_artifact(str(path), folder)

    def sklearn_model(self, model: Any, example: pd.DataFrame | np.ndarray) -> ModelRef:
        """Log a fitted scikit-learn model (skops format, no pickle), and register it."""
        from mlflow.models import infer_signature

        from mlfund.core.modelstore import model_trusted_types

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
        return self.register(info.model_id)


class OfflineRun(Run):
    """A run of a disabled Tracker: accepts everything, logs nothing."""

    def __init__(self) -> None:
        super().__init__(None, "")

    def metrics(self, values: Mapping[str, float], step: int | None = None) -> None:
        pass

    def history(self, key: str, values: Sequence[float], first_step: int = 0) -> None:
        pass

    def torch_model(self, model: Any, example: np.ndarray) -> ModelRef:
        return ModelRef("")

    def set_tags(self, tags: Mapping[str, str]) -> None:
        pass

    def set_tag(self, key: str, value: str) -> None:
        pass

    def artifact(self, path: Path, folder: str = "figures") -> None:
        pass

    def sklearn_model(self, model: Any, example: pd.DataFrame | np.ndarray) -> ModelRef:
        return ModelRef("")


def _param_value(value: Any) -> str | float | int | bool:
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def log_test_metrics(uri: str, run_id: str, values: Mapping[str, float]) -> bool:
    """Add held-out metrics to a training run; False (with a warning) when the run is gone.

    A training stage restored from DVC's run cache, or one that trained untracked, logged
    no run in this store, so its recorded run id may be unknown (or empty) here; the
    metrics still land in reports/metrics.json.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(uri)
    try:
        if not run_id:
            raise MlflowException("no run id")
        client.get_run(run_id)
    except MlflowException:
        log.warning("MLflow run %r not found in %s; test metrics not logged", run_id, uri)
        return False
    for key, value in values.items():
        client.log_metric(run_id, key, float(value))
    return True
