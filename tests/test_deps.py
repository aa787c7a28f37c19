"""dvc.yaml's deps are complete: every stage, run with its file accesses traced (strace),
reads only its deps, its own outs and params.yaml, and writes only its outs.

"dvc repro: up to date" is only true when every file a stage reads is a dep: a missed
one (a library module imported lazily, a data file) lets an edit leave stale outputs.
The e2e project's `dvc repro` runs under strace (tests/conftest.py): each stage's
accesses are those of the processes its command started.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import E2EBuild
from tests.file_trace import Trace, by_command, undeclared

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
def traced(e2e_build: E2EBuild) -> dict:
    """Each stage's trace and declared deps/outs, from the e2e project's own `dvc repro`."""
    assert e2e_build.strace is not None, "the e2e project was built without strace"
    stages = stages_of(e2e_build.work)
    found = by_command(e2e_build.strace, e2e_build.work, {cmd: name for name, cmd, _, _ in stages})
    missing = [name for name, *_ in stages if name not in found]
    assert not missing, f"stages that did not run under the trace: {missing}"
    return {name: (found[name], deps, outs) for name, _, deps, outs in stages}


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
