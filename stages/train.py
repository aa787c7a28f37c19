"""Stage train@<family>: run one family of the registry and write what it returns.

    python -m stages.train <family>

The family's `run` is pure; stages.family_io does the I/O around it: the tables it reads,
its device, then its models, figures, plot tables and metrics to files and MLflow.

A data-parallel family (cnn, transfer) with `compute.distributed.nproc_per_node` > 1
starts this stage again as that many torchrun workers and waits for them; each worker
trains its share, and rank 0 alone writes (`mlfund.deep.distributed`).
"""

from __future__ import annotations

import sys
from contextlib import nullcontext
from typing import TYPE_CHECKING

from mlfund.core import registry
from mlfund.core.config import Params
from mlfund.core.registry import Family
from stages.common import run_stage
from stages.family_io import FamilyOutputs, StageInputs, family_compute, tracker, write_result

if TYPE_CHECKING:
    from mlfund.deep.device import Compute


def main(params: Params) -> None:
    family = registry.get(sys.argv[1])
    compute = family_compute(params, family.name) if family.torch else None
    if compute is None:
        return train(params, family, compute)
    from mlfund.deep import distributed

    setting, (_, device_key) = params.compute.distributed, params.device_of(family.name)
    workers = distributed.launched()  # torchrun started this process: it is one rank
    if not distributed.data_parallel(family.module):
        if workers:
            raise distributed.DistributedError(f"{family.name} does not train data-parallel")
        return train(params, family, compute)
    nproc = 1 if workers else setting.nproc_per_node  # workers: torchrun chose the count
    backend = distributed.check(nproc, setting.backend, compute.device, device_key)
    if workers:
        with distributed.process_group(backend, compute.device, setting.timeout_seconds):
            return train(params, family, compute, write=distributed.is_rank0())
    if nproc > 1:  # start this stage again as torchrun's workers, and wait for them
        target = ["-m", "stages.train", family.name]
        return distributed.relaunch(nproc, target, setting.timeout_seconds)
    return train(params, family, compute)


def train(params: Params, family: Family, compute: Compute | None, write: bool = True) -> None:
    if not write:  # data-parallel ranks but 0: train their share, log nothing
        family.run(family.section(params), StageInputs(), compute)
        return
    track = tracker(family.name, params)
    # a PyTorch family trains inside a `<family>/training` run sampling system metrics
    with track.training() if family.torch else nullcontext():
        result = family.run(family.section(params), StageInputs(), compute)
        write_result(result, FamilyOutputs(family.name), track)


if __name__ == "__main__":
    run_stage(main)
