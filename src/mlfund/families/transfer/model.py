"""Transfer learning: the curriculum's strategies on a few-label target task.

A backbone trained on a source task is reused on a disjoint target task with a new head:

- `feature_extraction`: every backbone weight frozen, only the new head trains;
- `fine_tune_last`: the last conv block(s) and the head train, earlier blocks frozen;
- `full_fine_tune`: every weight trains at one learning rate;
- `discriminative_lr`: every weight trains, earlier layers with smaller learning rates
  (optimizer parameter groups, each block `LR_DECAY` times the one above it);
- `from_scratch`: the same architecture freshly initialised, the baseline.

For the pipeline CNN the backbone is the conv blocks and the new head its whole classifier
(Linear-ReLU-Dropout-Linear, re-initialised): its hidden layer is too task-bound to reuse
(measured when the task was digits 0-4 -> clean 5-9: feature extraction on it 0.74 test
accuracy; with a new classifier 0.89). For ResNet-18 the head is `fc`, as in the curriculum.

Frozen parts stay in eval mode while the rest trains (`TransferModel.train`): a frozen
BatchNorm that kept updating its running statistics, or normalised with batch statistics,
would not be frozen at all.

Two backbones: the pipeline's own CNN (`mlfund.deep.cnn.SimpleCNN`, pretrained by the family
on the source digits) and torchvision's ResNet-18 with ImageNet weights read from a file
(never downloaded here).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mlfund.core.errors import MlfundError
from mlfund.deep.cnn import DIGITS_PIXEL_MAX, DIGITS_SIZE, SimpleCNN, build_cnn

STRATEGIES = (
    "feature_extraction",
    "fine_tune_last",
    "full_fine_tune",
    "discriminative_lr",
    "from_scratch",
)

LAST_BLOCKS = 1  # conv blocks (ResNet stages) that `fine_tune_last` trains besides the classifier
LR_DECAY = 0.3  # discriminative_lr: each group's rate is this times the rate of the group above
RESNET18_FILE = "resnet18-f37072fd.pth"  # torchvision's ResNet18_Weights.IMAGENET1K_V1 file
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
# pipeline_cnn: the digits' own 8x8, upsampled only when more than three conv blocks (2x2
# poolings) need a larger image. On the shifted target 16x16 took twice the time for 1-3
# points more per strategy, from scratch included (the margin: +0.12 at 16, +0.13 at 8).
IMAGE_SIZE = DIGITS_SIZE
RESNET_IMAGE_SIZE = 32  # resnet18_imagenet: the smallest size its 5 downsamplings keep > 1x1


class TransferError(MlfundError):
    """The requested backbone cannot be built (missing weights, bad strategy)."""


def task_rows(
    labels: np.ndarray, source: Sequence[int], target: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the training rows of the source task and of the target task. A class in
    both gives the first half of its rows (in split order, already shuffled) to the source
    and the rest to the target, so pretraining never sees an image the target trains on,
    whatever seed draws the target's labels."""
    missing = sorted(set(target) - set(np.unique(labels).tolist()))
    if missing:
        raise TransferError(f"the target classes {missing} have no training rows")
    in_source, in_target = np.isin(labels, list(source)), np.isin(labels, list(target))
    rank = np.zeros(len(labels), dtype=np.int64)  # each row's position within its class
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        rank[rows] = np.arange(len(rows)) - len(rows) // 2  # < 0: the first half
    shared = in_source & in_target
    return in_source & ~(shared & (rank >= 0)), in_target & ~(shared & (rank < 0))


def relabel(labels: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """Map `classes[i]` to i (digits 5..9 -> 0..4)."""
    lookup = {c: i for i, c in enumerate(classes)}
    return np.array([lookup[int(y)] for y in labels], dtype=np.int64)


def few_labels(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Sorted indices of `per_class` seeded rows of each class (all of a smaller class)."""
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(
            np.flatnonzero(labels == c),
            size=min(per_class, int((labels == c).sum())),
            replace=False,
        )
        for c in np.unique(labels)
    ]
    return np.sort(np.concatenate(chosen))


class TransferModel(nn.Module):
    """A network whose `frozen` submodules (dotted names) keep requires_grad False and stay
    in eval mode whatever `train()` is asked."""

    def __init__(self, net: nn.Module, frozen: Sequence[str]) -> None:
        super().__init__()
        self.net, self.frozen = net, list(frozen)
        for name in self.frozen:
            for param in net.get_submodule(name).parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> TransferModel:
        super().train(mode)
        for name in self.frozen:
            self.net.get_submodule(name).eval()  # BatchNorm: running statistics, not updated
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (n, raw features...) -> (n, num_classes)


def _blocks(net: nn.Module) -> tuple[list[str], str, list[str]]:
    """(backbone blocks in input-to-output order, the head's name, classifier layers before
    the head) as dotted submodule names."""
    if isinstance(net, SimpleCNN):
        # one group per conv block: its conv and batch norm (ReLU and pool have no weights)
        convs = range(0, len(net.features), 4)
        blocks = [f"features.{i},features.{i + 1}" for i in convs]
        return blocks, f"classifier.{len(net.classifier) - 1}", ["classifier.1"]
    if isinstance(net, ResNetAdapter):
        stem = "resnet.conv1,resnet.bn1"
        return [stem] + [f"resnet.layer{i}" for i in range(1, 5)], "resnet.fc", []
    raise TransferError(f"no transfer layout for {type(net).__name__}")


def _names(group: str) -> list[str]:
    return group.split(",")


def prepare(pretrained: nn.Module, strategy: str, num_classes: int, seed: int) -> TransferModel:
    """A copy of `pretrained` set up for `strategy` with a new `num_classes` head (seeded
    init); `pretrained` itself is left untouched."""
    if strategy not in STRATEGIES:
        raise TransferError(f"unknown strategy {strategy!r}; expected one of {STRATEGIES}")
    net = copy.deepcopy(pretrained)
    torch.manual_seed(seed)
    if strategy == "from_scratch":
        for module in net.modules():
            if hasattr(module, "reset_parameters") and module is not net:
                module.reset_parameters()
            if isinstance(module, nn.BatchNorm2d):
                module.reset_running_stats()
    _, head, middle = _blocks(net)
    old = net.get_submodule(head)
    parent, _, leaf = head.rpartition(".")
    setattr(net.get_submodule(parent), leaf, nn.Linear(old.in_features, num_classes))
    for name in middle:  # the whole classifier is the new head: fc features are task-bound
        net.get_submodule(name).reset_parameters()
    return TransferModel(net, frozen_layers(net, strategy))


def frozen_layers(net: nn.Module, strategy: str) -> list[str]:
    """Dotted names of the submodules `strategy` keeps frozen."""
    blocks, _, _ = _blocks(net)
    if strategy == "feature_extraction":
        return [name for group in blocks for name in _names(group)]
    if strategy == "fine_tune_last":
        return [n for g in blocks[: len(blocks) - LAST_BLOCKS] for n in _names(g)]
    return []


def param_groups(model: TransferModel, strategy: str, learning_rate: float) -> list[dict]:
    """Adam's parameter groups for `strategy` (trainable weights only): one group at
    `learning_rate`, or for `discriminative_lr` one per depth, `LR_DECAY` times smaller
    at each step down from the head."""
    if strategy != "discriminative_lr":
        params = [p for p in model.parameters() if p.requires_grad]
        return [{"params": params, "lr": learning_rate}]
    net = model.net
    blocks, head, middle = _blocks(net)
    # top to bottom: head (+ classifier layers), then blocks from the last to the first
    ordered = [[head, *middle]] + [_names(g) for g in reversed(blocks)]
    groups = []
    for depth, names in enumerate(ordered):
        params = [p for n in names for p in net.get_submodule(n).parameters()]
        groups.append({"params": params, "lr": learning_rate * LR_DECAY**depth})
    return groups


class ResNetAdapter(nn.Module):
    """torchvision's ResNet-18 on raw flat grey images: (n, size*size) pixels in
    [0, pixel_max] -> scaled, resized to `image_size`, repeated to 3 channels and normalised
    with the ImageNet statistics the weights were trained with."""

    def __init__(self, resnet: nn.Module, input_size: int, image_size: int, pixel_max: float):
        super().__init__()
        self.resnet, self.input_size, self.image_size = resnet, input_size, image_size
        self.pixel_max = float(pixel_max)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.input_size
        x = x.reshape(-1, 1, s, s).float() / self.pixel_max  # (n, 1, S, S) in [0, 1]
        x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear")
        x = (x.expand(-1, 3, -1, -1) - self.mean) / self.std  # (n, 3, I, I)
        return self.resnet(x)  # (n, num_classes)


def resnet18_weights_path(path: str | None, hub_dir: str | None = None) -> Path:
    """The ResNet-18 ImageNet weights file: `path`, else torchvision's file in the torch hub
    cache. Raises `TransferError` naming the param and the file when it is not there."""
    if path is not None:
        candidate = Path(path).expanduser()
        where = f"transfer.resnet18_weights ({candidate})"
    else:
        candidate = Path(hub_dir or torch.hub.get_dir()) / "checkpoints" / RESNET18_FILE
        where = f"the torch hub cache ({candidate}; transfer.resnet18_weights is null)"
    if not candidate.is_file():
        raise TransferError(
            f"transfer.backbone resnet18_imagenet needs ResNet-18 ImageNet weights, but no file "
            f"is at {where}. Put torchvision's {RESNET18_FILE} there or set "
            "transfer.resnet18_weights to its path; this pipeline does not download it "
            "(or use transfer.backbone: pipeline_cnn, which works offline)."
        )
    return candidate


def build_resnet18(
    weights: Path | None, num_classes: int, input_size: int, image_size: int, pixel_max: float
) -> ResNetAdapter:
    """ResNet-18 with `weights` loaded (None: random init) and a `num_classes` head."""
    from torchvision.models import resnet18

    resnet = resnet18(weights=None)
    if weights is not None:
        resnet.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    resnet.fc = nn.Linear(resnet.fc.in_features, num_classes)
    return ResNetAdapter(resnet, input_size, image_size, pixel_max)


def build_transferred(
    *, backbone: str, num_classes: int, frozen: Sequence[str], cnn: dict | None = None
) -> TransferModel:
    """The untrained shape of a fine-tuned model, for its saved state_dict: the pipeline
    CNN from its `cnn` config, or ResNet-18 (random init), with a `num_classes` head."""
    if backbone == "pipeline_cnn":
        net: nn.Module = build_cnn(**{**(cnn or {}), "num_classes": num_classes})
    else:
        net = build_resnet18(None, num_classes, DIGITS_SIZE, RESNET_IMAGE_SIZE, DIGITS_PIXEL_MAX)
    return TransferModel(net, frozen)
