"""What a training loop shows while it runs, and the one line each trained model ends with.

On a terminal, tqdm's bar, gone when the model is done. Elsewhere (a `dvc queue` log, CI,
a pipe) a bar shows nothing, so `EpochProgress` logs a line instead: the first and the last
epoch, and every tenth of the epochs or every 30 seconds, whichever comes first. The
stages print it as

    INFO mlfund.deep.progress: rnn/lstm epoch 8/20 train_loss=0.01123 val_loss=0.01187 (3.1 s)
    INFO mlfund.deep.progress: rnn/lstm trained: device=cpu precision=fp32 epochs=20 \
best_epoch=17 val_loss=0.01102 seconds=7.9

Epochs in progress lines count from 1 ("8 of 20 done"); `best_epoch`, like the metric of
that name, MLflow's steps and the history CSVs, counts from 0.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlfund.deep.device import Compute

log = logging.getLogger(__name__)

LINES_PER_MODEL = 10  # without a terminal: a line every tenth of the epochs ...
EVERY_SECONDS = 30.0  # ... or after this many seconds without one, whichever comes first


def _numbers(values: Mapping[str, float]) -> str:
    return " ".join(f"{key}={value:.4g}" for key, value in values.items())


class EpochProgress:
    """Per-epoch progress of one model `name` over at most `epochs` epochs.

    `update(epoch, values)` after each epoch (from 0); `close()` when the loop ends, also
    early: without a terminal it logs the last epoch run if that line is still due.
    `terminal` defaults to whether stderr is a TTY, where tqdm draws.
    """

    def __init__(
        self,
        name: str,
        epochs: int,
        *,
        every_epochs: int | None = None,
        every_seconds: float = EVERY_SECONDS,
        terminal: bool | None = None,
    ) -> None:
        self.name, self.epochs = name, epochs
        self.every_epochs = every_epochs or max(1, math.ceil(epochs / LINES_PER_MODEL))
        self.every_seconds = every_seconds
        self.start = self._logged_at = time.perf_counter()
        self._last: tuple[int, Mapping[str, float]] | None = None
        self._logged = -1  # the last epoch that has its line
        self._bar = None
        if sys.stderr.isatty() if terminal is None else terminal:
            from tqdm import tqdm

            self._bar = tqdm(total=epochs, unit="epoch", leave=False, desc=name)

    def update(self, epoch: int, values: Mapping[str, float]) -> None:
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix({key: f"{value:.4g}" for key, value in values.items()})
            return
        self._last = (epoch, values)
        now = time.perf_counter()
        if (
            epoch == 0
            or epoch + 1 == self.epochs
            or (epoch + 1) % self.every_epochs == 0
            or now - self._logged_at >= self.every_seconds
        ):
            self._log(epoch, values, now)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._last is not None and self._last[0] != self._logged:
            self._log(*self._last, time.perf_counter())

    def _log(self, epoch: int, values: Mapping[str, float], now: float) -> None:
        log.info(
            "%s epoch %d/%d %s (%.1f s)",
            self.name,
            epoch + 1,
            self.epochs,
            _numbers(values),
            now - self.start,
        )
        self._logged, self._logged_at = epoch, now


def log_trained(
    name: str,
    compute: Compute,
    *,
    epochs_run: int,
    best_epoch: int,
    scores: Mapping[str, float],
    seconds: float,
) -> None:
    """The summary line of a trained model: device, precision, epochs run, the kept epoch
    (-1: none, no validation, the last weights were kept), `scores` at it, wall seconds."""
    kept = "best_epoch=none" if best_epoch < 0 else f"best_epoch={best_epoch}"
    log.info(
        "%s trained: device=%s precision=%s epochs=%d %s %s seconds=%.1f",
        name,
        compute.device,
        compute.precision,
        epochs_run,
        kept,
        _numbers(scores),
        seconds,
    )
