"""Stage train_features: scaling and selection on the salary table; does engineering help?"""

from __future__ import annotations

from mlfund.config import Params
from mlfund.families import features
from mlfund.feature_engineering import TARGET, model_columns
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

FAMILY = "features"


def main(params: Params) -> None:
    p = params.features
    out = FamilyOutputs(FAMILY)
    track = tracker(FAMILY)
    data = split_table("salary")
    train, val = rows_of(data, "train"), rows_of(data, "val")

    selection = features.select_features(
        features.inputs(train, engineered=True),
        train[TARGET],
        p.k_best,
        p.rfe_n_features,
        p.forest_n_estimators,
        p.seed,
    )
    metrics = {
        "selection": {
            "n_candidates": len(model_columns(engineered=True)),
            "n_kbest": len(selection.kbest),
            "n_rfe": len(selection.rfe),
        }
    }
    with track.run("selection", "salary", p.model_dump()) as run:
        run.metrics(metrics["selection"])
        run.set_tag("kbest_features", ",".join(selection.kbest))
        run.set_tag("rfe_features", ",".join(selection.rfe))
        run.artifact(
            save_figure(features.engineering_figure(train, selection), out.figure("engineering"))
        )
    write_json(
        out.metrics.with_name("features_selection.json"),
        {"kbest": selection.kbest, "rfe": selection.rfe},
    )
    out.plots.mkdir(parents=True, exist_ok=True)
    selection.importances.rename("importance").rename_axis("feature").reset_index().to_csv(
        out.plots / "importances.csv", index=False
    )

    cards, val_r2 = [], {}
    for name, (model, engineered) in features.engineering_models(
        p.k_best, p.forest_n_estimators, p.seed
    ).items():
        x_train, x_val = features.inputs(train, engineered), features.inputs(val, engineered)
        with track.run(name, "salary", {**p.model_dump(), "engineered": engineered}) as run:
            model.fit(x_train, train[TARGET])
            val_r2[name] = features.r2(model, x_val, val[TARGET])
            metrics[name] = {
                "train_r2": features.r2(model, x_train, train[TARGET]),
                "val_r2": val_r2[name],
                "n_inputs": x_train.shape[1],
            }
            run.metrics(metrics[name])
            cards.append(
                save_logged_model(
                    run,
                    out,
                    name,
                    model,
                    dataset="salary",
                    task="regression",
                    features=x_train,
                    target=TARGET,
                )
            )
    save_figure(features.comparison_figure(val_r2), out.figure("engineering_comparison"))
    write_manifest(out.models, cards)
    out.write_metrics(metrics, track)


if __name__ == "__main__":
    run_stage(main)
