"""The same float results on any x86-64 CPU with AVX2: pin the numerical libraries' kernels.

NumPy, OpenBLAS, MKL, oneDNN and PyTorch's own vectorized code each pick their kernels at
load time from the CPU's instruction set (and MKL from its vendor). AVX-512 kernels sum in
another order than AVX2 ones, so the same seed gives different last bits on an AVX-512
Xeon and on an AVX2 EPYC, and early stopping turns last bits into other epochs and other
accuracies. Capping every library at the AVX2 code path, and BLAS at a fixed number of
threads, makes the committed metrics reproducible on any machine CI may land on.

The libraries read these variables once, when they load, so `pin()` must run before NumPy
or PyTorch is imported: importing `mlfund` calls it, and `stages/__init__.py` and the tests'
conftest import `mlfund` first thing.
Values already in the environment win, and `MLFUND_NATIVE_KERNELS=1` skips the pin (the
fastest kernels, results tied to this CPU). `python -m mlfund.kernel_check` shows the
effect; see the README's "Reproducible on any CPU".
"""

from __future__ import annotations

import os
import platform

# One code path per library, checked by `python -m mlfund.kernel_check --compare` under
# qemu's Haswell and EPYC CPU models (reports/kernel_check.json).
PINNED = {
    "ATEN_CPU_CAPABILITY": "avx2",  # PyTorch's vectorized elementwise ops and reductions
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN: PyTorch's CPU convolutions and LSTMs
    "MKL_CBWR": "AVX2,STRICT",  # MKL (PyTorch's matmul): one code path, also on AMD CPUs
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "OPENBLAS_CORETYPE": "Haswell",  # NumPy's and SciPy's OpenBLAS: the AVX2 kernels
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # NumPy's own SIMD loops
    # BLAS splits reductions by thread; its default is the machine's core count
    "OPENBLAS_NUM_THREADS": "2",
}


X86_64 = ("x86_64", "AMD64")  # the variables name x86 code paths; ARM CPUs have their own

# Not a kernel choice and no result changes, only who gets the CPU: by default the OpenMP
# threads of PyTorch's intra-op pool spin between parallel regions, on the core another
# process needs. 300 steps of a small conv net on 2 threads, both cores busy elsewhere
# (CI's repro beside the tests, `dvc queue start -j 2`): 42.7 s spinning, 0.93 s passive;
# alone on a quiet machine, 1.67 s and 1.03 s. Every platform.
PASSIVE_THREADS = {"OMP_WAIT_POLICY": "PASSIVE"}


def pin() -> None:
    """Set the pinning variables (and OpenMP's passive wait) the environment does not
    already set."""
    for name, value in PASSIVE_THREADS.items():
        os.environ.setdefault(name, value)
    if os.environ.get("MLFUND_NATIVE_KERNELS") == "1" or platform.machine() not in X86_64:
        return
    for name, value in PINNED.items():
        os.environ.setdefault(name, value)
