"""`make calibrate`: retrain each family that depends on a seed over K seeds, and write
how far every metric moves (n, mean, std, min, max) to reports/calibration.json.

    python -m mlfund.calibrate [--k 5] [--families cnn rnn] [--threads 1]
                               [--params params.yaml] [--output reports/calibration.json]

Seed i (0..K-1) sets every seed key of the family (the registry's `seeds`) to its
params.yaml value + i, so the first run is the pipeline's own. Each run is the family's
pure `run` on the pipeline's data/split (what train@<family> does), its train-side metrics
and its models scored on the test rows (what evaluate@<family> does), named as
reports/metrics.json names them. Nothing is written but the output file: no models, no
MLflow runs. It is not a DVC stage (it would retrain every family K times on each change);
`--families` re-measures some families and keeps the others' entries of the file.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mlfund.core import registry
from mlfund.core.calibration import (
    UPSTREAM_KEYS,
    Calibration,
    CalibrationError,
    FamilyRun,
    dumps,
    load_calibration,
    lookup,
    params_digest,
    spreads,
)
from mlfund.core.config import Params, load_params, parse_params
from mlfund.core.errors import MlfundError

if TYPE_CHECKING:
    from mlfund.core.family import Inputs, ModelRun
    from mlfund.deep.device import Compute

ComputeOf = Callable[[Params, str], "Compute"]


class CalibrateError(MlfundError):
    exit_code = 2


def seeded(raw: Mapping[str, Any], keys: Sequence[str], offset: int) -> dict[str, Any]:
    """A copy of the parsed params.yaml with every seed key moved by `offset`."""
    raw = copy.deepcopy(dict(raw))
    for key in keys:
        *parents, last = key.split(".")
        node = raw
        for part in parents:
            node = node[part]
        node[last] += offset
    return raw


def with_threads(raw: Mapping[str, Any], threads: int) -> dict[str, Any]:
    """A copy where `compute` and every torch family's own override use `threads`."""
    raw = copy.deepcopy(dict(raw))
    raw["compute"]["threads"] = threads
    for family in registry.FAMILY_LIST:
        if family.torch:
            raw[family.name]["threads"] = threads
    return raw


def test_scores(run: ModelRun, inputs: Inputs) -> dict[str, float]:
    """A model's scores on its test rows, as evaluate@<family> computes them."""
    from mlfund.evaluation import evaluate_model

    saved = run.model
    assert saved is not None
    model = saved.estimator
    if saved.is_torch:
        from mlfund.deep.predictor import TorchPredictor

        model = TorchPredictor(model.cpu(), saved.task, saved.classes)
    test = inputs.split(run.dataset).test
    features = test[list(saved.features.columns)]
    return evaluate_model(model, saved.task, features, test[saved.target]).scores


def family_metrics(
    family: registry.Family, params: Params, inputs: Inputs, compute_of: ComputeOf
) -> dict[str, float]:
    """One training of `family`: every metric it reports, `family.model.metric`."""
    import matplotlib.pyplot as plt

    from mlfund.core.family import merge_metrics

    compute = compute_of(params, family.name) if family.torch else None
    result = family.run(family.section(params), inputs, compute)
    for figure in result.figures.values():
        plt.close(figure)
    scored = [run for run in result.runs if run.model is not None and run.model.scored]
    test = {run.name: test_scores(run, inputs) for run in scored}
    merged = merge_metrics({family.name: result.metrics}, {family.name: test})
    return {
        f"{family.name}.{model}.{metric}": float(value)
        for model, values in merged[family.name].items()
        for metric, value in values.items()
    }


def calibrate_family(
    family: registry.Family,
    raw: Mapping[str, Any],
    k: int,
    threads: int,
    inputs: Inputs,
    compute_of: ComputeOf,
) -> tuple[FamilyRun, list[dict[str, float]]]:
    """Train `family` K times, seed key(s) + 0..K-1; its record and the metrics of each run."""
    runs, seconds = [], []
    for offset in range(k):
        params = parse_params(
            with_threads(seeded(raw, family.seeds, offset), threads), f"params (seeds +{offset})"
        )
        start = time.perf_counter()
        runs.append(family_metrics(family, params, inputs, compute_of))
        seconds.append(round(time.perf_counter() - start, 2))
        print(f"calibrate: {family.name} seed +{offset}: {seconds[-1]:.1f} s", file=sys.stderr)
    keys = [*UPSTREAM_KEYS, *family.params_keys]
    record = FamilyRun(
        k=k,
        threads=threads,
        seeds={key: [int(lookup(raw, key)) + i for i in range(k)] for key in family.seeds},
        params_keys=keys,
        params_sha256=params_digest(raw, keys),
        seconds=round(sum(seconds), 2),
        seconds_per_seed=seconds,
    )
    return record, runs


def calibrate(
    families: Sequence[registry.Family],
    raw: Mapping[str, Any],
    k: int,
    threads: int,
    inputs: Inputs,
    compute_of: ComputeOf,
    previous: Calibration | None = None,
) -> Calibration:
    """Calibrate `families`; the other families of `previous` are kept as they were."""
    if k < 2:
        raise CalibrateError(f"--k {k}: a spread needs at least 2 seeds")
    if threads < 1:
        raise CalibrateError(f"--threads {threads}: give at least 1")
    names = {family.name for family in families}
    seeded_now = {family.name for family in registry.FAMILY_LIST if family.seeds}
    kept_runs = {
        n: r
        for n, r in (previous.families if previous else {}).items()
        if n not in names and n in seeded_now
    }
    kept_metrics = {
        m: s
        for m, s in (previous.metrics if previous else {}).items()
        if m.split(".", 1)[0] in kept_runs
    }
    measured, metrics = {}, {}
    for family in families:
        measured[family.name], runs = calibrate_family(family, raw, k, threads, inputs, compute_of)
        metrics |= spreads(runs)
    all_runs = kept_runs | measured
    return Calibration(
        machine=machine(),
        seconds=round(sum(r.seconds for r in all_runs.values()), 2),
        families=dict(sorted(all_runs.items())),
        metrics=dict(sorted((kept_metrics | metrics).items())),
    )


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cpus": os.cpu_count(), "python": platform.python_version()}


def main(argv: Sequence[str] | None = None) -> int:
    stochastic = [family.name for family in registry.FAMILY_LIST if family.seeds]
    parser = argparse.ArgumentParser(
        prog="python -m mlfund.calibrate",
        description="Retrain each family that depends on a seed over K seeds and write "
        "the spread of every metric.",
    )
    parser.add_argument("--k", type=int, default=5, help="seeds per family (default: 5)")
    parser.add_argument(
        "--families",
        nargs="+",
        choices=stochastic,
        default=stochastic,
        metavar="FAMILY",
        help=f"only these, keeping the others' entries (default: {' '.join(stochastic)})",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch, BLAS and OpenMP threads (default: 1; the spread, not the speed, counts)",
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--output", type=Path, default=Path("reports/calibration.json"))
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    from stages.family_io import StageInputs, family_compute

    try:
        load_params(args.params)  # valid as it is, before seeds and threads change
        raw = yaml.safe_load(args.params.read_text())
        try:
            result = load_calibration(args.output)
        except CalibrationError as error:
            print(f"calibrate: {error}: starting a new one", file=sys.stderr)
            result = None
        families = [registry.get(name) for name in dict.fromkeys(args.families)]
        start = time.perf_counter()
        with threadpool_limits(args.threads):
            for family in families:  # written after each: a failure keeps what was measured
                result = calibrate(
                    [family], raw, args.k, args.threads, StageInputs(), family_compute, result
                )
                args.output.parent.mkdir(parents=True, exist_ok=True)
                args.output.write_text(dumps(result))
    except FileNotFoundError as error:
        print(
            f"calibrate: error: {error.filename} is missing: run `dvc repro` first", file=sys.stderr
        )
        return 2
    except MlfundError as error:
        print(f"calibrate: error: {error}", file=sys.stderr)
        return error.exit_code
    assert result is not None
    took = time.perf_counter() - start
    for name in (family.name for family in families):
        run = result.families[name]
        print(f"calibrate: {name}: {run.seconds:.0f} s for {run.k} seeds", file=sys.stderr)
    print(f"calibrate: wrote {args.output} in {took:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
