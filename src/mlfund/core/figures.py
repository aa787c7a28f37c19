"""Figure helpers shared by the families: a headless backend, consistent saving, labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # stages run headless; never open a window

import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 5.0, height: float = 4.0):
    """A figure of `nrows x ncols` panels, each about width x height inches."""
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)


def save_figure(figure: matplotlib.figure.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    # Fixed metadata so the same data gives byte-identical PNGs (stable DVC hashes).
    figure.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(figure)
    return path


def model_input(model: Any, array: np.ndarray) -> pd.DataFrame | np.ndarray:
    """`array` with the column names the model was fitted with (a mesh, a curve grid)."""
    names = getattr(model, "feature_names_in_", None)
    return array if names is None else pd.DataFrame(array, columns=names)


def number_slug(value: float) -> str:
    """`0.1 -> "0p1"`: a number usable in a metric or run name (DVC splits paths on dots)."""
    return f"{value:g}".replace(".", "p").replace("-", "m")
