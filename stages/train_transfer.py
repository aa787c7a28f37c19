"""Stage train_transfer: transfer-learning strategies on a few-label target task.

Source task: the digits of `transfer.source_classes` (0-4) from the digits train/val split.
Target task: the other digits, relabelled 0..k-1, with only `transfer.labels_per_class`
labelled training images per class (a seeded choice), validated on the target val rows and
tested on the target test rows. Every strategy starts from the same pretrained weights:
- `pipeline_cnn` (default, offline): the pipeline's CNN (cnn.channels/fc_size/dropout at
  `IMAGE_SIZE`) pretrained here on the source digits;
- `resnet18_imagenet`: torchvision's ResNet-18 with ImageNet weights from
  `transfer.resnet18_weights` or the torch hub cache (a clear error when neither has them).
The inputs are image rows, not the tabular contract of evaluate, so the test metrics are
computed here, the best strategy is logged with `run.torch_model` and the manifest is empty.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from mlfund.config import Params
from mlfund.datasets import TARGET
from mlfund.deep import transfer_figures as figs
from mlfund.deep.cnn import augmentation, build_cnn, digits_config, predict, train_cnn
from mlfund.deep.device import Compute, seeded
from mlfund.deep.training import NonFiniteLossError, count_parameters, save_atomic
from mlfund.deep.transfer import (
    STRATEGIES,
    TransferError,
    build_resnet18,
    few_labels,
    fine_tune,
    prepare,
    relabel,
    resnet18_weights_path,
    split_classes,
)
from mlfund.figures import save_figure
from mlfund.modelstore import write_manifest
from stages.common import FamilyOutputs, SplitRows, family_compute, load_split, run_stage, tracker

FAMILY = "transfer"
IMAGE_SIZE = 16  # pipeline_cnn: digits upsampled to 16x16 (cnn's 32 is 4x the work, no gain)
RESNET_IMAGE_SIZE = 32  # resnet18_imagenet: the smallest size its 5 downsamplings keep > 1x1
DIGITS_SIZE, DIGITS_PIXEL_MAX = 8, 16.0

Pair = tuple[torch.Tensor, torch.Tensor]
OpenRun = Callable[[str], contextlib.AbstractContextManager]


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


def backbone(params: Params, made: dict[str, Pair], compute: Compute, open_run: OpenRun):
    """The pretrained network and its source-task metrics."""
    p, c = params.transfer, params.cnn
    if p.backbone == "resnet18_imagenet":
        weights = resnet18_weights_path(p.resnet18_weights)
        net = build_resnet18(weights, 1000, DIGITS_SIZE, RESNET_IMAGE_SIZE, DIGITS_PIXEL_MAX)
        return net, {}
    source_rows = made["source_train"][0].numpy()
    config = digits_config(source_rows, IMAGE_SIZE, c.channels, c.fc_size, c.dropout)
    config["num_classes"] = len(p.source_classes)
    with open_run("source_pretrain") as run, seeded(p.seed) as generator:
        net = build_cnn(**config)
        augment = augmentation(config, False, torch.Generator().manual_seed(p.seed + 1))
        start = time.perf_counter()
        history = train_cnn(
            net,
            made["source_train"],
            made["source_val"],
            compute,
            learning_rate=p.learning_rate,
            batch_size=p.batch_size,
            epochs=p.source_epochs,
            patience=p.source_epochs,
            generator=generator,
            augment=augment,
            on_epoch=lambda epoch, values: run.metrics(values, step=epoch),
        )
        metrics = {
            "val_accuracy": history.val_metric[history.best_epoch],
            "train_seconds": time.perf_counter() - start,
        }
        run.metrics(metrics)
    return net, metrics


def compare(
    params: Params, data: SplitRows, compute: Compute, open_run: OpenRun
) -> tuple[dict[str, dict[str, float]], dict[str, torch.nn.Module], dict[str, Pair]]:
    """Pretrain (or load) the backbone, then train every strategy from it on the target
    task: ({name: metrics}, {strategy: trained model}, the task tensors)."""
    p = params.transfer
    made = tasks(data, list(p.source_classes), p.labels_per_class, p.seed)
    classes = int(made["target_val"][1].max()) + 1
    pretrained, source_metrics = backbone(params, made, compute, open_run)
    results: dict[str, dict[str, float]] = {}
    if source_metrics:
        results["source_pretrain"] = source_metrics
    models = {}
    for strategy in STRATEGIES:
        with open_run(strategy) as run, seeded(p.seed) as generator:
            run.set_tags(compute.describe())
            model, groups = prepare(pretrained, strategy, classes, p.learning_rate, p.seed)
            augment = None
            if p.backbone == "pipeline_cnn":
                augment = augmentation(pretrained_config(pretrained), False, generator)
            start = time.perf_counter()
            history = fine_tune(
                model,
                groups,
                made["target_train"],
                made["target_val"],
                compute,
                epochs=p.epochs,
                batch_size=p.batch_size,
                generator=generator,
                augment=augment,
                on_epoch=lambda epoch, values: run.metrics(values, step=epoch),
            )
            seconds = time.perf_counter() - start
            pred = predict(model, made["target_test"][0], compute, p.batch_size)
            model.cpu()
            results[strategy] = {
                "trainable_parameters": count_parameters(model),
                "test_accuracy": float((pred == made["target_test"][1].numpy()).mean()),
                "val_accuracy": history.val_metric[history.best_epoch],
                "best_epoch": history.best_epoch,
                "train_seconds": seconds,
            }
            run.metrics(results[strategy])
            models[strategy] = model
    return results, models, made


def pretrained_config(net: torch.nn.Module) -> dict[str, Any]:
    """What `augmentation` needs to know about the pipeline CNN's inputs."""
    return {"input_size": net.input_size, "in_channels": net.in_channels}


def best_strategy(results: dict[str, dict[str, float]]) -> str:
    """The transferred strategy with the best validation accuracy (test stays unseen)."""
    transferred = [s for s in STRATEGIES if s != "from_scratch"]
    return max(transferred, key=lambda s: results[s]["val_accuracy"])


def main(params: Params) -> None:
    p = params.transfer
    compute = family_compute(params, FAMILY)
    out = FamilyOutputs(FAMILY)
    track = tracker(FAMILY)
    dataset = "digits"

    def open_run(name: str) -> contextlib.AbstractContextManager:
        return track.run(name, dataset, {**p.model_dump(), "strategy": name})

    try:
        results, models, made = compare(params, load_split(dataset), compute, open_run)
    except TransferError as error:
        raise SystemExit(f"error: {FAMILY}: {error}") from None
    except NonFiniteLossError as error:
        raise SystemExit(
            f"error: {FAMILY}: {error} (transfer.learning_rate is {p.learning_rate}); "
            "no model was written"
        ) from None
    best = best_strategy(results)
    with open_run("best") as run:
        run.set_tags({**compute.describe(), "strategy": best})
        run.metrics({k: v for k, v in results[best].items()})
        run.torch_model(models[best], made["target_test"][0][:5].numpy())
        figure = figs.strategies_figure(results, STRATEGIES, p.labels_per_class, p.backbone)
        run.artifact(save_figure(figure, out.figure("strategies")))
    save_atomic(models[best].state_dict(), out.models / f"{best}.pt")
    write_manifest(out.models, [])  # image rows: test metrics are computed here
    out.write_metrics(results, track)


if __name__ == "__main__":
    run_stage(main)
