"""One trial of `make tune`: the family's pure `run` on drawn params, scored without its
test rows.

- `TuneInputs` hands the family its data with the test rows taken out: in their place the
  validation rows (holdout), or a held-out fold of the training rows (kfold).
- `EpochReporter` sends each epoch's validation loss of every model a PyTorch family
  trains to the trial (`deep.training.watching_epochs`), so the pruner can stop it.
- `trial_score` runs the family (once per fold for kfold) and returns the objective:
  the mean of its metric over the chosen models, with every metric for MLflow.
- `make_objective` is Optuna's objective: draw, validate, score, record why a trial failed.
"""

from __future__ import annotations

import math
import os
import socket
import statistics
import sys
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from mlfund.core.config import parse_params
from mlfund.core.errors import MlfundError, NonFiniteLossError, ParamsError
from mlfund.core.family import Inputs, SplitRows
from mlfund.tuning.space import FamilySpace, Objective, suggest, with_overrides

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from mlfund.core.config import Params
    from mlfund.core.registry import Family
    from mlfund.deep.device import Compute

ComputeOf = Callable[["Params", str], "Compute"]
# A trial that raises one of these is recorded as failed, with its reason, and the study
# goes on: a loss that diverged, or drawn params that the schema rejects together.
TRIAL_FAILURES: tuple[type[Exception], ...] = (NonFiniteLossError, ParamsError)
# Model i's epoch e is step i * STRIDE + e: trials are compared model by model, epoch by epoch.
STRIDE = 10_000


class ObjectiveError(MlfundError):
    """The objective names a metric or model the family does not report."""

    exit_code = 2


class TuneInputs:
    """The `Inputs` of a trial: the pipeline's data without its test rows.

    holdout and all_rows: the validation rows stand in for the test rows (the training
    rows, for a dataset without validation rows), so whatever a family computes "on test"
    inside `run` (a figure, a comparison) never sees them. kfold: fold `fold` of `folds`
    of the training rows is held out, as validation and test rows, and the models train
    on the others.
    """

    def __init__(
        self, base: Inputs, validation: str, fold: int = 0, folds: int = 1, seed: int = 0
    ) -> None:
        self._base, self.validation = base, validation
        self.fold, self.folds, self.seed = fold, folds, seed

    def split(self, dataset: str) -> SplitRows:
        rows = self._base.split(dataset)
        if self.validation == "kfold":
            from sklearn.model_selection import KFold

            folds = KFold(self.folds, shuffle=True, random_state=self.seed).split(rows.train)
            kept, held = list(folds)[self.fold]
            train, held_out = rows.train.iloc[kept], rows.train.iloc[held]
            return SplitRows(rows.features, train, held_out, held_out)
        stand_in = rows.val if len(rows.val) else rows.train
        return SplitRows(rows.features, rows.train, rows.val, stand_in)

    def raw(self, dataset: str) -> pd.DataFrame:
        return self._base.raw(dataset)

    def folder(self, dataset: str) -> Any:
        return self._base.folder(dataset)


class EpochReporter:
    """`watching_epochs` callback: each model's validation loss per epoch to the trial.

    The pruner compares intermediate values in the study's direction, so a loss is
    reported negated when the objective is maximised. Models without validation rows
    report nothing and are never pruned.
    """

    def __init__(self, trial: optuna.Trial, direction: str) -> None:
        self.trial = trial
        self.sign = 1.0 if direction == "minimize" else -1.0
        self.model = -1

    def __call__(self, epoch: int, values: Mapping[str, float]) -> None:
        import optuna

        if epoch == 0:
            self.model += 1
        loss = values.get("val_loss")
        if loss is None or epoch >= STRIDE:
            return
        self.trial.report(self.sign * loss, self.model * STRIDE + epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(
                f"pruned at model {self.model + 1}, epoch {epoch + 1}: val_loss {loss:.4g}"
            )


def run_metrics(
    family: Family, params: Params, inputs: TuneInputs, compute_of: ComputeOf
) -> dict[str, float]:
    """One run of the family: `{model.metric: value}`; in kfold, its models' scores on the
    held-out fold as `cv_*` (evaluate's `test_*` on those rows). Scores a family or
    evaluate computes on the rows standing in for the test rows are dropped."""
    from mlfund.calibrate import family_metrics

    metrics = {}
    for name, value in family_metrics(family, params, inputs, compute_of).items():
        _, model, metric = name.split(".", 2)
        if metric.startswith("test_"):
            if inputs.validation != "kfold":
                continue
            metric = "cv_" + metric.removeprefix("test_")
        metrics[f"{model}.{metric}"] = value
    return metrics


def objective_value(metrics: Mapping[str, float], objective: Objective, family: str) -> float:
    """The mean of the objective's metric over its models; NonFiniteLossError when NaN/inf."""
    suffix = f".{objective.metric}"
    models = objective.models or sorted(
        n.removesuffix(suffix) for n in metrics if n.endswith(suffix)
    )
    missing = [m for m in models if f"{m}{suffix}" not in metrics]
    if not models or missing:
        raise ObjectiveError(
            f"{family}: no {', '.join(f'{m}{suffix}' for m in missing) or objective.metric} "
            f"among its metrics ({', '.join(sorted(metrics))}); fix its objective in tune.yaml"
        )
    values = {m: metrics[f"{m}{suffix}"] for m in models}
    value = statistics.fmean(values.values())
    if not math.isfinite(value):
        shown = ", ".join(f"{m} {v:.4g}" for m, v in values.items())
        raise NonFiniteLossError(f"objective {objective.metric} is {value} ({shown})")
    return value


def trial_score(
    family: Family,
    spec: FamilySpace,
    params: Params,
    inputs: Inputs,
    compute_of: ComputeOf,
    reporter: EpochReporter | None = None,
) -> tuple[float, dict[str, float]]:
    """(objective value, every metric) of one trial; kfold averages the folds' metrics."""
    folds = spec.folds if spec.validation == "kfold" else 1
    runs = []
    for fold in range(folds):
        trial_inputs = TuneInputs(inputs, spec.validation, fold, folds)
        with _watching(reporter):
            runs.append(run_metrics(family, params, trial_inputs, compute_of))
    names = sorted(set().union(*runs))
    metrics = {n: statistics.fmean(r.get(n, math.nan) for r in runs) for n in names}
    return objective_value(metrics, spec.objective, family.name), metrics


def _watching(reporter: EpochReporter | None):
    if reporter is None:
        return nullcontext()
    from mlfund.deep.training import watching_epochs

    return watching_epochs(reporter)


def make_objective(
    family: Family,
    spec: FamilySpace,
    raw: Mapping[str, Any],
    inputs: Inputs,
    compute_of: ComputeOf,
    tags: Mapping[str, str] | None = None,
) -> Callable[[optuna.Trial], float]:
    """Optuna's objective for `family`. A PyTorch family reports its validation losses
    (the study's pruner decides; NopPruner never prunes). Inside an MLflow run
    (MLflowCallback's `track_in_mlflow`), it names and tags the run and logs every metric
    of the trial; the callback adds the params, the objective and the trial's state."""

    def objective(trial: optuna.Trial) -> float:
        # which process runs it: how a dead worker's trial is told apart in the study
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        mlflow = sys.modules.get("mlflow")  # not imported: no run to log to
        tracked = mlflow is not None and mlflow.active_run() is not None
        if tracked:
            mlflow.set_tags(
                {
                    **(tags or {}),
                    "optuna_study": trial.study.study_name,
                    "optuna_trial": str(trial.number),
                    "mlflow.runName": f"{family.name}/trial-{trial.number}",
                }
            )
        overrides = suggest(trial, spec, raw)
        reporter = EpochReporter(trial, spec.objective.direction) if family.torch else None
        try:
            params = parse_params(with_overrides(raw, overrides), f"trial {trial.number}")
            value, metrics = trial_score(family, spec, params, inputs, compute_of, reporter)
        except TRIAL_FAILURES as error:
            trial.set_user_attr("fail_reason", f"{type(error).__name__}: {error}"[:1000])
            raise
        if tracked:
            mlflow.log_metrics(metrics)
        return value

    return objective
