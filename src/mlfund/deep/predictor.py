"""Torch models behind the scikit-learn prediction interface the evaluate stage uses.

Every torch model of the pipeline takes the raw feature row of its split table
(`x0 .. x{d-1}`) and does its own reshaping and scaling inside `forward`, so one adapter
serves them all, and MLflow signatures are plain tables.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn


def build(builder: str, config: dict[str, Any]) -> nn.Module:
    """`builder` is "module:function"; the function returns an untrained nn.Module."""
    module, _, name = builder.partition(":")
    return getattr(importlib.import_module(module), name)(**config)


class TorchPredictor:
    """`predict` / `predict_proba` over a DataFrame, for classification or regression."""

    def __init__(self, model: nn.Module, task: str, classes: list[Any] | None = None) -> None:
        self.model = model.eval()
        self.task = task
        self.classes_ = np.asarray(classes) if classes is not None else None

    def _outputs(self, features: pd.DataFrame | np.ndarray) -> torch.Tensor:
        values = np.array(features, dtype=np.float32)  # a writable copy for torch
        with torch.inference_mode():
            return self.model(torch.from_numpy(values)).float()

    def predict_proba(self, features: pd.DataFrame | np.ndarray) -> np.ndarray:
        logits = self._outputs(features)
        if logits.shape[1] == 1:  # one logit: binary
            positive = torch.sigmoid(logits)
            return torch.cat([1 - positive, positive], dim=1).numpy()
        return torch.softmax(logits, dim=1).numpy()

    def predict(self, features: pd.DataFrame | np.ndarray) -> np.ndarray:
        if self.task == "regression":
            return self._outputs(features).reshape(-1).numpy()
        return self.classes_[np.argmax(self.predict_proba(features), axis=1)]
