"""Transfer learning: strategy layouts (trainable counts by hand), frozen weights really
frozen, discriminative learning rates, the ResNet-18 weights error, and a small seeded run."""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_digits

from mlfund.deep.cnn import build_cnn, digits_config
from mlfund.deep.device import setup_compute
from mlfund.deep.training import count_parameters
from mlfund.deep.transfer import (
    LR_DECAY,
    RESNET18_FILE,
    STRATEGIES,
    TransferError,
    build_resnet18,
    few_labels,
    fine_tune,
    prepare,
    resnet18_weights_path,
    split_classes,
)
from stages.common import SplitRows, read_params
from stages.train_transfer import best_strategy, compare


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


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
    model, groups = prepare(pipeline_cnn(), strategy, 5, 1e-3, 0)
    assert count_parameters(model) == expected
    assert sum(p.numel() for g in groups for p in g["params"]) == expected


def test_resnet18_trainable_parameters():
    net = build_resnet18(None, 1000, 8, 32, 16.0)
    fc = 512 * 5 + 5
    # layer4: block 1 (3x3 256->512, 3x3 512->512, 1x1 downsample, 3 BNs) + block 2
    layer4 = (256 * 512 * 9 + 512 * 512 * 9 + 256 * 512 + 3 * 1024) + 2 * (512 * 512 * 9 + 1024)
    assert layer4 == 8_393_728
    counts = {s: count_parameters(prepare(net, s, 5, 1e-3, 0)[0]) for s in STRATEGIES[:3]}
    assert counts["feature_extraction"] == fc
    assert counts["fine_tune_last"] == layer4 + fc
    assert counts["full_fine_tune"] == 11_176_512 + fc  # resnet18 without its 1000-class fc
    out = prepare(net, "feature_extraction", 5, 1e-3, 0)[0](torch.zeros(2, 64))
    assert out.shape == (2, 5)


def test_frozen_backbone_and_statistics_do_not_change():
    compute = setup_compute("cpu", "fp32", 1)
    pretrained = pipeline_cnn(channels=(8, 16), fc=16, image_size=8)
    model, groups = prepare(pretrained, "feature_extraction", 3, 1e-2, 0)
    before = {k: v.clone() for k, v in model.net.features.state_dict().items()}
    head_before = model.net.classifier[-1].weight.clone()
    x = torch.rand(24, 64) * 16
    y = torch.arange(24) % 3
    fine_tune(
        model,
        groups,
        (x, y),
        (x, y),
        compute,
        epochs=2,
        batch_size=8,
        generator=torch.Generator().manual_seed(0),
    )
    after = model.net.features.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN statistics
    assert not torch.equal(head_before, model.net.classifier[-1].weight)
    # the pretrained model itself is untouched (prepare copies it)
    assert torch.equal(pretrained.features[0].weight, before["0.weight"])


def test_discriminative_rates_decrease_towards_the_input():
    model, groups = prepare(pipeline_cnn(), "discriminative_lr", 5, 1e-3, 0)
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


class _Run:
    def metrics(self, *args, **kwargs):
        pass

    def set_tags(self, *args):
        pass


def _small_params():
    params = read_params()
    cnn = params.cnn.model_copy(update={"channels": [8, 16], "fc_size": 32})
    transfer = params.transfer.model_copy(update={"epochs": 4, "source_epochs": 3})
    return params.model_copy(update={"cnn": cnn, "transfer": transfer})


def _digits_split() -> SplitRows:
    data = load_digits()
    frame = pd.DataFrame(data.data, columns=[f"x{i}" for i in range(64)])
    frame["y"] = data.target
    part = np.random.default_rng(0).permutation(len(frame)) % 5  # 3/5 train, 1/5 val, 1/5 test
    names = [f"x{i}" for i in range(64)]
    return SplitRows(names, frame[part < 3], frame[part == 3], frame[part == 4])


def test_compare_is_seeded_and_complete():
    params, data = _small_params(), _digits_split()
    compute = setup_compute("cpu", "fp32", 1)

    def open_run(name):
        return contextlib.nullcontext(_Run())

    first, _models, made = compare(params, data, compute, open_run)
    second, _, _ = compare(params, data, compute, open_run)

    def strip(results):
        return {s: {k: v for k, v in m.items() if k != "train_seconds"} for s, m in results.items()}

    assert strip(first) == strip(second)
    assert set(first) == {"source_pretrain", *STRATEGIES}
    assert len(made["target_train"][0]) == 5 * params.transfer.labels_per_class
    assert set(made["target_test"][1].tolist()) == set(range(5))
    for strategy in STRATEGIES:
        assert 0.0 <= first[strategy]["test_accuracy"] <= 1.0
    assert (
        first["feature_extraction"]["trainable_parameters"]
        < first["fine_tune_last"]["trainable_parameters"]
        < first["full_fine_tune"]["trainable_parameters"]
    )
    assert first["source_pretrain"]["val_accuracy"] > 0.5  # the source task was learnt
    assert best_strategy(first) in STRATEGIES[:4]
