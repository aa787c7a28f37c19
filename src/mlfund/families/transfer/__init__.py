"""Transfer learning: the curriculum's strategies on a few-label target task.

Curriculum: "Deep Learning > Transfer Learning". Source task: the digits of
`transfer.source_classes` (0-4) from the digits train/val split. Target task: the other
digits, relabelled 0..k-1, with only `transfer.labels_per_class` labelled training images
per class (a seeded choice), validated on the target val rows and tested on the target test
rows. Every strategy (see `model`) starts from the same pretrained weights:

- `pipeline_cnn` (default, offline): the curriculum's CNN (cnn.channels/fc_size/dropout at
  `IMAGE_SIZE`) pretrained here on the source digits, logged as run `source_pretrain`;
- `resnet18_imagenet`: torchvision's ResNet-18 with ImageNet weights from
  `transfer.resnet18_weights` or the torch hub cache (a clear error when neither has them).

The inputs are image rows, not the tabular contract of evaluate, so the test metrics are
computed here; the best transferred strategy (by validation accuracy) is logged and saved
as run `best`, unscored by evaluate.

The strategies' fine-tuning shares one seeded generator between the loader's shuffling and
the augmentation's crops (`model.fine_tune`); `training.train_model` keeps them apart, so
they are not trained through it yet without changing the recorded numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from mlfund.core.datasets import TARGET
from mlfund.core.errors import diverging
from mlfund.core.family import FamilyResult, Inputs, ModelRun, SavedModel, SplitRows
from mlfund.deep.cnn import accuracy, augmentation, curves, digits_config, fit_cnn, predict
from mlfund.deep.training import count_parameters, train_model
from mlfund.families.transfer.figures import CAPTIONS, strategies_figure
from mlfund.families.transfer.model import (
    DIGITS_PIXEL_MAX,
    DIGITS_SIZE,
    IMAGE_SIZE,
    RESNET_IMAGE_SIZE,
    STRATEGIES,
    TransferError,
    TransferModel,
    build_resnet18,
    few_labels,
    param_groups,
    prepare,
    relabel,
    resnet18_weights_path,
    split_classes,
)

if TYPE_CHECKING:
    from mlfund.core.config import Params, TransferParams
    from mlfund.deep.device import Compute

DATASET = "digits"
BUILDER = "mlfund.families.transfer.model:build_transferred"

Pair = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class TransferSection:
    """What the family reads: its own section and the CNN architecture it pretrains."""

    transfer: TransferParams
    channels: tuple[int, ...]  # cnn.channels
    fc_size: int  # cnn.fc_size
    dropout: float  # cnn.dropout


def section(params: Params) -> TransferSection:
    c = params.cnn
    return TransferSection(params.transfer, tuple(c.channels), c.fc_size, c.dropout)


def run(s: TransferSection, inputs: Inputs, compute: Compute) -> FamilyResult:
    """Pretrain (or load) the backbone, train every strategy from it on the target task,
    keep the best transferred one; one run each, plus `best`."""
    p = s.transfer
    try:
        with diverging("transfer", "transfer.learning_rate", p.learning_rate):
            made = tasks(inputs.split(DATASET), list(p.source_classes), p.labels_per_class, p.seed)
            pretrained = backbone(s, made, compute)
            runs, results, models = compare(s, pretrained.net, made, compute)
    except TransferError as error:
        raise TransferError(f"transfer: {error}") from None
    if pretrained.run is not None:
        runs.insert(0, pretrained.run)
        results = {pretrained.run.name: pretrained.run.metrics, **results}
    best = best_strategy(results)
    config = {
        "backbone": p.backbone,
        "num_classes": int(made["target_val"][1].max()) + 1,
        "frozen": list(models[best].frozen),
        "cnn": pretrained.config,
    }
    saved = SavedModel(
        models[best],
        "classification",
        pd.DataFrame(columns=[f"x{i}" for i in range(DIGITS_SIZE * DIGITS_SIZE)]),
        TARGET,
        builder=BUILDER,
        config=config,
        example=made["target_test"][0][:5].numpy(),
        scored=False,  # image rows of the target task: test metrics are computed here
    )
    figure = strategies_figure(results, STRATEGIES, p.labels_per_class, p.backbone)
    runs.append(
        ModelRun(
            "best",
            DATASET,
            run_params(p, "best"),
            dict(results[best]),
            saved,
            figures=["strategies"],
            tags={**compute.describe(), "strategy": best},
        )
    )
    return FamilyResult(
        runs, figures={"strategies": figure}, captions=CAPTIONS, metrics_table=results
    )


def run_params(p: TransferParams, name: str) -> dict[str, Any]:
    return {**p.model_dump(), "strategy": name}


def _pair(rows: np.ndarray, labels: np.ndarray) -> Pair:
    return torch.tensor(rows, dtype=torch.float32), torch.tensor(labels, dtype=torch.int64)


def tasks(data: SplitRows, source: list[int], per_class: int, seed: int) -> dict[str, Pair]:
    """Source train/val and target few-label train, val and test pairs (labels 0..k-1)."""
    x, made = data.features, {}
    labels = data.train[TARGET].to_numpy()
    _, target = split_classes(labels, source)
    for split, frame in (("train", data.train), ("val", data.val), ("test", data.test)):
        y = frame[TARGET].to_numpy()
        rows = frame[x].to_numpy()
        is_source = np.isin(y, source)
        if split != "test":
            made[f"source_{split}"] = _pair(rows[is_source], relabel(y[is_source], source))
        made[f"target_{split}"] = _pair(rows[~is_source], relabel(y[~is_source], target))
    keep = few_labels(made["target_train"][1].numpy(), per_class, seed)
    made["target_train"] = tuple(t[keep] for t in made["target_train"])  # type: ignore[assignment]
    return made


@dataclass
class Backbone:
    net: torch.nn.Module
    run: ModelRun | None = None  # its pretraining on the source task (pipeline_cnn)
    config: dict[str, Any] | None = None  # pipeline_cnn: `build_cnn`'s kwargs


def backbone(s: TransferSection, made: dict[str, Pair], compute: Compute) -> Backbone:
    """The pretrained network: the curriculum CNN trained on the source task, or ResNet-18."""
    p = s.transfer
    if p.backbone == "resnet18_imagenet":
        weights = resnet18_weights_path(p.resnet18_weights)
        return Backbone(
            build_resnet18(weights, 1000, DIGITS_SIZE, RESNET_IMAGE_SIZE, DIGITS_PIXEL_MAX)
        )
    source_rows = made["source_train"][0].numpy()
    config = digits_config(source_rows, IMAGE_SIZE, list(s.channels), s.fc_size, s.dropout)
    config["num_classes"] = len(p.source_classes)
    fitted = fit_cnn(
        config,
        made["source_train"],
        made["source_val"],
        compute,
        seed=p.seed,
        learning_rate=p.learning_rate,
        batch_size=p.batch_size,
        epochs=p.source_epochs,
        patience=p.source_epochs,
    )
    metrics = {
        "val_accuracy": fitted.history.val_metric[fitted.history.best_epoch],
        "train_seconds": fitted.seconds,
    }
    name = "source_pretrain"
    pretrain = ModelRun(name, DATASET, run_params(p, name), metrics, history=curves(fitted.history))
    return Backbone(fitted.model, pretrain, config)


def compare(
    s: TransferSection, pretrained: torch.nn.Module, made: dict[str, Pair], compute: Compute
) -> tuple[list[ModelRun], dict[str, dict[str, float]], dict[str, TransferModel]]:
    """Every strategy trained from `pretrained` on the target task: (runs, {strategy:
    metrics}, {strategy: trained model})."""
    p = s.transfer
    classes = int(made["target_val"][1].max()) + 1
    augment = None
    if p.backbone == "pipeline_cnn":  # crops only: digits aren't symmetric
        shape = {"input_size": pretrained.input_size, "in_channels": pretrained.in_channels}
        augment = partial(augmentation, shape, False)
    runs, results, models = [], {}, {}
    for strategy in STRATEGIES:
        fitted = train_model(
            partial(prepare, pretrained, strategy, classes, p.seed),
            made["target_train"],
            made["target_val"],
            F.cross_entropy,
            compute,
            seed=p.seed,
            learning_rate=p.learning_rate,
            batch_size=p.batch_size,
            epochs=p.epochs,
            metric=accuracy,
            param_groups=partial(param_groups, strategy=strategy, learning_rate=p.learning_rate),
            augment=augment,
        )
        model, history = fitted.model, fitted.history
        pred = predict(model, made["target_test"][0], compute, p.batch_size)
        model.cpu()
        results[strategy] = {
            "trainable_parameters": count_parameters(model),
            "test_accuracy": float((pred == made["target_test"][1].numpy()).mean()),
            "val_accuracy": history.val_metric[history.best_epoch],
            "best_epoch": history.best_epoch,
            "train_seconds": fitted.seconds,
        }
        # per-epoch curves under fit's own key names (val_metric), as they were logged
        epochs = {"train_loss": history.train_loss, "val_loss": history.val_loss}
        epochs["val_metric"] = history.val_metric
        runs.append(
            ModelRun(
                strategy,
                DATASET,
                run_params(p, strategy),
                results[strategy],
                history=epochs,
                tags=compute.describe(),
            )
        )
        models[strategy] = model
    return runs, results, models


def best_strategy(results: dict[str, dict[str, float]]) -> str:
    """The transferred strategy with the best validation accuracy (test stays unseen)."""
    transferred = [s for s in STRATEGIES if s != "from_scratch"]
    return max(transferred, key=lambda s: results[s]["val_accuracy"])
