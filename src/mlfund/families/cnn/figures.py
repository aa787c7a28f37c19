"""Figures of the CNN family: the curriculum's filter and pooling demo on a real image,
first-layer feature maps, a prediction grid, the confusion matrix and training curves."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib.figure
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.patches import Rectangle
from sklearn.metrics import confusion_matrix

from mlfund.core.figures import new_figure
from mlfund.deep.cnn import SimpleCNN
from mlfund.deep.training import History

# The curriculum's hand-made kernels: a Laplacian-style edge detector and a 3x3 box blur.
EDGE_KERNEL = torch.tensor([[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]])
BLUR_KERNEL = torch.full((3, 3), 1.0 / 9.0)
GRID_SIZE = 24  # images in the prediction grid

CAPTIONS = {
    "components": "What a convolution sees: edge and blur filters and max pooling on a real digit.",
    "feature_maps": "First-layer feature maps of the trained CNN.",
    "prediction_grid": "Test digits with true and predicted labels.",
    "confusion_matrix": "Confusion matrix on the test rows.",
    "curves": "Loss and accuracy per epoch (the kept epoch marked).",
}


def _show(axis, image: np.ndarray, title: str, cmap: str = "gray") -> None:
    axis.imshow(image, cmap=cmap)
    axis.set_title(title)
    axis.axis("off")


def _tile(maps: np.ndarray, columns: int) -> np.ndarray:
    """(k, H, W) maps -> one (rows*H, columns*W) mosaic, each map scaled to [0, 1]."""
    k, h, w = maps.shape
    rows = -(-k // columns)
    low = maps.reshape(k, -1).min(axis=1)[:, None, None]
    high = maps.reshape(k, -1).max(axis=1)[:, None, None]
    scaled = (maps - low) / np.maximum(high - low, 1e-12)
    mosaic = np.full((rows * h, columns * w), np.nan)
    for i, image in enumerate(scaled):
        r, c = divmod(i, columns)
        mosaic[r * h : (r + 1) * h, c * w : (c + 1) * w] = image
    return mosaic


def components_figure(
    image: np.ndarray, feature_maps: np.ndarray, label: str
) -> matplotlib.figure.Figure:
    """The curriculum's demo on one real image (S, S) in [0, 1]: edge and blur filters,
    max pooling before/after, and the first 6 maps of the trained first layer (k, S, S)."""
    pixels = torch.as_tensor(image, dtype=torch.float32)[None, None]  # (1, 1, S, S)
    edge = F.conv2d(pixels, EDGE_KERNEL[None, None], padding=1)[0, 0].numpy()
    blur = F.conv2d(pixels, BLUR_KERNEL[None, None], padding=1)[0, 0].numpy()
    pooled = F.max_pool2d(pixels, kernel_size=2, stride=2)[0, 0].numpy()
    size, half = image.shape[0], pooled.shape[0]
    figure, axes = new_figure(3, 2, width=4.0, height=4.0)
    _show(axes[0, 0], image, f"Original Image ({label})")
    _show(axes[0, 1], edge, "Edge Detection Filter")
    _show(axes[0, 2], blur, "Blur Filter")
    _show(axes[1, 0], image, f"Before Pooling ({size}x{size})")
    _show(axes[1, 1], pooled, f"After Max Pooling ({half}x{half})")
    _show(axes[1, 2], _tile(feature_maps[:6], 3), "First 6 Feature Maps (trained)", "viridis")
    figure.suptitle("CNN components on a real image")
    return figure


def feature_maps_figure(
    image: np.ndarray, feature_maps: np.ndarray, label: str
) -> matplotlib.figure.Figure:
    """Input image (S, S) and every first-layer map (k, S, S) after conv-BN-ReLU."""
    figure, axes = new_figure(2, 1, width=5.0, height=4.5)
    _show(axes[0, 0], image, f"Input ({label})")
    columns = 8
    _show(axes[0, 1], _tile(feature_maps, columns), f"{len(feature_maps)} maps", "viridis")
    axes[0, 1].set_title(f"All {len(feature_maps)} first-layer maps (conv-BN-ReLU)")
    figure.suptitle("First-layer feature maps of the trained CNN")
    return figure


def grid_indices(true: np.ndarray, pred: np.ndarray, count: int) -> np.ndarray:
    """Rows for the prediction grid: the misclassified ones first (up to half the grid),
    then the first correctly classified ones, in test order."""
    wrong = np.flatnonzero(true != pred)[: count // 2]
    right = np.flatnonzero(true == pred)[: count - len(wrong)]
    return np.sort(np.concatenate([wrong, right]))


def prediction_grid_figure(
    images: np.ndarray,
    true: np.ndarray,
    pred: np.ndarray,
    names: Sequence[str],
    total_wrong: int,
    total: int,
    columns: int = 8,
) -> matplotlib.figure.Figure:
    """Images (n, H, W) gray or (n, H, W, 3) RGB in [0, 1] with true and predicted labels;
    wrong predictions get a red title and frame."""
    rows = -(-len(images) // columns)
    figure, axes = new_figure(columns, rows, width=1.6, height=2.3)
    for axis in axes.flat:
        axis.axis("off")
    for axis, image, t, p in zip(axes.flat, images, true, pred, strict=False):
        wrong = t != p
        axis.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
        color = "red" if wrong else "black"
        axis.set_title(f"True: {names[t]}\nPred: {names[p]}", color=color, fontsize=9)
        if wrong:
            h, w = image.shape[:2]
            axis.add_patch(Rectangle((-0.5, -0.5), w, h, fill=False, edgecolor="red", lw=3))
    figure.suptitle(
        f"Test predictions ({len(images)} shown; red: wrong, {total_wrong} of {total} overall)"
    )
    return figure


def confusion_figure(
    true: np.ndarray, pred: np.ndarray, names: Sequence[str]
) -> matplotlib.figure.Figure:
    """Counts of (true, predicted) class pairs on the test rows."""
    matrix = confusion_matrix(true, pred, labels=np.arange(len(names)))
    figure, axes = new_figure(1, 1, width=6.5, height=5.5)
    axis = axes[0, 0]
    shown = axis.imshow(matrix, cmap="Blues")
    figure.colorbar(shown, ax=axis)
    for (i, j), value in np.ndenumerate(matrix):
        color = "white" if value > matrix.max() / 2 else "black"
        axis.text(j, i, str(value), ha="center", va="center", color=color, fontsize=8)
    axis.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axis.set_yticks(range(len(names)), names)
    axis.set_xlabel("Predicted")
    axis.set_ylabel("True")
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    axis.set_title(f"Confusion matrix, test set (accuracy {accuracy:.3f})")
    return figure


def curves_figure(history: History) -> matplotlib.figure.Figure:
    """Train/validation loss and validation accuracy per epoch; the kept epoch marked."""
    epochs = np.arange(1, len(history.train_loss) + 1)
    figure, axes = new_figure(2, 1, width=5.5, height=4.0)
    loss, acc = axes[0, 0], axes[0, 1]
    loss.plot(epochs, history.train_loss, "o-", label="train")
    loss.plot(epochs, history.val_loss, "s-", label="validation")
    loss.set_title("Loss per epoch (cross-entropy)")
    loss.set_ylabel("loss")
    acc.plot(epochs, history.val_metric, "s-", color="tab:orange", label="validation")
    acc.set_title("Validation accuracy per epoch")
    acc.set_ylabel("accuracy")
    for axis in (loss, acc):
        axis.axvline(history.best_epoch + 1, color="gray", ls="--", label="kept (best val loss)")
        axis.set_xlabel("epoch")
        axis.grid(True, alpha=0.3)
        axis.legend()
    return figure


def family_figures(
    model: SimpleCNN,
    history: History,
    images: Callable[[torch.Tensor], np.ndarray],
    test: tuple[torch.Tensor, torch.Tensor],
    pred: np.ndarray,
    names: list[str],
) -> dict[str, matplotlib.figure.Figure]:
    """Every figure of the trained CNN (on the CPU), by file name. `images(rows)` turns
    model inputs into displayable [0, 1] images (n, H, W[, 3])."""
    inputs, targets = test
    true = targets.numpy()
    with torch.inference_mode():
        sample = inputs[:1]
        maps = model.first_block(sample)[0].numpy()  # (channels[0], S, S)
        resized = model.resized(sample)[0, 0].numpy()  # (S, S) first channel in [0, 1]
    label = f"test image 0, class {names[true[0]]}"
    chosen = grid_indices(true, pred, GRID_SIZE)
    wrong = int((true != pred).sum())
    return {
        "components": components_figure(resized, maps, label),
        "feature_maps": feature_maps_figure(resized, maps, label),
        "prediction_grid": prediction_grid_figure(
            images(inputs[chosen]), true[chosen], pred[chosen], names, wrong, len(true)
        ),
        "confusion_matrix": confusion_figure(true, pred, names),
        "curves": curves_figure(history),
    }
