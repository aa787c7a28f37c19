"""Held-out evaluation, metric merging, the model store and the report renderers."""

from __future__ import annotations

import base64
import json
from dataclasses import asdict
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn import metrics
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from mlfund.core import registry, report
from mlfund.core.family import headline_metrics, merge_metrics
from mlfund.core.modelstore import (
    MANIFEST,
    ModelCard,
    load_model,
    model_trusted_types,
    read_manifest,
    save_model,
    trusted_types,
    write_manifest,
)
from mlfund.evaluation import evaluate_model


@pytest.fixture(scope="module")
def classification(datasets: dict[str, pd.DataFrame]):
    frame = datasets["classification_2d"]
    train, test = frame.iloc[:800], frame.iloc[800:]
    model = LogisticRegression().fit(train[["x0", "x1"]], train["y"])
    return model, test[["x0", "x1"]], test["y"]


@pytest.fixture(scope="module")
def regression(datasets: dict[str, pd.DataFrame]):
    frame = datasets["regression_10d"]
    x = [f"x{i}" for i in range(10)]
    train, test = frame.iloc[:800], frame.iloc[800:]
    model = make_pipeline(StandardScaler(), LinearRegression()).fit(train[x], train["y"])
    return model, test[x], test["y"]


# ---------------------------------------------------------------- evaluation
def test_classification_scores_match_sklearn(classification):
    model, features, target = classification
    result = evaluate_model(model, "classification", features, target)
    predicted = model.predict(features)
    assert result.scores == {
        "test_accuracy": pytest.approx(metrics.accuracy_score(target, predicted)),
        "test_f1_macro": pytest.approx(metrics.f1_score(target, predicted, average="macro")),
        "test_roc_auc": pytest.approx(
            metrics.roc_auc_score(target, model.predict_proba(features)[:, 1])
        ),
    }
    assert all(type(v) is float for v in result.scores.values())
    assert 0.5 < result.scores["test_accuracy"] <= 1.0


def test_classification_plot_frames(classification):
    model, features, target = classification
    plots = evaluate_model(model, "classification", features, target).plots
    assert set(plots) == {"confusion", "roc"}
    assert list(plots["confusion"].columns) == ["actual", "predicted"]
    assert len(plots["confusion"]) == len(target)
    np.testing.assert_array_equal(plots["confusion"]["actual"], target)
    roc = plots["roc"]
    assert list(roc.columns) == ["fpr", "tpr"]
    assert (roc.iloc[0].tolist(), roc.iloc[-1].tolist()) == ([0.0, 0.0], [1.0, 1.0])


def test_multiclass_has_no_roc(datasets: dict[str, pd.DataFrame]):
    blobs = datasets["blobs"]
    model = LogisticRegression().fit(blobs[["x0", "x1"]], blobs["y"])
    result = evaluate_model(model, "classification", blobs[["x0", "x1"]], blobs["y"])
    assert set(result.scores) == {"test_accuracy", "test_f1_macro"}
    assert set(result.plots) == {"confusion"}


def test_regression_scores_match_sklearn(regression):
    model, features, target = regression
    result = evaluate_model(model, "regression", features, target)
    predicted = model.predict(features)
    assert result.scores == {
        "test_mse": pytest.approx(metrics.mean_squared_error(target, predicted)),
        "test_mae": pytest.approx(metrics.mean_absolute_error(target, predicted)),
        "test_r2": pytest.approx(metrics.r2_score(target, predicted)),
    }
    frame = result.plots["predictions"]
    assert list(frame.columns) == ["actual", "predicted"]
    np.testing.assert_allclose(frame["predicted"], predicted)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_empty_test_rows_raise(classification, task):
    model, features, target = classification
    with pytest.raises(ValueError, match="no test rows"):
        evaluate_model(model, task, features.iloc[:0], target.iloc[:0])


def test_merge_metrics_deep_merges():
    train_side = {"linear": {"ols": {"train_r2": 0.9, "shared": 1.0}}}
    test_side = {
        "linear": {"ols": {"test_mse": 2.0, "shared": 5.0}, "poly": {"test_mse": 3.0}},
        "features": {"forest": {"test_r2": 0.8}},
    }
    merged = merge_metrics(train_side, test_side)
    assert merged == {
        "linear": {
            "ols": {"train_r2": 0.9, "shared": 5.0, "test_mse": 2.0},
            "poly": {"test_mse": 3.0},
        },
        "features": {"forest": {"test_r2": 0.8}},
    }
    assert train_side == {"linear": {"ols": {"train_r2": 0.9, "shared": 1.0}}}  # untouched
    assert merge_metrics() == {}


def test_headline_metrics_keeps_each_models_primary_metric_under_its_own_key():
    metrics = {
        "linear": {"logistic": {"test_accuracy": 0.9, "test_f1": 0.8}, "ols": {"test_mse": 2.0}},
        "rnn": {"lstm": {"test_mse": 0.05, "train_seconds": 3.0}},
        "unregistered": {"model": {"test_accuracy": 1.0}},
        "clustering": {"kmeans": {"silhouette": 0.7}},  # no model has its primary
    }
    primary = {"linear": "test_accuracy", "rnn": "test_mse", "clustering": "ari"}
    assert headline_metrics(metrics, primary) == {
        "linear": {"logistic": {"test_accuracy": 0.9}},
        "rnn": {"lstm": {"test_mse": 0.05}},
    }


def test_headline_of_the_committed_metrics_has_one_number_per_model_with_a_primary():
    committed = json.loads((Path(__file__).parents[1] / "reports" / "metrics.json").read_text())
    primary = {family.name: family.primary for family in registry.FAMILY_LIST}
    headline = headline_metrics(committed, primary)
    assert set(headline) == set(registry.NAMES)  # every family has a model with its primary
    for family, models in headline.items():
        assert all(list(values) == [primary[family]] for values in models.values())
        assert {m for m, v in committed[family].items() if primary[family] in v} == set(models)


# ---------------------------------------------------------------- model store
def test_save_load_round_trip(regression, tmp_path: Path):
    model, features, _ = regression
    path = tmp_path / "nested" / "model.skops"
    save_model(model, path)
    loaded = load_model(path)
    assert [name for name, _ in loaded.steps] == [name for name, _ in model.steps]
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))
    assert list(loaded.feature_names_in_) == list(features.columns)
    trusted = model_trusted_types(model)
    assert all(t.startswith(("sklearn.", "numpy.", "builtins.")) for t in trusted)


def test_untrusted_type_is_refused(tmp_path: Path):
    model = make_pipeline(FunctionTransformer(func=json.dumps))
    path = tmp_path / "untrusted.skops"
    save_model(model, path)
    assert sio.get_untrusted_types(file=path) == ["json.dumps"]
    with pytest.raises(ValueError, match=r"refusing to load unexpected types \['json\.dumps'\]"):
        load_model(path)
    with pytest.raises(ValueError, match=r"json\.dumps"):
        model_trusted_types(model)


def test_trusted_types_filter():
    assert trusted_types(["sklearn.tree._tree.Tree"], "src") == ["sklearn.tree._tree.Tree"]
    with pytest.raises(ValueError, match=r"src: .*\['os.system'\]"):
        trusted_types(["sklearn.tree._tree.Tree", "os.system"], "src")
    with pytest.raises(ValueError, match=r"numpy\.load"):
        trusted_types(["numpy.load"], "src")  # numpy functions can read arbitrary files
    with pytest.raises(ValueError):
        trusted_types(["sklearnx.Evil"], "src")  # a prefix, not just a leading word


def test_manifest_round_trip(tmp_path: Path):
    cards = [
        ModelCard(
            name="ols",
            dataset="regression_1d",
            task="regression",
            features=["x0"],
            target="y",
            file="ols.skops",
            run_id="r1",
            model_id="m-1",
        ),
        ModelCard(
            name="logit",
            dataset="classification_2d",
            task="classification",
            features=["x0", "x1"],
            target="y",
            file="logit.skops",
            run_id="r2",
            model_id="m-2",
        ),
    ]
    folder = tmp_path / "models" / "linear"
    write_manifest(folder, cards)
    assert (folder / MANIFEST).read_text().endswith("\n")
    assert json.loads((folder / MANIFEST).read_text())[1]["features"] == ["x0", "x1"]
    assert read_manifest(folder) == cards


# ---------------------------------------------------------------- report
@pytest.fixture
def png(tmp_path: Path) -> Path:
    figure, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [0, 1])
    path = tmp_path / "figures" / "linear" / "decision_boundary.png"
    path.parent.mkdir(parents=True)
    figure.savefig(path, dpi=20)
    plt.close(figure)
    return path


@pytest.fixture
def blocks(png: Path) -> list[report.Block]:
    return [
        report.Heading("linear"),
        report.Paragraph("a < b & c"),
        report.Figure(png, "The boundary."),
        report.Table(["model", "test_mse"], [["ols", "0.5"], ["poly", "1.25"]]),
    ]


def test_to_markdown(blocks: list[report.Block], tmp_path: Path):
    text = report.to_markdown("Title", blocks, tmp_path)
    assert text.startswith("# Title\n\n## linear\n\na < b & c\n")
    assert "![The boundary.](figures/linear/decision_boundary.png)" in text
    assert "*The boundary.*" in text
    assert "| model | test_mse |\n|---|---|\n| ols | 0.5 |\n| poly | 1.25 |\n" in text


def test_to_html_embeds_figures(blocks: list[report.Block], png: Path):
    page = report.to_html("Title <1>", blocks)
    assert page.startswith("<!doctype html>")
    assert "<title>Title &lt;1&gt;</title>" in page
    assert "<h2>linear</h2>" in page
    assert "<p>a &lt; b &amp; c</p>" in page
    assert "data:image/png;base64," in page
    assert base64.b64encode(png.read_bytes()).decode("ascii") in page
    assert "<tr><th>model</th><th>test_mse</th></tr>" in page
    assert "<tr><td>ols</td><td>0.5</td></tr><tr><td>poly</td><td>1.25</td></tr>" in page
    assert "figures/linear" not in page  # self-contained: no links to files


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.123456, "0.1235"), (12345.678, "1.2346e+04"), (3.0, "3"), (5, "5"), (1e6, "1e+06")],
)
def test_format_value(value, text: str):
    assert report.format_value(value) == text


def test_family_blocks(tmp_path: Path):
    figures = [
        tmp_path / "regression_fits.png",
        tmp_path / "extra_plot.png",
        tmp_path / "decision_boundary.png",
    ]
    metrics_ = {"ols": {"test_mse": 0.5, "train_r2": 0.9}, "logit": {"test_accuracy": 0.9}}
    captions = {"decision_boundary": "The boundary.", "regression_fits": "The fits."}
    note = report.Paragraph("A note under the title.")
    linear = registry.get("linear")
    blocks = report.family_blocks(linear, metrics_, {"ols": "run-1"}, figures, captions, [note])
    assert blocks[:4] == [
        report.Heading("linear", anchor="linear"),
        report.Paragraph(linear.description),
        report.Headline("test_accuracy", "max", [("logit", "0.9")]),  # the registry's primary
        note,
    ]
    # figures in the order of the family's captions, unknown ones last
    assert [b.path.stem for b in blocks[4:7]] == [
        "decision_boundary",
        "regression_fits",
        "extra_plot",
    ]
    assert blocks[4].caption == "The boundary."
    assert blocks[6].caption == "extra plot"  # no caption known: the stem
    table = blocks[-1]
    assert table.header == ["model", "test_accuracy", "test_mse", "train_r2", "MLflow run"]
    assert table.rows == [["logit", "0.9", "", "", ""], ["ols", "", "0.5", "0.9", "run-1"]]


@pytest.mark.parametrize("note", [report.Paragraph("text"), report.Table(["a", "b"], [["1", "2"]])])
def test_notes_survive_the_json_round_trip(note) -> None:
    assert report.note_from_json(json.loads(json.dumps(asdict(note)))) == note


def test_family_blocks_show_the_seed_spread_of_the_headline_metric():
    metrics_ = {"simple_cnn": {"test_accuracy": 0.9972, "val_loss": 0.04}, "other": {"x": 1.0}}
    spread = report.SeedSpread(
        "test_accuracy", "cnn.seed = 42..46", 5, {"simple_cnn": (0.9961, 0.0015)}
    )
    blocks = report.family_blocks(registry.get("cnn"), metrics_, {}, [], {}, [], spread)
    assert (
        report.Headline("test_accuracy", "max", [("simple_cnn", "0.9972 (0.9961 ± 0.0015)")])
        in blocks
    )
    table, note = blocks[-2:]
    assert table.rows[1] == ["simple_cnn", "0.9972 (0.9961 ± 0.0015)", "0.04", "", ""]
    assert note == report.Paragraph(
        "In brackets after test_accuracy: mean ± std over 5 seeds (cnn.seed = 42..46), "
        "measured by `make calibrate` (reports/calibration.json)."
    )
    # a long table (one row per metric) marks the same cell
    wide = {"simple_cnn": {f"m{i}": 1.0 for i in range(report.WIDE_TABLE)} | metrics_["simple_cnn"]}
    rows = report.family_blocks(registry.get("cnn"), wide, {}, [], {}, [], spread)[-2].rows
    assert ["simple_cnn", "test_accuracy", "0.9972 (0.9961 ± 0.0015)", ""] in rows


@pytest.mark.parametrize(
    ("family", "order"),
    [("rnn", ["gru", "lstm", "rnn", "broken"]), ("transformer", ["tfidf", "attention", "broken"])],
)
def test_headline_puts_the_best_first_by_the_registry_direction(family: str, order: list[str]):
    # rnn: test_mse, lower is better; transformer: test_accuracy, higher is better
    metric = registry.get(family).primary
    values = {"rnn": 0.3, "lstm": 0.2, "gru": 0.1, "tfidf": 0.95, "attention": 0.9}
    metrics_ = {m: {metric: v, "other": 0.0} for m, v in values.items() if m in order}
    metrics_["broken"] = {metric: float("nan")}  # a diverged model goes last, not first
    metrics_["no_primary"] = {"other": 1.0}  # e.g. linear's regression models: left out
    top = report.headline(registry.get(family), metrics_)
    assert top is not None and top.metric == metric
    assert [model for model, _ in top.values] == order


def test_a_reference_row_comes_after_the_models_and_is_never_the_best():
    # generative: two real samples are closer than any model, but they are the yardstick
    metrics_ = {
        "real_vs_real": {"energy_distance": 0.05},
        "gan": {"energy_distance": 0.32},
        "vae": {"energy_distance": 0.15},
    }
    top = report.headline(registry.get("generative"), metrics_)
    assert top is not None
    assert [model for model, _ in top.values] == ["vae", "gan", "real_vs_real (reference)"]
    (_, _, best), *_ = report.contents(
        [report.family_blocks(registry.get("generative"), metrics_, {}, [], {}, [])]
    ).entries
    assert best == "energy_distance: 0.15 (vae)"


def test_headline_of_a_family_without_its_primary_metric_is_none():
    assert report.headline(registry.get("linear"), {"ols": {"test_mse": 0.5}}) is None


def test_contents_is_read_off_the_sections():
    sections = [
        report.family_blocks(registry.get("rnn"), {"gru": {"test_mse": 0.1}}, {}, [], {}, []),
        report.family_blocks(registry.get("linear"), {"ols": {"test_mse": 0.5}}, {}, [], {}, []),
    ]
    assert report.contents(sections) == report.Contents(
        [
            ("rnn", registry.get("rnn").description, "test_mse: 0.1 (gru)"),
            ("linear", registry.get("linear").description, ""),
        ]
    )


def test_header_contents_and_headline_in_both_renderings(tmp_path: Path):
    section = report.family_blocks(
        registry.get("rnn"), {"gru": {"test_mse": 0.1}, "rnn": {"test_mse": 0.3}}, {}, [], {}, []
    )
    run = report.RunInfo("a" * 40, "b" * 64, "exp-1")
    blocks = [run, report.contents([section]), *section]
    page = report.to_html("T", blocks)
    assert f'<code title="{"a" * 40}">{"a" * 12}</code>' in page
    assert f'<code title="{"b" * 64}">{"b" * 12}</code>' in page
    assert "DVC experiment <code>exp-1</code>" in page
    assert '<nav id="contents">' in page and '<a href="#rnn">rnn</a>' in page
    assert '<h2 id="rnn">rnn <a class="up" href="#contents">' in page
    assert (
        '<div class="stat best"><span class="model">gru</span><span class="value">0.1</span>'
        in page
    )
    text = report.to_markdown("T", blocks, tmp_path)
    assert f"Code: git `{'a' * 12}` · params.yaml: sha256 `{'b' * 12}`" in text
    assert "| [rnn](#rnn) |" in text
    assert "**test_mse** (lower is better): gru **0.1** · rnn 0.3" in text
