"""The errors a stage turns into a one-line message and an exit code, with no traceback.

They sit at the bottom of the library (they import only the standard library), so that
any stage can catch them all without importing torch or MLflow; `stages.common.run_stage`
maps them to exit codes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class MlfundError(Exception):
    """An expected failure whose message tells the user what to change."""

    exit_code = 1


class ParamsError(MlfundError, ValueError):
    """params.yaml is invalid; the message names every bad key path."""

    exit_code = 2


class DeviceError(MlfundError, RuntimeError):
    """The requested device is not available; the message names the params key."""

    exit_code = 2


class TrackingUnavailable(MlfundError, RuntimeError):
    """The MLflow tracking server did not answer."""


class NonFiniteLossError(MlfundError, RuntimeError):
    """The training loss became NaN or infinite."""


class DataUnavailableError(MlfundError, RuntimeError):
    """A dataset or weights file is missing, or its download failed."""


class DatasetError(MlfundError, RuntimeError):
    """A dataset could not be made from its params (out of memory, a value its maker
    rejects); the message names the params section."""


@contextmanager
def diverging(model: str, key: str, value: object) -> Iterator[None]:
    """Inside, a NonFiniteLossError gets the model's name and the params key to change."""
    try:
        yield
    except NonFiniteLossError as error:
        raise NonFiniteLossError(
            f"{model}: {error} ({key} is {value}); no model was written"
        ) from None
