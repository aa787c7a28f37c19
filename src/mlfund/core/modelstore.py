"""Saving fitted scikit-learn models without pickle, and the manifest evaluate reads.

Each training stage writes `models/<family>/<model>.skops` plus a manifest listing, for
every model, the dataset and columns it was trained on, its MLflow run and its registered
model version, so the evaluate stage can score any family's models on their held-out rows
without knowing the family, and `make promote` can find the versions they came from.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Task = Literal["classification", "regression"]
MANIFEST = "manifest.json"
# skops refuses to load types it was not told to trust. Ours are scikit-learn's and this
# package's own estimators (numpy arrays and plain containers are trusted by skops itself);
# anything else is refused.
_TRUSTED_PREFIXES = ("sklearn.", "mlfund.")


@dataclass(frozen=True)
class ModelCard:
    """What the evaluate stage needs to score one saved model."""

    name: str  # the key under the family in reports/metrics.json
    dataset: str  # name of data/split/<dataset>.parquet
    task: Task
    features: list[str]
    target: str
    file: str  # relative to the family's model folder
    run_id: str  # MLflow run that trained it
    model_id: str  # MLflow LoggedModel id (models:/<id>)
    # its version in the MLflow model registry (models:/<registered_model>/<version>), what
    # `make promote` marks champion; empty when trained untracked or by an older version
    registered_model: str = ""
    registered_version: str = ""
    format: Literal["skops", "torch"] = "skops"
    # torch only: "module:function" building the untrained module from `config`; the file
    # holds its state_dict (loaded with weights_only=True: no pickle)
    builder: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    classes: list[Any] | None = None  # torch classifiers: the label of each output


def save_model(model: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    import skops.io as sio  # imported where used: it loads scikit-learn and torch (2 s)

    sio.dump(model, path)


def trusted_types(untrusted: list[str], source: str) -> list[str]:
    """The types skops flagged, once checked to be scikit-learn or numpy ones."""
    refused = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
    if refused:
        raise ValueError(f"{source}: refusing to load unexpected types {refused}")
    return untrusted


def model_trusted_types(model: Any) -> list[str]:
    """What skops needs told to trust in order to reload `model` (for MLflow logging)."""
    import skops.io as sio

    return trusted_types(sio.get_untrusted_types(data=sio.dumps(model)), type(model).__name__)


def load_model(path: Path) -> Any:
    import skops.io as sio

    return sio.load(path, trusted=trusted_types(sio.get_untrusted_types(file=path), str(path)))


def load_card_model(folder: Path, card: ModelCard) -> Any:
    """The model of a manifest card, with `predict` (and `predict_proba` for classifiers)."""
    path = folder / card.file
    if card.format == "skops":
        return load_model(path)
    import torch

    from mlfund.deep.predictor import TorchPredictor, build

    model = build(card.builder, card.config)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return TorchPredictor(model, card.task, card.classes)


def write_manifest(folder: Path, cards: list[ModelCard]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).write_text(json.dumps([asdict(c) for c in cards], indent=2) + "\n")


def read_manifest(folder: Path) -> list[ModelCard]:
    return [ModelCard(**entry) for entry in json.loads((folder / MANIFEST).read_text())]
