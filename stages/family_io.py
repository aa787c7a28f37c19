"""The I/O of the family stages, train@<family> and evaluate@<family>.

A family's `run` is pure (`mlfund.core.family`); this module hands it its inputs and compute,
then writes what it returned: figures, plot tables, models with their manifest, the
train-side metrics and report notes, and one MLflow run per `ModelRun`.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from mlfund.core.config import Params
from mlfund.core.family import FamilyResult, SavedModel, SplitRows
from stages.common import (
    DOWNLOADS,
    MODELS,
    RAW,
    REPORTS,
    SPLIT,
    TRACKING_ROOT,
    log,
    read_table,
    write_json,
)

if TYPE_CHECKING:  # imported where used: torch, skops and MLflow cost seconds at start-up
    from mlfund.core.modelstore import ModelCard
    from mlfund.core.tracking import Run, Tracker
    from mlfund.deep.device import Compute


class FamilyOutputs:
    """Where a family's training stage writes: models, figures, plot data, metrics."""

    def __init__(self, family: str, models: Path = MODELS, reports: Path = REPORTS) -> None:
        self.family = family
        self.models = models / family
        self.figures = reports / "figures" / family
        self.plots = reports / "plots" / family
        self.metrics = reports / "train" / f"{family}.json"

    def figure(self, name: str) -> Path:
        return self.figures / f"{name}.png"


def split_table(dataset: str) -> pd.DataFrame:
    return read_table(SPLIT / f"{dataset}.parquet")


def load_split(dataset: str) -> SplitRows:
    from mlfund.core.datasets import feature_columns
    from mlfund.core.splitting import rows_of

    table = split_table(dataset)
    return SplitRows(feature_columns(table), *(rows_of(table, s) for s in ("train", "val", "test")))


def tracker(family: str, params: Params) -> Tracker:
    from mlfund.core.tracking import Tracker

    return Tracker(TRACKING_ROOT, family, params.tracking.on_unreachable)


def family_compute(params: Params, family: str) -> Compute:
    """Device, precision and threads of a PyTorch family: its own overrides, else `compute`."""
    from mlfund.deep.device import setup_compute

    own, shared = getattr(params, family), params.compute
    device, key = params.device_of(family)
    threads = shared.threads if own.threads is None else own.threads
    return setup_compute(device, shared.precision, threads, key)


class StageInputs:
    """The `Inputs` of a family: data/split and data/raw tables, read when asked for.

    What a family may read is declared in dvc.yaml (data/split, plus its registry `data`);
    tests/test_deps.py traces every stage's reads against those deps.
    """

    def split(self, dataset: str) -> SplitRows:
        return load_split(dataset)

    def raw(self, dataset: str) -> pd.DataFrame:
        return read_table(RAW / f"{dataset}.parquet")

    def folder(self, dataset: str) -> Path:
        return DOWNLOADS / dataset


def write_result(result: FamilyResult, out: FamilyOutputs, track: Tracker) -> None:
    """Save what a family's `run` returned and log it: figures, plot tables, models, runs.

    Models are saved only after the whole family trained, so a failed run leaves none.
    """
    from mlfund.core.figures import save_figure
    from mlfund.core.modelstore import write_manifest

    figures = {
        name: save_figure(figure, out.figure(name)) for name, figure in result.figures.items()
    }
    out.plots.mkdir(parents=True, exist_ok=True)  # a DVC out, even when the family has none
    for name, table in result.plots.items():
        table.to_csv(out.plots / f"{name}.csv", index=False)
    cards = []
    for model_run in result.runs:
        with track.run(model_run.name, model_run.dataset, model_run.params) as run:
            run.set_tags(model_run.tags)
            for key, values in model_run.history.items():
                run.history(key, values, model_run.first_step)
            run.metrics(model_run.metrics)
            for name in model_run.figures:
                run.artifact(figures[name])
            if model_run.model is not None:
                card = save_logged(run, out, model_run.name, model_run.dataset, model_run.model)
                if model_run.model.scored:
                    cards.append(card)
                if not model_run.model.is_torch:  # train_model logged a torch model's line
                    numbers = " ".join(f"{k}={v:.4g}" for k, v in model_run.metrics.items())
                    log.info("%s/%s trained: %s", out.family, model_run.name, numbers)
    write_manifest(out.models, cards)
    write_json(
        out.metrics,
        {
            "metrics": {out.family: result.metrics},
            "runs": track.run_ids,
            "extras": result.extras,
            "captions": list(result.captions.items()),  # pairs: JSON keys get sorted
            "notes": [asdict(note) for note in result.notes],
        },
    )


def save_logged(
    run: Run, out: FamilyOutputs, name: str, dataset: str, saved: SavedModel
) -> ModelCard:
    """Log and register a model in the MLflow run, and save it for evaluate; returns its
    manifest card.

    scikit-learn models go to skops files; torch modules to a state_dict (written
    atomically) that `builder(**config)` rebuilds, and to MLflow as pt2.
    """
    from mlfund.core.modelstore import ModelCard, save_model

    features = saved.features
    if saved.is_torch:
        from mlfund.deep.training import save_atomic

        model = saved.estimator.cpu().eval()
        example = features.to_numpy() if saved.example is None else saved.example
        logged = run.torch_model(model, example)
        file = f"{name}.pt"
        save_atomic(model.state_dict(), out.models / file)
    else:
        logged = run.sklearn_model(saved.estimator, features)
        file = f"{name}.skops"
        save_model(saved.estimator, out.models / file)
    return ModelCard(
        name=name,
        dataset=dataset,
        task=saved.task,
        features=list(features.columns),
        target=saved.target,
        file=file,
        run_id=run.run_id,
        model_id=logged.model_id,
        registered_model=logged.registered_model,
        registered_version=logged.registered_version,
        format="torch" if saved.is_torch else "skops",
        builder=saved.builder,
        config=saved.config,
        classes=saved.classes,
    )
