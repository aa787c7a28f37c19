"""Fingerprint the float results of every numerical library the families use.

    python -m mlfund.kernel_check            # one JSON line per workload: its result's digest
    python -m mlfund.kernel_check --compare reports/kernel_check.json   # make kernel-check
    python -m mlfund.kernel_check --table reports/kernel_check.json     # its table again

Each workload is small, seeded and exercises one kernel family: NumPy's SIMD loops,
OpenBLAS matmul, LAPACK, scikit-learn's OpenMP t-SNE, PyTorch's matmul (MKL), convolutions
and LSTMs (oneDNN) and elementwise ops, and a few Adam steps of a CNN through all of them.
Equal digests on two CPUs mean the same bits. `make kernel-check` runs it natively and
under qemu's AVX2-only CPU models (Intel Haswell, AMD EPYC), with and without the pin of
`mlfund.core.kernels`, and prints which results the pin makes CPU-independent. (Importing
`mlfund.kernel_check` imports `mlfund` first, which pins before NumPy loads.)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mlfund.core import kernels


def _digest(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()[:12]


def _numpy_simd() -> np.ndarray:
    x = np.random.default_rng(0).normal(size=100_000)
    return np.stack([np.exp(x), np.log1p(np.abs(x)), np.tanh(x), np.sin(x)]).sum(axis=0)


def _openblas_matmul() -> np.ndarray:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(257, 311)), rng.normal(size=(311, 129))
    return a @ b


def _lapack_lstsq() -> np.ndarray:
    import scipy.linalg

    rng = np.random.default_rng(2)
    return scipy.linalg.lstsq(rng.normal(size=(400, 30)), rng.normal(size=400))[0]


def _sklearn_tsne() -> np.ndarray:
    from sklearn.manifold import TSNE

    x = np.random.default_rng(3).normal(size=(300, 10))
    return TSNE(n_components=2, perplexity=20, random_state=0, max_iter=250).fit_transform(x)


def _torch(build: Callable[[object], object]) -> Callable[[], np.ndarray]:
    def workload() -> np.ndarray:
        import torch

        torch.manual_seed(0)
        return build(torch).detach().numpy()  # type: ignore[attr-defined]

    return workload


def _torch_matmul(torch):
    return torch.randn(257, 311) @ torch.randn(311, 129)


def _torch_elementwise(torch):
    x = torch.randn(100_000)
    return torch.softmax(x, 0) + torch.exp(x).cumsum(0) / x.numel() + torch.tanh(x).sum()


def _torch_conv(torch):
    conv = torch.nn.Conv2d(3, 16, 3, padding=1)
    return conv(torch.randn(8, 3, 32, 32))


def _torch_lstm(torch):
    lstm = torch.nn.LSTM(16, 32, batch_first=True)
    return lstm(torch.randn(8, 20, 16))[0]


def _torch_cnn_adam(torch):
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(8 * 4 * 4, 10),
    )  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
    for _ in range(20):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


WORKLOADS: dict[str, Callable[[], np.ndarray]] = {
    "numpy simd (exp, log1p, tanh, sin)": _numpy_simd,
    "numpy matmul (OpenBLAS)": _openblas_matmul,
    "scipy lstsq (LAPACK)": _lapack_lstsq,
    "sklearn t-SNE (OpenMP)": _sklearn_tsne,
    "torch matmul (MKL)": _torch(_torch_matmul),
    "torch softmax, exp, cumsum (ATen)": _torch(_torch_elementwise),
    "torch conv2d (oneDNN)": _torch(_torch_conv),
    "torch LSTM": _torch(_torch_lstm),
    "torch CNN, 20 Adam steps": _torch(_torch_cnn_adam),
}


def fingerprint(names: list[str]) -> None:
    """Print one JSON line per workload as it finishes (a crash loses only the next one)."""
    import torch

    torch.set_num_threads(2)  # the default compute.threads; reductions split by thread
    for name in names:
        print(json.dumps({name: _digest(WORKLOADS[name]())}), flush=True)


# qemu's user-mode emulator runs this same Python on a CPU model without AVX-512, so one
# machine can show what an AVX2 Intel and an AVX2 AMD CPU would compute.
QEMU_CPUS = ("Haswell", "EPYC")
CRASHED = "crashed"  # qemu does not emulate every instruction that JIT-compiled kernels use


def _run(cpu: str | None, pinned: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in kernels.PINNED}
    env["MLFUND_NATIVE_KERNELS"] = "0" if pinned else "1"
    prefix = [] if cpu is None else ["qemu-x86_64", "-cpu", cpu]
    digests: dict[str, str] = {}
    while len(digests) < len(WORKLOADS):
        left = [name for name in WORKLOADS if name not in digests]
        command = [*prefix, sys.executable, "-m", "mlfund.kernel_check", *left]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        for line in done.stdout.splitlines():
            digests.update(json.loads(line))
        if done.returncode != 0:
            digests.setdefault(left[len(done.stdout.splitlines())], CRASHED)
    return digests


def compare() -> dict[str, dict]:
    """Digests on this CPU and on every qemu CPU model, with the pin and without."""
    cpus: list[str | None] = [None]
    if shutil.which("qemu-x86_64"):
        cpus += QEMU_CPUS
    else:
        print("qemu-x86_64 not found (apt install qemu-user): native runs only", file=sys.stderr)
    return {
        mode: {cpu or "native": _run(cpu, pinned) for cpu in cpus}
        for mode, pinned in (("pinned", True), ("native kernels", False))
    }


# Columns of the table: which CPUs must agree. This CPU is an Intel one with AVX-512.
GROUPS = {"Intel (AVX-512, Haswell)": ("native", "Haswell"), "Intel and AMD (EPYC)": QEMU_CPUS}


def table(digests: dict[str, dict]) -> str:
    """Per workload and CPU group: the same bits with native kernels, and pinned."""

    def cell(mode: str, name: str, group: tuple[str, ...]) -> str:
        runs = [digests[mode][cpu][name] for cpu in ("native", *group) if cpu in digests[mode]]
        if CRASHED in runs:
            return "qemu crashed"
        return "same" if len(set(runs)) == 1 else "DIFFER"

    width = max(map(len, WORKLOADS))
    header = [f"{mode}: {group}" for mode in digests for group in GROUPS]
    lines = [" | ".join([f"{'same bits across CPUs?':{width}}", *header])]
    for name in WORKLOADS:
        cells = [
            f"{cell(mode, name, cpus):{len(head)}}"
            for (mode, (_, cpus)), head in zip(
                ((m, g) for m in digests for g in GROUPS.items()), header, strict=True
            )
        ]
        lines.append(" | ".join([f"{name:{width}}", *cells]))
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--compare"]:
        outcome = compare()
        if len(sys.argv) > 2:
            Path(sys.argv[2]).write_text(json.dumps(outcome, indent=2) + "\n")
        print(table(outcome))
    elif sys.argv[1:2] == ["--table"]:
        print(table(json.loads(Path(sys.argv[2]).read_text())))
    else:
        fingerprint(sys.argv[1:] or list(WORKLOADS))
