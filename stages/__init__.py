"""One module per DVC stage: read params, call the library, write outputs, log.

A stage imports the library of the checkout it belongs to, not whatever `mlfund` the
environment holds: a queued `dvc exp run` executes in a temporary copy of the repository,
and its code (possibly edited since) must be the code that copy records in dvc.lock,
not the user's working tree that an editable install or PYTHONPATH points at.
"""

import sys
from pathlib import Path

_SOURCE = str(Path(__file__).resolve().parents[1] / "src")
if sys.path[:1] != [_SOURCE]:
    sys.path.insert(0, _SOURCE)

import mlfund  # noqa: E402, F401  (first: pins the numerical kernels before NumPy loads)
