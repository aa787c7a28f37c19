"""Stage train@<family>: run one family of the registry and write what it returns.

    python -m stages.train <family>

The family's `run` is pure; stages.family_io does the I/O around it: the tables it reads,
its device, then its models, figures, plot tables and metrics to files and MLflow.
"""

from __future__ import annotations

import sys

from mlfund.core import registry
from mlfund.core.config import Params
from stages.common import run_stage
from stages.family_io import FamilyOutputs, StageInputs, family_compute, tracker, write_result


def main(params: Params) -> None:
    family = registry.get(sys.argv[1])
    compute = family_compute(params, family.name) if family.torch else None
    result = family.run(family.section(params), StageInputs(), compute)
    write_result(result, FamilyOutputs(family.name), tracker(family.name, params))


if __name__ == "__main__":
    run_stage(main)
