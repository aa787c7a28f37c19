"""The curriculum's CNN (shared by the cnn and transfer families): shapes, over-fitting one
batch, CPU determinism, seeded augmentation, the NaN guard, evaluate's loading path and
the loop benchmark."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_digits

from mlfund.deep.cnn import (
    CropFlip,
    augmentation,
    build_cnn,
    cifar10_config,
    digits_config,
    fit_cnn,
    predict,
)
from mlfund.deep.cnn_bench import benchmark_training_loops
from mlfund.deep.device import seeded, setup_compute
from mlfund.deep.predictor import TorchPredictor, build
from mlfund.deep.training import History, NonFiniteLossError, make_loader, train_epoch

CPU = setup_compute("cpu", "fp32", 0)
SMALL = {"channels": [8, 16, 16], "fc_size": 32, "dropout": 0.5}


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """Real 8x8 digits as the split table holds them: (n, 64) pixels 0..16 and labels."""
    data = load_digits()
    return torch.tensor(data.data, dtype=torch.float32), torch.tensor(data.target)


def _config(rows: torch.Tensor, image_size: int, **small) -> dict:
    return digits_config(rows.numpy(), image_size, **{**SMALL, **small})


@pytest.mark.parametrize("image_size", [8, 16, 20, 32])
def test_digits_shapes_and_first_linear_size(digits, image_size):
    rows, _ = digits
    config = digits_config(rows.numpy(), image_size, [32, 64, 128], 512, 0.5)
    json.dumps(config)  # the manifest stores it
    model = build_cnn(**config).eval()
    side = image_size // 2 // 2 // 2  # three 2x2 poolings, flooring odd sizes
    assert model.classifier[1].in_features == 128 * side * side
    assert model(rows[:5]).shape == (5, 10)
    assert model.preprocess(rows[:5]).shape == (5, 1, image_size, image_size)


def test_cifar_shapes():
    model = build_cnn(**cifar10_config([32, 64, 128], 512, 0.5)).eval()
    assert model.classifier[1].in_features == 128 * 4 * 4  # the curriculum's 32x32 number
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    assert model(images).shape == (3, 10)
    assert torch.equal(model(images), model(images.float()))


def test_too_small_image_is_refused(digits):
    with pytest.raises(ValueError, match="too small"):
        build_cnn(**_config(digits[0], 8, channels=[4, 4, 4, 4]))


def test_normalisation_from_training_rows(digits):
    rows, _ = digits
    model = build_cnn(**_config(rows, 8)).eval()
    normalised = model.preprocess(rows)
    assert abs(float(normalised.mean())) < 1e-4 and abs(float(normalised.std()) - 1) < 1e-3


def test_overfits_one_batch(digits):
    rows, labels = digits[0][:32], digits[1][:32]
    with seeded(0) as generator:
        model = build_cnn(**_config(rows, 16, dropout=0.0))
        loader = make_loader(rows, labels, 32, shuffle=True, generator=generator)
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        ce = torch.nn.functional.cross_entropy
        losses = [train_epoch(model, loader, ce, optimizer, CPU) for _ in range(40)]
    assert losses[0] > 1.5 and losses[-1] < 0.02


def _short_training(digits, seed: int) -> tuple[History, dict]:
    rows, labels = digits
    fitted = fit_cnn(
        _config(rows[:300], 16),
        (rows[:240], labels[:240]),
        (rows[240:300], labels[240:300]),
        CPU,
        seed=seed,
        learning_rate=1e-3,
        batch_size=32,
        epochs=2,
        patience=2,
    )
    return fitted.history, fitted.model.state_dict()


def test_two_cpu_runs_are_identical(digits):
    first, weights = _short_training(digits, 7)
    second, again = _short_training(digits, 7)
    assert first == second  # losses, accuracies and best epoch, exactly
    assert all(torch.equal(weights[k], again[k]) for k in weights)
    assert _short_training(digits, 8)[0].train_loss != first.train_loss


def test_augmentation_is_seeded_and_shifts(digits):
    rows = digits[0][:50]

    def crop(seed: int) -> torch.Tensor:
        return CropFlip(1, 8, 1, False, torch.Generator().manual_seed(seed))(rows)

    shifted = crop(1)
    assert shifted.shape == rows.shape and torch.equal(shifted, crop(1))
    assert not torch.equal(shifted, crop(2))
    images, outputs = rows.view(-1, 8, 8), shifted.view(-1, 8, 8)
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1))
    for image, out in zip(padded, outputs, strict=True):  # each is a shift by -1, 0 or 1
        assert any(
            torch.equal(out, image[dy : dy + 8, dx : dx + 8]) for dy in range(3) for dx in range(3)
        )


def test_flip_keeps_dtype_and_only_mirrors():
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    out = CropFlip(3, 32, 0, True, torch.Generator().manual_seed(0))(images)
    assert out.shape == images.shape and out.dtype == torch.uint8
    same = (out == images).flatten(1).all(1)
    mirrored = (out == images.flip(3)).flatten(1).all(1)
    assert bool((same | mirrored).all()) and same.any() and mirrored.any()
    with_crop = augmentation(cifar10_config([8], 8, 0.0), True, torch.Generator().manual_seed(0))
    assert with_crop.padding == 4 and with_crop(images).shape == images.shape  # as RandomCrop


def test_non_finite_loss_stops_training(digits):
    rows, labels = digits[0][:64].clone(), digits[1][:64]
    rows[3, 10] = float("nan")
    with pytest.raises(NonFiniteLossError):
        fit_cnn(
            _config(rows[:1], 8),
            (rows, labels),
            (rows, labels),
            CPU,
            seed=0,
            learning_rate=1e-3,
            batch_size=32,
            epochs=1,
            patience=1,
            augment=False,
        )


def test_evaluate_loads_it_from_builder_and_state_dict(digits):
    rows, _ = digits
    config = _config(rows, 16)
    with seeded(0):
        model = build_cnn(**config).eval()
    copy = build("mlfund.deep.cnn:build_cnn", json.loads(json.dumps(config)))
    copy.load_state_dict(model.state_dict())
    table = pd.DataFrame(rows[:20].numpy(), columns=[f"x{i}" for i in range(64)])
    predictor = TorchPredictor(copy, "classification", list(range(10)))
    np.testing.assert_array_equal(predictor.predict(table), predict(model, rows[:20], CPU, 8))
    assert predictor.predict_proba(table).shape == (20, 10)


def test_benchmark_reports_both_loops(digits):
    rows, labels = digits
    config = _config(rows, 8)
    result = benchmark_training_loops(
        config,
        (rows[:128], labels[:128]),
        (rows[128:192], labels[128:192]),
        CPU,
        threads=1,
        batch_size=32,
        learning_rate=1e-3,
        seed=0,
        flip=False,
        epochs=1,
        repeats=1,
    )
    assert result.ours_images_per_second > 0 and result.plain_images_per_second > 0
    assert result.ratio == pytest.approx(
        result.ours_images_per_second / result.plain_images_per_second
    )
    assert result.ours_threads == 1 and result.train_images == 128
