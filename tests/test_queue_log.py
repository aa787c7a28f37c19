"""A `dvc queue` experiment's log shows each model's epochs and its summary line: the
worker's output is no terminal, so `fit` logs instead of drawing tqdm's bar (issue 12).
Works on a copy of the reproduced e2e project, which it then leaves as it was."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from tests.e2e import dvc

pytestmark = pytest.mark.e2e

EXPERIMENT = "queued-rnn"
CELLS = ("rnn", "lstm", "gru")


def queue_log(work: Path, name: str, timeout: float = 600.0) -> str:
    """Start the queue's worker, wait for experiment `name` to end, return its log."""
    dvc(work, "queue", "start")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = dvc(work, "queue", "status").stdout
        row = next((line for line in status.splitlines() if f" {name} " in line), "")
        if re.search(r"\b(Success|Failed)\b", row):
            return dvc(work, "queue", "logs", name).stdout
        time.sleep(2)
    pytest.fail(f"{name} did not finish in {timeout:.0f} s:\n{status}")


def check_epoch_lines(log: str, epochs: int) -> None:
    for cell in CELLS:
        model = f"rnn/{cell}"
        for epoch in range(1, epochs + 1):  # few epochs: every one has its line
            assert f"INFO mlfund.deep.progress: {model} epoch {epoch}/{epochs} train_loss=" in log
        summary = rf"INFO mlfund\.deep\.progress: {model} trained: device=cpu precision=fp32 "
        summary += rf"epochs={epochs} best_epoch=\d+ val_loss=\S+ seconds=\d+\.\d"
        assert re.search(summary, log), log


def test_a_queued_experiment_logs_every_epoch(e2e_project: Path, tmp_path: Path) -> None:
    work = tmp_path / "repo"
    shutil.copytree(e2e_project, work, symlinks=True)
    dvc(work, "exp", "run", "--queue", "-s", "train@rnn", "-S", "rnn.epochs=2", "-n", EXPERIMENT)
    check_epoch_lines(queue_log(work, EXPERIMENT), epochs=2)
