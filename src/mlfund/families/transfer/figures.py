"""Figure of the transfer-learning comparison: accuracy and trainable weights per strategy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.figure

from mlfund.core.figures import new_figure

CAPTIONS = {
    "strategies": "Transfer strategies on the few-label target task (digits 5-9) from a "
    "CNN pretrained on digits 0-4, against training from scratch.",
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
