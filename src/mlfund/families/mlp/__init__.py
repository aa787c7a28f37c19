"""The curriculum's PyTorch MLP on classification_2d and circles, beside the NumPy one.

Curriculum: "Using PyTorch for Neural Networks". For the comparison
with the from-scratch network, the NumPy MLP is refitted here with numpy_nn's own settings
on the same split (it takes well under a second), so its loss curve and decision boundary
sit beside the PyTorch ones and its test accuracy is recorded as `numpy_mlp_test_accuracy`.
The PyTorch models' test scores come from evaluate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlfund.core.datasets import TARGET
from mlfund.core.errors import diverging
from mlfund.core.family import FamilyResult, Inputs, ModelRun, SavedModel, SplitRows, epoch_tables
from mlfund.families.mlp.figures import CAPTIONS, BoundaryPanel, comparison_figure
from mlfund.families.mlp.model import accuracy, numpy_mlp, positive_probability, train_mlp

if TYPE_CHECKING:
    import matplotlib.figure

    from mlfund.core.config import NumpyMlpParams, Params, TorchMlpParams
    from mlfund.deep.device import Compute

DATASETS = ("classification_2d", "circles")
BUILDER = "mlfund.families.mlp.model:build_mlp"


@dataclass(frozen=True)
class MlpSection:
    """What the family reads: its own section and the NumPy MLP it is compared with."""

    mlp: TorchMlpParams
    numpy_seed: int  # numpy_nn.seed
    numpy_mlp: NumpyMlpParams  # numpy_nn.mlp


def section(params: Params) -> MlpSection:
    return MlpSection(params.mlp, params.numpy_nn.seed, params.numpy_nn.mlp)


def run(s: MlpSection, inputs: Inputs, compute: Compute) -> FamilyResult:
    """Train, compare with the NumPy MLP and draw, per dataset; one run and model each."""
    runs, figures = [], {}
    for dataset in DATASETS:
        model_run, figure = train_one(s, dataset, inputs.split(dataset), compute)
        runs.append(model_run)
        figures[f"comparison_{dataset}"] = figure
    return FamilyResult(runs, figures=figures, plots=epoch_tables(runs), captions=CAPTIONS)


def train_one(
    s: MlpSection, dataset: str, data: SplitRows, compute: Compute
) -> tuple[ModelRun, matplotlib.figure.Figure]:
    p, m = s.mlp, s.numpy_mlp
    x, train, test = data.features, data.train, data.test
    name = f"mlp_{dataset}"
    with diverging(f"mlp/{name}", "mlp.learning_rate", p.learning_rate):
        fitted = train_mlp(p, train[x], train[TARGET], compute, f"mlp/{name}")
    reference = numpy_mlp(m, s.numpy_seed, train[x].to_numpy(), train[TARGET].to_numpy())
    numpy_test_accuracy = float(reference.score(test[x].to_numpy(), test[TARGET]))
    metrics = {
        "train_accuracy": accuracy(fitted.model, train[x], train[TARGET], compute),
        "final_train_loss": fitted.history.train_loss[-1],
        "train_seconds": fitted.seconds,
        "numpy_mlp_test_accuracy": numpy_test_accuracy,
    }
    panels = [
        BoundaryPanel(
            "NumPy from scratch",
            f"full-batch GD, lr {m.learning_rate:g}, {m.epochs} epochs",
            lambda points: reference.predict_proba(points)[:, 1],
            reference[-1].loss_curve_,
            numpy_test_accuracy,
        ),
        BoundaryPanel(
            "PyTorch",
            f"Adam lr {p.learning_rate:g}, batch {p.batch_size}, dropout {p.dropout:g}, "
            f"{p.epochs} epochs",
            lambda points: positive_probability(fitted.model, points),
            fitted.history.train_loss,
            accuracy(fitted.model, test[x], test[TARGET], compute),
        ),
    ]
    figure = comparison_figure([(dataset, test[x].to_numpy(), test[TARGET].to_numpy(), panels)])
    model = SavedModel(
        fitted.model,
        "classification",
        train[x],
        TARGET,
        builder=BUILDER,
        config={"n_features": len(x), "hidden_sizes": p.hidden_sizes, "dropout": p.dropout},
        classes=[0, 1],
    )
    model_run = ModelRun(
        name,
        dataset,
        p.model_dump(),
        metrics,
        model,
        # per-epoch losses, logged in one batch request after training: an epoch takes
        # ~10 ms here and a request per epoch several ms more (300 of them per model)
        history={"train_loss": fitted.history.train_loss},
        figures=[f"comparison_{dataset}"],
        tags=compute.describe(),
    )
    return model_run, figure
