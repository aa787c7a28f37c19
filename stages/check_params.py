"""Stage check_params: validate all of params.yaml before any other stage runs.

DVC deletes a stage's outputs right before running it, so a stage that found a bad
parameter itself would already have lost its previous outputs. Every stage depends on
this one, which fails first and leaves them all as they were. Its output does not change
with parameter values, so it never re-runs anything downstream by itself.
"""

from __future__ import annotations

from mlfund import preflight
from mlfund.core.config import Params
from mlfund.core.errors import ParamsError
from stages.common import PARAMS_FILE, REPORTS, run_stage, write_json


def main(params: Params) -> None:
    found = preflight.problems(params)
    if found:
        raise ParamsError(f"{PARAMS_FILE}:\n" + "\n".join(f"  {line}" for line in found))
    write_json(
        REPORTS / "params_check.json", {"valid": True, "sections": sorted(Params.model_fields)}
    )


if __name__ == "__main__":
    run_stage(main)
