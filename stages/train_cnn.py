"""Stage train_cnn: the curriculum's CNN on digits (default, offline) or CIFAR-10.

digits: the split table's train/val rows (raw 8x8 pixels as x0..x63), upsampled inside the
model to cnn.image_size; saved with a manifest card so evaluate scores its test rows.
cifar10: the archive the download_cifar10 stage put into data/raw/cifar10; the official
training set minus a seeded validation part, and the official test set scored here
(`test_accuracy`), since evaluate scores tabular split tables only (no manifest card).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from mlfund.config import CnnParams, Params
from mlfund.datasets import TARGET
from mlfund.deep import cnn_figures as figs
from mlfund.deep.cnn import (
    augmentation,
    build_cnn,
    cifar10_config,
    digits_config,
    predict,
    train_cnn,
)
from mlfund.deep.device import Compute, seeded
from mlfund.deep.training import History, NonFiniteLossError, save_atomic
from mlfund.figures import save_figure
from mlfund.modelstore import write_manifest
from mlfund.tracking import Run
from stages.common import (
    RAW,
    FamilyOutputs,
    family_compute,
    load_split,
    run_stage,
    save_logged_torch_model,
    tracker,
)

FAMILY = "cnn"
MODEL = "simple_cnn"
BUILDER = "mlfund.deep.cnn:build_cnn"
CIFAR10_VAL_SIZE = 5000  # held out of the 50,000 official training images (the usual 45k/5k)
GRID_SIZE = 24  # images in the prediction grid

Pair = tuple[torch.Tensor, torch.Tensor]


@dataclass
class Trained:
    model: torch.nn.Module
    history: History
    metrics: dict[str, float]


def train(
    p: CnnParams, config: dict, train: Pair, val: Pair, compute: Compute, run: Run
) -> Trained:
    """Seeded init, shuffling and augmentation; per-epoch metrics to MLflow with `step`."""
    with seeded(p.seed) as generator:
        model = build_cnn(**config)
        # its own stream, so switching augmentation off leaves the batch order unchanged
        augment = None
        if p.augment:
            flip = p.dataset == "cifar10"  # flipping a digit can change it (2, 5, 7 ...)
            augment = augmentation(config, flip, torch.Generator().manual_seed(p.seed + 1))
        start = time.perf_counter()
        try:
            history = train_cnn(
                model,
                train,
                val,
                compute,
                learning_rate=p.learning_rate,
                batch_size=p.batch_size,
                epochs=p.epochs,
                patience=p.patience,
                generator=generator,
                augment=augment,
                on_epoch=lambda epoch, values: run.metrics(values, step=epoch),
            )
        except NonFiniteLossError as error:
            raise SystemExit(
                f"error: {FAMILY}/{MODEL}: {error} (cnn.learning_rate is {p.learning_rate}); "
                "no model was written"
            ) from None
        seconds = time.perf_counter() - start
    best = history.best_epoch
    metrics = {
        "val_loss": history.val_loss[best],
        "val_accuracy": history.val_metric[best],
        "best_epoch": best,
        "epochs_run": len(history.train_loss),
        "train_seconds": seconds,
        # whole fit: training steps plus the validation pass and MLflow logging of each epoch
        "train_images_per_second": len(train[0]) * len(history.train_loss) / seconds,
    }
    return Trained(model, history, metrics)


def figures(
    trained: Trained,
    images: Callable[[torch.Tensor], np.ndarray],
    test: Pair,
    pred: np.ndarray,
    names: list[str],
    out: FamilyOutputs,
    run: Run,
) -> None:
    """`images(rows)` turns model inputs into displayable [0, 1] images (n, H, W[, 3])."""
    model, (inputs, targets) = trained.model, test
    true = targets.numpy()
    with torch.inference_mode():
        sample = inputs[:1]
        maps = model.first_block(sample)[0].numpy()  # (channels[0], S, S)
        resized = model.resized(sample)[0, 0].numpy()  # (S, S) first channel in [0, 1]
    label = f"test image 0, class {names[true[0]]}"
    chosen = figs.grid_indices(true, pred, GRID_SIZE)
    wrong = int((true != pred).sum())
    made = {
        "components": figs.components_figure(resized, maps, label),
        "feature_maps": figs.feature_maps_figure(resized, maps, label),
        "prediction_grid": figs.prediction_grid_figure(
            images(inputs[chosen]), true[chosen], pred[chosen], names, wrong, len(true)
        ),
        "confusion_matrix": figs.confusion_figure(true, pred, names),
        "curves": figs.curves_figure(trained.history),
    }
    for name, figure in made.items():
        run.artifact(save_figure(figure, out.figure(name)))


def as_tensors(frame, features: list[str]) -> Pair:
    return (
        torch.tensor(frame[features].to_numpy(), dtype=torch.float32),
        torch.tensor(frame[TARGET].to_numpy(), dtype=torch.int64),
    )


def digits(p: CnnParams, compute: Compute, out: FamilyOutputs, run: Run) -> dict[str, float]:
    data = load_split("digits")
    x = data.features
    config = digits_config(data.train[x].to_numpy(), p.image_size, p.channels, p.fc_size, p.dropout)
    test = as_tensors(data.test, x)
    trained = train(p, config, as_tensors(data.train, x), as_tensors(data.val, x), compute, run)
    pred = predict(trained.model, test[0], compute, p.batch_size)
    trained.model.cpu()  # figures and saving run on the CPU
    names = [str(c) for c in range(10)]
    figures(
        trained, lambda rows: rows.numpy().reshape(-1, 8, 8) / 16.0, test, pred, names, out, run
    )
    card = save_logged_torch_model(
        run,
        out,
        MODEL,
        trained.model,
        builder=BUILDER,
        config=config,
        dataset="digits",
        task="classification",
        features=data.train[x],
        target=TARGET,
        classes=list(range(10)),
    )
    write_manifest(out.models, [card])
    return trained.metrics


def cifar10(p: CnnParams, compute: Compute, out: FamilyOutputs, run: Run) -> dict[str, float]:
    from mlfund.deep.cifar10 import label_names, load_cifar10, validation_split

    root = RAW / "cifar10"
    data = load_cifar10(root)
    n = len(data.train_x)  # 50,000; fewer only in tests
    fit_rows, val_rows = validation_split(n, min(CIFAR10_VAL_SIZE, max(1, n // 10)), p.seed)

    def pair(images: np.ndarray, labels: np.ndarray) -> Pair:
        return torch.from_numpy(images), torch.from_numpy(labels)  # uint8 pixels stay compact

    config = cifar10_config(p.channels, p.fc_size, p.dropout)
    train_pair = pair(data.train_x[fit_rows], data.train_y[fit_rows])
    val_pair = pair(data.train_x[val_rows], data.train_y[val_rows])
    trained = train(p, config, train_pair, val_pair, compute, run)
    test = pair(data.test_x, data.test_y)
    pred = predict(trained.model, test[0], compute, p.batch_size)
    trained.model.cpu()  # figures and saving run on the CPU
    trained.metrics["test_accuracy"] = float((pred == data.test_y).mean())
    run.metrics({"test_accuracy": trained.metrics["test_accuracy"]})
    names = label_names(root)
    to_rgb = lambda rows: rows.permute(0, 2, 3, 1).numpy() / 255.0  # noqa: E731
    figures(trained, to_rgb, test, pred, names, out, run)
    run.torch_model(trained.model, data.test_x[:5].astype(np.float32))
    save_atomic(trained.model.state_dict(), out.models / f"{MODEL}.pt")
    write_manifest(out.models, [])  # evaluate scores split tables only
    return trained.metrics


def main(params: Params) -> None:
    p = params.cnn
    compute = family_compute(params, FAMILY)
    out = FamilyOutputs(FAMILY)
    track = tracker(FAMILY)
    with track.run(MODEL, p.dataset, p.model_dump()) as run:
        run.set_tags(compute.describe())
        metrics = (
            digits(p, compute, out, run) if p.dataset == "digits" else cifar10(p, compute, out, run)
        )
        run.metrics(metrics)
    out.write_metrics({MODEL: metrics}, track)


if __name__ == "__main__":
    run_stage(main)
