"""The best MLflow run per family, across every DVC experiment that logged to the store.

`dvc exp show` compares experiments by their metric files, one experiment per row; the
MLflow store keeps every training run of every experiment (queued `dvc exp run` copies
log into the workspace store, see mlfund.core.tracking). This answers the question neither
tool answers on its own: for each family, which run scored best on the family's primary
metric, in which DVC experiment and at which commit, out of how many runs.

    python -m mlfund.compare [--tracking-uri URI] [--family F ...]

A family's runs are those of its experiment, `mlfund/<family>` (MLFUND_EXPERIMENT_PREFIX
sets the prefix). Only finished, non-deleted runs count; runs without the family's primary
metric (a family's comparison or summary runs, its `<family>/training` run, a regression
model in a family judged by accuracy) are skipped. Ties go to the most recent run. The
families, their primary metrics and which way is better come from the family registry
(mlfund.core.registry).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlfund.core import git
from mlfund.core.registry import FAMILY_LIST, Family
from mlfund.core.tracking import (
    TrackingUnavailable,
    check_server,
    experiment_name,
    sqlite_path,
    tracking_uri,
)

if TYPE_CHECKING:
    import pandas as pd

# Enough for any store this project makes; one query for all the families asked about.
MAX_RUNS = 50_000


class NoExperiments(Exception):
    """The store holds none of the family experiments: nothing was ever logged to it."""


# Each family's primary metric and its direction come from the registry.
FAMILIES: dict[str, Family] = {family.name: family for family in FAMILY_LIST}


@dataclass(frozen=True)
class Best:
    family: Family
    compared: int  # finished runs that logged the primary metric
    value: float | None = None
    run_name: str = ""
    dvc_exp_name: str = ""
    git_commit: str = ""
    run_id: str = ""


def default_root() -> Path:
    """DVC_ROOT when DVC runs us, else the git top level, else the working directory."""
    if root := os.environ.get("DVC_ROOT"):
        return Path(root)
    return git.toplevel(Path.cwd()) or Path.cwd()


def best_runs(uri: str, families: Sequence[str]) -> list[Best]:
    """The best finished run of each family; raises NoExperiments for an unused store."""
    database = sqlite_path(uri)
    if database is not None and not database.exists():  # MLflow would create it
        raise NoExperiments(f"{database} does not exist")
    import mlflow

    client = mlflow.MlflowClient(uri)
    experiments = {e.name: e.experiment_id for e in client.search_experiments()}
    names = {family: experiment_name(family) for family in FAMILIES}
    if not any(name in experiments for name in names.values()):
        raise NoExperiments(f"{uri} has none of the experiments {', '.join(names.values())}")
    wanted = {experiments[names[f]]: f for f in families if names[f] in experiments}
    runs = _search(uri, list(wanted)) if wanted else None
    results = []
    for name in families:
        family = FAMILIES[name]
        if runs is None or name not in wanted.values():
            results.append(Best(family, 0))
            continue
        ids = [i for i, f in wanted.items() if f == name]
        results.append(_best_of(family, runs[runs["experiment_id"].isin(ids)]))
    return results


def _search(uri: str, experiment_ids: list[str]) -> pd.DataFrame:
    import mlflow

    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(
        experiment_ids=experiment_ids,
        filter_string="attributes.status = 'FINISHED'",
        max_results=MAX_RUNS,
        output_format="pandas",
    )
    if len(runs) == MAX_RUNS:
        print(f"warning: only the latest {MAX_RUNS} runs were compared", file=sys.stderr)
    return runs


def _best_of(family: Family, runs: pd.DataFrame) -> Best:
    column = f"metrics.{family.primary}"
    if column not in runs.columns:
        return Best(family, 0)
    scored = runs[runs[column].notna()]
    if scored.empty:
        return Best(family, 0)
    ranked = scored.sort_values(
        [column, "start_time", "run_id"],
        ascending=[family.direction == "min", False, True],
        kind="stable",
    )
    top = ranked.iloc[0]

    def tag(key: str) -> str:
        value = top.get(f"tags.{key}")
        return value if isinstance(value, str) else ""

    return Best(
        family,
        compared=len(scored),
        value=float(top[column]),
        run_name=tag("mlflow.runName"),
        dvc_exp_name=tag("dvc_exp_name"),
        git_commit=tag("git_commit"),
        run_id=str(top["run_id"]),
    )


HEADER = (
    "family",
    "metric",
    "best value",
    "run name",
    "dvc experiment",
    "git commit",
    "run id",
    "runs compared",
)


def _cell(text: str) -> str:
    return text.replace("|", r"\|")


def render(results: Sequence[Best]) -> str:
    """A Markdown table, one row per family."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for best in results:
        metric = f"{best.family.primary} ({best.family.direction})"
        if best.value is None:
            row = [best.family.name, metric, "no runs", "", "", "", "", "0"]
        else:
            commit = best.git_commit if best.git_commit == "unknown" else best.git_commit[:7]
            row = [
                best.family.name,
                metric,
                f"{best.value:.6g}",
                best.run_name,
                best.dvc_exp_name or "workspace",
                commit,
                best.run_id,
                str(best.compared),
            ]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlfund.compare", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--tracking-uri",
        help="MLflow store (default: MLFLOW_TRACKING_URI, else sqlite:///<repo root>/mlflow.db)",
    )
    parser.add_argument(
        "--family",
        nargs="+",
        action="extend",
        choices=list(FAMILIES),
        metavar="F",
        help=f"only these families (default: all of {', '.join(FAMILIES)})",
    )
    args = parser.parse_args(argv)
    uri = args.tracking_uri
    if uri is None:
        uri = tracking_uri(default_root())
    families = list(dict.fromkeys(args.family)) if args.family else list(FAMILIES)
    try:
        check_server(uri)  # a server that is down: say so now, not after MLflow's retries
    except TrackingUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        results = best_runs(uri, families)
    except NoExperiments as error:
        print(f"No mlfund runs in the MLflow store: {error}.", file=sys.stderr)
        print("Run `dvc repro` first (or `make repro`).", file=sys.stderr)
        return 2
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
