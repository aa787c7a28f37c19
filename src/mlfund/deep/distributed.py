"""Data-parallel training on several processes: PyTorch DDP, launched by torchrun.

How a family trains on N processes (`compute.distributed.nproc_per_node: N`):

1. The stage process checks the setting (`check`) and starts itself again as N workers
   under `python -m torch.distributed.run --standalone` (`launch_command`, `relaunch`);
   it waits, and a failed worker fails the stage (`DistributedError`).
2. Each worker finds RANK / WORLD_SIZE / LOCAL_RANK in its environment (`launched`), joins
   the process group (`process_group`: gloo on CPU, NCCL on CUDA with one GPU per local
   rank, `timeout_seconds` on the rendezvous and on every collective) and runs the family's
   pure `run` as in one process.
3. `deep.training.train_model` sees the process group (`active`): each rank reads its
   share of every batch (`ShardedSampler`), trains a DDP replica (`replicate`, which
   averages gradients), and the losses that steer training are agreed over the ranks
   (`mean_over_ranks`, `agreed`), so every rank stops at the same epoch.
4. Rank 0 alone writes models, figures, metrics and MLflow runs (`is_rank0`).

Multi-node: run the same `torchrun --nnodes ... --rdzv-backend c10d --rdzv-endpoint
host:port -m stages.train <family>` on every node (README); the workers take their ranks
from the environment as above.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler

from mlfund.core.errors import DeviceError, MlfundError

if TYPE_CHECKING:
    from mlfund.core.config import DistributedParams

log = logging.getLogger(__name__)

NPROC_KEY = "compute.distributed.nproc_per_node"
BACKEND_KEY = "compute.distributed.backend"
WORKER_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")  # set by torchrun for each worker


class DistributedError(MlfundError, RuntimeError):
    """A worker failed, or the process group could not run what was asked."""


# ---------------------------------------------------------------- setting and launch
def check(nproc: int, backend: str, device: torch.device, device_key: str) -> str:
    """The process-group backend for `device`, or a `DeviceError` naming the params key
    this machine cannot run: NCCL without CUDA, more processes than GPUs, or a device
    DDP does not train on. `device_key` is where the device came from (`cnn.device`)."""
    if backend == "nccl" and device.type != "cuda":
        raise DeviceError(
            f"{BACKEND_KEY} is nccl but training runs on {device.type} ({device_key}): "
            "NCCL runs on CUDA GPUs only; use backend auto or gloo"
        )
    if backend == "nccl" and not dist.is_nccl_available():
        raise DeviceError(f"{BACKEND_KEY} is nccl but this PyTorch build has no NCCL")
    if nproc > 1 and device.type not in ("cpu", "cuda"):
        raise DeviceError(
            f"{NPROC_KEY} is {nproc} but DDP trains on cpu or cuda, and {device_key} "
            f"gives {device.type}"
        )
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    if device.type == "cuda" and nproc > gpus:
        raise DeviceError(
            f"{NPROC_KEY} is {nproc} but this machine has {gpus} CUDA GPU(s) "
            f"({device_key} is cuda): one process per GPU, so at most {gpus}"
        )
    if backend == "auto":
        return "nccl" if device.type == "cuda" and dist.is_nccl_available() else "gloo"
    return backend


def launched() -> bool:
    """Whether this process is one of torchrun's workers."""
    return all(name in os.environ for name in WORKER_ENV)


def train_ranks(
    train: Callable[[bool], None],
    data_parallel: bool,
    target: Sequence[str],
    setting: DistributedParams,
    device: torch.device,
    device_key: str,
) -> None:
    """Run this process's part of a family's training: `train(write)` in this process, or
    as one of torchrun's workers (rank 0 alone writes), or relaunch `target` (this stage's
    `-m module args`) as `setting.nproc_per_node` workers and wait for them."""
    workers = launched()  # torchrun started this process: it is one rank
    if not data_parallel:
        if workers:
            raise DistributedError(f"{shlex.join(target)} does not train data-parallel")
        return train(True)
    nproc = 1 if workers else setting.nproc_per_node  # workers: torchrun chose the count
    backend = check(nproc, setting.backend, device, device_key)
    if workers:
        with process_group(backend, device, setting.timeout_seconds):
            return train(is_rank0())
    if nproc > 1:
        return relaunch(nproc, target, setting.timeout_seconds)
    return train(True)


def launch_command(nproc: int, target: Sequence[str], timeout: int) -> list[str]:
    """torchrun on this machine alone: `nproc` workers each running `target` (a script
    and its arguments, or `-m module args`). A failed worker fails the run at once (no
    elastic restarts); the rendezvous gives up after `timeout` seconds."""
    return [
        *(sys.executable, "-m", "torch.distributed.run", "--standalone"),
        *("--nproc-per-node", str(nproc), "--max-restarts", "0"),
        *("--rdzv-conf", f"join_timeout={timeout}"),
        *target,
    ]


def relaunch(nproc: int, target: Sequence[str], timeout: int) -> None:
    """Run `target` as `nproc` workers under torchrun and wait; workers write to this
    process's stdout and stderr. Raises `DistributedError` when any of them failed."""
    command = launch_command(nproc, target, timeout)
    log.info("training on %d processes: %s", nproc, shlex.join(command))
    with subprocess.Popen(command) as process:
        try:
            code = process.wait()
        except BaseException:  # Ctrl-C: torchrun stops its workers on SIGTERM
            process.terminate()
            process.wait()
            raise
    if code != 0:
        raise DistributedError(
            f"training on {nproc} processes ({NPROC_KEY}) failed: torchrun exited with "
            f"status {code}; its 'Root Cause' above names the first rank that failed"
        )


@contextmanager
def process_group(backend: str, device: torch.device, timeout: int) -> Iterator[None]:
    """Join torchrun's process group (its env:// rendezvous) for the block, then leave it.

    On CUDA each worker takes the GPU of its local rank. `timeout` bounds every collective:
    a rank that dies or hangs makes the others fail instead of waiting forever. Ranks
    other than 0 log warnings only, so progress lines are not repeated N times."""
    local = int(os.environ["LOCAL_RANK"])
    if device.type == "cuda":
        torch.cuda.set_device(local)
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout))
    if dist.get_rank() != 0:
        logging.getLogger("mlfund").setLevel(logging.WARNING)
    log.info("process group: %d ranks, %s on %s", dist.get_world_size(), backend, device.type)
    try:
        yield
    finally:
        dist.destroy_process_group()


# ---------------------------------------------------------------- ranks
def active() -> bool:
    """Whether this process is in a process group (training is data-parallel)."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_rank0() -> bool:
    """Whether this process writes outputs: rank 0, or the only process."""
    return not active() or dist.get_rank() == 0


def _scalar(value: float) -> torch.Tensor:
    # NCCL reduces CUDA tensors only; float64 so a mean of equal values stays exact
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    return torch.tensor([value], dtype=torch.float64, device=device)


def mean_over_ranks(value: float) -> float:
    """The mean of `value` over the ranks (each rank's mean training loss over its equal
    share: the epoch's mean over all samples); `value` itself in one process."""
    if not active():
        return value
    total = _scalar(value)
    dist.all_reduce(total)  # SUM: gloo has no AVG
    return total.item() / dist.get_world_size()


def agreed(value: float) -> float:
    """Rank 0's `value` on every rank: the validation loss that picks the kept epoch and
    stops training early, so that no rank stops alone and leaves the others waiting."""
    if not active():
        return value
    shared = _scalar(value)
    dist.broadcast(shared, src=0)
    return shared.item()


# ---------------------------------------------------------------- data
class ShardedSampler(DistributedSampler):
    """This rank's share of the single-process loader's order.

    Each epoch's order is what `DataLoader(shuffle=True, generator=g)` of one process
    draws (a `RandomSampler` on the same seeded generator, identical on every rank); rank
    r takes positions r, r + W, r + 2W ... as `DistributedSampler` does. With a per-rank
    batch of b / W, step k of the W ranks together reads exactly the single-process batch
    k (positions kb .. kb + b - 1), so N processes train on the batches one process would.
    The stock sampler reseeds each epoch with seed + epoch instead, a different order from
    the single-process run's; here the epochs advance the seeded generator, so `set_epoch`
    changes nothing. The order is padded with its first indices to a multiple of W, as
    `DistributedSampler` pads it (`drop_last=False`), so every rank gets as many rows and
    batches: an augmentation drawing from the same generator (`train_model(augment=)`)
    draws as many numbers on every rank, and the orders stay the same over the ranks.
    """

    def __init__(
        self,
        dataset: Dataset,
        generator: torch.Generator,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        super().__init__(dataset, num_replicas, rank, shuffle=True, drop_last=False)
        self.order = RandomSampler(dataset, generator=generator)

    def __iter__(self) -> Iterator[int]:
        indices = list(self.order)  # draws from the shared generator: same on every rank
        repeats = math.ceil(self.total_size / len(indices))
        indices = (indices * repeats)[: self.total_size]
        return iter(indices[self.rank : self.total_size : self.num_replicas])


def sharded_loader(dataset: Dataset, batch_size: int, generator: torch.Generator) -> DataLoader:
    """This rank's loader: `batch_size / W` rows of each global batch of `batch_size`."""
    replicas = world_size()
    if batch_size % replicas:
        raise DistributedError(
            f"a batch of {batch_size} does not split evenly over {replicas} processes; "
            f"make the family's batch size a multiple of {NPROC_KEY} (times the nodes)"
        )
    sampler = ShardedSampler(dataset, generator)
    # the generator again: the loader draws its worker base seed from it, as in one process
    return DataLoader(dataset, batch_size // replicas, sampler=sampler, generator=generator)


def start_epoch(loader: DataLoader, epoch: int) -> None:
    """`set_epoch` on a distributed sampler (the stock one reshuffles by it)."""
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)


# ---------------------------------------------------------------- model
class Replica(DistributedDataParallel):
    """A DDP replica that remembers the BatchNorm layers it swapped for SyncBatchNorm, so
    that `unwrap` hands back the model as it was built (and as `build_cnn` rebuilds it)."""

    def __init__(self, module: nn.Module, device: torch.device, batchnorms: dict) -> None:
        ids = [torch.cuda.current_device()] if device.type == "cuda" else None
        super().__init__(module, device_ids=ids)  # broadcasts rank 0's weights
        self.batchnorms = batchnorms  # name -> the original BatchNorm module


def replicate(model: nn.Module, device: torch.device) -> nn.Module:
    """`model` as a DDP replica inside a process group; `model` itself otherwise.

    BatchNorm: on CUDA with NCCL its layers become SyncBatchNorm (batch statistics over
    the whole global batch, as in one process). SyncBatchNorm needs CUDA, so on CPU (gloo)
    each rank normalises with the statistics of its own share of the batch, and DDP
    copies rank 0's running statistics to every rank before each step; the training then
    differs from one process's (smaller batches for the statistics)."""
    if not active():
        return model
    batchnorms = {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and name
    }
    if batchnorms and device.type == "cuda" and dist.get_backend() == "nccl":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    elif batchnorms:
        _batchnorm_per_rank(dist.get_world_size())
        batchnorms = {}
    return Replica(model, device, batchnorms)


@functools.cache  # once per process, not once per trained model
def _batchnorm_per_rank(ranks: int) -> None:
    log.info(
        "BatchNorm per rank: SyncBatchNorm needs CUDA and NCCL, so each of the %d ranks "
        "normalises with the statistics of its own share of the batch",
        ranks,
    )


def module_of(model: nn.Module) -> nn.Module:
    """The model inside a replica (evaluation runs on it: no collectives)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def unwrap(model: nn.Module) -> nn.Module:
    """The trained model out of its replica, with its own BatchNorm layers back."""
    if isinstance(model, Replica):
        return restore_batchnorm(model.module, model.batchnorms)
    return module_of(model)


def restore_batchnorm(model: nn.Module, batchnorms: dict[str, nn.Module]) -> nn.Module:
    """Put each original BatchNorm of `batchnorms` (name -> module) back in place of the
    SyncBatchNorm that replaced it, holding the trained weights and running statistics:
    the synced layer's own tensors (it shares the weights with the original, but a
    `.to()` after the swap gave it new buffers)."""
    for name, original in batchnorms.items():
        synced = model.get_submodule(name)
        for key, parameter in synced.named_parameters(recurse=False):
            original.register_parameter(key, parameter)
        for key, buffer in synced.named_buffers(recurse=False):
            original.register_buffer(key, buffer)
        original.train(synced.training)
        model.set_submodule(name, original)
    return model
