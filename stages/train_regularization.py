"""Stage train_regularization: alpha sweep, learning curve, over-fitting and lasso studies."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlfund.config import LogSpace, Params
from mlfund.datasets import TARGET, feature_columns
from mlfund.families import regularization as reg
from mlfund.figures import save_figure
from mlfund.modelstore import write_manifest
from mlfund.splitting import rows_of
from stages.common import (
    FamilyOutputs,
    run_stage,
    save_logged_model,
    split_table,
    tracker,
    write_json,
)

FAMILY = "regularization"


def logspace(spec: LogSpace) -> np.ndarray:
    return np.logspace(spec.start, spec.stop, spec.num)


def main(params: Params) -> None:
    p = params.regularization
    out = FamilyOutputs(FAMILY)
    track = tracker(FAMILY)
    cards, metrics = [], {}

    # Three-way split: choose alpha on validation rows, report test once (evaluate).
    data = split_table("regression_10d")
    x_cols = feature_columns(data)
    train, val, test = (rows_of(data, s) for s in ("train", "val", "test"))
    sweep = reg.ridge_sweep(
        train[x_cols], train[TARGET], val[x_cols], val[TARGET], logspace(p.ridge_alphas)
    )
    curve = reg.ridge_learning_curve(
        train[x_cols], train[TARGET], sweep.best_alpha, p.cv_folds, p.learning_curve_points
    )
    model = reg.scaled_ridge(sweep.best_alpha).fit(train[x_cols], train[TARGET])
    with track.run("ridge_selected", "regression_10d", p.model_dump()) as run:
        for step, (alpha, tr, va) in enumerate(
            zip(sweep.alphas, sweep.train_mse, sweep.val_mse, strict=True)
        ):
            run.metrics({"sweep_alpha": alpha, "sweep_train_mse": tr, "sweep_val_mse": va}, step)
        metrics["ridge_selected"] = {
            "best_alpha": sweep.best_alpha,
            "val_mse": sweep.val_mse[sweep.best_index],
            "train_mse": sweep.train_mse[sweep.best_index],
            "cv_val_mse": curve.val_mse[-1].mean(),
        }
        run.metrics(metrics["ridge_selected"])
        figure = reg.selection_figure(sweep, curve, model.predict(test[x_cols]), test[TARGET])
        run.artifact(save_figure(figure, out.figure("model_selection")))
        cards.append(
            save_logged_model(
                run,
                out,
                "ridge_selected",
                model,
                dataset="regression_10d",
                task="regression",
                features=train[x_cols],
                target=TARGET,
            )
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

    # Over-fitting: polynomial degrees, then ridge strengths on one high degree.
    data = split_table("noisy_sine")
    x_cols = feature_columns(data)
    train, test = rows_of(data, "train"), rows_of(data, "test")
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
    for study, entries in studies.items():
        fits = reg.fit_curves(
            {label: m for label, m in entries.values()},
            train[x_cols],
            train[TARGET],
            test[x_cols],
            test[TARGET],
        )
        figure_path = save_figure(
            reg.curves_figure(
                fits,
                train[x_cols].to_numpy(),
                train[TARGET].to_numpy(),
                test[x_cols].to_numpy(),
                test[TARGET].to_numpy(),
                ncols=2 if study == "degrees" else len(fits),
            ),
            out.figure(study),
        )
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
                        features=train[x_cols],
                        target=TARGET,
                    )
                )

    # Ridge vs lasso coefficient paths, and lasso's feature selection.
    data = split_table("regression_sparse")
    x_cols = feature_columns(data)
    train = rows_of(data, "train")
    paths = reg.coefficient_paths(
        train[x_cols].to_numpy(),
        train[TARGET].to_numpy(),
        logspace(p.path_alphas),
        p.lasso_max_iter,
    )
    lasso = reg.Lasso(alpha=p.lasso_alpha).fit(train[x_cols], train[TARGET])
    selected = reg.selected_features(lasso, p.selection_threshold)
    with track.run("lasso", "regression_sparse", p.model_dump()) as run:
        metrics["lasso"] = {"n_features": len(x_cols), "n_selected": len(selected)}
        run.metrics(metrics["lasso"])
        run.set_tag("selected_features", ",".join(map(str, selected)))
        run.artifact(
            save_figure(reg.paths_figure(paths, p.lasso_alpha), out.figure("coefficient_paths"))
        )
        cards.append(
            save_logged_model(
                run,
                out,
                "lasso",
                lasso,
                dataset="regression_sparse",
                task="regression",
                features=train[x_cols],
                target=TARGET,
            )
        )
    write_json(
        out.metrics.with_name("regularization_lasso_selection.json"),
        {"selected_feature_indices": selected, "threshold": p.selection_threshold},
    )

    write_manifest(out.models, cards)
    out.write_metrics(metrics, track)


if __name__ == "__main__":
    run_stage(main)
