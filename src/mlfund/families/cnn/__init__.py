"""The curriculum's CNN on digits (default, offline) or CIFAR-10.

Curriculum: "Deep Learning > Convolutional Neural Networks". The model itself is
`mlfund.deep.cnn` (shared with the transfer family, which pretrains it); this family trains
it on one dataset and draws its figures.

- digits: the split table's train/val rows (raw 8x8 pixels as x0..x63), upsampled inside
  the model to cnn.image_size; saved with a manifest card so evaluate scores its test rows.
- cifar10: the archive the download_cifar10 stage put into the `cifar10` folder; the
  official training set minus a seeded validation part, and the official test set scored
  here (`test_accuracy`), since evaluate scores tabular split tables only (no card).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from mlfund.core.datasets import TARGET
from mlfund.core.errors import diverging
from mlfund.core.family import FamilyResult, Inputs, ModelRun, SavedModel, epoch_tables
from mlfund.deep.cnn import cifar10_config, curves, digits_config, fit_cnn, predict
from mlfund.families.cnn.cifar10 import label_names, load_cifar10, validation_split
from mlfund.families.cnn.figures import CAPTIONS, family_figures

if TYPE_CHECKING:
    from mlfund.core.config import CnnParams
    from mlfund.deep.device import Compute

MODEL = "simple_cnn"
BUILDER = "mlfund.deep.cnn:build_cnn"
CIFAR10_VAL_SIZE = 5000  # held out of the 50,000 official training images (the usual 45k/5k)

Pair = tuple[torch.Tensor, torch.Tensor]


@dataclass
class ImageTask:
    """One dataset ready for the CNN: its config, tensors, class names and how to show rows."""

    config: dict
    train: Pair
    val: Pair
    test: Pair
    names: list[str]
    images: Callable[[torch.Tensor], np.ndarray]  # model inputs -> [0, 1] (n, H, W[, 3])
    features: pd.DataFrame  # digits: the training rows (card and MLflow example)
    example: np.ndarray | None = None  # cifar10: the MLflow input example


def run(p: CnnParams, inputs: Inputs, compute: Compute) -> FamilyResult:
    """Train the CNN on `cnn.dataset`; one run, its model and five figures."""
    task = digits(p, inputs) if p.dataset == "digits" else cifar10(p, inputs)
    with diverging(f"cnn/{MODEL}", "cnn.learning_rate", p.learning_rate):
        fitted = fit_cnn(
            task.config,
            task.train,
            task.val,
            compute,
            seed=p.seed,
            learning_rate=p.learning_rate,
            batch_size=p.batch_size,
            epochs=p.epochs,
            patience=p.patience,
            augment=p.augment,
            flip=p.dataset == "cifar10",  # flipping a digit can change it (2, 5, 7 ...)
            name=f"cnn/{MODEL}",
        )
    model, history = fitted.model, fitted.history
    pred = predict(model, task.test[0], compute, p.batch_size)
    model.cpu()  # figures and saving run on the CPU
    best = history.best_epoch
    metrics = {
        "val_loss": history.val_loss[best],
        "val_accuracy": history.val_metric[best],
        "best_epoch": best,
        "epochs_run": len(history.train_loss),
        "train_seconds": fitted.seconds,
        # whole fit: training steps plus the validation pass of each epoch
        "train_images_per_second": len(task.train[0]) * len(history.train_loss) / fitted.seconds,
    }
    scored = p.dataset == "digits"  # evaluate scores split tables only
    if not scored:
        metrics["test_accuracy"] = float((pred == task.test[1].numpy()).mean())
    figures = family_figures(model, history, task.images, task.test, pred, task.names)
    saved = SavedModel(
        model,
        "classification",
        task.features,
        TARGET,
        builder=BUILDER,
        config=task.config,
        classes=list(range(len(task.names))),
        example=task.example,
        scored=scored,
    )
    model_run = ModelRun(
        MODEL,
        p.dataset,
        p.model_dump(),
        metrics,
        saved,
        history=curves(history),
        figures=list(figures),
        tags=compute.describe(),
    )
    plots = epoch_tables([model_run])
    return FamilyResult([model_run], figures=figures, plots=plots, captions=CAPTIONS)


def _tensors(frame: pd.DataFrame, features: list[str]) -> Pair:
    return (
        torch.tensor(frame[features].to_numpy(), dtype=torch.float32),
        torch.tensor(frame[TARGET].to_numpy(), dtype=torch.int64),
    )


def digits(p: CnnParams, inputs: Inputs) -> ImageTask:
    data = inputs.split("digits")
    x = data.features
    config = digits_config(data.train[x].to_numpy(), p.image_size, p.channels, p.fc_size, p.dropout)
    return ImageTask(
        config,
        _tensors(data.train, x),
        _tensors(data.val, x),
        _tensors(data.test, x),
        [str(c) for c in range(10)],
        lambda rows: rows.numpy().reshape(-1, 8, 8) / 16.0,
        data.train[x],
    )


def cifar10(p: CnnParams, inputs: Inputs) -> ImageTask:
    root = inputs.folder("cifar10")
    data = load_cifar10(root)
    n = len(data.train_x)  # 50,000; fewer only in tests
    fit_rows, val_rows = validation_split(n, min(CIFAR10_VAL_SIZE, max(1, n // 10)), p.seed)

    def pair(images: np.ndarray, labels: np.ndarray) -> Pair:
        return torch.from_numpy(images), torch.from_numpy(labels)  # uint8 pixels stay compact

    return ImageTask(
        cifar10_config(p.channels, p.fc_size, p.dropout),
        pair(data.train_x[fit_rows], data.train_y[fit_rows]),
        pair(data.train_x[val_rows], data.train_y[val_rows]),
        pair(data.test_x, data.test_y),
        label_names(root),
        lambda rows: rows.permute(0, 2, 3, 1).numpy() / 255.0,
        pd.DataFrame(),  # images, not table rows: the model is not scored by evaluate
        data.test_x[:5].astype(np.float32),
    )
