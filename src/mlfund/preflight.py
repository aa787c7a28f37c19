"""Checks of params.yaml beyond its schema, run by check_params before any output is lost.

The schema (`mlfund.core.config`) knows types and ranges of single keys; these checks need
the library's own facts (how many engineered features exist, how big a dataset gets) or the
machine's (its devices, its memory, its files). DVC deletes a stage's outputs before running
it, so whatever can be known before training is checked here.

check_params runs before every `dvc repro`, so it stays fast: torch is imported only when a
key asks for an accelerator, for the ResNet-18 weights or for several training processes,
never for the defaults.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlfund.core.config import Params
from mlfund.core.errors import DeviceError
from mlfund.core.registry import FAMILY_LIST
from mlfund.core.tables import model_columns, table_sizes

GB = 10**9
# cgroup memory limits (v2, v1) of a container: lower than the machine's RAM when set
CGROUP_LIMITS = (
    Path("/sys/fs/cgroup/memory.max"),
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
)


def problems(params: Params) -> list[str]:
    """One line per problem, each naming its params key; empty when all is well."""
    return [
        *feature_problems(params),
        *device_problems(params),
        *distributed_problems(params),
        *memory_problems(params, memory_bytes()),
        *weights_problems(params),
    ]


def feature_problems(params: Params) -> list[str]:
    found = []
    candidates = len(model_columns(engineered=True))
    for name in ("k_best", "rfe_n_features"):
        value = getattr(params.features, name)
        if value > candidates:
            found.append(f"features.{name} ({value}) exceeds the {candidates} engineered features")
    return found


def device_problems(params: Params) -> list[str]:
    """A cuda or mps device asked for by `compute.device` or a `<family>.device` that this
    machine lacks (auto falls back to the CPU and cpu always exists)."""
    asked = {}  # params key -> device, once per key
    for family in FAMILY_LIST:
        if family.torch:
            device, key = params.device_of(family.name)
            if device not in ("auto", "cpu"):
                asked[key] = device
    if not asked:
        return []
    from mlfund.deep.device import resolve_device  # imports torch (about 2 s)

    found = []
    for key, device in asked.items():
        try:
            resolve_device(device, key)
        except DeviceError as error:
            found.append(str(error))
    return found


def distributed_problems(params: Params) -> list[str]:
    """compute.distributed against each data-parallel family's device: NCCL without CUDA,
    more processes than GPUs, DDP on mps, a batch that does not split over the processes.
    Nothing to check (and no torch import) at the default of one process and backend auto."""
    setting = params.compute.distributed
    if setting.nproc_per_node == 1 and setting.backend == "auto":
        return []
    from mlfund.deep import distributed  # imports torch (about 2 s)
    from mlfund.deep.device import resolve_device

    found = []
    for family in FAMILY_LIST:
        if not family.data_parallel:
            continue
        device, key = params.device_of(family.name)
        try:
            resolved = resolve_device(device, key)
        except DeviceError:
            continue  # device_problems names it
        try:
            distributed.check(setting.nproc_per_node, setting.backend, resolved, key)
        except DeviceError as error:
            found.append(str(error))
        for name, size in batch_sizes(params, family.name).items():
            if size % setting.nproc_per_node:
                found.append(
                    f"{name} ({size}) does not split over {distributed.NPROC_KEY} "
                    f"({setting.nproc_per_node}) processes; make it a multiple"
                )
    return list(dict.fromkeys(found))


def batch_sizes(params: Params, family: str) -> dict[str, int]:
    """The params keys of a family's training batch sizes, with their values."""
    section = getattr(params, family)
    names = [n for n in type(section).model_fields if n.endswith("batch_size")]
    return {f"{family}.{n}": getattr(section, n) for n in names if getattr(section, n)}


def weights_problems(params: Params) -> list[str]:
    """transfer.backbone resnet18_imagenet starts every strategy (from_scratch aside) from
    ImageNet weights, read from transfer.resnet18_weights or the torch hub cache."""
    if params.transfer.backbone != "resnet18_imagenet":
        return []
    from mlfund.families.transfer.model import TransferError, resnet18_weights_path

    try:
        resnet18_weights_path(params.transfer.resnet18_weights)
    except TransferError as error:
        return [str(error)]
    return []


def memory_bytes() -> int | None:
    """This machine's RAM, or its container's memory limit when lower; None if unknown."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows)
        try:
            import psutil
        except ImportError:
            return None
        total = psutil.virtual_memory().total
    for path in CGROUP_LIMITS:
        try:
            limit = path.read_text().strip()
        except OSError:
            continue
        if limit.isdigit():  # "max" when unlimited
            total = min(total, int(limit))
    return total


def memory_problems(params: Params, machine_bytes: int | None) -> list[str]:
    """A dataset of data.* whose estimated peak memory while generate makes it exceeds
    data.memory_limit_gb, or else the machine's memory."""
    limit_gb = params.data.memory_limit_gb
    if limit_gb is not None:
        limit, where = int(limit_gb * GB), f"data.memory_limit_gb ({limit_gb:g} GB)"
    elif machine_bytes is not None:
        limit, where = machine_bytes, f"this machine's memory ({machine_bytes / GB:.1f} GB)"
    else:
        return []
    found = []
    for name, size in table_sizes(params.data).items():
        if size.peak_bytes > limit:
            found.append(
                f"data.{name}.{size.key} ({size.rows}): {size.rows} rows x {size.columns} "
                f"columns need about {_gigabytes(size.peak_bytes)} of memory to generate, more "
                f"than {where}; lower it, or raise data.memory_limit_gb if you know it fits"
            )
    return found


def _gigabytes(n: int) -> str:
    return f"{n / GB:,.1f} GB"
