"""The transfer family: strategy layouts (trainable counts by hand), frozen weights really
frozen, discriminative learning rates, the ResNet-18 weights error, the saved model's
builder, and a small seeded run through its pure entry point."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from mlfund.core import registry
from mlfund.core.errors import NonFiniteLossError
from mlfund.deep.cnn import build_cnn, digits_config
from mlfund.deep.device import setup_compute
from mlfund.deep.predictor import build
from mlfund.deep.training import count_parameters, train_model
from mlfund.families.transfer import best_strategy
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
    split_classes,
)
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


def test_few_labels_and_class_split():
    labels = np.repeat(np.arange(5), 30)
    chosen = few_labels(labels, 4, seed=3)
    assert np.bincount(labels[chosen]).tolist() == [4] * 5
    assert np.array_equal(chosen, few_labels(labels, 4, seed=3))
    assert not np.array_equal(chosen, few_labels(labels, 4, seed=4))
    mask, target = split_classes(np.arange(10), [0, 1, 2, 3, 4])
    assert target == [5, 6, 7, 8, 9] and mask.sum() == 5
    with pytest.raises(TransferError):
        split_classes(np.arange(3), [0, 1, 2])


def small(params, **transfer):
    """Two narrow conv blocks, three source epochs and four target epochs."""
    family = registry.get("transfer")
    view = family.section(params)
    short = view.transfer.model_copy(update={"epochs": 4, "source_epochs": 3, **transfer})
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
    assert list(first) == ["source_pretrain", *STRATEGIES]
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


def test_pretrained_features_give_a_head_start(result):
    """Transfer's point on a short budget (5 target digits, 10 labels each, four epochs at
    the default learning rate): the source task is learnt, every strategy that starts from
    the pretrained features reads unseen target digits at 0.6 or more (chance: 0.2), and
    the same network from scratch trails each of them by over 0.2."""
    metrics = result.metrics
    assert metrics["source_pretrain"]["val_accuracy"] > 0.85
    scratch = metrics["from_scratch"]["test_accuracy"]
    for strategy in STRATEGIES[:4]:
        assert metrics[strategy]["test_accuracy"] > max(0.6, scratch + 0.2), strategy


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
    digits = FrameInputs({"digits": split_tables["digits"]})
    every = list(range(10))
    with pytest.raises(TransferError, match="transfer: the source classes cover every label"):
        family.run(small(params, source_classes=every), digits, compute)
    table = split_tables["digits"].copy()
    table.loc[table["split"] == "train", "x10"] = np.nan
    with pytest.raises(NonFiniteLossError, match=r"transfer\.learning_rate is 0\.001"):
        family.run(small(params, source_epochs=1), FrameInputs({"digits": table}), compute)
