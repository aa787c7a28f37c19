"""`make tune`: search a family's hyperparameters with Optuna, then hand the best to DVC.

    python -m mlfund.tune --family rnn [--trials 12] [--workers 2] [--study NAME]
                          [--storage postgresql://user@host/optuna] [--no-prune]
                          [--apply [run|queue]] [--target STAGE]
    python -m mlfund.tune --check          # validate tune.yaml against params.yaml, no trial

The search space is the family's entry of tune.yaml (`mlfund.tuning.space`). Each trial
is the family's pure `run` on the pipeline's data/split with drawn params, scored on
validation rows only (`mlfund.tuning.objective`), and one MLflow run in the family's
experiment, tagged with the study and trial number. `--workers N` starts N-1 more
processes on this machine; on other machines, the same command with the same `--study`
and `--storage` joins the study (`mlfund.tuning.study`). At the end it prints the best
params as the `dvc exp run -S ...` that reproduces them in the pipeline (scored on test
by evaluate, checked by `make gate`); `--apply` runs that command, `--apply queue` queues it.

Not a DVC stage: a search reruns the family dozens of times, and its result enters the
pipeline as params, through `dvc exp run`.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from mlfund.core import registry
from mlfund.core.config import Params, load_params
from mlfund.core.errors import MlfundError
from mlfund.tuning.space import check_space, decoded, load_tune_file, set_args

if TYPE_CHECKING:
    import optuna

    from mlfund.tuning.space import FamilySpace


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mlfund.tune",
        description="Search a family's hyperparameters (tune.yaml) with Optuna; print the "
        "best as a `dvc exp run -S ...` command.",
    )
    parser.add_argument("--family", choices=registry.NAMES, help="the family to tune")
    parser.add_argument("--trials", type=int, default=12, help="the study's budget (default 12)")
    parser.add_argument("--workers", type=int, default=1, help="processes on this machine")
    parser.add_argument("--study", help="study name (default: <family>-<digest of space+params>)")
    parser.add_argument(
        "--storage",
        help="Optuna RDB URL, e.g. postgresql://user@host:5432/optuna for many machines "
        "(default: sqlite:///<repo>/optuna.db)",
    )
    parser.add_argument("--space", type=Path, default=Path("tune.yaml"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--no-prune", action="store_true", help="run every trial to the end")
    parser.add_argument("--heartbeat", type=int, default=10, help="seconds between heartbeats")
    parser.add_argument(
        "--grace", type=int, default=60, help="seconds without heartbeat before a trial is stale"
    )
    parser.add_argument(
        "--retries", type=int, default=1, help="reruns of a stale trial (0: skip it)"
    )
    parser.add_argument(
        "--apply",
        nargs="?",
        const="run",
        choices=["run", "queue"],
        help="run (or queue) the printed `dvc exp run` at the end",
    )
    parser.add_argument("--target", help="stage of the printed `dvc exp run` (default: all)")
    parser.add_argument("--check", action="store_true", help="validate tune.yaml and stop")
    parser.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.check and args.family is None:
        parser.error("--family is required (or --check)")
    for name in ("trials", "workers", "heartbeat", "grace"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.grace <= args.heartbeat:
        parser.error("--grace must be longer than --heartbeat")
    return args


def check(args: argparse.Namespace, raw: dict) -> int:
    tune = load_tune_file(args.space)
    names = [args.family] if args.family else list(tune.families)
    for name in names:
        check_space(tune, registry.get(name), raw, str(args.space))
    print(f"tune: {args.space}: the search spaces of {', '.join(names)} fit {args.params}")
    return 0


def missing_data(family: registry.Family) -> str | None:
    from stages.common import ROOT, SPLIT

    for path in (SPLIT, ROOT / family.data):
        if not path.exists():
            return (
                f"{path.relative_to(ROOT)} is missing: the trials read what train@{family.name} "
                "reads; run `dvc repro split` (the Makefile does), the stage that makes it, "
                "or `dvc pull`"
            )
    return None


def workers(args: argparse.Namespace, study: str, storage: str) -> list[subprocess.Popen]:
    """Workers 1..N-1 of this machine: this command again, joining the study."""
    command = [sys.executable, "-m", "mlfund.tune", "--family", args.family]
    command += ["--trials", str(args.trials), "--study", study, "--storage", storage]
    command += ["--space", str(args.space), "--params", str(args.params)]
    command += ["--heartbeat", str(args.heartbeat), "--grace", str(args.grace)]
    command += ["--retries", str(args.retries), *(["--no-prune"] if args.no_prune else [])]
    return [subprocess.Popen([*command, "--worker", str(i)]) for i in range(1, args.workers)]


def tracked(
    objective: Callable[[optuna.Trial], float], family: str, metric: str
) -> tuple[Callable[[optuna.Trial], float], list[Callable]]:
    """The objective inside one MLflow run per trial, and the callbacks that log the
    trial's params, objective (as `metric`) and state to it (Optuna's MLflowCallback),
    then name it `<family>/trial-<n>`, beside the pipeline's `<family>/<model>` runs."""
    import optuna
    from optuna_integration import MLflowCallback
    from optuna_integration.mlflow.mlflow import RUN_ID_ATTRIBUTE_KEY

    with warnings.catch_warnings():
        # deprecated in 4.9 for a move to OptunaHub, which has no MLflow callback yet
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        callback = MLflowCallback(
            metric_name=metric,
            create_experiment=False,  # the family's experiment, as the Tracker set it
            tag_trial_user_attrs=True,  # fail_reason, host, pid
        )
        objective = callback.track_in_mlflow()(objective)

    def name(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        import mlflow

        run_id = trial.system_attrs.get(RUN_ID_ATTRIBUTE_KEY)
        if run_id:
            mlflow.MlflowClient().set_tag(
                run_id, "mlflow.runName", f"{family}/trial-{trial.number}"
            )

    return objective, [callback, name]


def tune(args: argparse.Namespace, params: Params, raw: dict) -> int:
    import optuna

    from mlfund.tuning import study as studies
    from mlfund.tuning.objective import TRIAL_FAILURES, make_objective
    from stages.common import TRACKING_ROOT
    from stages.family_io import StageInputs, family_compute
    from stages.family_io import tracker as family_tracker

    family = registry.get(args.family)
    tune_file = load_tune_file(args.space)
    spec = check_space(tune_file, family, raw, str(args.space))
    if problem := missing_data(family):
        print(f"tune: error: {problem}", file=sys.stderr)
        return 2
    plan = studies.plan_for(family, spec, raw, args.trials, args.study)
    url = args.storage or f"sqlite:///{TRACKING_ROOT.resolve() / 'optuna.db'}"
    storage = studies.open_storage(url, args.heartbeat, args.grace, args.retries)
    # the other workers start now, their imports alongside this one's; the first to get
    # there creates the study, the others join it
    others = workers(args, plan.name, url) if args.worker == 0 else []
    try:
        track = family_tracker(family.name, params)  # fails now when MLflow is down
        sampler, pruner = studies.sampler_and_pruner(tune_file, not args.no_prune)
        study = studies.open_study(storage, plan, sampler, pruner)
        objective = make_objective(family, spec, raw, StageInputs(), family_compute, track.tags)
        callbacks = []
        if track.enabled:
            objective, callbacks = tracked(objective, family.name, spec.objective.metric)
        if args.worker == 0:
            print(
                f"tune: study {plan.name} in {studies.shown_url(url)}: {family.name}, "
                f"{spec.objective.describe()}, {plan.budget} trials, {args.workers} worker(s)",
                file=sys.stderr,
            )
        start = time.perf_counter()
        optuna.logging.set_verbosity(optuna.logging.INFO)
        studies.work(study, objective, TRIAL_FAILURES, callbacks, min(args.heartbeat, 2))
        codes = [worker.wait() for worker in others]
    finally:
        for worker in others:
            if worker.poll() is None:
                worker.terminate()
    if args.worker:
        return 0
    return report(args, study, spec, time.perf_counter() - start, codes)


def report(
    args: argparse.Namespace,
    study: optuna.Study,
    spec: FamilySpace,
    seconds: float,
    codes: list[int],
) -> int:
    """The study's outcome on stderr, the best params' `dvc exp run` on stdout (and run)."""
    from mlfund.tuning.study import outcome

    result = outcome(study)
    counts = ", ".join(f"{n} {state}" for state, n in result.counts.items())
    print(
        f"tune: {sum(result.counts.values())} trials ({counts}) in {seconds:.0f} s", file=sys.stderr
    )
    if result.lost:
        print(f"tune: {result.lost} trial(s) lost with their worker", file=sys.stderr)
    failed = [f"worker {i} exited {code}" for i, code in enumerate(codes, 1) if code]
    if failed:
        print(f"tune: error: {'; '.join(failed)}", file=sys.stderr)
    if result.best is None:
        print("tune: error: no trial completed; see the reasons above", file=sys.stderr)
        return 1
    best = result.best
    print(
        f"tune: best: trial {best.number}, {spec.objective.metric} = {best.value:.6g}; "
        "reproduce it in the pipeline (scored on test by evaluate), then `make gate`:",
        file=sys.stderr,
    )
    command = ["dvc", "exp", "run", *set_args(decoded(best.params))]
    command += [args.target] if args.target else []
    print(shlex.join(command), flush=True)
    if args.apply is None:
        return 1 if failed else 0
    if args.apply == "queue":
        command.insert(3, "--queue")
    return subprocess.run([sys.executable, "-m", *command]).returncode or (1 if failed else 0)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # stdout is the `dvc exp run` line alone, not MLflow's link to each trial's run
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        params = load_params(args.params)  # a bad params.yaml fails first, naming the key
        raw = yaml.safe_load(args.params.read_text())
        return check(args, raw) if args.check else tune(args, params, raw)
    except FileNotFoundError as error:
        print(f"tune: error: {error.filename} is missing", file=sys.stderr)
        return 2
    except MlfundError as error:
        if os.environ.get("MLFUND_DEBUG") == "1":
            raise
        print(f"tune: error: {error}", file=sys.stderr)
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
