"""The curriculum's CNN (conv-BN-ReLU-pool blocks, dropout, FC) and its augmentation.

One module serves both datasets. It takes RAW pixels, as the rest of the pipeline does:
- digits: the (n, 64) feature row of the split table (values 0..16), so evaluate can score
  it like any tabular model;
- CIFAR-10: (n, 3, 32, 32) images with values 0..255 (uint8 or float).
Inside `forward` it scales to [0, 1], resizes to `image_size` and normalises with mean/std
buffers, so a logged model needs no separate preprocessing.

Digits are 8x8; three 2x2 max-pools would leave 1x1. We upsample (bilinear) rather than
zero-pad: padding keeps the digit 8x8 inside a blank frame, so the 3x3 filters and pools still
see it at its coarse native scale and spend most of their work on the blank border; bilinear
upsampling spreads each stroke over several pixels, which is the scale the curriculum's
architecture (built for 32x32 photos) expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mlfund.deep.device import Compute
from mlfund.deep.training import Evaluation, Fit, History, train_model

DIGITS_SIZE, DIGITS_PIXEL_MAX = 8, 16.0
CIFAR10_SIZE, CIFAR10_PIXEL_MAX = 32, 255.0
# The curriculum's transforms.Normalize constants for CIFAR-10 (per channel, on [0, 1]).
CIFAR10_MEAN = [0.4914, 0.4822, 0.4465]
CIFAR10_STD = [0.2023, 0.1994, 0.2010]


class SimpleCNN(nn.Module):
    """Conv(3x3, pad 1)-BatchNorm-ReLU-MaxPool(2) per entry of `channels`, then
    Linear(flat, fc_size)-ReLU-Dropout-Linear(fc_size, num_classes)."""

    def __init__(
        self,
        *,
        in_channels: int,
        input_size: int,
        image_size: int,
        pixel_max: float,
        mean: Sequence[float],
        std: Sequence[float],
        channels: Sequence[int],
        fc_size: int,
        dropout: float,
        num_classes: int,
        flat_input: bool,
    ) -> None:
        super().__init__()
        if len(mean) != in_channels or len(std) != in_channels:
            raise ValueError(f"mean and std need one value per input channel ({in_channels})")
        self.in_channels, self.input_size, self.image_size = in_channels, input_size, image_size
        self.pixel_max, self.flat_input = float(pixel_max), flat_input
        # (1, channels, 1, 1): broadcast over the batch and the pixels; saved in the state_dict
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        layers: list[nn.Module] = []
        previous = in_channels
        for width in channels:
            layers += [
                nn.Conv2d(previous, width, kernel_size=3, padding=1),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            previous = width
        self.features = nn.Sequential(*layers)
        flat = self._flat_size()
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, fc_size),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc_size, num_classes),
        )

    def _flat_size(self) -> int:
        """Size of the first linear layer, from a dry run on one blank image (the curriculum
        hard-codes 128 * 4 * 4, right only for 32x32 inputs and three blocks)."""
        blocks = len(self.features) // 4
        if self.image_size < 2**blocks:
            raise ValueError(
                f"image_size {self.image_size} is too small for {blocks} 2x2 poolings; "
                f"use at least {2**blocks} or fewer channel blocks"
            )
        with torch.no_grad():
            probe = torch.zeros(1, self.in_channels, self.image_size, self.image_size)
            # eval: batch norm can't compute batch statistics of one 1x1 map
            out = self.features.eval()(probe)  # (1, channels[-1], S / 2**blocks, ...)
        self.features.train()
        return out.numel()

    def resized(self, x: torch.Tensor) -> torch.Tensor:
        """Raw pixels -> (n, channels, image_size, image_size) float images in [0, 1]."""
        size = self.input_size
        if self.flat_input:
            x = x.reshape(-1, self.in_channels, size, size)  # (n, C*H*W) -> (n, C, H, W)
        x = x.float() / self.pixel_max  # [0, 1]
        if self.image_size != size:
            x = F.interpolate(
                x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False
            )
        return x

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Raw pixels -> normalised (n, channels, image_size, image_size) float images."""
        return (self.resized(x) - self.mean) / self.std

    def first_block(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps after the first conv-BN-ReLU, before pooling: (n, channels[0], S, S)."""
        return self.features[2](self.features[1](self.features[0](self.preprocess(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (n, C, S, S) -> (n, channels[-1], S / 2**blocks, ...) -> (n, num_classes) logits
        return self.classifier(self.features(self.preprocess(x)))


def build_cnn(**config: Any) -> SimpleCNN:
    """The untrained module from its JSON-serialisable config (see `digits_config`)."""
    return SimpleCNN(**config)


def _head(channels: list[int], fc_size: int, dropout: float) -> dict[str, Any]:
    return {"channels": list(channels), "fc_size": fc_size, "dropout": dropout, "num_classes": 10}


def digits_config(
    train_rows: np.ndarray, image_size: int, channels: list[int], fc_size: int, dropout: float
) -> dict[str, Any]:
    """Config for digits: the pixel mean/std come from the training rows only."""
    scaled = np.asarray(train_rows, dtype=np.float64) / DIGITS_PIXEL_MAX
    return {
        **{"in_channels": 1, "input_size": DIGITS_SIZE, "image_size": image_size},
        **{"pixel_max": DIGITS_PIXEL_MAX, "flat_input": True},
        **{"mean": [float(scaled.mean())], "std": [float(scaled.std())]},
        **_head(channels, fc_size, dropout),
    }


def cifar10_config(channels: list[int], fc_size: int, dropout: float) -> dict[str, Any]:
    """Config for CIFAR-10 at its native 32x32 with the curriculum's normalisation."""
    return {
        **{"in_channels": 3, "input_size": CIFAR10_SIZE, "image_size": CIFAR10_SIZE},
        **{"pixel_max": CIFAR10_PIXEL_MAX, "flat_input": False},
        **{"mean": CIFAR10_MEAN, "std": CIFAR10_STD},
        **_head(channels, fc_size, dropout),
    }


class CropFlip:
    """Seeded batch augmentation: random crop after zero padding (a shift of up to `padding`
    pixels, as transforms.RandomCrop(size, padding)) and, optionally, a random horizontal
    flip. Works on a whole batch at once on its device; flat rows stay flat.

    Random numbers come from `generator` (on the CPU), so the result is the same on every
    device and independent of the loader's shuffling.
    """

    def __init__(
        self, channels: int, size: int, padding: int, flip: bool, generator: torch.Generator
    ) -> None:
        self.channels, self.size, self.padding, self.flip = channels, size, padding, flip
        self.generator = generator

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        n, c, s, p = len(batch), self.channels, self.size, self.padding
        images = batch.reshape(n, c, s, s)  # (n, C, S, S) whether rows or images came in
        if p > 0:
            padded = F.pad(images, (p, p, p, p))  # (n, C, S+2p, S+2p), zeros
            offsets = torch.randint(0, 2 * p + 1, (n, 2), generator=self.generator)
            offsets = offsets.to(batch.device)
            steps = torch.arange(s, device=batch.device)
            rows = (offsets[:, :1] + steps)[:, :, None]  # (n, S, 1)
            cols = (offsets[:, 1:] + steps)[:, None, :]  # (n, 1, S)
            picked = torch.arange(n, device=batch.device)[:, None, None]
            # advanced indices around a slice put their dims first: (n, S, S, C)
            images = padded[picked, :, rows, cols].permute(0, 3, 1, 2)
        if self.flip:
            flipped = torch.rand(n, generator=self.generator) < 0.5
            images = torch.where(flipped.to(batch.device).view(n, 1, 1, 1), images.flip(3), images)
        return images.reshape(batch.shape).contiguous()


def accuracy(result: Evaluation) -> float:
    """Share of rows whose arg-max logit is the target."""
    return float((result.outputs.argmax(dim=1) == result.targets).float().mean())


def fit_cnn(
    config: dict[str, Any],
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    compute: Compute,
    *,
    seed: int,
    learning_rate: float,
    batch_size: int,
    epochs: int,
    patience: int,
    augment: bool = True,
    flip: bool = False,
    name: str = "cnn",
) -> Fit:
    """The curriculum CNN trained from `config`: Adam + cross-entropy with early stopping
    on validation loss; `val_metric` is the validation accuracy.

    Augmentation (crop, plus the flip when asked) draws from its own stream seeded
    `seed + 1`, so switching it off leaves the batch order unchanged. Trains with
    channels_last weights (about 1.3-1.4x the images/second on this 2-core CPU, see
    cnn_bench). Progress and the summary line show under `name`.
    """
    transform = None
    if augment:
        transform = augmentation(config, flip, torch.Generator().manual_seed(seed + 1))
    return train_model(
        lambda: build_cnn(**config),
        train,
        val,
        F.cross_entropy,
        compute,
        seed=seed,
        learning_rate=learning_rate,
        batch_size=batch_size,
        epochs=epochs,
        patience=patience,
        metric=accuracy,
        transform=transform,
        channels_last=True,
        name=name,
    )


def curves(history: History) -> dict[str, list[float]]:
    """Per-epoch losses and validation accuracy, as logged to MLflow (step = epoch)."""
    return {
        "train_loss": history.train_loss,
        "val_loss": history.val_loss,
        "val_accuracy": history.val_metric,
    }


def predict(
    model: nn.Module, inputs: torch.Tensor, compute: Compute, batch_size: int
) -> np.ndarray:
    """Arg-max class of each row, in batches, without autograd."""
    model.eval().to(compute.device)
    labels = []
    with torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            batch = inputs[start : start + batch_size].to(compute.device)
            with compute.autocast():
                labels.append(model(batch).argmax(dim=1).cpu())
    return torch.cat(labels).numpy()


def augmentation(config: dict[str, Any], flip: bool, generator: torch.Generator) -> CropFlip:
    """The curriculum's RandomCrop(32, padding=4) scaled to the native image size (a shift
    of up to 1/8 of the side: 1 pixel of a digit), plus the flip when asked."""
    size = config["input_size"]
    return CropFlip(config["in_channels"], size, max(1, size // 8), flip, generator)
