"""The shared PyTorch core: device rules, seeding, the NaN guard, atomic saves, and fit's
early stopping (src/mlfund/deep/device.py and training.py). Each family's NaN guard (the
error naming its params key) is tested with the family, in tests/test_family_<name>.py."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from mlfund.deep.device import Compute, DeviceError, resolve_device, seeded, setup_compute
from mlfund.deep.training import (
    NonFiniteLossError,
    count_parameters,
    evaluate,
    fit,
    make_loader,
    save_atomic,
    train_epoch,
)

HAS_CUDA = torch.cuda.is_available()
HAS_MPS = torch.backends.mps.is_available()
CPU = Compute(torch.device("cpu"), "fp32")


@pytest.fixture(autouse=True)
def keep_threads():
    """setup_compute sets torch's global thread count; give other tests theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------- device rules
@pytest.mark.skipif(HAS_CUDA, reason="this machine has a GPU")
def test_explicit_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(DeviceError) as caught:
        setup_compute("cuda", "fp32", 0)
    message = str(caught.value)
    assert "compute.device" in message and "'cuda'" in message
    assert "auto" in message and "cpu" in message  # tells the user what to use instead


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a GPU")
def test_a_family_override_is_named_in_the_error(params):
    from stages.family_io import family_compute

    mlp = params.mlp.model_copy(update={"device": "cuda"})
    with pytest.raises(DeviceError, match=r"mlp\.device is 'cuda'"):
        family_compute(params.model_copy(update={"mlp": mlp}), "mlp")
    rnn = params.rnn.model_copy(update={"device": None, "threads": 1})
    compute = params.compute.model_copy(update={"device": "cpu", "threads": 2})
    chosen = family_compute(params.model_copy(update={"rnn": rnn, "compute": compute}), "rnn")
    assert chosen.device == torch.device("cpu") and torch.get_num_threads() == 1


@pytest.mark.skipif(HAS_MPS, reason="this machine has an Apple GPU")
def test_explicit_mps_without_one_is_an_error():
    with pytest.raises(DeviceError, match="mps"):
        resolve_device("mps")


def test_unknown_device_is_an_error():
    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        resolve_device("tpu")


@pytest.mark.skipif(HAS_CUDA or HAS_MPS, reason="auto picks the accelerator there")
def test_auto_resolves_to_cpu_on_this_machine():
    assert setup_compute("auto", "fp32", 0).device == torch.device("cpu")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_precision_falls_back_to_fp32_on_cpu(precision: str):
    compute = setup_compute("cpu", precision, 0)
    assert compute.precision == "fp32"
    with compute.autocast():  # a no-op: matmuls stay float32
        product = torch.ones(2, 2) @ torch.ones(2, 2)
    assert product.dtype == torch.float32
    assert compute.describe()["precision"] == "fp32"
    assert compute.describe()["device"] == "cpu"


def test_threads_come_from_params():
    compute = setup_compute("cpu", "fp32", 1)
    assert torch.get_num_threads() == 1
    assert compute.describe()["threads"] == "1"


# ---------------------------------------------------------------- seeding and loaders
def _batches(loader) -> list[torch.Tensor]:
    return [inputs.clone() for inputs, _ in loader]


def test_loaders_shuffle_identically_for_the_same_seed():
    features, targets = torch.arange(100.0).reshape(50, 2), torch.arange(50.0)

    def epochs(seed: int) -> list[torch.Tensor]:
        with seeded(seed) as generator:
            loader = make_loader(features, targets, 8, shuffle=True, generator=generator)
            return _batches(loader) + _batches(loader)  # two epochs from one generator

    first, again, other = epochs(3), epochs(3), epochs(4)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))
    assert not torch.equal(first[0], features[:8])  # it does shuffle
    assert not torch.equal(first[0], first[7])  # and reshuffles each epoch


def test_a_shuffled_loader_needs_a_generator():
    with pytest.raises(ValueError, match="generator"):
        make_loader(torch.zeros(4, 1), torch.zeros(4), 2, shuffle=True)


def test_seeded_init_is_reproducible():
    with seeded(7):
        first = nn.Linear(3, 2).weight.detach().clone()
    with seeded(7):
        again = nn.Linear(3, 2).weight.detach().clone()
    assert torch.equal(first, again)


# ---------------------------------------------------------------- the NaN guard
def _regression_loader(seed: int = 0):
    with seeded(seed) as generator:
        x = torch.randn(64, 3) * 10
        y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
        return make_loader(x, y, 16, shuffle=True, generator=generator)


def test_a_huge_learning_rate_raises_non_finite_loss():
    with seeded(0):
        model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e6)
    with pytest.raises(NonFiniteLossError, match="learning rate"):
        fit(model, _regression_loader(), None, nn.MSELoss(), optimizer, CPU, epochs=50)


def test_a_loss_returning_nan_stops_the_first_epoch():
    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

    def nan_loss(outputs, targets):
        return nn.functional.mse_loss(outputs, targets) * math.nan

    with pytest.raises(NonFiniteLossError, match="nan"):
        train_epoch(model, _regression_loader(), nan_loss, optimizer, CPU)


# ---------------------------------------------------------------- atomic saves
def test_save_atomic_leaves_only_the_file(tmp_path: Path):
    path = tmp_path / "deep" / "model.pt"
    save_atomic({"w": torch.arange(3)}, path)
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.arange(3))


def test_save_atomic_never_leaves_a_half_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "model.pt"
    save_atomic({"w": torch.zeros(2)}, path)

    def interrupted(obj, file):
        file.write(b"half a checkpoint")
        raise KeyboardInterrupt  # killed mid-write

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_atomic({"w": torch.ones(2)}, path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temp file left
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.zeros(2))  # old intact

    fresh = tmp_path / "fresh.pt"
    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_atomic({"w": torch.ones(2)}, fresh)
    assert not fresh.exists()


# ---------------------------------------------------------------- fit
def test_fit_early_stops_with_patience_and_restores_the_best_weights():
    """A scripted validation loss (best at epoch 2) and patience 2: fit runs epochs 0-4,
    stops, and ends with the weights it had after epoch 2."""
    scripted = iter([3.0, 2.0, 1.0, 1.5, 2.5, 0.5, 0.1])

    def loss_fn(outputs, targets):
        real = nn.functional.mse_loss(outputs, targets)
        if torch.is_inference_mode_enabled():  # evaluate(): one batch per epoch
            return real * 0 + next(scripted)
        return real

    x = torch.randn(16, 3)
    y = x.sum(dim=1, keepdim=True)
    with seeded(0) as generator:
        model = nn.Linear(3, 1)
        train_loader = make_loader(x, y, 4, shuffle=True, generator=generator)
    val_loader = make_loader(x, y, 16, shuffle=False)
    snapshots = []
    history = fit(
        model,
        train_loader,
        val_loader,
        loss_fn,
        torch.optim.SGD(model.parameters(), lr=0.05),
        CPU,
        epochs=7,
        patience=2,
        on_epoch=lambda epoch, values: snapshots.append(copy.deepcopy(model.state_dict())),
    )
    assert history.val_loss == [3.0, 2.0, 1.0, 1.5, 2.5]
    assert history.best_epoch == 2 and len(history.train_loss) == 5
    for key, value in model.state_dict().items():
        assert torch.equal(value, snapshots[2][key])
        assert not torch.equal(value, snapshots[4][key])


def test_fit_without_validation_keeps_the_last_weights_and_learns():
    x = torch.randn(64, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    with seeded(0) as generator:
        model = nn.Linear(3, 1)
        loader = make_loader(x, y, 16, shuffle=True, generator=generator)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    history = fit(model, loader, None, nn.MSELoss(), optimizer, CPU, epochs=30)
    assert history.best_epoch == -1 and history.val_loss == []
    assert history.train_loss[-1] < 1e-4 < history.train_loss[0]


def test_evaluate_runs_without_dropout_or_autograd():
    model = nn.Sequential(nn.Dropout(0.9), nn.Linear(2, 1))
    x = torch.randn(10, 2)
    result = evaluate(
        model, make_loader(x, torch.zeros(10, 1), 4, shuffle=False), nn.MSELoss(), CPU
    )
    assert not result.outputs.requires_grad
    assert torch.allclose(result.outputs, model[1](x).detach())  # dropout off, loader order
    assert result.loss == pytest.approx(float((model[1](x).detach() ** 2).mean()), rel=1e-5)


def test_count_parameters_counts_trainable_ones():
    model = nn.Linear(3, 2)  # 6 weights + 2 biases
    assert count_parameters(model) == 8
    model.bias.requires_grad_(False)
    assert count_parameters(model) == 6
    assert count_parameters(model, trainable_only=False) == 8
