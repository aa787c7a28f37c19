"""`make tune-bench`: what workers and pruning buy `make tune`, measured.

    python -m mlfund.tune_bench [--family rnn] [--trials 12] [--set rnn.epochs=20 ...]
                                [--output reports/benchmarks.json]

Runs the same budget of `python -m mlfund.tune` on one family four times: 1 and 2
workers, with and without the median pruner, each in a fresh study in a scratch sqlite
store (and a scratch MLflow store, so the repository's stays clean). Records per run the
wall time (process start to exit), trials complete / pruned / failed, the best objective
and the epochs actually trained (validation losses reported), under the key `tune` of the
output file; its other keys are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from mlfund.tuning.space import set_args, with_overrides


def measure(
    family: str, trials: int, workers: int, prune: bool, params: Path, scratch: Path
) -> dict:
    import optuna

    name = f"bench-{workers}w-{'prune' if prune else 'noprune'}"
    storage = f"sqlite:///{scratch / 'optuna.db'}"
    command = [sys.executable, "-m", "mlfund.tune", "--family", family, "--study", name]
    command += ["--trials", str(trials), "--workers", str(workers), "--storage", storage]
    command += ["--params", str(params), *([] if prune else ["--no-prune"])]
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{scratch / 'mlflow.db'}"}
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-4000:]}")
    study = optuna.load_study(study_name=name, storage=storage)
    done = study.get_trials(deepcopy=False)
    states = [t.state.name.lower() for t in done]
    best = study.best_trial
    return {
        "workers": workers,
        "pruning": prune,
        "wall_seconds": round(seconds, 1),
        "complete": states.count("complete"),
        "pruned": states.count("pruned"),
        "failed": states.count("fail"),
        "epochs_trained": sum(len(t.intermediate_values) for t in done),
        "trial_seconds": round(sum(t.duration.total_seconds() for t in done if t.duration), 1),
        "best_value": best.value,
        "best_params": best.params,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mlfund.tune_bench", description=__doc__)
    parser.add_argument("--family", default="rnn")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="params.yaml override for the benchmark (YAML value), e.g. rnn.epochs=20",
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--output", type=Path, default=Path("reports/benchmarks.json"))
    args = parser.parse_args(argv)
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    raw = with_overrides(yaml.safe_load(args.params.read_text()), overrides)
    runs = []
    with tempfile.TemporaryDirectory(prefix="mlfund-tune-bench-") as folder:
        scratch = Path(folder)
        params = scratch / "params.yaml"
        params.write_text(yaml.safe_dump(raw, sort_keys=False))
        for workers in (1, 2):
            for prune in (True, False):
                runs.append(measure(args.family, args.trials, workers, prune, params, scratch))
                print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    result = json.loads(args.output.read_text()) if args.output.exists() else {}
    result["tune"] = {
        "family": args.family,
        "trials": args.trials,
        "overrides": set_args(overrides)[1::2],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "runs": runs,
        "note": "wall_seconds: `python -m mlfund.tune` from start to exit (process start-up "
        "included); epochs_trained: validation losses reported to Optuna, over all models "
        "and trials; trial_seconds: the trials' own durations, summed over workers",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["tune"], indent=2))


if __name__ == "__main__":
    main()
