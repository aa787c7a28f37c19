"""Pipeline benchmark: cold and no-op `dvc repro` wall times, and each stage's.

Runs in a scratch copy of the working tree with no DVC cache, no outputs and an empty
MLflow store, so "cold" means cold. Usage: `python -m mlfund.bench --output FILE`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from mlfund.core.config import Params, load_params

# Outputs, caches and environments (relative to the repository): what a cold run must not find.
_NOT_COPIED = {
    ".venv",
    "data",
    "models",
    "mlruns",
    "mlflow.db",
    "optuna.db",
    "dvc_plots",
    ".dvc/cache",
    ".dvc/tmp",
    "reports/figures",
    "reports/train",
    "reports/validation/docs",
    "reports/validation/results",
    "reports/report.md",
    "reports/report.html",
}
_NEVER_COPIED = {"__pycache__", ".pytest_cache", ".ruff_cache"}


def copy_workspace(source: Path, target: Path) -> Path:
    """Copy the working tree (with .git, without outputs or caches) to `target`."""

    def ignored(folder: str, names: list[str]) -> set[str]:
        here = Path(folder).relative_to(source)
        return {n for n in names if n in _NEVER_COPIED or (here / n).as_posix() in _NOT_COPIED}

    shutil.copytree(source, target, ignore=ignored, symlinks=True)
    return target


def _timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def benchmark(repo: Path, repeats: int = 3) -> dict:
    with tempfile.TemporaryDirectory(prefix="mlfund-bench-") as scratch:
        work = copy_workspace(repo, Path(scratch) / "repo")
        env = {**os.environ, "PYTHONPATH": f"{work / 'src'}:{work}"}
        env.pop("MLFLOW_TRACKING_URI", None)
        dvc = [sys.executable, "-m", "dvc"]
        cold = _timed([*dvc, "repro"], work, env)
        noop = [_timed([*dvc, "repro"], work, env) for _ in range(repeats)]
        # every stage, foreach groups expanded, in dvc.yaml's order: a DAG order, so each
        # forced stage finds its inputs
        listed = subprocess.run(
            [*dvc, "stage", "list", "--name-only"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
        )
        stages = listed.stdout.split()
        per_stage = {
            stage: round(_timed([*dvc, "repro", "--force", "--single-item", stage], work, env), 2)
            for stage in stages
        }
    return {
        "numpy_mlp_vs_torch": mlp_epoch_times(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "cold_repro_seconds": round(cold, 2),
        "noop_repro_seconds": round(statistics.median(noop), 2),
        "stage_seconds": per_stage,
        "note": "stage_seconds include ~0.5 s of DVC start-up each",
    }


def mlp_epoch_times(seed: int = 0) -> list[dict]:
    """Full-batch epoch time of the from-scratch MLP vs the same torch float64 loop."""
    import numpy as np

    from mlfund.numpy_nn.torch_twin import epoch_times

    cases = [(800, 2, (8, 4), 1000), (10_000, 20, (64, 32), 100)]  # the curriculum's, a bigger one
    rng = np.random.default_rng(seed)
    results = []
    for n, d, hidden, epochs in cases:
        x = rng.standard_normal((n, d))
        y = (x[:, 0] * x[:, 1] > 0).astype(int)  # not linearly separable
        timing = epoch_times(x, y, hidden, epochs, seed)
        results.append({"n": n, "d": d, "hidden": list(hidden), "epochs": epochs, **timing})
    return results


def cnn_throughput(params: Params, digits: pd.DataFrame) -> dict:
    """Training images/s of our CNN loop vs the curriculum's plain loop, same run, on the
    digits split table (data/split/digits.parquet)."""
    import torch

    from mlfund.deep.cnn import digits_config
    from mlfund.deep.cnn_bench import benchmark_training_loops
    from mlfund.deep.device import setup_compute

    p, c = params.cnn, params.compute
    table = digits
    pixels = [f"x{i}" for i in range(64)]

    def tensors(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        rows = table[table["split"] == split]
        return (
            torch.tensor(rows[pixels].to_numpy(), dtype=torch.float32),
            torch.tensor(rows["y"].to_numpy(), dtype=torch.int64),
        )

    train, val = tensors("train"), tensors("val")
    threads = c.threads if p.threads is None else p.threads
    compute = setup_compute(p.device or c.device, c.precision, threads)
    config = digits_config(train[0].numpy(), p.image_size, p.channels, p.fc_size, p.dropout)
    return benchmark_training_loops(
        config,
        train,
        val,
        compute,
        threads=threads,
        batch_size=p.batch_size,
        learning_rate=p.learning_rate,
        seed=p.seed,
        flip=False,
    ).as_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--repo", type=Path, default=Path.cwd())
    args = parser.parse_args()
    repo = args.repo.resolve()
    result = benchmark(repo)
    digits = pd.read_parquet(repo / "data" / "split" / "digits.parquet")  # `dvc repro split`
    result["cnn_training_loop"] = cnn_throughput(load_params(repo / "params.yaml"), digits)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
