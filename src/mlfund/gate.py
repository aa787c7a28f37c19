"""CI metric gate: fail when a metric (reports/metrics.json) regresses against a baseline.

`dvc metrics diff` shows what changed but always exits 0, and it treats every number alike:
it cannot tell an accuracy (higher is better) from an MSE (lower is better), a parameter
count (must not change) or a timing (differs on every run). This gate compares the
workspace's metrics with those of a baseline commit under the rules of gate.yaml (a
direction and a tolerance per metric glob) and exits non-zero on any regression, so
`make gate` can guard a pull request and its table can be posted as the PR comment.

    python -m mlfund.gate [--baseline REV] [--metrics reports/metrics.json]
                          [--rules gate.yaml] [--calibration reports/calibration.json]
                          [--all] [--output FILE]

Noise-aware: where `make calibrate` measured a metric's standard deviation σ over seeds
(reports/calibration.json), a higher/lower rule allows max(its tolerance, noise_k·σ), with
`noise_k` in gate.yaml. Without a calibration of the metric, the rule's tolerance alone.

Exit status: 0 every metric passes; 1 a metric regressed, disappeared or matches no rule;
2 the gate could not run (unknown revision, no metrics file, bad rules file, dvc failed).

Reading and validating gate.yaml (`load_gate`, the Rule schema) lives in gate_rules.py.
The core here (`compare`, `markdown_table`) is pure; `main` is the thin shell that runs git
and dvc. It imports nothing heavy, so it runs in about a second.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import yaml

from mlfund.core import git
from mlfund.core.calibration import CalibrationError, load_calibration
from mlfund.gate_rules import RULES_FILE, Rule, RulesError, load_gate, rule_for

CALIBRATION_FILE = "reports/calibration.json"  # `make calibrate` writes it
PARAMS_FILE = "params.yaml"  # what the calibration must still describe

Value = bool | int | float | str  # a metric as dvc reports it (a JSON scalar)
Status = Literal[
    "regressed", "changed", "missing", "no rule",  # these fail the gate
    "improved", "within tolerance", "within noise", "ok", "new", "ignored",
]  # fmt: skip
FAILING: frozenset[str] = frozenset({"regressed", "changed", "missing", "no rule"})
# Table and summary order: failures first.
STATUS_ORDER: tuple[Status, ...] = (
    "regressed", "changed", "missing", "no rule",
    "improved", "within tolerance", "within noise", "new", "ok", "ignored",
)  # fmt: skip


class GateError(RuntimeError):
    """The gate cannot run: no baseline, no metrics file, dvc failed (exit status 2)."""


@dataclass(frozen=True)
class Verdict:
    """What the gate decided about one metric."""

    metric: str
    old: Value | None  # None: not in the baseline
    new: Value | None  # None: not in the workspace
    rule: Rule | None
    status: Status
    reason: str = ""  # for a failure: what happened, e.g. "fell 0.994 -> 0.95 (...)"
    noise: str = ""  # the seed-noise tolerance when it applied, e.g. "3σ = 0.012"

    @property
    def failed(self) -> bool:
        return self.status in FAILING

    @property
    def changed(self) -> bool:
        return self.old != self.new

    def failure(self) -> str:
        return f"{self.metric} {self.reason}"


@dataclass(frozen=True)
class Noise:
    """How far each calibrated metric moves with the seed (`make calibrate`): a higher or
    lower rule allows max(its tolerance, k·σ). Equal rules (counts, demonstrations) stay
    as they are: no seed moves those, so noise is no reason for them to change."""

    k: float
    sigma: Mapping[str, float]  # metric -> sample standard deviation over the seeds

    def allowance(self, metric: str) -> float | None:
        sigma = self.sigma.get(metric)
        return None if sigma is None or self.k == 0 else self.k * sigma

    def describe(self, metric: str) -> str:
        return f"{self.k:g}σ = {self.allowance(metric) or 0.0:.3g}"


def flatten_diff(diff: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, tuple]:
    """`dvc metrics diff --json` output -> {metric: (old, new)}.

    dvc writes `{file: {dotted.metric: {"old": x, "new": y, "diff": d}}}` where a side that
    lacks the metric is null and "diff" is absent unless both are numbers. With several
    files, each metric is prefixed with its file (`file:metric`).
    """
    several = len(diff) > 1
    flat: dict[str, tuple] = {}
    for file, metrics in diff.items():
        for name, entry in metrics.items():
            flat[f"{file}:{name}" if several else name] = (entry.get("old"), entry.get("new"))
    return flat


def compare(
    diff: Mapping[str, Mapping[str, Mapping[str, Any]]],
    rules: Sequence[Rule],
    noise: Noise | None = None,
) -> list[Verdict]:
    """Judge every metric of a parsed `dvc metrics diff --json --all`, sorted by name."""
    return [
        judge(name, old, new, rule_for(name, rules), noise)
        for name, (old, new) in sorted(flatten_diff(diff).items())
    ]


def judge(
    metric: str,
    old: Value | None,
    new: Value | None,
    rule: Rule | None,
    noise: Noise | None = None,
) -> Verdict:
    """One metric's verdict; see gate.yaml's header for the semantics."""

    def verdict(status: Status, reason: str = "", noisy: str = "") -> Verdict:
        return Verdict(metric, old, new, rule, status, reason, noisy)

    if new is None:  # whatever the rule: a metric must not silently disappear
        if old is None:
            return verdict("missing", "is in neither the baseline nor the workspace")
        return verdict(
            "missing", f"is missing from the workspace (was {_fmt(old)} in the baseline)"
        )
    if rule is None:
        return verdict(
            "no rule",
            f"({_fmt(new)}) matches no rule in {RULES_FILE}: add one saying which way is "
            "better and by how much it may move (every new metric needs a rule)",
        )
    if old is None:
        return verdict("new")
    if rule.better == "ignore":
        return verdict("ignored")
    before, after = _number(old), _number(new)
    if before is None or after is None:  # text: can only stay the same
        if old == new:
            return verdict("ok")
        return verdict("changed", f"changed {_fmt(old)} -> {_fmt(new)} (not a number: must stay)")
    if math.isnan(before) or math.isnan(after):
        return verdict(*_nan_status(rule, before, after))
    delta = after - before
    allowed = rule.allowance(before)
    if rule.better == "equal":
        if _exceeds(abs(delta), allowed):
            return verdict(
                "changed", f"changed {_fmt(old)} -> {_fmt(new)} ({rule.explain(before)})"
            )
        return verdict("ok" if delta == 0 else "within tolerance")
    worse = -delta if rule.better == "higher" else delta
    floor, explain, seeds = allowed, rule.explain(before), ""
    if noise and (seed_noise := noise.allowance(metric)) is not None:
        seeds = noise.describe(metric)
        if seed_noise > floor:  # the measured noise is the wider of the two: it applies
            allowed, explain = seed_noise, f"{explain}; widened to the seed noise {seeds}"
        else:
            explain = f"{explain}; the seed noise {seeds} is less"
    if worse > 0 and _exceeds(worse, allowed):
        moved = "fell" if rule.better == "higher" else "rose"
        return verdict("regressed", f"{moved} {_fmt(old)} -> {_fmt(new)} ({explain})")
    if delta == 0:
        return verdict("ok")
    if worse < 0:
        return verdict("improved")
    if _exceeds(worse, floor):  # beyond the rule's tolerance, within the seed noise
        return verdict("within noise", noisy=seeds)
    return verdict("within tolerance")


def _nan_status(rule: Rule, before: float, after: float) -> tuple[Status, str]:
    """A NaN on either side: becoming NaN regresses, leaving it improves (or changes)."""
    if math.isnan(before) and math.isnan(after):
        return "ok", ""
    if math.isnan(after):
        return "regressed", f"became NaN (was {_fmt(before)})"
    if rule.better == "equal":
        return "changed", f"changed NaN -> {_fmt(after)} (must stay equal)"
    return "improved", ""


def _number(value: Value) -> float | None:
    """Numbers and booleans (as 0/1) as float; text as None."""
    if isinstance(value, bool | int | float):
        return float(value)
    return None


def _exceeds(amount: float, allowed: float) -> bool:
    """amount > allowed, but a difference at the boundary up to float rounding passes."""
    return amount > allowed and not math.isclose(amount, allowed, rel_tol=1e-9)


def _fmt(value: Value | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)


def _change(verdict: Verdict) -> str:
    before, after = _number_or_none(verdict.old), _number_or_none(verdict.new)
    if before is None or after is None:
        return "" if not verdict.changed else "—"
    delta = after - before
    if delta == 0:
        return "0"
    text = f"{delta:+.3g}"
    if before != 0 and math.isfinite(delta):
        text += f" ({delta / abs(before):+.2%})"
    return text


def _number_or_none(value: Value | None) -> float | None:
    return None if value is None else _number(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def summary(verdicts: Sequence[Verdict]) -> str:
    """`**gate failed**: 266 metrics checked, 1 failed (1 regressed), 245 ok, 20 ignored`."""
    counts = Counter(v.status for v in verdicts)
    failed = sum(counts[s] for s in FAILING)
    kinds = ", ".join(f"{counts[s]} {s}" for s in STATUS_ORDER if s in FAILING and counts[s])
    rest = ", ".join(f"{counts[s]} {s}" for s in STATUS_ORDER if s not in FAILING and counts[s])
    head = "**gate failed**" if failed else "**gate passed**"
    text = f"{head}: {len(verdicts)} metrics checked, {failed} failed"
    if kinds:
        text += f" ({kinds})"
    return f"{text}, {rest}" if rest else text


def markdown_table(verdicts: Sequence[Verdict], show_all: bool = False) -> str:
    """metric | old | new | change | rule | verdict, then a one-line summary.

    By default lists failures and changed metrics (failures first) but not unchanged ones
    nor ignored timings, which change on every run; `show_all` lists every metric.
    """
    rank = {status: i for i, status in enumerate(STATUS_ORDER)}
    rows = [v for v in verdicts if show_all or v.failed or (v.changed and v.status != "ignored")]
    rows.sort(key=lambda v: (rank[v.status], v.metric))
    lines = []
    if rows:
        lines += ["| metric | old | new | change | rule | verdict |", "|---|---|---|---|---|---|"]
        for v in rows:
            rule = f"{v.rule.short()} (`{v.rule.metric}`)" if v.rule else "—"
            status = f"**{v.status}**" if v.failed else v.status
            if v.noise:
                status += f" ({v.noise})"
            cells = (f"`{v.metric}`", _fmt(v.old), _fmt(v.new), _change(v), rule, status)
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    else:
        lines.append("No metric changed.")
    lines += ["", summary(verdicts)]
    return "\n".join(lines)


# ---------------------------------------------------------------- the shell: git and dvc


def repo_root(cwd: Path) -> Path:
    root = git.toplevel(cwd)
    if root is None:
        raise GateError(f"{cwd} is not inside a git repository: run the gate from the project")
    return root


def resolve_baseline(root: Path, rev: str, metrics: str) -> str:
    """The commit id of `rev`; GateError saying what to do when there is none."""
    if commit := git.resolve(root, rev):
        return commit
    if git.commit(root) is None:
        raise GateError(
            "the repository has no commits yet, so there is no baseline to compare with: "
            f"commit {metrics} first (or pass --baseline REV)"
        )
    raise GateError(
        f"baseline revision {rev!r} does not exist in this repository: pass an existing "
        "commit, branch or tag with --baseline REV (make gate BASELINE=REV); "
        "in a shallow CI clone, fetch it first"
    )


def check_workspace(root: Path, metrics: str) -> None:
    path = root / metrics
    try:
        json.loads(path.read_text())
    except FileNotFoundError:
        raise GateError(
            f"{metrics} is not in the workspace: run `dvc repro` first "
            "(the evaluate stage writes it)"
        ) from None
    except (OSError, ValueError) as error:
        raise GateError(f"{metrics} in the workspace is unreadable ({error})") from None


def metrics_diff(root: Path, commit: str, metrics: str) -> tuple[dict[str, Any], str]:
    """Parsed `dvc metrics diff --json --all` of the metrics file, baseline vs workspace,
    and dvc's stderr (it warns there about files it could not load)."""
    cmd = [sys.executable, "-m", "dvc", "metrics", "diff", "--json", "--all"]
    cmd += ["--targets", metrics, "--", commit]
    env = os.environ | {"DVC_NO_ANALYTICS": "1"}
    try:
        out = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env, check=False)
    except OSError as error:
        raise GateError(f"cannot run dvc: {error}") from None
    if out.returncode != 0:
        raise GateError(f"`dvc metrics diff` failed (exit {out.returncode}):\n{out.stderr.strip()}")
    try:
        return json.loads(out.stdout or "{}"), out.stderr.strip()
    except ValueError:
        raise GateError(f"`dvc metrics diff --json` printed no JSON:\n{out.stdout}") from None


def seed_noise(root: Path, k: float, calibration: str) -> tuple[Noise | None, str]:
    """The noise of the calibration file's families whose params are unchanged, and a line
    for the output saying what it covers; (None, why) when no metric has any."""
    if k == 0:
        return None, f"seed noise: off (noise_k is 0 in {RULES_FILE}): the rules' tolerances"
    try:
        measured = load_calibration(root / calibration)
    except CalibrationError as error:
        raise GateError(str(error)) from None
    if measured is None:
        return None, (
            f"seed noise: no {calibration} (`make calibrate` writes it): the rules' tolerances"
        )
    try:
        params = yaml.safe_load((root / PARAMS_FILE).read_text())
    except (OSError, yaml.YAMLError):
        params = None
    if not isinstance(params, Mapping):
        params = {}  # nothing to compare with: every family counts as stale
    fresh, stale = measured.fresh(params)
    sigma = measured.sigmas(params)
    line = (
        f"seed noise: tolerance max(rule, {k:g}σ) for {len(sigma)} metrics of "
        f"{', '.join(fresh) or 'no family'} ({calibration})"
    )
    if stale:
        line += (
            f"; stale, their params changed since: {', '.join(stale)} (rule tolerances only; "
            f'`make calibrate FAMILIES="{" ".join(stale)}"`)'
        )
    return Noise(k, sigma), line


def run_gate(
    root: Path, rev: str, rules: Sequence[Rule], metrics: str, noise: Noise | None = None
) -> list[Verdict]:
    """Resolve the baseline, diff the metrics file `metrics` (relative to `root`, as dvc.yaml
    names it) with dvc and judge; GateError when the gate cannot run."""
    commit = resolve_baseline(root, rev, metrics)
    check_workspace(root, metrics)
    diff, stderr = metrics_diff(root, commit, metrics)
    entries = diff.get(metrics) or {}
    said = f"\ndvc said: {stderr}" if stderr else ""
    if not entries:
        raise GateError(f"dvc reported no metrics in {metrics}{said}")
    if all(entry.get("old") is None for entry in entries.values()):
        raise GateError(
            f"baseline {rev} ({commit[:10]}) has no {metrics}: pick a baseline that "
            f"has one with --baseline REV (make gate BASELINE=REV){said}"
        )
    if all(entry.get("new") is None for entry in entries.values()):
        raise GateError(f"dvc could not read the workspace's {metrics}{said}")
    return compare({metrics: entries}, rules, noise)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlfund.gate",
        description="Fail (exit 1) when a metric in the metrics file regresses "
        "against a baseline revision, under the rules of gate.yaml.",
    )
    parser.add_argument("--baseline", default="HEAD", help="git revision to compare with")
    parser.add_argument(
        "--metrics",
        default="reports/metrics.json",
        metavar="FILE",
        help="metrics file, relative to the repository root as dvc.yaml names it "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--rules", type=Path, help=f"rules file (default: {RULES_FILE} at the repository root)"
    )
    parser.add_argument(
        "--calibration",
        default=CALIBRATION_FILE,
        metavar="FILE",
        help="seed spread per metric from `make calibrate`, relative to the repository root "
        "(default: %(default)s; without it, the rules' tolerances alone)",
    )
    parser.add_argument(
        "--all", action="store_true", help="list every metric, not only changed ones"
    )
    parser.add_argument("--output", type=Path, help="also write the Markdown table here")
    args = parser.parse_args(argv)
    try:
        root = repo_root(Path.cwd())
        gate = load_gate(args.rules or root / RULES_FILE)
        noise, noise_line = seed_noise(root, gate.noise_k, args.calibration)
        metrics = PurePosixPath(args.metrics).as_posix()
        verdicts = run_gate(root, args.baseline, gate.rules, metrics, noise)
    except (GateError, RulesError) as error:
        print(f"gate: error: {error}", file=sys.stderr)
        return 2
    table = markdown_table(verdicts, show_all=args.all) + f"\n\n{noise_line}"
    print(table, flush=True)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(table + "\n")
    failures = [v for v in verdicts if v.failed]
    for v in failures:
        print(f"gate: FAILED: {v.failure()}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
