"""Stage train_regularization: alpha sweep, learning curve, over-fitting and lasso studies."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlfund.config import LogSpace, Params, RegularizationParams
from mlfund.datasets import TARGET
from mlfund.families import regularization as reg
from mlfund.figures import save_figure
from mlfund.modelstore import ModelCard, write_manifest
from mlfund.tracking import Tracker
from stages.common import (
    FamilyOutputs,
    load_split,
    run_stage,
    save_logged_model,
    tracker,
    write_json,
)

FAMILY = "regularization"
Metrics = dict[str, dict[str, float]]


def logspace(spec: LogSpace) -> np.ndarray:
    return np.logspace(spec.start, spec.stop, spec.num)


def select_ridge(
    p: RegularizationParams, out: FamilyOutputs, track: Tracker
) -> tuple[ModelCard, Metrics]:
    """Three-way split: alpha chosen on validation rows; test is scored once, in evaluate."""
    data = load_split("regression_10d")
    x, train, val, test = data.features, data.train, data.val, data.test
    sweep = reg.ridge_sweep(train[x], train[TARGET], val[x], val[TARGET], logspace(p.ridge_alphas))
    curve = reg.ridge_learning_curve(
        train[x], train[TARGET], sweep.best_alpha, p.cv_folds, p.learning_curve_points
    )
    model = reg.scaled_ridge(sweep.best_alpha).fit(train[x], train[TARGET])
    with track.run("ridge_selected", "regression_10d", p.model_dump()) as run:
        for step, values in enumerate(
            zip(sweep.alphas, sweep.train_mse, sweep.val_mse, strict=True)
        ):
            run.metrics(
                dict(zip(("sweep_alpha", "sweep_train_mse", "sweep_val_mse"), values, strict=True)),
                step,
            )
        run.metrics(
            metrics := {
                "best_alpha": sweep.best_alpha,
                "val_mse": sweep.val_mse[sweep.best_index],
                "train_mse": sweep.train_mse[sweep.best_index],
                "cv_val_mse": curve.val_mse[-1].mean(),
            }
        )
        figure = reg.selection_figure(sweep, curve, model.predict(test[x]), test[TARGET])
        run.artifact(save_figure(figure, out.figure("model_selection")))
        card = save_logged_model(
            run,
            out,
            "ridge_selected",
            model,
            dataset="regression_10d",
            task="regression",
            features=train[x],
            target=TARGET,
        )
    out.plots.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {"alpha": sweep.alphas, "train_mse": sweep.train_mse, "val_mse": sweep.val_mse}
    ).to_csv(out.plots / "validation_curve.csv", index=False)
    pd.DataFrame(
        {
            "train_size": curve.train_sizes,
            "train_mse": curve.train_mse.mean(axis=1),
            "val_mse": curve.val_mse.mean(axis=1),
        }
    ).to_csv(out.plots / "learning_curve.csv", index=False)
    return card, {"ridge_selected": metrics}


def overfitting_studies(
    p: RegularizationParams, out: FamilyOutputs, track: Tracker
) -> tuple[list[ModelCard], Metrics]:
    """Polynomial degrees, then ridge strengths on one high degree (noisy sine)."""
    data = load_split("noisy_sine")
    x, train, test = data.features, data.train, data.test
    studies = {
        "degrees": {
            f"polynomial_degree_{d}": (f"Degree {d}", reg.polynomial_model(d)) for d in p.degrees
        },
        "ridge_strengths": {
            f"ridge_degree{p.ridge_degree}_alpha_{reg.number_slug(a)}": (
                f"Ridge α={a:g} (degree {p.ridge_degree})",
                reg.polynomial_model(p.ridge_degree, a),
            )
            for a in p.ridge_strengths
        },
    }
    cards, metrics = [], {}
    for study, entries in studies.items():
        fits = reg.fit_curves(
            dict(entries.values()), train[x], train[TARGET], test[x], test[TARGET]
        )
        figure = reg.curves_figure(
            fits,
            train[x].to_numpy(),
            train[TARGET].to_numpy(),
            test[x].to_numpy(),
            test[TARGET].to_numpy(),
            ncols=2 if study == "degrees" else len(fits),
        )
        figure_path = save_figure(figure, out.figure(study))
        for name, fit in zip(entries, fits, strict=True):
            with track.run(name, "noisy_sine", {"study": study, "model": fit.label}) as run:
                metrics[name] = {"train_mse": fit.train_mse}
                run.metrics(metrics[name])
                run.artifact(figure_path)
                cards.append(
                    save_logged_model(
                        run,
                        out,
                        name,
                        fit.model,
                        dataset="noisy_sine",
                        task="regression",
                        features=train[x],
                        target=TARGET,
                    )
                )
    return cards, metrics


def lasso_selection(
    p: RegularizationParams, out: FamilyOutputs, track: Tracker
) -> tuple[ModelCard, Metrics]:
    """Ridge vs lasso coefficient paths, and the features the final lasso keeps."""
    data = load_split("regression_sparse")
    x, train = data.features, data.train
    paths = reg.coefficient_paths(
        train[x].to_numpy(), train[TARGET].to_numpy(), logspace(p.path_alphas), p.lasso_max_iter
    )
    lasso = reg.Lasso(alpha=p.lasso_alpha).fit(train[x], train[TARGET])
    selected = reg.selected_features(lasso, p.selection_threshold)
    with track.run("lasso", "regression_sparse", p.model_dump()) as run:
        run.metrics(metrics := {"n_features": len(x), "n_selected": len(selected)})
        run.set_tag("selected_features", ",".join(map(str, selected)))
        run.artifact(
            save_figure(reg.paths_figure(paths, p.lasso_alpha), out.figure("coefficient_paths"))
        )
        card = save_logged_model(
            run,
            out,
            "lasso",
            lasso,
            dataset="regression_sparse",
            task="regression",
            features=train[x],
            target=TARGET,
        )
    write_json(
        out.metrics.with_name("regularization_lasso_selection.json"),
        {"selected_feature_indices": selected, "threshold": p.selection_threshold},
    )
    return card, {"lasso": metrics}


def main(params: Params) -> None:
    p = params.regularization
    out = FamilyOutputs(FAMILY)
    track = tracker(FAMILY)
    ridge_card, ridge_metrics = select_ridge(p, out, track)
    curve_cards, curve_metrics = overfitting_studies(p, out, track)
    lasso_card, lasso_metrics = lasso_selection(p, out, track)
    write_manifest(out.models, [ridge_card, *curve_cards, lasso_card])
    out.write_metrics({**ridge_metrics, **curve_metrics, **lasso_metrics}, track)


if __name__ == "__main__":
    run_stage(main)
