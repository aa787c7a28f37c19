"""The source and target tasks of the transfer family, from the digits train/val/test rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from mlfund.core.datasets import TARGET
from mlfund.deep.cnn import DIGITS_PIXEL_MAX, DIGITS_SIZE
from mlfund.families.transfer.domain import distort
from mlfund.families.transfer.model import few_labels, relabel, task_rows

if TYPE_CHECKING:
    from mlfund.core.config import TransferParams
    from mlfund.core.family import SplitRows

Pair = tuple[torch.Tensor, torch.Tensor]  # (n, 64) float pixel rows, (n,) int64 labels


def _pair(rows: np.ndarray, labels: np.ndarray) -> Pair:
    return torch.tensor(rows, dtype=torch.float32), torch.tensor(labels, dtype=torch.int64)


def tasks(data: SplitRows, p: TransferParams, seed: int) -> dict[str, Pair]:
    """Source train/val and target few-label train, val and test pairs (labels 0..k-1).

    Source: the clean rows of `p.source_classes`. Target: the rows of `p.target_classes`
    distorted by `p.target_shift` (one stream per split from `seed`), `labels_per_class`
    training rows per class drawn with `seed` from those the source does not use
    (`task_rows`). The test rows are the target's alone."""
    source, target, shift = list(p.source_classes), list(p.target_classes), p.target_shift
    made = {}
    frames = (("train", data.train), ("val", data.val), ("test", data.test))
    for index, (split, frame) in enumerate(frames):
        y = frame[TARGET].to_numpy()
        rows = frame[data.features].to_numpy()
        if split == "train":
            is_source, is_target = task_rows(y, source, target)
        else:
            is_source, is_target = np.isin(y, source), np.isin(y, target)
        if split != "test":
            made[f"source_{split}"] = _pair(rows[is_source], relabel(y[is_source], source))
        shifted = distort(
            rows[is_target],
            DIGITS_SIZE,
            DIGITS_PIXEL_MAX,
            rotation=shift.rotation,
            elastic=shift.elastic,
            noise=shift.noise,
            seed=(seed, index),
        )
        made[f"target_{split}"] = _pair(shifted, relabel(y[is_target], target))
    keep = few_labels(made["target_train"][1].numpy(), p.labels_per_class, seed)
    made["target_train"] = tuple(t[keep] for t in made["target_train"])  # type: ignore[assignment]
    return made
