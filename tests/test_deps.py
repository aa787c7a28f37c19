"""dvc.yaml's deps are complete: every stage, run with its file accesses traced (strace),
reads only its deps, its own outs and params.yaml, and writes only its outs.

"dvc repro: up to date" is only true when every file a stage reads is a dep: a missed
one (a library module imported lazily, a data file) lets an edit leave stale outputs.
This runs each stage of the reproduced e2e project once more, under strace, in a copy.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.e2e import clean_env
from tests.file_trace import Trace, trace, undeclared

pytestmark = pytest.mark.e2e
# .ci/run installs strace and sets MLFUND_REQUIRE_SERVICES: there a missing one fails.
if shutil.which("strace") is None and os.environ.get("MLFUND_REQUIRE_SERVICES") != "1":
    pytestmark = [pytest.mark.e2e, pytest.mark.skip(reason="strace is not installed")]


def stages_of(work: Path) -> list[tuple[str, str, set[str], set[str]]]:
    """(name, cmd, deps, outs) of every stage, `foreach` expanded, upstream first."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(str(work)) as repo:
        # an edge goes from a stage to a stage it depends on
        order = reversed(list(nx.topological_sort(repo.index.graph)))
        return [
            (
                stage.name,  # train@linear
                stage.cmd,
                {dep.def_path for dep in stage.deps},
                {out.def_path for out in stage.outs},
            )
            for stage in order
        ]


@pytest.fixture(scope="module")
def traced(e2e_project: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Each stage's trace and declared deps/outs, from a copy of the reproduced project."""
    work = tmp_path_factory.mktemp("deps") / "repo"
    shutil.copytree(e2e_project, work, symlinks=True)
    logs = tmp_path_factory.mktemp("strace")
    found = {}
    for name, cmd, deps, outs in stages_of(work):
        env = clean_env(work, DVC_STAGE=name, DVC_ROOT=str(work))
        log = logs / f"{name.replace('@', '_')}.txt"
        found[name] = (trace(cmd, work, env, log), deps, outs)
    return found


def test_every_stage_reads_only_its_deps_and_writes_only_its_outs(traced: dict) -> None:
    problems = {}
    for name, (found, deps, outs) in traced.items():
        reads, writes = undeclared(found, deps, outs)
        if reads or writes:
            problems[name] = {"undeclared reads": reads, "undeclared writes": writes}
    assert not problems, problems


def test_the_trace_sees_the_library(traced: dict) -> None:
    # The check means something only if the trace sees what a stage really opens.
    found, _, _ = traced["train@clustering"]
    assert {
        "src/mlfund/families/clustering/__init__.py",
        "src/mlfund/core/config.py",
        "data/raw/blobs.parquet",
        "params.yaml",
    } <= found.reads
    assert "models/clustering/manifest.json" in found.writes
    assert "reports/train/clustering.json" in found.writes


@pytest.mark.parametrize(
    ("stage", "dep"),
    [
        ("train@clustering", "src/mlfund/families/clustering"),
        ("train@linear", "src/mlfund/core"),
        ("split", "data/features"),
        ("evaluate@cnn", "models/cnn"),
        ("report", "reports/figures"),
    ],
)
def test_a_missing_dep_is_caught(traced: dict, stage: str, dep: str) -> None:
    found, deps, outs = traced[stage]
    assert dep in deps
    reads, _ = undeclared(found, deps - {dep}, outs)
    assert reads and all(path.startswith(dep) for path in reads)


def test_an_undeclared_write_is_caught() -> None:
    found = Trace(reads=set(), writes={"models/linear/x.skops", "reports/elsewhere.json"})
    assert undeclared(found, set(), {"models/linear"}) == ([], ["reports/elsewhere.json"])
