"""Stage train@<family>: run one family of the registry and write what it returns.

    python -m stages.train <family>

The family's `run` is pure; stages.family_io does the I/O around it: the tables it reads,
its device, then its models, figures, plot tables and metrics to files and MLflow. A
data-parallel family with `compute.distributed.nproc_per_node` > 1 starts this stage
again as torchrun's workers, and rank 0 alone writes (`mlfund.deep.distributed`).
"""

from __future__ import annotations

import sys
from contextlib import nullcontext
from functools import partial
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
    if not family.torch:
        return train(params, family, None)
    from mlfund.deep import distributed

    compute = family_compute(params, family.name)
    distributed.train_ranks(
        partial(train, params, family, compute),
        family.data_parallel,
        ["-m", "stages.train", family.name],
        params.compute.distributed,
        compute.device,
        params.device_of(family.name)[1],
    )


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
