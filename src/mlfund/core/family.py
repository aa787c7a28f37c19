"""What a model family hands back: the contract between the families and the pipeline.

Every family module under `mlfund.families` exposes one pure entry point,

    run(section, inputs, compute) -> FamilyResult

`section` is the family's own params (its pydantic model, or a small view of several
sections where a family reads more), `inputs` gives it the tables it declared in the
registry, and `compute` is the torch device setup (None for families without torch).
A family never sees a path, a tracker or params.yaml: the generic training stage saves
what `run` returns, logs it to MLflow and writes the metrics evaluate merges.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import matplotlib.figure
    import numpy as np
    import pandas as pd

    from mlfund.core.report import Paragraph, Table

Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class SplitRows:
    """A tabular dataset's `x<i>` feature names and its train/val/test rows."""

    features: list[str]
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame


class Inputs(Protocol):
    """The data a family reads, by dataset name; only what its registry entry declares."""

    def split(self, dataset: str) -> SplitRows:
        """Rows of data/split/<dataset>: features and train/val/test frames."""
        ...

    def raw(self, dataset: str) -> pd.DataFrame:
        """All rows of data/raw/<dataset> (unsupervised studies use every row)."""
        ...

    def folder(self, dataset: str) -> Any:
        """A dataset kept as files of its own format (CIFAR-10's batches)."""
        ...


@dataclass
class SavedModel:
    """A fitted model to save for evaluate and to log to MLflow.

    scikit-learn estimators are saved with skops; torch modules as a state_dict that
    `builder(**config)` rebuilds (no pickle). `scored=False` keeps a model out of the
    manifest that evaluate scores (CIFAR-10's CNN is scored inside its family).
    """

    estimator: Any
    task: Task
    features: pd.DataFrame  # the training inputs: column names, signature and example
    target: str
    builder: str = ""  # torch only: "module:function"
    config: dict[str, Any] = field(default_factory=dict)  # torch only: builder's kwargs
    classes: list[Any] | None = None  # torch classifiers: the label of each output
    example: np.ndarray | None = None  # MLflow input example when not `features`
    scored: bool = True

    @property
    def is_torch(self) -> bool:
        return bool(self.builder)


@dataclass
class ModelRun:
    """One MLflow run, `<family>/<name>`: a model, or a study without one."""

    name: str  # key under the family in reports/metrics.json; file stem of the model
    dataset: str
    params: Mapping[str, Any]
    metrics: dict[str, float]  # train-side; evaluate adds the test scores
    model: SavedModel | None = None
    history: Mapping[str, Sequence[float]] = field(default_factory=dict)  # curves, per step
    first_step: int = 0  # step of each curve's first value
    figures: Sequence[str] = ()  # names of FamilyResult.figures attached to this run
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass
class FamilyResult:
    """Everything a family's `run` produced, ready to be written and logged."""

    runs: list[ModelRun]
    figures: dict[str, matplotlib.figure.Figure] = field(default_factory=dict)
    plots: dict[str, pd.DataFrame] = field(default_factory=dict)  # `dvc plots` tables
    extras: dict[str, Any] = field(default_factory=dict)  # JSON kept beside the metrics
    captions: dict[str, str] = field(default_factory=dict)  # figure name -> report caption
    notes: list[Paragraph | Table] = field(default_factory=list)  # report text under the title
    # `{model: {metric: value}}` for reports/metrics.json when it is not one entry per run
    # (a study logged as one run but reported under several keys)
    metrics_table: dict[str, dict[str, float]] | None = None

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        if self.metrics_table is not None:
            return self.metrics_table
        return {run.name: run.metrics for run in self.runs}


def epoch_tables(runs: Iterable[ModelRun]) -> dict[str, pd.DataFrame]:
    """The `history_<name>` plot table of each run with curves: an `epoch` column (from
    `first_step`, as MLflow's steps and the `best_epoch` metrics count) and one column per
    curve. A family whose runs' `history` is per epoch returns these among its `plots`, so
    they land in reports/plots/<family>/history_<name>.csv, where dvc.yaml's loss plots
    read them (`dvc plots diff` overlays two experiments' curves)."""
    import pandas as pd

    tables = {}
    for run in runs:
        if run.history:
            table = pd.DataFrame({key: list(values) for key, values in run.history.items()})
            table.insert(0, "epoch", range(run.first_step, run.first_step + len(table)))
            tables[f"history_{run.name}"] = table
    return tables


def merge_metrics(*parts: dict[str, dict[str, dict[str, float]]]) -> dict:
    """Deep-merge `{family: {model: {metric: value}}}` trees (reports/metrics.json's shape);
    later parts win."""
    merged: dict[str, dict[str, dict[str, float]]] = {}
    for part in parts:
        for family, models in part.items():
            for model, values in models.items():
                merged.setdefault(family, {}).setdefault(model, {}).update(values)
    return merged


def headline_metrics(
    metrics: dict[str, dict[str, dict[str, float]]], primary: Mapping[str, str]
) -> dict[str, dict[str, dict[str, float]]]:
    """The headline subset of a metrics tree: per family, each model's value of the family's
    primary metric (`primary`: family -> metric name, the registry's), under the same keys.
    Models without it, and families with no such model or no primary, are left out."""
    headline: dict[str, dict[str, dict[str, float]]] = {}
    for family, models in metrics.items():
        metric = primary.get(family)
        kept = {model: {metric: v[metric]} for model, v in models.items() if metric in v}
        if kept:
            headline[family] = kept
    return headline
