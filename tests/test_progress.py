"""Progress without a terminal (src/mlfund/deep/progress.py): which epochs get a log line,
the summary line of a trained model, and that `fit` and `train_model` emit them."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from mlfund.core import registry
from mlfund.core.family import ModelRun, epoch_tables
from mlfund.deep import progress as progress_module
from mlfund.deep.device import Compute
from mlfund.deep.progress import EpochProgress
from mlfund.deep.training import train_model

CPU = Compute(torch.device("cpu"), "fp32")
ROOT = Path(__file__).resolve().parents[1]
LOGGER = "mlfund.deep.progress"
EPOCH_LINE = re.compile(r"^(\S+) epoch (\d+)/(\d+) (.*) \((\d+\.\d) s\)$")


def epochs_logged(caplog) -> list[int]:
    """The 1-based epochs of the progress lines captured so far."""
    found = [EPOCH_LINE.match(r.getMessage()) for r in caplog.records if r.name == LOGGER]
    return [int(m.group(2)) for m in found if m]


def run_epochs(progress: EpochProgress, epochs: int, stop: int | None = None) -> None:
    for epoch in range(epochs if stop is None else stop):
        progress.update(epoch, {"train_loss": 1.0 / (epoch + 1), "val_loss": 2.0})
    progress.close()


def test_without_a_terminal_first_every_tenth_and_last_epoch(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    run_epochs(EpochProgress("rnn/lstm", 50, terminal=False), 50)
    assert epochs_logged(caplog) == [1, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50]
    line = caplog.records[1].getMessage()
    assert EPOCH_LINE.match(line).group(1, 3, 4) == (
        "rnn/lstm",
        "50",
        "train_loss=0.2 val_loss=2",
    )


def test_an_explicit_interval_and_early_stopping_still_log_the_last_epoch(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    run_epochs(EpochProgress("m", 100, every_epochs=10, terminal=False), 100, stop=23)
    assert epochs_logged(caplog) == [1, 10, 20, 23]  # stopped early at 23: logged on close


def test_a_slow_epoch_is_logged_when_the_seconds_run_out(caplog, monkeypatch):
    clock = iter([0.0, 1.0, 2.0, 40.0, 41.0, 200.0, 201.0])  # start, then one read per epoch
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: next(clock))
    caplog.set_level(logging.INFO, logger=LOGGER)
    run_epochs(EpochProgress("m", 1000, every_seconds=30.0, terminal=False), 1000, stop=5)
    # epoch 1 (first), 3 (39 s since the last line), 5 (159 s); epoch 5 is also the last run
    assert epochs_logged(caplog) == [1, 3, 5]
    assert caplog.records[1].getMessage().endswith("(40.0 s)")


def test_on_a_terminal_the_bar_draws_and_nothing_is_logged(caplog, capsys):
    caplog.set_level(logging.INFO, logger=LOGGER)
    run_epochs(EpochProgress("m", 5, terminal=True), 5)
    assert epochs_logged(caplog) == []
    assert "5/5" in capsys.readouterr().err  # tqdm's bar, on stderr


def fit_line(x: torch.Tensor, val: tuple | None, epochs: int, **kwargs):
    """`train_model` of a 1-to-1 linear layer on y = 2x."""
    return train_model(
        lambda: nn.Linear(1, 1),
        (x, 2 * x),
        val,
        nn.MSELoss(),
        CPU,
        seed=0,
        learning_rate=0.1,
        batch_size=8,
        epochs=epochs,
        **kwargs,
    )


def test_train_model_logs_epochs_and_one_summary_line(caplog):
    """Through the real loop: validation rows of the opposite slope get worse as the model
    learns, so early stopping ends it long before `epochs`, and that last epoch still has
    its line; the summary names device, precision, epochs run, the kept epoch, its
    val_loss and the seconds."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    x = torch.linspace(-1, 1, 32).reshape(-1, 1)
    fitted = fit_line(x, (x, -2 * x), 30, patience=3, name="toy/linear")
    history = fitted.history
    run = len(history.train_loss)
    assert history.best_epoch == 0 and run == 4  # stopped early, off the every-3 grid
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert epochs_logged(caplog) == [1, 3, 4]  # 4: logged on close
    assert all(m.startswith("toy/linear ") for m in messages)
    summary = messages[-1]
    assert summary.startswith("toy/linear trained: device=cpu precision=fp32 ")
    assert f"epochs={run} best_epoch={history.best_epoch} " in summary
    assert f"val_loss={history.val_loss[history.best_epoch]:.4g} " in summary
    assert re.search(rf"seconds={fitted.seconds:.1f}$", summary)


def test_without_validation_the_summary_says_no_epoch_was_kept(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    fitted = fit_line(torch.ones(8, 1), None, 3)
    summary = caplog.records[-1].getMessage()
    loss = fitted.history.train_loss[-1]
    assert summary.startswith("model trained: ")  # fit's default name
    assert f"epochs=3 best_epoch=none train_loss={loss:.4g} " in summary


@pytest.mark.parametrize("epochs", [1, 7])
def test_every_run_logs_its_first_and_last_epoch_once(caplog, epochs):
    caplog.set_level(logging.INFO, logger=LOGGER)
    run_epochs(EpochProgress("m", epochs, terminal=False), epochs)
    logged = epochs_logged(caplog)
    assert logged[0] == 1 and logged[-1] == epochs and len(logged) == len(set(logged))


# ---------------------------------------------------------------- training curves as plots
def test_epoch_tables_number_epochs_from_first_step_and_skip_runs_without_curves():
    curves = ModelRun("lstm", "d", {}, {}, history={"train_loss": [3.0, 2.0], "val_loss": [4, 1]})
    shifted = ModelRun("pca", "d", {}, {}, history={"ratio": [0.5]}, first_step=1)
    study = ModelRun("comparison", "d", {}, {})
    tables = epoch_tables([curves, shifted, study])
    assert set(tables) == {"history_lstm", "history_pca"}
    assert tables["history_lstm"].to_dict("list") == {
        "epoch": [0, 1],
        "train_loss": [3.0, 2.0],
        "val_loss": [4, 1],
    }
    assert tables["history_pca"]["epoch"].tolist() == [1]


def test_every_pytorch_family_has_its_loss_plot_in_dvc_yaml():
    """dvc.yaml's top-level plots read reports/plots/<family>/history_*.csv of each family
    that trains PyTorch models, with `epoch` on x: a path (a folder or a file) as the plot's
    id, or a named plot with its files under y."""
    read: dict[str, list[dict]] = {}  # path -> props of the plots reading it
    for entry in yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]:
        ((plot, props),) = entry.items()
        paths = props["y"] if isinstance(props.get("y"), dict) else [plot]
        for path in paths:
            read.setdefault(path, []).append(props)
    for family in registry.FAMILY_LIST:
        if not family.torch:
            continue
        folder = f"reports/plots/{family.name}"
        declared = [p for path, ps in read.items() if path.startswith(folder) for p in ps]
        assert declared, f"no loss plot for {family.name} in dvc.yaml"
        assert all(props["x"] == "epoch" and props["y"] for props in declared), family.name
