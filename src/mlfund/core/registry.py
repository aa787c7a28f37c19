"""The family registry: the one list of model families.

dvc.yaml reads `FAMILIES` below (`vars: [src/mlfund/core/registry.py]`) and runs train@<name>
and evaluate@<name> for each entry; the training and evaluate stages, the report,
`make compare`, the gate's coverage test and the benchmarks read it through `FAMILY_LIST`.

Adding a family is one package `mlfund.families.<name>` whose `run(section, inputs,
compute) -> FamilyResult` does the work (see `mlfund.core.family`), and one entry here.
DVC parses this file without running it, so `FAMILIES` stays a plain literal.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from mlfund.core.errors import MlfundError

if TYPE_CHECKING:
    from mlfund.core.config import Params
    from mlfund.core.family import FamilyResult

# Per family:
#   description  one line, for the report
#   primary      the metric `make compare` ranks its runs by; direction: max or min
#   torch        trains PyTorch models: gets a `Compute` from `compute` and its overrides
#   data_parallel  (torch, optional) every model trains through deep.training.train_model,
#                so `compute.distributed` runs it as DDP ranks under torchrun
#   data         what it reads besides data/split, as a DVC dep (a raw dataset, a folder);
#                reports/params_check.json when nothing
#   params       a params.yaml key it reads besides its own section and `compute` (DVC
#                re-runs it when that changes); `compute` again when none
#   seeds        the params keys of the seeds its results depend on: `make calibrate`
#                retrains it over several of them (none: deterministic, not calibrated)
#   references   (optional) rows of its metrics that are yardsticks, not models: the
#                report shows them after the models and never as the best
FAMILIES = {
    "linear": {
        "description": "logistic regression, linear and polynomial regression",
        "primary": "test_accuracy",  # the regression models have none and are skipped
        "direction": "max",
        "torch": False,
        "data": "reports/params_check.json",
        "params": "compute",
        "seeds": [],  # lbfgs and least squares: no draw
    },
    "regularization": {
        "description": "ridge alpha sweep, learning curve, polynomial degrees, ridge vs lasso",
        "primary": "test_mse",
        "direction": "min",
        "torch": False,
        "data": "reports/params_check.json",
        "params": "compute",
        "seeds": [],  # closed forms, coordinate descent, unshuffled folds
    },
    "clustering": {
        "description": "k-means, DBSCAN and agglomerative clustering of the blobs",
        "primary": "ari",  # against the true blobs: clustering has no test split
        "direction": "max",
        "torch": False,
        "data": "data/raw/blobs.parquet",
        "params": "compute",
        "seeds": ["clustering.seed"],  # k-means++ initialisation
    },
    "embedding": {
        "description": "PCA and t-SNE of the digits",
        "primary": "tsne_trustworthiness",  # how well the map keeps each point's neighbours
        "direction": "max",
        "torch": False,
        "data": "data/raw/digits.parquet",
        "params": "compute",
        "seeds": ["embedding.seed"],  # t-SNE (PCA is exact)
    },
    "features": {
        "description": "feature engineering and selection on the salary table",
        "primary": "test_r2",
        "direction": "max",
        "torch": False,
        "data": "reports/params_check.json",
        "params": "compute",
        "seeds": ["features.seed"],  # the random forests
    },
    "numpy_nn": {
        "description": "neural networks from scratch in NumPy",
        "primary": "test_accuracy",
        "direction": "max",
        "torch": False,
        "data": "reports/params_check.json",
        "params": "compute",
        "seeds": ["numpy_nn.seed"],
    },
    "mlp": {
        "description": "the PyTorch MLP, compared with the NumPy one",
        "primary": "test_accuracy",
        "direction": "max",
        "torch": True,
        "data": "reports/params_check.json",
        "params": "numpy_nn",  # the NumPy MLP it is compared with
        "seeds": ["mlp.seed", "numpy_nn.seed"],  # and the NumPy MLP it is compared with
    },
    "cnn": {
        "description": "the curriculum's CNN on digits or CIFAR-10",
        "primary": "test_accuracy",
        "direction": "max",
        "torch": True,
        "data_parallel": True,
        "data": "data/downloads/cifar10",
        "params": "compute",
        "seeds": ["cnn.seed"],
    },
    "rnn": {
        "description": "RNN, LSTM and GRU forecasting noisy sine waves",
        "primary": "test_mse",
        "direction": "min",
        "torch": True,
        "data": "reports/params_check.json",
        "params": "data.sine_sequences.noise_std",  # the noise floor
        "seeds": ["rnn.seed"],
    },
    "transformer": {
        "description": "a multi-head attention text classifier vs TF-IDF",
        "primary": "test_accuracy",
        "direction": "max",
        "torch": True,
        "data": "reports/params_check.json",
        "params": "compute",
        "seeds": ["transformer.seed"],  # also draws the synthetic corpus and its split
    },
    "generative": {
        "description": "a VAE and a GAN on two Gaussian clusters",
        "primary": "energy_distance",  # to real samples: lower is closer
        "direction": "min",
        "torch": True,
        "data": "reports/params_check.json",
        "params": "compute",
        "seeds": ["generative.seed"],  # also draws the two clusters
        "references": ["real_vs_real"],  # two real samples: the floor a model can approach
    },
    "transfer": {
        "description": "transfer learning strategies vs training from scratch",
        "primary": "test_accuracy",
        "direction": "max",
        "torch": True,
        "data_parallel": True,
        "data": "reports/params_check.json",
        "params": "cnn",  # the curriculum's CNN architecture it pretrains
        "seeds": ["transfer.seed"],  # also picks the few labelled images
    },
}


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    primary: str
    direction: Literal["max", "min"]
    torch: bool
    data: str
    params: str
    seeds: list[str]
    data_parallel: bool = False
    references: list[str] = field(default_factory=list)

    @property
    def params_keys(self) -> tuple[str, ...]:
        """The params.yaml keys its train stage reads, as dvc.yaml lists them."""
        return tuple(dict.fromkeys(("compute", self.name, self.params)))

    @property
    def module(self) -> str:
        return f"mlfund.families.{self.name}"

    def section(self, params: Params) -> Any:
        """The `section` argument of `run`: the family's own params, or its view of several."""
        view = getattr(importlib.import_module(self.module), "section", None)
        return view(params) if view else getattr(params, self.name)

    @property
    def run(self) -> Callable[..., FamilyResult]:
        return importlib.import_module(self.module).run


FAMILY_LIST: tuple[Family, ...] = tuple(Family(name, **entry) for name, entry in FAMILIES.items())
NAMES: tuple[str, ...] = tuple(FAMILIES)


class UnknownFamily(MlfundError):
    exit_code = 2


def get(name: str) -> Family:
    if name not in FAMILIES:
        raise UnknownFamily(f"no family {name!r}; the registry has {', '.join(NAMES)}")
    return Family(name, **FAMILIES[name])
