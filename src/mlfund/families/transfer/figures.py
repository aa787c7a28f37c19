"""Figure of the transfer-learning comparison: accuracy and trainable weights per strategy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.figure

from mlfund.core.figures import new_figure

if TYPE_CHECKING:
    from mlfund.core.config import TransferParams


def _digits(classes: Sequence[int]) -> str:
    """ "digits 0-9" for a run of consecutive digits, else "digits 1, 3, 7"."""
    ordered = sorted(classes)
    if ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"digits {ordered[0]}-{ordered[-1]}"
    return "digits " + ", ".join(map(str, ordered))


def captions(p: TransferParams) -> dict[str, str]:
    """The report's caption of each figure, from the params it shows."""
    shift = p.target_shift
    moves = [
        f"rotated up to {shift.rotation:g} degrees" if shift.rotation else "",
        f"warped by {shift.elastic:g} pixel" if shift.elastic else "",
        f"{shift.noise:.0%} pixel noise" if shift.noise else "",
    ]
    domain = ", ".join(m for m in moves if m) or "clean"
    source = "ImageNet (ResNet-18)"
    if p.backbone == "pipeline_cnn":
        source = f"the clean {_digits(p.source_classes)}"
        if set(p.source_classes) & set(p.target_classes):
            source += " (the training rows the target task does not use)"
    return {
        "strategies": f"Transfer strategies at seed {p.seed} on the target task "
        f"({_digits(p.target_classes)}, {domain}; {p.labels_per_class} labels per class) "
        f"from a network pretrained on {source}, against the same network from scratch. "
        "The table above repeats the picked strategy and from scratch over seeds."
    }


def strategies_figure(
    results: Mapping[str, Mapping[str, float]],
    strategies: Sequence[str],
    labels_per_class: int,
    backbone: str,
) -> matplotlib.figure.Figure:
    """Left: target test accuracy per strategy (from-scratch dashed line as the baseline);
    right: trainable parameters per strategy."""
    figure, axes = new_figure(ncols=2, width=5.5, height=4.0)
    names = list(strategies)
    accuracy = [results[s]["test_accuracy"] for s in names]
    params = [results[s]["trainable_parameters"] for s in names]
    colours = ["tab:grey" if s == "from_scratch" else "tab:blue" for s in names]
    left, right = axes[0]
    bars = left.bar(names, accuracy, color=colours)
    left.bar_label(bars, labels=[f"{a:.3f}" for a in accuracy], fontsize=8)
    if "from_scratch" in results:
        left.axhline(results["from_scratch"]["test_accuracy"], color="tab:grey", ls="--")
    left.set(ylim=(0, 1.08), ylabel="target test accuracy")
    left.set_title(f"{backbone}: {labels_per_class} labels per target class")
    bars = right.bar(names, params, color=colours)
    right.bar_label(bars, labels=[f"{int(n):,}" for n in params], fontsize=8)
    right.set(ylabel="trainable parameters", title="trainable parameters")
    for axis in (left, right):
        axis.tick_params(axis="x", labelrotation=30)
        for label in axis.get_xticklabels():
            label.set_horizontalalignment("right")
    return figure
