"""Neural-network fundamentals from scratch in NumPy.

Activations and losses, backpropagation with a gradient check, the MLP, optimizers,
batch vs stochastic vs mini-batch descent, descent geometry, a softmax classifier and a
perceptron, and vanishing gradients. The from-scratch pieces are the library
`mlfund.numpy_nn`; this family runs the curriculum's studies with them, and records
their agreement with torch as metrics (`numpy_nn.agreement.*`), so a regression in any
from-scratch piece shows in `dvc metrics diff`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib.figure
import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlfund.core.config import NumpyNNParams
from mlfund.core.datasets import TARGET
from mlfund.core.errors import MlfundError
from mlfund.core.family import FamilyResult, Inputs, ModelRun, SavedModel
from mlfund.core.figures import number_slug
from mlfund.core.report import Paragraph, Table
from mlfund.families.numpy_nn import agreement, figures
from mlfund.numpy_nn import backprop, descent, vanishing
from mlfund.numpy_nn.mlp import MLPClassifier
from mlfund.numpy_nn.optimizers import torch_agreement
from mlfund.numpy_nn.softmax_classifier import MultiClassPerceptron, SoftmaxClassifier

Metrics = dict[str, dict[str, float]]


class GradientCheckError(MlfundError, ArithmeticError):
    """Backprop's gradients disagree with finite differences beyond the tolerance."""


@dataclass
class Study:
    """One part of the family: its MLflow runs, its figures, its rows of the metrics table.

    `metrics` may hold an "agreement" row; `run` merges those of every study into one.
    """

    runs: list[ModelRun]
    figures: dict[str, matplotlib.figure.Figure]
    metrics: Metrics
    extras: dict = field(default_factory=dict)


def run(p: NumpyNNParams, inputs: Inputs, compute: None = None) -> FamilyResult:
    """Every study, in the order the curriculum teaches them (and the order they draw in)."""
    studies = [
        functions_and_backprop(p),
        mlps(p, inputs),
        classifiers(p, inputs),
        descent_studies(p),
        layers_and_vanishing(p, inputs),
    ]
    table: Metrics = {}
    agreement_row: dict[str, float] = {}
    for study in studies:
        rows = dict(study.metrics)
        agreement_row.update(rows.pop("agreement", {}))
        table.update(rows)
    gradient_check = table["xor_backprop"]["gradient_check_max_rel_error"]
    table["agreement"] = {**agreement_row, "gradient_check_max_rel_error": gradient_check}
    trace = studies[0].extras["backprop_trace"]
    return FamilyResult(
        [r for study in studies for r in study.runs],
        figures={name: f for study in studies for name, f in study.figures.items()},
        extras={"backprop_trace": trace},
        captions=figures.CAPTIONS,
        notes=[
            Paragraph(
                "One backpropagation step of the 2-3-1 sigmoid network on XOR, "
                f"binary cross-entropy {trace['initial_loss']:.4f} (gradients of the mean "
                "loss; checked against finite differences and torch autograd):"
            ),
            Table(["quantity", "shape", "values"], [list(row) for row in trace["rows"]]),
        ],
        metrics_table=table,
    )


def functions_and_backprop(p: NumpyNNParams) -> Study:
    """Activation/loss figures, one traced backprop step on XOR, its gradient check, training."""
    activations, losses_plot = figures.activations_figure(), figures.losses_figure()
    b = p.backprop
    net = backprop.init_xor_network(p.seed, b.init_scale)
    trace = backprop.forward_backward(net, backprop.XOR_X, backprop.XOR_Y)
    max_error = backprop.gradient_check(net, backprop.XOR_X, backprop.XOR_Y)
    if max_error > b.gradient_check_tolerance:
        raise GradientCheckError(
            f"gradient check failed: max relative error {max_error:.3g} > "
            f"numpy_nn.backprop.gradient_check_tolerance {b.gradient_check_tolerance}"
        )
    trained, losses = backprop.train_xor(net, learning_rate=b.learning_rate, epochs=b.epochs)
    metrics = {
        "gradient_check_max_rel_error": max_error,
        "final_loss": losses[-1],
        "accuracy": backprop.xor_accuracy(trained),
    }
    xor = ModelRun(
        "xor_backprop",
        "xor",
        b.model_dump(),
        metrics,
        history={"train_loss": losses[:: max(1, len(losses) // 1000)]},
        figures=["xor"],
    )
    return Study(
        [xor],
        {
            "activations": activations,
            "losses": losses_plot,
            "xor": figures.xor_figure(losses, trained),
        },
        {"xor_backprop": metrics},
        {"backprop_trace": {"rows": backprop.trace_rows(trace), "initial_loss": trace.loss}},
    )


def mlps(p: NumpyNNParams, inputs: Inputs) -> Study:
    """The curriculum's MLP on its linearly separable and circles datasets."""
    runs, metrics, results = [], {}, []
    for dataset in ("classification_2d", "circles"):
        data = inputs.split(dataset)
        x, train, test = data.features, data.train, data.test
        classifier = MLPClassifier(
            tuple(p.mlp.hidden_layer_sizes),
            p.mlp.activation,
            p.mlp.learning_rate,
            p.mlp.epochs,
            p.mlp.batch_size,
            p.seed,
        )
        model = make_pipeline(StandardScaler(), classifier).fit(train[x], train[TARGET])
        name = f"mlp_{dataset}"
        scaled = model[0].transform(train[x])
        metrics[name] = {
            "train_accuracy": model.score(train[x], train[TARGET]),
            "final_loss": classifier.loss_curve_[-1],
            "torch_max_abs_diff": agreement.mlp_agreement(
                classifier, scaled, train[TARGET].to_numpy()
            ),
        }
        runs.append(
            ModelRun(
                name,
                dataset,
                p.mlp.model_dump(),
                metrics[name],
                SavedModel(model, "classification", train[x], TARGET),
                history={"train_loss": classifier.loss_curve_},
            )
        )
        everything = np.vstack([train[x], data.val[x], test[x]])
        labels = np.concatenate([train[TARGET], data.val[TARGET], test[TARGET]])
        results.append(
            figures.MlpResult(
                dataset,
                everything,
                labels,
                test[x].to_numpy(),
                test[TARGET].to_numpy(),
                model,
                classifier.loss_curve_,
                metrics[name]["train_accuracy"],
                model.score(test[x], test[TARGET]),
            )
        )
    return Study(runs, {"mlp": figures.mlp_figure(results)}, metrics)


def classifiers(p: NumpyNNParams, inputs: Inputs) -> Study:
    """Softmax regression (saved, scored on test by evaluate) and the multi-class perceptron."""
    s = p.softmax
    data = inputs.split("digits")
    x, train, val = data.features, data.train, data.val
    model = make_pipeline(
        StandardScaler(), SoftmaxClassifier(s.learning_rate, s.epochs, s.l2, p.seed)
    )
    model.fit(train[x], train[TARGET])
    scaler = model[0]
    perceptron = MultiClassPerceptron(len(x), 10, seed=p.seed).train(
        scaler.transform(train[x]), train[TARGET].to_numpy(), s.perceptron_epochs
    )
    metrics = {
        "softmax_digits": {
            "train_accuracy": model.score(train[x], train[TARGET]),
            "val_accuracy": model.score(val[x], val[TARGET]),
        },
        "perceptron_digits": {
            "val_accuracy": perceptron.score(scaler.transform(val[x]), val[TARGET].to_numpy()),
            "epochs_run": len(perceptron.mistakes_),
        },
    }
    runs = [
        ModelRun(
            "softmax_digits",
            "digits",
            s.model_dump(),
            metrics["softmax_digits"],
            SavedModel(model, "classification", train[x], TARGET),
            history={"train_loss": model[-1].loss_curve_},
        ),
        ModelRun(
            "perceptron_digits",
            "digits",
            {"epochs": s.perceptron_epochs},
            metrics["perceptron_digits"],
            history={"mistakes": perceptron.mistakes_},
        ),
    ]
    return Study(runs, {}, metrics)


def descent_studies(p: NumpyNNParams) -> Study:
    """Optimizers vs torch.optim, batch/stochastic/mini-batch, and the geometry study."""
    o, v, g = p.optimizers, p.batch_variants, p.geometry
    metrics: Metrics = {
        "agreement": {
            f"optimizer_{k}_max_abs_diff": d
            for k, d in torch_agreement(o.agreement_steps, p.seed).items()
        }
    }
    runs = descent.compare_optimizers(
        descent.default_optimizers(o.learning_rate, o.beta), o.epochs, p.seed, o.n_samples
    )
    metrics["optimizers"] = {
        f"{metric_key(n)}_final_excess_loss": r.losses[-1] - r.optimal_loss for n, r in runs.items()
    }
    variants = descent.compare_batch_variants(
        v.n_samples, v.batch_size, v.learning_rate, v.epochs, p.seed
    )
    for result in variants:
        metrics[metric_key(result.name)] = {
            "final_loss": result.final_loss,
            "gradient_variance": result.gradient_variance,
            "bytes_per_step": result.bytes_per_step,
            "seconds_per_epoch": result.seconds_per_epoch,
        }
    paths = descent.learning_rate_study(
        g.start, tuple(g.learning_rates), g.max_steps, g.grad_tol, g.divergence_factor
    )
    for path in paths:
        metrics[f"geometry_lr_{number_slug(path.learning_rate)}"] = {
            "steps": path.steps,
            "converged": float(path.converged),
            "diverged": float(path.diverged),
        }
    study = ModelRun(
        "gradient_descent",
        "synthetic",
        {**o.model_dump(), **v.model_dump()},
        flat(metrics),
        figures=["optimizers", "batch_variants", "geometry"],
    )
    drawn = {
        "optimizers": figures.optimizer_comparison_figure(runs),
        "batch_variants": figures.batch_variants_figure(variants),
        "geometry": figures.geometry_figure(paths),
    }
    return Study([study], drawn, metrics)


def layers_and_vanishing(p: NumpyNNParams, inputs: Inputs) -> Study:
    """Conv2d, attention and least-squares descent checked; per-layer gradient norms."""
    v = p.vanishing
    regression = inputs.split("regression_10d")
    train = regression.train
    norms = {
        kind: vanishing.gradient_norms(kind, v.depth, v.width, p.seed, v.n_samples)
        for kind in vanishing.KINDS
    }
    metrics = {
        "agreement": {
            "conv2d_max_abs_diff": agreement.conv2d_agreement(p.seed),
            "attention_max_abs_diff": agreement.attention_agreement(p.seed),
            "least_squares_gd_max_abs_diff": agreement.least_squares_agreement(
                train[regression.features].to_numpy(), train[TARGET].to_numpy()
            ),
        },
        **{
            f"vanishing_{kind}": {"first_to_last_ratio": vanishing.first_to_last_ratio(n)}
            for kind, n in norms.items()
        },
    }
    study = ModelRun(
        "vanishing_gradients", "synthetic", v.model_dump(), flat(metrics), figures=["vanishing"]
    )
    return Study([study], {"vanishing": figures.vanishing_figure(norms)}, metrics)


def flat(metrics: Metrics) -> dict[str, float]:
    """`{row: {metric: x}}` as one run's metrics `{"row.metric": x}`."""
    return {f"{k}.{m}": x for k, ms in metrics.items() for m, x in ms.items()}


def metric_key(label: str) -> str:
    """'Mini-batch GD' -> 'mini_batch_gd': a display name as a metric key."""
    return "".join(c if c.isalnum() else "_" for c in label.lower()).strip("_").replace("__", "_")
