"""The pull-request workflow's structure: what CI runs and that it agrees with the Makefile."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "pull-request.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


@pytest.fixture(scope="module")
def steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    (job,) = workflow["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    return job["steps"]


def _step(steps: list[dict[str, Any]], pattern: str) -> dict[str, Any]:
    """The one step whose run script matches `pattern`."""
    found = [s for s in steps if re.search(pattern, s.get("run", ""))]
    assert len(found) == 1, f"expected one step running {pattern!r}, found {len(found)}"
    return found[0]


def _make_targets(script: str) -> list[str]:
    """The targets of each `make` command in a shell script (flags and VAR=value dropped)."""
    targets = []
    for match in re.finditer(r"(?:^|[;&|(]|\s)make\s+([^;&|\n]*)", script, re.MULTILINE):
        words = shlex.split(match.group(1), comments=True)
        targets += [w for w in words if not w.startswith("-") and "=" not in w]
    return targets


def test_runs_on_pull_requests(workflow):
    # YAML 1.1 reads the bare key `on` as the boolean True.
    triggers = workflow.get("on", workflow.get(True))
    assert triggers is not None
    assert "pull_request" in triggers
    assert workflow["permissions"] == {"contents": "read", "pull-requests": "write"}


def test_checkout_fetches_the_target_branch_history(steps):
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0


def test_only_github_actions_are_used(steps):
    uses = [s["uses"] for s in steps if "uses" in s]
    assert uses, "no actions at all?"
    for action in uses:
        assert re.fullmatch(r"actions/[\w.-]+@v\d+", action), action


def test_the_venv_cache_is_keyed_on_the_lock(steps):
    cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache@"))
    assert cache["with"]["path"] == ".venv"
    assert "hashFiles('requirements.lock', 'pyproject.toml')" in cache["with"]["key"]


def test_tests_then_repro_then_gate_then_comment(steps):
    order = [
        steps.index(_step(steps, pattern))
        for pattern in (
            r"\bmake test\b",
            r"\bmake repro\b",
            r"\bmake\b.*\bgate\b",
            r"gh pr comment",
        )
    ]
    assert order == sorted(order)


def test_gate_compares_with_the_target_branch(steps):
    gate = _step(steps, r"\bmake\b.*\bgate\b")
    assert gate["env"]["BASE_REF"] == "${{ github.base_ref }}"
    assert re.search(r'BASELINE="?origin/\$\{?BASE_REF\b', gate["run"])
    assert "pipefail" in gate["run"] and "tee gate.md" in gate["run"]
    assert "GITHUB_OUTPUT" in gate["run"]  # the exit code, for the last step


def test_comment_has_the_gate_and_dvc_diffs_even_when_the_gate_fails(steps):
    comment = _step(steps, r"gh pr comment")
    assert "always()" in comment["if"]
    script = comment["run"]
    assert "gate.md" in script
    assert re.search(r'dvc metrics diff --md "?origin/\$\{?BASE_REF\b', script)
    assert re.search(r'dvc params diff --md "?origin/\$\{?BASE_REF\b', script)
    assert "--body-file comment.md" in script
    assert comment["env"]["GH_TOKEN"] == "${{ secrets.GITHUB_TOKEN }}"
    assert comment["env"]["PR"] == "${{ github.event.pull_request.number }}"


def test_job_fails_after_commenting_when_the_gate_failed(steps):
    last = steps[-1]
    assert steps.index(_step(steps, r"gh pr comment")) < len(steps) - 1
    assert "always()" in last["if"]
    assert "steps.gate.outputs.status" in str(last.get("env", {}))
    assert "exit 1" in last["run"]


def test_scripts_use_no_inline_expressions(steps):
    # `${{ }}` in a script is pasted in before bash parses it; values go through `env:`.
    for step in steps:
        assert "${{" not in step.get("run", ""), step.get("name")


def test_every_make_target_exists_in_the_makefile(steps):
    makefile = (ROOT / "Makefile").read_text()
    defined = set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", makefile, re.MULTILINE))
    used = [t for s in steps for t in _make_targets(s.get("run", ""))]
    assert {"test", "repro", "gate"} <= set(used)
    missing = sorted(set(used) - defined)
    assert not missing, f"the workflow runs make targets the Makefile lacks: {missing}"
