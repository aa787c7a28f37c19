"""Stage train_mlp: the curriculum's PyTorch MLP on classification_2d and circles.

For the curriculum's comparison with the from-scratch network, the NumPy MLP is refitted
here with numpy_nn's own settings on the same split (it takes well under a second), so
its loss curve and decision boundary sit beside the PyTorch ones and its test accuracy is
recorded as `numpy_mlp_test_accuracy`. The PyTorch models' test scores come from evaluate.
"""

from __future__ import annotations

import pandas as pd
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from mlfund.config import NumpyNNParams, Params
from mlfund.datasets import TARGET
from mlfund.deep.device import Compute
from mlfund.deep.mlp import (
    BoundaryPanel,
    accuracy,
    comparison_figure,
    positive_probability,
    train_mlp,
)
from mlfund.deep.training import NonFiniteLossError
from mlfund.figures import save_figure
from mlfund.modelstore import ModelCard, write_manifest
from mlfund.numpy_nn.mlp import MLPClassifier
from mlfund.tracking import Tracker
from stages.common import (
    FamilyOutputs,
    family_compute,
    load_split,
    run_stage,
    save_logged_torch_model,
    tracker,
)

FAMILY = "mlp"
DATASETS = ("classification_2d", "circles")
BUILDER = "mlfund.deep.mlp:build_mlp"


def numpy_mlp(p: NumpyNNParams, features: pd.DataFrame, labels: pd.Series) -> Pipeline:
    """The numpy_nn stage's MLP (same settings and seed), scaled the same way."""
    m = p.mlp
    classifier = MLPClassifier(
        tuple(m.hidden_layer_sizes), m.activation, m.learning_rate, m.epochs, m.batch_size, p.seed
    )
    return make_pipeline(StandardScaler(), classifier).fit(features.to_numpy(), labels.to_numpy())


def train_one(
    params: Params, dataset: str, compute: Compute, out: FamilyOutputs, track: Tracker
) -> tuple[ModelCard, dict[str, float]]:
    """Train, compare with the NumPy MLP, draw, and save the model of one dataset."""
    p, m = params.mlp, params.numpy_nn.mlp
    data = load_split(dataset)
    x, train, test = data.features, data.train, data.test
    name = f"mlp_{dataset}"
    with track.run(name, dataset, p.model_dump()) as run:
        run.set_tags(compute.describe())
        result = train_mlp(
            train[x],
            train[TARGET],
            hidden_sizes=p.hidden_sizes,
            dropout=p.dropout,
            learning_rate=p.learning_rate,
            batch_size=p.batch_size,
            epochs=p.epochs,
            seed=p.seed,
            compute=compute,
        )
        # Per-epoch losses in one batch request after training: an epoch takes ~10 ms
        # here and a request per epoch several ms more (300 of them per model).
        run.history("train_loss", result.history.train_loss)
        reference = numpy_mlp(params.numpy_nn, train[x], train[TARGET])
        numpy_test_accuracy = float(reference.score(test[x].to_numpy(), test[TARGET]))
        metrics = {
            "train_accuracy": accuracy(result.model, train[x], train[TARGET], compute),
            "final_train_loss": result.history.train_loss[-1],
            "train_seconds": result.seconds,
            "numpy_mlp_test_accuracy": numpy_test_accuracy,
        }
        run.metrics(metrics)
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
                lambda points: positive_probability(result.model, points),
                result.history.train_loss,
                accuracy(result.model, test[x], test[TARGET], compute),
            ),
        ]
        figure = comparison_figure([(dataset, test[x].to_numpy(), test[TARGET].to_numpy(), panels)])
        run.artifact(save_figure(figure, out.figure(f"comparison_{dataset}")))
        card = save_logged_torch_model(
            run,
            out,
            name,
            result.model,
            builder=BUILDER,
            config={"n_features": len(x), "hidden_sizes": p.hidden_sizes, "dropout": p.dropout},
            dataset=dataset,
            task="classification",
            features=train[x],
            target=TARGET,
            classes=[0, 1],
        )
    return card, metrics


def main(params: Params) -> None:
    p = params.mlp
    compute = family_compute(params, FAMILY)
    out = FamilyOutputs(FAMILY)
    track = tracker(FAMILY)
    cards: list[ModelCard] = []
    metrics = {}
    for dataset in DATASETS:
        try:
            card, metrics[f"mlp_{dataset}"] = train_one(params, dataset, compute, out, track)
        except NonFiniteLossError as error:
            out.discard(cards)
            raise SystemExit(
                f"error: {FAMILY}/mlp_{dataset}: {error} (mlp.learning_rate is "
                f"{p.learning_rate}); no model was written"
            ) from None
        cards.append(card)
    write_manifest(out.models, cards)
    out.write_metrics(metrics, track)


if __name__ == "__main__":
    run_stage(main)
