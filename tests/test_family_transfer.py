"""The transfer family: strategy layouts (trainable counts by hand), frozen weights really
frozen, discriminative learning rates, the ResNet-18 weights error, the saved model's
builder, the target domain's distortions, the per-seed table, a small seeded run through
its pure entry point, and (e2e) the claim itself: transfer beats scratch over 5 seeds."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from mlfund.core import registry
from mlfund.core.datasets import TARGET
from mlfund.core.errors import NonFiniteLossError
from mlfund.deep.cnn import build_cnn, digits_config
from mlfund.deep.device import setup_compute
from mlfund.deep.predictor import build
from mlfund.deep.training import count_parameters, train_model
from mlfund.families.transfer import best_strategy
from mlfund.families.transfer.domain import distort, warp
from mlfund.families.transfer.model import (
    LR_DECAY,
    RESNET18_FILE,
    STRATEGIES,
    TransferError,
    build_resnet18,
    few_labels,
    param_groups,
    prepare,
    resnet18_weights_path,
    task_rows,
)
from mlfund.families.transfer.seeds import SeedComparison
from tests.conftest import FrameInputs


def pipeline_cnn(channels=(32, 64, 128), fc=512, image_size=16):
    rows = np.random.default_rng(0).integers(0, 17, size=(20, 64))
    config = digits_config(rows, image_size, list(channels), fc, 0.5)
    return build_cnn(**{**config, "num_classes": 5})


# by hand for channels [32, 64, 128], fc 512, 16x16 input (2x2x128 = 512 after three pools)
CONV = [1 * 32 * 9 + 32, 32 * 64 * 9 + 64, 64 * 128 * 9 + 128]  # weights + biases
BN = [2 * 32, 2 * 64, 2 * 128]  # gamma + beta (running stats are buffers)
HEAD = (512 * 512 + 512) + (512 * 5 + 5)  # the new classifier: fc1 and the 5-class output


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("feature_extraction", HEAD),
        ("fine_tune_last", CONV[2] + BN[2] + HEAD),
        ("full_fine_tune", sum(CONV) + sum(BN) + HEAD),
        ("discriminative_lr", sum(CONV) + sum(BN) + HEAD),
        ("from_scratch", sum(CONV) + sum(BN) + HEAD),
    ],
)
def test_pipeline_cnn_trainable_parameters(strategy, expected):
    model = prepare(pipeline_cnn(), strategy, 5, 0)
    groups = param_groups(model, strategy, 1e-3)
    assert count_parameters(model) == expected
    assert sum(p.numel() for g in groups for p in g["params"]) == expected


def test_resnet18_trainable_parameters():
    net = build_resnet18(None, 1000, 8, 32, 16.0)
    fc = 512 * 5 + 5
    # layer4: block 1 (3x3 256->512, 3x3 512->512, 1x1 downsample, 3 BNs) + block 2
    layer4 = (256 * 512 * 9 + 512 * 512 * 9 + 256 * 512 + 3 * 1024) + 2 * (512 * 512 * 9 + 1024)
    assert layer4 == 8_393_728
    counts = {s: count_parameters(prepare(net, s, 5, 0)) for s in STRATEGIES[:3]}
    assert counts["feature_extraction"] == fc
    assert counts["fine_tune_last"] == layer4 + fc
    assert counts["full_fine_tune"] == 11_176_512 + fc  # resnet18 without its 1000-class fc
    out = prepare(net, "feature_extraction", 5, 0)(torch.zeros(2, 64))
    assert out.shape == (2, 5)


def test_frozen_backbone_and_statistics_do_not_change():
    compute = setup_compute("cpu", "fp32", 1)
    pretrained = pipeline_cnn(channels=(8, 16), fc=16, image_size=8)
    model = prepare(pretrained, "feature_extraction", 3, 0)
    before = {k: v.clone() for k, v in model.net.features.state_dict().items()}
    head_before = model.net.classifier[-1].weight.clone()
    x = torch.rand(24, 64) * 16
    y = torch.arange(24) % 3
    model = train_model(
        lambda: model,
        (x, y),
        (x, y),
        torch.nn.functional.cross_entropy,
        compute,
        seed=0,
        learning_rate=1e-2,
        batch_size=8,
        epochs=2,
        param_groups=lambda m: param_groups(m, "feature_extraction", 1e-2),
    ).model
    after = model.net.features.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN statistics
    assert not torch.equal(head_before, model.net.classifier[-1].weight)
    # the pretrained model itself is untouched (prepare copies it)
    assert torch.equal(pretrained.features[0].weight, before["0.weight"])


def test_discriminative_rates_decrease_towards_the_input():
    model = prepare(pipeline_cnn(), "discriminative_lr", 5, 0)
    groups = param_groups(model, "discriminative_lr", 1e-3)
    rates = [g["lr"] for g in groups]
    assert rates[0] == 1e-3 and len(rates) == 4  # head, conv3, conv2, conv1
    assert rates == pytest.approx([1e-3 * LR_DECAY**i for i in range(4)])
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    first_conv = model.net.features[0].weight
    assert any(p is first_conv for p in groups[-1]["params"])


def test_resnet18_weights_error_names_param_and_file(tmp_path):
    with pytest.raises(TransferError, match=r"transfer\.resnet18_weights") as error:
        resnet18_weights_path(str(tmp_path / "missing.pth"))
    assert "missing.pth" in str(error.value)
    with pytest.raises(TransferError, match=RESNET18_FILE) as error:
        resnet18_weights_path(None, hub_dir=str(tmp_path))
    assert "torch hub cache" in str(error.value) and "transfer.resnet18_weights" in str(error.value)
    weights = tmp_path / "checkpoints" / RESNET18_FILE
    weights.parent.mkdir()
    weights.write_bytes(b"")
    assert resnet18_weights_path(None, hub_dir=str(tmp_path)) == weights


def test_few_labels_and_task_rows():
    labels = np.repeat(np.arange(5), 30)
    chosen = few_labels(labels, 4, seed=3)
    assert np.bincount(labels[chosen]).tolist() == [4] * 5
    assert np.array_equal(chosen, few_labels(labels, 4, seed=3))
    assert not np.array_equal(chosen, few_labels(labels, 4, seed=4))
    # disjoint classes: each task keeps all of its own rows
    labels = np.array([0, 1, 2, 3] * 5)
    source, target = task_rows(labels, [0, 1], [2, 3])
    assert np.array_equal(source, labels < 2) and np.array_equal(target, labels >= 2)
    # shared classes: the first half of a class's rows (in split order) to the source only
    labels = np.array([0, 1, 0, 1, 0, 1, 0, 1, 2, 2])
    source, target = task_rows(labels, [0, 1], [0, 1, 2])
    assert np.flatnonzero(source).tolist() == [0, 1, 2, 3]
    assert np.flatnonzero(target).tolist() == [4, 5, 6, 7, 8, 9]
    with pytest.raises(TransferError, match=r"the target classes \[7\] have no training rows"):
        task_rows(labels, [0, 1], [2, 7])


def test_warp_against_numpy():
    """No angle and no offset: the image itself; a quarter turn: numpy's rot90 (bilinear
    sampling is exact on the pixel grid); a constant offset of one pixel in x: each pixel
    reads its right neighbour, zeros past the edge."""
    image = torch.arange(64, dtype=torch.float64).reshape(1, 8, 8)
    still, flat = torch.zeros(1, dtype=torch.float64), torch.zeros(1, 2, 3, 3, dtype=torch.float64)
    assert torch.equal(warp(image, still, flat), image)
    turned = warp(image, torch.tensor([np.pi / 2], dtype=torch.float64), flat)
    np.testing.assert_allclose(turned[0].numpy(), np.rot90(image[0].numpy()), atol=1e-12)
    right = flat.clone()
    right[:, 0] = 1.0
    shifted = warp(image, still, right)[0].numpy()
    np.testing.assert_allclose(shifted[:, :-1], image[0, :, 1:].numpy(), atol=1e-12)
    assert np.all(shifted[:, -1] == 0)


def test_distort_is_seeded_and_bounded():
    rows = np.random.default_rng(0).uniform(0, 16, size=(6, 64))
    kwargs = {"rotation": 30.0, "elastic": 0.5, "noise": 0.1}
    shifted = distort(rows, 8, 16.0, seed=(1, 0), **kwargs)
    assert shifted.shape == rows.shape and shifted.min() >= 0 and shifted.max() <= 16
    assert np.array_equal(shifted, distort(rows, 8, 16.0, seed=(1, 0), **kwargs))
    assert not np.allclose(shifted, distort(rows, 8, 16.0, seed=(2, 0), **kwargs))
    assert distort(rows, 8, 16.0, rotation=0, elastic=0, noise=0, seed=0) is rows


def small(params, **transfer):
    """Two narrow conv blocks, three source epochs, four target epochs, two seeds."""
    family = registry.get("transfer")
    view = family.section(params)
    update = {"epochs": 4, "source_epochs": 3, "compare_seeds": 2, **transfer}
    short = view.transfer.model_copy(update=update)
    return dataclasses.replace(view, transfer=short, channels=(8, 16), fc_size=32)


@pytest.fixture(scope="module")
def result(params, inputs):
    return registry.get("transfer").run(small(params), inputs, setup_compute("cpu", "fp32", 1))


def test_section_reads_the_cnn_architecture(params):
    view = registry.get("transfer").section(params)
    assert view.transfer == params.transfer
    assert (list(view.channels), view.fc_size, view.dropout) == (
        params.cnn.channels,
        params.cnn.fc_size,
        params.cnn.dropout,
    )


def test_run_is_seeded_and_complete(params, inputs, result):
    again = registry.get("transfer").run(small(params), inputs, setup_compute("cpu", "fp32", 1))

    def strip(results):
        return {s: {k: v for k, v in m.items() if k != "train_seconds"} for s, m in results.items()}

    first = result.metrics
    assert strip(first) == strip(again.metrics)
    assert list(first) == ["source_pretrain", *STRATEGIES, "seeds"]
    assert [run.name for run in result.runs] == ["source_pretrain", *STRATEGIES, "best"]
    assert all(run.dataset == "digits" for run in result.runs)
    assert [run.params["strategy"] for run in result.runs] == [r.name for r in result.runs]
    assert set(result.runs[0].history) == {"train_loss", "val_loss", "val_accuracy"}
    assert len(result.runs[0].history["train_loss"]) == 3
    assert all(len(run.history["val_metric"]) == 4 for run in result.runs[1:-1])
    assert (
        first["feature_extraction"]["trainable_parameters"]
        < first["fine_tune_last"]["trainable_parameters"]
        < first["full_fine_tune"]["trainable_parameters"]
    )
    best = result.runs[-1]
    assert best.tags["strategy"] == best_strategy(first) in STRATEGIES[:4]
    assert best.metrics == first[best.tags["strategy"]]
    assert list(best.figures) == list(result.figures) == list(result.captions) == ["strategies"]


def test_best_model_is_saved_unscored_and_rebuilds(result, inputs):
    """Not scored by evaluate (image rows of the target task), but its builder rebuilds it:
    the same predictions from the saved state_dict."""
    saved = result.runs[-1].model
    assert not saved.scored and saved.builder.endswith(":build_transferred")
    rebuilt = build(saved.builder, json.loads(json.dumps(saved.config)))
    rebuilt.load_state_dict(saved.estimator.state_dict())
    assert saved.example.shape == (5, 64) and saved.example.dtype == np.float32
    rows = torch.as_tensor(saved.example)
    with torch.inference_mode():
        assert torch.equal(rebuilt.eval()(rows), saved.estimator.eval()(rows))


def test_errors_name_the_family(params, split_tables):
    compute = setup_compute("cpu", "fp32", 1)
    family = registry.get("transfer")
    table = split_tables["digits"]
    no_nine = table[(table["split"] != "train") | (table[TARGET] != 9)]
    with pytest.raises(TransferError, match=r"transfer: the target classes \[9\] have no training"):
        family.run(small(params), FrameInputs({"digits": no_nine}), compute)
    table = split_tables["digits"].copy()
    table.loc[table["split"] == "train", "x10"] = np.nan
    with pytest.raises(NonFiniteLossError, match=r"transfer\.learning_rate is 0\.001"):
        family.run(small(params, source_epochs=1), FrameInputs({"digits": table}), compute)


def test_seed_comparison_table_and_margin():
    """By hand: two strategies over three seeds; the margin is per seed, then averaged."""
    table = SeedComparison(
        [42, 43, 44],
        {"fine_tune_last": [0.8, 0.7, 0.9], "from_scratch": [0.6, 0.7, 0.5]},
    )
    assert table.best == "fine_tune_last"
    assert table.margins() == pytest.approx([0.2, 0.0, 0.4])
    assert table.std("from_scratch") == pytest.approx(0.1)  # sample std (ddof 1)
    assert table.metrics() == pytest.approx(
        {
            "best_mean_accuracy": 0.8,
            "scratch_mean_accuracy": 0.6,
            "margin_mean_accuracy": 0.2,
            "margin_min_accuracy": 0.0,
        }
    )
    paragraph, grid = table.notes()
    assert "by +0.200 on the mean, on 2 of 3 seeds" in paragraph.text
    assert grid.header == ["strategy", "seed 42", "seed 43", "seed 44", "mean", "std"]
    assert grid.rows[0] == ["fine_tune_last", "0.800", "0.700", "0.900", "0.800", "0.100"]
    assert grid.rows[-1][0] == "margin (fine_tune_last - from_scratch)"
    assert grid.rows[-1][1:] == ["+0.200", "+0.000", "+0.400", "+0.200", "0.200"]


def test_seeds_in_the_run(result):
    """The pipeline's comparison: the strategy validation picked and from scratch, over
    compare_seeds seeds; the first seed's numbers are the runs' own."""
    best = result.runs[-1].tags["strategy"]
    metrics = result.metrics
    _, grid = result.notes
    assert [row[0] for row in grid.rows] == [
        best,
        "from_scratch",
        f"margin ({best} - from_scratch)",
    ]
    assert grid.header[1:3] == ["seed 42", "seed 43"]
    assert grid.rows[0][1] == f"{metrics[best]['test_accuracy']:.3f}"
    assert grid.rows[1][1] == f"{metrics['from_scratch']['test_accuracy']:.3f}"
    seeds = metrics["seeds"]
    assert seeds["margin_mean_accuracy"] == pytest.approx(
        seeds["best_mean_accuracy"] - seeds["scratch_mean_accuracy"]
    )


@pytest.mark.e2e  # the whole train@transfer stage on the default params: ~30 s on one thread
def test_transfer_beats_scratch_over_five_seeds(params, inputs):
    """The family's claim on the default params (issue 13): the strategy validation picks
    at transfer.seed beats the same network from scratch by at least 3 points of target
    test accuracy on the mean over 5 seeds (measured: +0.124, the README's transfer
    section). The short runs above are too short for transfer to show (4 target epochs)."""
    assert params.transfer.compare_seeds == 5
    family = registry.get("transfer")
    result = family.run(family.section(params), inputs, setup_compute("cpu", "fp32", 1))
    seeds = result.metrics["seeds"]
    assert seeds["margin_mean_accuracy"] >= 0.03, result.notes[1].rows
