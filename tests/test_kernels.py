"""The kernel pin: set before NumPy and PyTorch load, in stages and tests, and overridable."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from mlfund.core import kernels

ROOT = Path(__file__).resolve().parents[1]
x86_only = pytest.mark.skipif(
    platform.machine() not in kernels.X86_64, reason="the pin names x86 code paths"
)

# What a stage process sees: the variables, and the code paths the libraries then chose.
PROBE = """
import json, os, sys
import stages  # what `python -m stages.<name>` imports first
import numpy, torch
from numpy._core._multiarray_umath import __cpu_features__ as numpy_features
print(json.dumps({
    "env": {name: os.environ.get(name) for name in sys.argv[1:]},
    "torch": torch.backends.cpu.get_cpu_capability(),
    "numpy_avx512": bool(numpy_features.get("X86_V4")),  # its AVX-512 dispatch level
}))
"""


def _probe(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in kernels.PINNED}
    clean.pop("MLFUND_NATIVE_KERNELS", None)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *kernels.PINNED],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


@x86_only
@pytest.mark.e2e  # an interpreter importing torch, NumPy and sklearn: ~4 s, for make test
def test_a_stage_process_runs_every_library_on_its_avx2_code_path():
    seen = _probe()
    assert seen["env"] == kernels.PINNED
    assert seen["torch"] in ("AVX2", "DEFAULT")  # DEFAULT on a CPU without AVX2
    assert not seen["numpy_avx512"]


@x86_only
@pytest.mark.e2e  # four interpreter processes: ~6 s, for make test, not test-fast
def test_the_environment_wins_and_native_kernels_opt_out():
    assert _probe(OPENBLAS_NUM_THREADS="1")["env"]["OPENBLAS_NUM_THREADS"] == "1"
    native = _probe(MLFUND_NATIVE_KERNELS="1")
    assert set(native["env"].values()) == {None}


def test_the_tests_themselves_run_pinned():
    """conftest imports mlfund before NumPy, so the tests see the stages' kernels."""
    if platform.machine() in kernels.X86_64 and os.environ.get("MLFUND_NATIVE_KERNELS") != "1":
        assert all(os.environ.get(name) for name in kernels.PINNED)
