"""Where and how a PyTorch stage computes: device, precision and threads from params."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from mlfund.core.errors import DeviceError

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _available(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return torch.backends.mps.is_available()
    return kind == "cpu"


def resolve_device(requested: str, key: str = "compute.device") -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an explicit device must exist.

    Asking for cuda on a machine without one is an error, never a silent CPU run: a sweep
    that meant to use a GPU should fail loudly rather than take hours.
    """
    if requested == "auto":
        return torch.device(next(k for k in ("cuda", "mps", "cpu") if _available(k)))
    if requested not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"unknown device {requested!r}; expected auto, cpu, cuda or mps")
    if not _available(requested):
        raise DeviceError(
            f"{key} is {requested!r} but no {requested} device is available here; "
            "use device: auto or cpu"
        )
    return torch.device(requested)


@dataclass(frozen=True)
class Compute:
    device: torch.device
    precision: str  # what actually runs: fp32 on CPU whatever was asked

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision on GPU when asked; a no-op on CPU (fp32)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=AUTOCAST_DTYPES[self.precision])

    def describe(self) -> dict[str, str]:
        return {
            "device": str(self.device),
            "precision": self.precision,
            "threads": str(torch.get_num_threads()),
        }


def setup_compute(
    device: str, precision: str, threads: int, key: str = "compute.device"
) -> Compute:
    """Resolve the device, set CPU threads, and the precision that will really be used.

    `key` is the params key the device came from, for the error message."""
    resolved = resolve_device(device, key)
    if threads > 0:
        torch.set_num_threads(threads)
    if resolved.type == "cuda":
        torch.backends.cudnn.benchmark = False  # deterministic algorithm choice
    effective = precision if resolved.type != "cpu" else "fp32"
    return Compute(resolved, effective)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[torch.Generator]:
    """A generator for DataLoader shuffling and augmentation, plus torch's global seed for
    parameter init and dropout (nn.Module init has no generator argument)."""
    torch.manual_seed(seed)
    yield torch.Generator().manual_seed(seed)
