"""Stage train_linear: logistic regression, linear and polynomial regression."""

from __future__ import annotations

from mlfund.config import Params
from mlfund.datasets import TARGET, feature_columns
from mlfund.families import linear
from mlfund.figures import save_figure
from mlfund.modelstore import write_manifest
from mlfund.splitting import rows_of
from stages.common import FamilyOutputs, run_stage, save_logged_model, split_table, tracker

FAMILY = "linear"


def main(params: Params) -> None:
    p = params.linear
    out = FamilyOutputs(FAMILY)
    track = tracker(FAMILY)
    cards, train_metrics = [], {}

    data = split_table("classification_2d")
    train, test = rows_of(data, "train"), rows_of(data, "test")
    x_cols = feature_columns(data)
    with track.run("logistic_regression", "classification_2d", p.model_dump()) as run:
        model = linear.fit_logistic(train[x_cols], train[TARGET], p.logistic_c)
        train_metrics["logistic_regression"] = {
            "train_accuracy": model.score(train[x_cols], train[TARGET])
        }
        run.metrics(train_metrics["logistic_regression"])
        figure = linear.decision_boundary_figure(
            model,
            test[x_cols].to_numpy(),
            test[TARGET].to_numpy(),
            p.boundary_grid_step,
            "Logistic Regression Decision Boundary (test set)",
        )
        run.artifact(save_figure(figure, out.figure("decision_boundary")))
        cards.append(
            save_logged_model(
                run,
                out,
                "logistic_regression",
                model,
                dataset="classification_2d",
                task="classification",
                features=train[x_cols],
                target=TARGET,
            )
        )

    data = split_table("regression_1d")
    train, test = rows_of(data, "train"), rows_of(data, "test")
    x_cols = feature_columns(data)
    models = {
        "linear_regression": linear.fit_linear(train[x_cols], train[TARGET]),
        "polynomial_regression": linear.fit_polynomial(train[x_cols], train[TARGET], p.poly_degree),
    }
    figure_path = save_figure(
        linear.regression_fits_figure(
            test[x_cols].to_numpy(),
            test[TARGET].to_numpy(),
            {
                "Linear Regression": models["linear_regression"],
                f"Polynomial Regression (degree {p.poly_degree})": models["polynomial_regression"],
            },
        ),
        out.figure("regression_fits"),
    )
    for name, model in models.items():
        with track.run(name, "regression_1d", p.model_dump()) as run:
            train_metrics[name] = {"train_r2": model.score(train[x_cols], train[TARGET])}
            run.metrics(train_metrics[name])
            run.artifact(figure_path)
            cards.append(
                save_logged_model(
                    run,
                    out,
                    name,
                    model,
                    dataset="regression_1d",
                    task="regression",
                    features=train[x_cols],
                    target=TARGET,
                )
            )
    write_manifest(out.models, cards)
    out.write_metrics(train_metrics, track)


if __name__ == "__main__":
    run_stage(main)
