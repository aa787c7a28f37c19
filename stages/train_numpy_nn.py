"""Stage train_numpy_nn: neural-network fundamentals from scratch in NumPy.

Activations and losses, backpropagation with a gradient check, the MLP, optimizers,
batch vs stochastic vs mini-batch descent, descent geometry, a softmax classifier and a
perceptron, and vanishing gradients. Agreement with torch is recorded as metrics too.
"""

from __future__ import annotations

import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlfund.config import NumpyNNParams, Params
from mlfund.datasets import TARGET
from mlfund.families.regularization import number_slug
from mlfund.figures import save_figure
from mlfund.modelstore import ModelCard, write_manifest
from mlfund.numpy_nn import agreement, backprop, descent, function_figures, vanishing
from mlfund.numpy_nn import descent_figures as dfig
from mlfund.numpy_nn.mlp import MLPClassifier
from mlfund.numpy_nn.mlp_figures import MlpResult, mlp_figure
from mlfund.numpy_nn.optimizers import torch_agreement
from mlfund.numpy_nn.softmax_classifier import MultiClassPerceptron, SoftmaxClassifier
from mlfund.tracking import Tracker
from stages.common import (
    FamilyOutputs,
    load_split,
    run_stage,
    save_logged_model,
    tracker,
    write_json,
)

FAMILY = "numpy_nn"
Metrics = dict[str, dict[str, float]]


def functions_and_backprop(p: NumpyNNParams, out: FamilyOutputs, track: Tracker) -> Metrics:
    """Activation/loss figures, one traced backprop step on XOR, its gradient check, training."""
    save_figure(function_figures.activations_figure(), out.figure("activations"))
    save_figure(function_figures.losses_figure(), out.figure("losses"))
    b = p.backprop
    net = backprop.init_xor_network(p.seed, b.init_scale)
    trace = backprop.forward_backward(net, backprop.XOR_X, backprop.XOR_Y)
    max_error = backprop.gradient_check(net, backprop.XOR_X, backprop.XOR_Y)
    if max_error > b.gradient_check_tolerance:
        raise SystemExit(
            f"gradient check failed: max relative error {max_error:.3g} > "
            f"numpy_nn.backprop.gradient_check_tolerance {b.gradient_check_tolerance}"
        )
    trained, losses = backprop.train_xor(net, learning_rate=b.learning_rate, epochs=b.epochs)
    metrics = {
        "gradient_check_max_rel_error": max_error,
        "final_loss": losses[-1],
        "accuracy": backprop.xor_accuracy(trained),
    }
    with track.run("xor_backprop", "xor", b.model_dump()) as run:
        run.metrics(metrics)
        run.history("train_loss", losses[:: max(1, len(losses) // 1000)])
        run.artifact(save_figure(function_figures.xor_figure(losses, trained), out.figure("xor")))
    write_json(
        out.metrics.with_name("numpy_nn_backprop_trace.json"),
        {"rows": backprop.trace_rows(trace), "initial_loss": trace.loss},
    )
    return {"xor_backprop": metrics}


def mlps(p: NumpyNNParams, out: FamilyOutputs, track: Tracker) -> tuple[list[ModelCard], Metrics]:
    """The curriculum's MLP on its linearly separable and circles datasets."""
    cards, metrics, results = [], {}, []
    for dataset in ("classification_2d", "circles"):
        data = load_split(dataset)
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
        with track.run(name, dataset, p.mlp.model_dump()) as run:
            run.metrics(metrics[name])
            run.history("train_loss", classifier.loss_curve_)
            cards.append(
                save_logged_model(
                    run,
                    out,
                    name,
                    model,
                    dataset=dataset,
                    task="classification",
                    features=train[x],
                    target=TARGET,
                )
            )
        everything = np.vstack([train[x], data.val[x], test[x]])
        labels = np.concatenate([train[TARGET], data.val[TARGET], test[TARGET]])
        results.append(
            MlpResult(
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
    save_figure(mlp_figure(results), out.figure("mlp"))
    return cards, metrics


def descent_studies(p: NumpyNNParams, out: FamilyOutputs, track: Tracker) -> Metrics:
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
    with track.run("gradient_descent", "synthetic", {**o.model_dump(), **v.model_dump()}) as run:
        run.metrics({f"{k}.{m}": x for k, ms in metrics.items() for m, x in ms.items()})
        for figure, name in (
            (dfig.optimizer_comparison_figure(runs), "optimizers"),
            (dfig.batch_variants_figure(variants), "batch_variants"),
            (dfig.geometry_figure(paths), "geometry"),
        ):
            run.artifact(save_figure(figure, out.figure(name)))
    return metrics


def metric_key(label: str) -> str:
    """'Mini-batch GD' -> 'mini_batch_gd': a display name as a metric key."""
    return "".join(c if c.isalnum() else "_" for c in label.lower()).strip("_").replace("__", "_")


def classifiers(p: NumpyNNParams, out: FamilyOutputs, track: Tracker) -> tuple[ModelCard, Metrics]:
    """Softmax regression (saved, scored on test by evaluate) and the multi-class perceptron."""
    s = p.softmax
    data = load_split("digits")
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
    with track.run("softmax_digits", "digits", s.model_dump()) as run:
        run.metrics(metrics["softmax_digits"])
        run.history("train_loss", model[-1].loss_curve_)
        card = save_logged_model(
            run,
            out,
            "softmax_digits",
            model,
            dataset="digits",
            task="classification",
            features=train[x],
            target=TARGET,
        )
    with track.run("perceptron_digits", "digits", {"epochs": s.perceptron_epochs}) as run:
        run.metrics(metrics["perceptron_digits"])
        run.history("mistakes", perceptron.mistakes_)
    return card, metrics


def layers_and_vanishing(p: NumpyNNParams, out: FamilyOutputs, track: Tracker) -> Metrics:
    """Conv2d, attention and least-squares descent checked; per-layer gradient norms."""
    v = p.vanishing
    regression = load_split("regression_10d")
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
    with track.run("vanishing_gradients", "synthetic", v.model_dump()) as run:
        run.metrics({f"{k}.{m}": x for k, ms in metrics.items() for m, x in ms.items()})
        run.artifact(save_figure(vanishing.vanishing_figure(norms), out.figure("vanishing")))
    return metrics


def main(params: Params) -> None:
    p = params.numpy_nn
    out = FamilyOutputs(FAMILY)
    track = tracker(FAMILY)
    metrics = functions_and_backprop(p, out, track)
    mlp_cards, mlp_metrics = mlps(p, out, track)
    softmax_card, classifier_metrics = classifiers(p, out, track)
    descent_metrics = descent_studies(p, out, track)
    layer_metrics = layers_and_vanishing(p, out, track)
    agreement_metrics = {
        **descent_metrics.pop("agreement"),
        **layer_metrics.pop("agreement"),
        "gradient_check_max_rel_error": metrics["xor_backprop"]["gradient_check_max_rel_error"],
    }
    write_manifest(out.models, [*mlp_cards, softmax_card])
    out.write_metrics(
        {
            **metrics,
            **mlp_metrics,
            **classifier_metrics,
            **descent_metrics,
            **layer_metrics,
            "agreement": agreement_metrics,
        },
        track,
    )


if __name__ == "__main__":
    run_stage(main)
