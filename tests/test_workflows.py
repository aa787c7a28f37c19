"""The pull-request workflow's structure: what CI runs and that it agrees with the Makefile."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "pull-request.yml"
COMMENT = r"<!-- mlfund-gate -->"  # the hidden first line that finds the PR comment again


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


@pytest.fixture(scope="module")
def steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    (job,) = workflow["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    return job["steps"]


def _step(steps: list[dict[str, Any]], pattern: str) -> dict[str, Any]:
    """The one step whose run script (or action) matches `pattern`."""
    found = [s for s in steps if re.search(pattern, s.get("run", s.get("uses", "")))]
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
            r"upload-artifact",
            COMMENT,
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
    comment = _step(steps, COMMENT)
    assert "always()" in comment["if"]
    script = comment["run"]
    assert "gate.md" in script
    assert re.search(r'dvc metrics diff --md "?origin/\$\{?BASE_REF\b', script)
    assert re.search(r'dvc params diff --md "?origin/\$\{?BASE_REF\b', script)
    assert "body=@comment.md" in script
    assert comment["env"]["GH_TOKEN"] == "${{ secrets.GITHUB_TOKEN }}"
    assert comment["env"]["PR"] == "${{ github.event.pull_request.number }}"


def test_job_fails_after_commenting_when_the_gate_failed(steps):
    last = steps[-1]
    assert steps.index(_step(steps, COMMENT)) < len(steps) - 1
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


def test_the_report_and_the_gate_table_are_uploaded_even_when_the_gate_fails(steps):
    upload = _step(steps, r"^actions/upload-artifact@v4$")
    assert "always()" in upload["if"]
    assert {"reports/report.html", "gate.md"} <= set(upload["with"]["path"].split())
    # the comment links to it
    comment = _step(steps, COMMENT)
    assert comment["env"]["ARTIFACT_URL"] == f"${{{{ steps.{upload['id']}.outputs.artifact-url }}}}"


FAKE_GH = """#!/bin/sh
# gh as the comment step calls it: the comments list filtered by the real jq, writes logged
echo "$*" >> "$GH_LOG"
case "$*" in
  *--paginate*) for last; do :; done; printf '%s' "$COMMENTS" | jq -r "$last" ;;
  *) [ -z "$READ_ONLY" ] ;;
esac
"""


@pytest.mark.parametrize(
    ("comments", "read_only", "wrote"),
    [
        # the first push: nothing of ours yet (a person quoting the marker does not count)
        ([("someone", COMMENT), ("github-actions[bot]", "another bot comment")], "", "POST"),
        # a later push: our newest comment is edited
        ([("github-actions[bot]", f"{COMMENT}\nold"), ("github-actions[bot]", COMMENT)], "", 2),
        # a fork's read-only token: a warning, and the job goes on to the gate's verdict
        ([], "1", "POST"),
    ],
)
def test_each_push_updates_one_comment(steps, tmp_path: Path, comments, read_only, wrote):
    if shutil.which("jq") is None or shutil.which("bash") is None:
        pytest.skip("needs bash and jq (GitHub's runners have both)")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "gh").write_text(FAKE_GH)
    (fake / "dvc").write_text("#!/bin/sh\necho '| Path | Metric |'\n")
    for tool in ("gh", "dvc"):
        (fake / tool).chmod(0o755)
    (tmp_path / "gate.md").write_text("| metric | base | PR |\n")
    listed = [
        {"id": i + 1, "user": {"login": who}, "body": body}
        for i, (who, body) in enumerate(comments)
    ]
    env = {
        **os.environ,
        "PATH": f"{fake}:{os.environ['PATH']}",
        "GH_LOG": str(tmp_path / "gh.log"),
        "COMMENTS": json.dumps(listed),
        "READ_ONLY": read_only,
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "PR": "7",
        "BASE_REF": "main",
        "GATE_STATUS": "0",
        "ARTIFACT_URL": "https://example.invalid/artifact",
        "SHA": "abcdef0123",
    }
    script = _step(steps, COMMENT)["run"]
    done = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    calls = (tmp_path / "gh.log").read_text().splitlines()
    assert len(calls) == 2  # one look-up, one write
    if wrote == "POST":
        assert calls[1] == "api --method POST repos/o/r/issues/7/comments -F body=@comment.md"
    else:
        assert (
            calls[1] == f"api --method PATCH repos/o/r/issues/comments/{wrote} -F body=@comment.md"
        )
    body = (tmp_path / "comment.md").read_text()
    assert body.startswith(f"{COMMENT}\n## Pipeline vs `origin/main` at abcdef0")
    assert "https://example.invalid/artifact" in body
    assert ("::warning::" in done.stdout) == bool(read_only)
