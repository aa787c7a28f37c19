"""Stage train_linear: logistic regression, linear and polynomial regression."""

from __future__ import annotations

from mlfund.config import Params
from mlfund.datasets import TARGET
from mlfund.families import linear
from mlfund.figures import save_figure
from mlfund.modelstore import write_manifest
from stages.common import FamilyOutputs, load_split, run_stage, save_logged_model, tracker

FAMILY = "linear"


def main(params: Params) -> None:
    p = params.linear
    out = FamilyOutputs(FAMILY)
    track = tracker(FAMILY)
    cards, metrics = [], {}

    data = load_split("classification_2d")
    x, train, test = data.features, data.train, data.test
    with track.run("logistic_regression", "classification_2d", p.model_dump()) as run:
        model = linear.fit_logistic(train[x], train[TARGET], p.logistic_c)
        metrics["logistic_regression"] = {"train_accuracy": model.score(train[x], train[TARGET])}
        run.metrics(metrics["logistic_regression"])
        figure = linear.decision_boundary_figure(
            model,
            test[x].to_numpy(),
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
                features=train[x],
                target=TARGET,
            )
        )

    data = load_split("regression_1d")
    x, train, test = data.features, data.train, data.test
    models = {
        "linear_regression": linear.fit_linear(train[x], train[TARGET]),
        "polynomial_regression": linear.fit_polynomial(train[x], train[TARGET], p.poly_degree),
    }
    titles = ["Linear Regression", f"Polynomial Regression (degree {p.poly_degree})"]
    figure = linear.regression_fits_figure(
        test[x].to_numpy(), test[TARGET].to_numpy(), dict(zip(titles, models.values(), strict=True))
    )
    figure_path = save_figure(figure, out.figure("regression_fits"))
    for name, model in models.items():
        with track.run(name, "regression_1d", p.model_dump()) as run:
            metrics[name] = {"train_r2": model.score(train[x], train[TARGET])}
            run.metrics(metrics[name])
            run.artifact(figure_path)
            cards.append(
                save_logged_model(
                    run,
                    out,
                    name,
                    model,
                    dataset="regression_1d",
                    task="regression",
                    features=train[x],
                    target=TARGET,
                )
            )
    write_manifest(out.models, cards)
    out.write_metrics(metrics, track)


if __name__ == "__main__":
    run_stage(main)
