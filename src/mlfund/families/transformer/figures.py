"""Attention heat maps of the text transformer on real test sentences."""

from __future__ import annotations

import matplotlib.figure
import torch

from mlfund.core.figures import new_figure
from mlfund.families.transformer.model import PAD_ID, TextClassificationTransformer, WordTokenizer

CAPTIONS = {
    "attention": "Attention of the text transformer on test sentences: one head, and all heads "
    "averaged.",
}


def attention_figure(
    model: TextClassificationTransformer,
    tokenizer: WordTokenizer,
    ids: torch.Tensor,
    labels: list[int],
    head: int = 0,
    layer: int = -1,
) -> matplotlib.figure.Figure:
    """One row per sentence: `layer`'s head `head`, then all its heads averaged.

    Rows of a map are queries, columns keys; only the real (non-padding) tokens are drawn.
    """
    model = model.cpu().eval()
    with torch.inference_mode():
        logits = model(ids)
        maps = model.encode(ids)[1][layer]  # (sentences, heads, length, length)
    predicted = logits.argmax(dim=1).tolist()
    fig, axes = new_figure(2, len(ids), width=5.0, height=4.2)
    for row, sentence in enumerate(ids):
        n = int((sentence != PAD_ID).sum())
        words = [tokenizer.vocabulary[i] for i in sentence[:n].tolist()]
        panels = (
            (maps[row, head, :n, :n], f"head {head}"),
            (maps[row].mean(dim=0)[:n, :n], f"mean of {maps.shape[1]} heads"),
        )
        for col, (weights, name) in enumerate(panels):
            ax = axes[row][col]
            image = ax.imshow(weights.numpy(), cmap="viridis", vmin=0.0)
            ax.set_xticks(range(n), words, rotation=60, ha="right", fontsize=8)
            ax.set_yticks(range(n), words, fontsize=8)
            ax.set_title(
                f"layer {layer % len(model.blocks) + 1}, {name}\n"
                f"label {labels[row]}, predicted {predicted[row]}",
                fontsize=9,
            )
            ax.set_xlabel("key")
            ax.set_ylabel("query")
            fig.colorbar(image, ax=ax, fraction=0.046)
    fig.suptitle("Transformer attention on test sentences (rows: queries, columns: keys)")
    return fig
