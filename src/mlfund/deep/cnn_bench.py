"""CNN training throughput: our training loop against the curriculum's plain loop.

Both loops train the same model (same config, same initial weights) on the same images
with the same batch size, optimizer and augmentation (random crop, plus flip for CIFAR-10),
in the same process, interleaved, so the comparison is fair on a busy machine.

The curriculum's loop ("plain"): a Dataset applying torchvision transforms one image at a
time, `running_loss += loss.item()` after every step (a host sync per step on a GPU), the
thread count torch started with, NCHW memory, and `torch.no_grad()` evaluation with a
`.item()` per batch. (It used `num_workers=2`; we keep 0 for both, as worker processes
would only compete for the same 2 cores here.)

Ours: the pipeline's `training.train_model` (losses summed on the device and read once per
epoch) and `training.evaluate` (`torch.inference_mode()`), batch augmentation with
`cnn.CropFlip` on the device, threads from params, and channels_last weights (measured
faster on this CPU). Its epochs are timed between `on_epoch` calls, with no validation
pass in between.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from mlfund.deep.cnn import augmentation, build_cnn
from mlfund.deep.device import Compute
from mlfund.deep.training import evaluate, make_loader, train_model

# Torch's own default, read before any stage calls torch.set_num_threads.
TORCH_DEFAULT_THREADS = torch.get_num_threads()


@dataclass(frozen=True)
class LoopBenchmark:
    """Training (and evaluation) images per second of each loop; best of `repeats`."""

    ours_images_per_second: float
    plain_images_per_second: float
    ratio: float  # ours / plain: > 1 means our loop is faster
    ours_eval_images_per_second: float
    plain_eval_images_per_second: float
    ours_threads: int
    plain_threads: int
    channels_last: bool
    train_images: int
    batch_size: int
    epochs: int
    repeats: int
    device: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _PerSampleImages(Dataset):
    """The curriculum's Dataset: one image at a time through a torchvision transform."""

    def __init__(
        self, inputs: torch.Tensor, targets: torch.Tensor, config: dict, augment: bool, flip: bool
    ) -> None:
        # here, not at the top: torchvision.transforms imports torch._dynamo (~2 s), which
        # every importer of mlfund.deep.cnn would pay for this benchmark's baseline
        from torchvision.transforms import v2

        self.inputs, self.targets = inputs, targets
        channels, size = config["in_channels"], config["input_size"]
        self.shape = (channels, size, size)
        steps = [v2.RandomHorizontalFlip()] if flip else []
        crop = [v2.RandomCrop(size, padding=max(1, size // 8))] if augment else []
        self.transform = v2.Compose([*steps, *crop]) if augment else v2.Identity()

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        row = self.inputs[index]
        image = self.transform(row.reshape(self.shape))  # (C, H, W)
        return image.reshape(row.shape), self.targets[index]


def _plain_epoch(model: nn.Module, loader: DataLoader, optimizer, device) -> tuple[float, float]:
    """The curriculum's loop: per-step loss.item(); returns (train seconds, loss sum)."""
    start = time.perf_counter()
    model.train()
    running_loss = 0.0
    for inputs, labels in loader:
        inputs, labels = inputs.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(inputs), labels)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
    return time.perf_counter() - start, running_loss


def _plain_eval(model: nn.Module, loader: DataLoader, device) -> float:
    """The curriculum's evaluation: no_grad and a .item() per batch; returns seconds."""
    start = time.perf_counter()
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for inputs, labels in loader:
            inputs, labels = inputs.to(device), labels.to(device)
            predicted = model(inputs).argmax(dim=1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()
    return time.perf_counter() - start


def _timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def benchmark_training_loops(
    config: dict[str, Any],
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    compute: Compute,
    *,
    threads: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    flip: bool,
    epochs: int = 2,
    repeats: int = 3,
    channels_last: bool = True,
) -> LoopBenchmark:
    """Time `epochs` epochs (after one warm-up epoch) of each loop, `repeats` times
    interleaved; keep each loop's best throughput (the least disturbed by other work)."""
    device, previous_threads = compute.device, torch.get_num_threads()
    our_threads = threads if threads > 0 else TORCH_DEFAULT_THREADS
    ours, plain, ours_eval, plain_eval = [], [], [], []
    for _ in range(repeats):
        # ours: the pipeline's own training wrapper, one warm-up epoch then `epochs` timed
        torch.set_num_threads(our_threads)
        ends: list[float] = []  # when each epoch's training ended (no validation: none else)
        fitted = train_model(
            lambda: build_cnn(**config),
            train,
            None,
            nn.functional.cross_entropy,
            compute,
            seed=seed,
            learning_rate=learning_rate,
            batch_size=batch_size,
            epochs=1 + epochs,  # the first: oneDNN/cuDNN pick their kernels
            transform=augmentation(config, flip, torch.Generator().manual_seed(seed)),
            channels_last=channels_last,
            on_epoch=lambda _epoch, _values, ends=ends: ends.append(time.perf_counter()),
        )
        ours.append(ends[-1] - ends[0])  # train_epoch reads its loss: the device is synced
        model = fitted.model.to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        val_loader = make_loader(*val, batch_size, shuffle=False)
        ours_eval.append(_timed(evaluate, model, val_loader, nn.functional.cross_entropy, compute))

        # the curriculum's
        torch.set_num_threads(TORCH_DEFAULT_THREADS)
        torch.manual_seed(seed)
        model = build_cnn(**config).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
        loader = DataLoader(_PerSampleImages(*train, config, True, flip), batch_size, shuffle=True)
        val_loader = DataLoader(_PerSampleImages(*val, config, False, False), batch_size)
        _plain_epoch(model, loader, optimizer, device)  # warm-up
        plain.append(sum(_plain_epoch(model, loader, optimizer, device)[0] for _ in range(epochs)))
        plain_eval.append(_plain_eval(model, val_loader, device))
    torch.set_num_threads(previous_threads)
    n, n_val = len(train[0]), len(val[0])
    best_ours, best_plain = n * epochs / min(ours), n * epochs / min(plain)
    return LoopBenchmark(
        ours_images_per_second=best_ours,
        plain_images_per_second=best_plain,
        ratio=best_ours / best_plain,
        ours_eval_images_per_second=n_val / min(ours_eval),
        plain_eval_images_per_second=n_val / min(plain_eval),
        ours_threads=our_threads,
        plain_threads=TORCH_DEFAULT_THREADS,
        channels_last=channels_last,
        train_images=n,
        batch_size=batch_size,
        epochs=epochs,
        repeats=repeats,
        device=str(device),
    )
