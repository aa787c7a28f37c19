"""The vanishing-gradient figure: per-layer gradient norms of `mlfund.numpy_nn.vanishing`."""

from __future__ import annotations

import matplotlib.figure
import numpy as np

from mlfund.core.figures import new_figure
from mlfund.numpy_nn.vanishing import first_to_last_ratio

Array = np.ndarray


def vanishing_figure(norms_by_kind: dict[str, Array]) -> matplotlib.figure.Figure:
    """Per-layer gradient norm on a log scale, one line per network variant."""
    figure, axes = new_figure(1, 1, width=7.0, height=4.5)
    ax = axes[0, 0]
    for kind, norms in norms_by_kind.items():
        layers = np.arange(1, len(norms) + 1)
        ratio = first_to_last_ratio(norms)
        ax.semilogy(layers, norms, marker="o", label=f"{kind} (layer 1 / last = {ratio:.1e})")
    ax.set_xlabel("layer l (1 = next to the input)")
    ax.set_ylabel("||dL/dW_l|| (log scale)")
    ax.set_title("Per-layer gradient norms, same weights: sigmoid vanishes toward the input")
    ax.legend()
    return figure
