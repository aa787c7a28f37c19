"""The training core shared by every PyTorch family, in the shape of pytorch/examples'
mnist script: `train_epoch`, `evaluate`, and `fit` with early stopping.

- No per-step `.item()`: losses are summed on the device and read once per epoch.
- Evaluation runs under `model.eval()` and `torch.inference_mode()`.
- A non-finite loss stops training with `NonFiniteLossError`; the stage then writes no model.
- `save_atomic` writes to a temporary file and renames it, so an interrupted run never
  leaves a half-written checkpoint.
- Progress: tqdm's bar on a terminal, otherwise a log line every few epochs, and one
  summary line per trained model (`mlfund.deep.progress`).
- `watching_epochs(callback)` lets a caller outside the family see every epoch of every
  model it trains (`make tune` reports validation losses to Optuna's pruner); the pipeline
  sets none, so its numbers do not depend on it.
- Inside a torchrun process group (`mlfund.deep.distributed`) `train_model` trains a DDP
  replica on this rank's share of each batch; in one process nothing changes.
"""

from __future__ import annotations

import copy
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlfund.core.errors import NonFiniteLossError
from mlfund.deep import distributed
from mlfund.deep.device import Compute, seeded
from mlfund.deep.progress import EpochProgress, log_trained

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
EpochCallback = Callable[[int, dict[str, float]], None]

# Who watches every epoch besides the family's own `on_epoch`: a hyperparameter search's
# pruner, set around a family's `run` that does not know it. None in the pipeline.
_epoch_watcher: ContextVar[EpochCallback | None] = ContextVar("epoch_watcher", default=None)


@contextmanager
def watching_epochs(callback: EpochCallback) -> Iterator[None]:
    """Inside, every `fit` calls `callback(epoch, values)` after each epoch (epoch 0 starts
    a model); an exception it raises (a pruned trial) stops the training and propagates."""
    token = _epoch_watcher.set(callback)
    try:
        yield
    finally:
        _epoch_watcher.reset(token)


def make_loader(
    features: torch.Tensor,
    targets: torch.Tensor,
    batch_size: int,
    *,
    shuffle: bool,
    generator: torch.Generator | None = None,
) -> DataLoader:
    """In-memory loader; shuffling draws from `generator`, so the order is seeded and
    the same on every device (the mnist example's flaw was device-dependent shuffling).
    In a process group a shuffled loader yields this rank's share of each batch."""
    if shuffle and generator is None:
        raise ValueError("a shuffled loader needs a seeded generator")
    if shuffle and distributed.active():
        return distributed.sharded_loader(TensorDataset(features, targets), batch_size, generator)
    return DataLoader(
        TensorDataset(features, targets),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
    )


def train_epoch(
    model: nn.Module,
    loader: DataLoader,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    compute: Compute,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> float:
    """One pass over `loader`; returns the mean training loss over samples."""
    model.train()
    total = torch.zeros((), device=compute.device)
    count = 0
    for inputs, targets in loader:
        inputs, targets = inputs.to(compute.device), targets.to(compute.device)
        if transform is not None:
            inputs = transform(inputs)
        optimizer.zero_grad(set_to_none=True)
        with compute.autocast():
            loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(targets)
        count += len(targets)
    mean = total.item() / max(count, 1)  # the one host sync of the epoch
    mean = distributed.mean_over_ranks(mean)  # all ranks see one loss, and stop on NaN together
    if not math.isfinite(mean):
        raise NonFiniteLossError(f"training loss is {mean}; lower the learning rate")
    return mean


@dataclass
class Evaluation:
    loss: float
    outputs: torch.Tensor  # (n, ...) model outputs on the CPU, in loader order
    targets: torch.Tensor


def evaluate(model: nn.Module, loader: DataLoader, loss_fn: LossFn, compute: Compute) -> Evaluation:
    """Mean loss and every output, without dropout or batch-norm updates or autograd."""
    model.eval()
    outputs, targets = [], []
    total = torch.zeros((), device=compute.device)
    with torch.inference_mode():
        for inputs, target in loader:
            inputs, target = inputs.to(compute.device), target.to(compute.device)
            with compute.autocast():
                output = model(inputs)
            total += loss_fn(output.float(), target) * len(target)
            outputs.append(output.float().cpu())
            targets.append(target.cpu())
    n = sum(len(t) for t in targets)
    return Evaluation(total.item() / max(n, 1), torch.cat(outputs), torch.cat(targets))


@dataclass
class History:
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)
    best_epoch: int = -1

    def kept(self) -> dict[str, float]:
        """Validation numbers of the kept epoch; without validation, the last train loss."""
        if self.best_epoch < 0:
            return {"train_loss": self.train_loss[-1]} if self.train_loss else {}
        kept = {"val_loss": self.val_loss[self.best_epoch]}
        if self.val_metric:
            kept["val_metric"] = self.val_metric[self.best_epoch]
        return kept


def fit(
    model: nn.Module,
    train_loader: DataLoader,
    val_loader: DataLoader | None,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    compute: Compute,
    epochs: int,
    *,
    patience: int | None = None,
    metric: Callable[[Evaluation], float] | None = None,
    on_epoch: EpochCallback | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    name: str = "model",
) -> History:
    """Train for `epochs`, keeping the weights of the best validation loss.

    With `patience`, stop after that many epochs without improvement. `on_epoch(epoch,
    values)` receives the epoch's numbers (for MLflow). The model ends with the best
    weights (or the last ones when there is no validation loader). Progress is shown
    under `name` (`EpochProgress`).
    """
    history = History()
    best_state, best_loss = None, math.inf
    watcher = _epoch_watcher.get()
    progress = EpochProgress(name, epochs)
    for epoch in range(epochs):
        distributed.start_epoch(train_loader, epoch)
        values = {
            "train_loss": train_epoch(model, train_loader, loss_fn, optimizer, compute, transform)
        }
        history.train_loss.append(values["train_loss"])
        if val_loader is not None:
            result = evaluate(distributed.module_of(model), val_loader, loss_fn, compute)
            result.loss = distributed.agreed(result.loss)  # every rank keeps the same epoch
            values["val_loss"] = result.loss
            history.val_loss.append(result.loss)
            if metric is not None:
                values["val_metric"] = metric(result)
                history.val_metric.append(values["val_metric"])
            if result.loss < best_loss:
                best_loss, history.best_epoch = result.loss, epoch
                best_state = copy.deepcopy(model.state_dict())
        if on_epoch is not None:
            on_epoch(epoch, values)
        if watcher is not None:
            watcher(epoch, values)
        progress.update(epoch, values)
        if (
            patience is not None
            and history.best_epoch >= 0
            and epoch - history.best_epoch >= patience
        ):
            break
    progress.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


@dataclass
class Fit:
    """What every trainer returns: the model (on the CPU, in eval mode, with the kept
    weights), its per-epoch history and the wall time of the training loop."""

    model: nn.Module
    history: History
    seconds: float


def train_model(
    build: Callable[[], nn.Module],
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor] | None,
    loss_fn: LossFn,
    compute: Compute,
    *,
    seed: int,
    learning_rate: float,
    batch_size: int,
    epochs: int,
    patience: int | None = None,
    val_batch_size: int | None = None,
    metric: Callable[[Evaluation], float] | None = None,
    param_groups: Callable[[nn.Module], list[dict]] | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    augment: Callable[[torch.Generator], Callable[[torch.Tensor], torch.Tensor]] | None = None,
    channels_last: bool = False,
    on_epoch: EpochCallback | None = None,
    name: str = "model",
) -> Fit:
    """The one training wrapper: seed, build, loaders, Adam, `fit`, timer, and the
    model's summary line under `name` (`rnn/lstm`: family and model).

    `build()` runs after torch's global seed is set, so parameter init (and dropout) come
    from `seed`; shuffling draws from a generator seeded alike. `param_groups(model)` gives
    Adam per-group learning rates (discriminative fine-tuning); otherwise every parameter
    learns at `learning_rate`. `channels_last` trains with NHWC weights (faster CNNs on
    CPU) and hands the model back in the default layout. `transform` draws its random
    numbers from a stream of its own; `augment(generator)` instead builds the transform
    from the shuffling generator, so both draw from one stream, interleaved.
    """
    with seeded(seed) as generator:
        model = build().to(compute.device)
        if channels_last:
            model.to(memory_format=torch.channels_last)
        train_loader = make_loader(*train, batch_size, shuffle=True, generator=generator)
        val_loader = (
            None if val is None else make_loader(*val, val_batch_size or batch_size, shuffle=False)
        )
        groups = param_groups(model) if param_groups else model.parameters()
        optimizer = torch.optim.Adam(groups, lr=learning_rate)
        if augment is not None:
            transform = augment(generator)
        start = time.perf_counter()
        replica = distributed.replicate(model, compute.device)  # model itself in one process
        history = fit(
            replica,
            train_loader,
            val_loader,
            loss_fn,
            optimizer,
            compute,
            epochs,
            patience=patience,
            metric=metric,
            on_epoch=on_epoch,
            transform=transform,
            name=name,
        )
        seconds = time.perf_counter() - start
    model = distributed.unwrap(replica)
    log_trained(
        name,
        compute,
        epochs_run=len(history.train_loss),
        best_epoch=history.best_epoch,
        scores=history.kept(),
        seconds=seconds,
    )
    if channels_last:
        model.to(memory_format=torch.contiguous_format)
    return Fit(model.cpu().eval(), history, seconds)


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save to a temporary file in the same folder, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(obj, file)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
