"""What every stage shares: where things live in the repository, and small file I/O.

Paths live here and only here; the library under src/mlfund never sees them.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mlfund.config import Params, ParamsError, load_params

if TYPE_CHECKING:  # imported where used: skops and MLflow cost seconds at start-up
    from mlfund.deep.device import Compute
    from mlfund.modelstore import ModelCard, Task
    from mlfund.tracking import Run, Tracker

# Data and outputs live in the checkout this code runs from (a queued `dvc exp run` runs in
# a temporary copy). The MLflow store lives at DVC_ROOT when DVC sets it, which for queued
# experiments is the user's repository, so every experiment logs into one store.
ROOT = Path(__file__).resolve().parents[1]
TRACKING_ROOT = Path(os.environ.get("DVC_ROOT") or ROOT)
PARAMS_FILE = ROOT / "params.yaml"
DATA = ROOT / "data"
RAW = DATA / "raw"
FEATURES = DATA / "features"
SPLIT = DATA / "split"
MODELS = ROOT / "models"
REPORTS = ROOT / "reports"
VALIDATION = REPORTS / "validation"

log = logging.getLogger("mlfund")


def read_params() -> Params:
    return load_params(PARAMS_FILE)


def write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def write_table(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


def read_table(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)


def run_stage(main: Callable[[Params], None]) -> None:
    """Entry point of every stage: logging, params validation, clean failure messages.

    Params are validated before `main` runs, so a bad params.yaml stops the stage
    before it touches any output.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    from mlfund.tracking import TrackingUnavailable

    try:
        params = read_params()
    except ParamsError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        main(params)
    except TrackingUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None


class FamilyOutputs:
    """Where a training stage writes: models, figures, plot data, train-side metrics."""

    def __init__(self, family: str) -> None:
        self.family = family
        self.models = MODELS / family
        self.figures = REPORTS / "figures" / family
        self.plots = REPORTS / "plots" / family
        self.metrics = REPORTS / "train" / f"{family}.json"

    def discard(self, cards: list[ModelCard]) -> None:
        """Remove the models this run already saved: a family is written whole or not at all."""
        for card in cards:
            (self.models / card.file).unlink(missing_ok=True)

    def figure(self, name: str) -> Path:
        return self.figures / f"{name}.png"

    def write_metrics(self, metrics: dict[str, dict[str, float]], tracker: Tracker) -> None:
        """Train-side metrics `{model: {metric: value}}` and MLflow run ids, for evaluate."""
        write_json(self.metrics, {"metrics": {self.family: metrics}, "runs": tracker.run_ids})


def split_table(dataset: str) -> pd.DataFrame:
    return read_table(SPLIT / f"{dataset}.parquet")


@dataclass(frozen=True)
class SplitRows:
    """A tabular dataset's `x<i>` feature names and its train/val/test rows."""

    features: list[str]
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame


def load_split(dataset: str) -> SplitRows:
    from mlfund.datasets import feature_columns
    from mlfund.splitting import rows_of

    table = split_table(dataset)
    return SplitRows(feature_columns(table), *(rows_of(table, s) for s in ("train", "val", "test")))


def save_logged_model(
    run: Run,
    outputs: FamilyOutputs,
    name: str,
    model: Any,
    *,
    dataset: str,
    task: Task,
    features: pd.DataFrame,
    target: str,
) -> ModelCard:
    """Log `model` to the MLflow run and save it for evaluate; returns its manifest card."""
    from mlfund.modelstore import ModelCard, save_model

    model_id = run.sklearn_model(model, features)
    save_model(model, outputs.models / f"{name}.skops")
    return ModelCard(
        name=name,
        dataset=dataset,
        task=task,
        features=list(features.columns),
        target=target,
        file=f"{name}.skops",
        run_id=run.run_id,
        model_id=model_id,
    )


def tracker(family: str) -> Tracker:
    from mlfund.tracking import Tracker

    return Tracker(TRACKING_ROOT, family, read_params().tracking.on_unreachable)


def save_logged_torch_model(
    run: Run,
    outputs: FamilyOutputs,
    name: str,
    model: Any,
    *,
    builder: str,
    config: dict[str, Any],
    dataset: str,
    task: Task,
    features: pd.DataFrame,
    target: str,
    classes: list[Any] | None = None,
) -> ModelCard:
    """Log a torch model to MLflow (pt2) and save its state_dict for evaluate (atomically)."""
    from mlfund.deep.training import save_atomic
    from mlfund.modelstore import ModelCard

    model = model.cpu().eval()
    model_id = run.torch_model(model, features.to_numpy())
    save_atomic(model.state_dict(), outputs.models / f"{name}.pt")
    return ModelCard(
        name=name,
        dataset=dataset,
        task=task,
        features=list(features.columns),
        target=target,
        file=f"{name}.pt",
        run_id=run.run_id,
        model_id=model_id,
        format="torch",
        builder=builder,
        config=config,
        classes=classes,
    )


def family_compute(params: Params, family: str) -> Compute:
    """Device, precision and threads of a PyTorch family: its own overrides, else `compute`."""
    from mlfund.deep.device import setup_compute

    own, shared = getattr(params, family), params.compute
    key = f"{family}.device" if own.device else "compute.device"
    threads = shared.threads if own.threads is None else own.threads
    return setup_compute(own.device or shared.device, shared.precision, threads, key)
