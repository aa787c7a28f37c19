"""Shared fixtures: the default params and every dataset made from them (once per session),
the end-to-end project, and the loopback PostgreSQL and MLflow server of the scale-out tests."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# isort: off
import mlfund  # noqa: F401  (first: pins the numerical kernels before NumPy loads)
# isort: on

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from mlfund.core.config import Params, load_params
from mlfund.core.datasets import TARGET, feature_columns, make_all
from mlfund.core.family import SplitRows
from mlfund.core.splitting import rows_of

ROOT = Path(__file__).resolve().parents[1]
PARAMS_FILE = ROOT / "params.yaml"


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tests train tiny models, where two cores' worth of torch, OpenMP and BLAS threads
    only fight each other (a CNN test: 20 s with two threads, 1 s with one). The stages
    that tests start as subprocesses keep their own `compute.threads`."""
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")  # imported while collecting the test modules
    if torch is not None:
        torch.set_num_threads(1)
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="session")
def params() -> Params:
    return load_params(PARAMS_FILE)


@pytest.fixture(scope="session")
def datasets(params: Params) -> dict[str, pd.DataFrame]:
    return make_all(params.data)


@pytest.fixture
def close_figures():
    """Close every matplotlib figure a test opened, pass or fail."""
    yield
    plt.close("all")


class FrameInputs:
    """`mlfund.core.family.Inputs` over in-memory tables: what family tests hand to `run`.

    `split` maps a dataset to a table with a `split` column (as data/split holds), `raw`
    to a whole table, `folders` to a directory (CIFAR-10's batches).
    """

    def __init__(
        self,
        split: dict[str, pd.DataFrame] | None = None,
        raw: dict[str, pd.DataFrame] | None = None,
        folders: dict[str, Path] | None = None,
    ) -> None:
        self._split, self._raw, self._folders = split or {}, raw or {}, folders or {}

    def split(self, dataset: str) -> SplitRows:
        table = self._split[dataset]
        rows = (rows_of(table, part) for part in ("train", "val", "test"))
        return SplitRows(feature_columns(table), *rows)

    def raw(self, dataset: str) -> pd.DataFrame:
        return self._raw[dataset]

    def folder(self, dataset: str) -> Path:
        return self._folders[dataset]


@pytest.fixture(scope="session")
def split_tables(params: Params, datasets: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Every supervised dataset split as the split stage does it (salary featurized first)."""
    from mlfund.core.feature_engineering import TARGET as SALARY_TARGET
    from mlfund.core.feature_engineering import engineer_salary_features
    from mlfund.core.splitting import with_split

    f = params.featurize
    tables = {}
    for name, spec in params.split:
        if name == "salary":
            salary = datasets["salary"]
            source = engineer_salary_features(salary, f.reference_date, f.age_bins, f.age_labels)
            target = SALARY_TARGET
        else:
            source, target = datasets[name], TARGET
        tables[name] = with_split(source, spec, target if spec.stratify else None)
    return tables


@pytest.fixture(scope="session")
def inputs(split_tables: dict[str, pd.DataFrame], datasets: dict[str, pd.DataFrame]) -> FrameInputs:
    """The default pipeline's inputs, in memory: every split table and raw dataset."""
    return FrameInputs(split_tables, datasets)


@dataclass(frozen=True)
class E2EBuild:
    """The reproduced e2e project, and where strace logged every process of that `dvc
    repro` (None without strace): tests/test_deps.py reads each stage's file accesses."""

    work: Path
    strace: Path | None


@pytest.fixture(scope="session")
def e2e_build(tmp_path_factory: pytest.TempPathFactory) -> E2EBuild:
    """The whole pipeline reproduced once, with small params, through `mlflow run .`
    (MLproject's main entry point is `dvc repro`), traced when strace is there: the trace
    costs a little of this run instead of a second run of every stage."""
    from tests.e2e import run, small_project
    from tests.file_trace import strace_prefix

    work = small_project(tmp_path_factory.mktemp("e2e") / "repo")
    command = [sys.executable, "-m", "mlflow", "run", ".", "--env-manager", "local"]
    command += ["--experiment-name", "pipeline"]
    strace = None
    if shutil.which("strace") is not None:
        strace = tmp_path_factory.mktemp("strace") / "pid"
        command = [*strace_prefix(strace), *command]
    run(work, *command)
    return E2EBuild(work, strace)


@pytest.fixture(scope="session")
def e2e_project(e2e_build: E2EBuild) -> Path:
    """The reproduced e2e project. Tests that change it work on a copy."""
    return e2e_build.work


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow sqlite store, its schema migrated once (seconds) for tests to copy."""
    import mlflow

    database = tmp_path_factory.mktemp("empty-store") / "mlflow.db"
    # not tracking_uri(): mlflow.set_tracking_uri() exports MLFLOW_TRACKING_URI, so an
    # earlier test's store may be in the environment
    mlflow.MlflowClient(f"sqlite:///{database}").search_experiments()
    return database


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL on 127.0.0.1, shared by the scale-out and tune tests (each
    uses databases and MLflow experiments of its own): its `mlflow` database URL."""
    from tests.services import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def tracking_server(postgres: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mlflow server` on that PostgreSQL, serving (proxying) the artifacts itself."""
    from tests.services import mlflow_server

    with mlflow_server(postgres, tmp_path_factory.mktemp("mlflow-server")) as uri:
        yield uri
