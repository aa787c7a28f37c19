"""The CI metric gate: rule validation, verdicts, the Markdown table, the committed
gate.yaml against the committed metrics, and the CLI in a throwaway git + DVC repo."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from mlfund.core import git
from mlfund.core.calibration import Calibration, FamilyRun, dumps, params_digest, spread
from mlfund.gate import Noise, Verdict, compare, judge, main, markdown_table
from mlfund.gate_rules import (
    Rule,
    RulesError,
    load_gate,
    load_rules,
    parse_gate,
    parse_rules,
    rule_for,
)

ROOT = Path(__file__).resolve().parents[1]
METRICS_FILE = "reports/metrics.json"  # the gate's default --metrics, as dvc.yaml names it


def rule(better: str, tolerance: float | None = None, relative: float | None = None) -> Rule:
    return Rule(metric="*", better=better, tolerance=tolerance, relative_tolerance=relative)


def diff_of(**metrics: tuple) -> dict:
    """A `dvc metrics diff --json --all` output for METRICS_FILE: name=(old, new)."""
    entries = {}
    for name, (old, new) in metrics.items():
        entry = {"old": old, "new": new}
        if isinstance(old, int | float) and isinstance(new, int | float):
            entry["diff"] = new - old
        entries[name.replace("__", ".")] = entry
    return {METRICS_FILE: entries}


# ---------------------------------------------------------------- rules file validation


def rules_error(rules: list) -> str:
    with pytest.raises(RulesError) as caught:
        parse_rules({"rules": rules}, "gate.yaml")
    return str(caught.value)


GOOD = {"metric": "*.*.test_accuracy", "better": "higher", "tolerance": 0.01}


def test_unknown_key_names_the_rule_its_pattern_and_the_key():
    message = rules_error([GOOD, {"metric": "*.mse", "better": "lower", "tolerence": 0.1}])
    assert "gate.yaml: rule 2 (metric '*.mse')" in message
    assert "tolerence: unknown key" in message


def test_bad_direction_names_the_key():
    message = rules_error([{"metric": "*.x", "better": "up", "tolerance": 0.1}])
    assert "rule 1 (metric '*.x'): better:" in message
    assert "'higher'" in message


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"better": "higher"}, "give exactly one"),
        ({"better": "lower", "tolerance": 0.1, "relative_tolerance": 0.1}, "give exactly one"),
        ({"better": "ignore", "tolerance": 0.1}, "tolerance: `better: ignore` takes no tolerance"),
        ({"better": "equal", "tolerance": -1}, "tolerance: Input should be greater than"),
        ({"better": "equal", "relative_tolerance": "a lot"}, "relative_tolerance:"),
        ({"better": "equal", "tolerance": True}, "tolerance: Input should be a valid number"),
    ],
)
def test_tolerance_errors_name_the_rule(fields: dict, expected: str):
    message = rules_error([GOOD, GOOD | {"metric": "cnn.*"}, {"metric": "*.y", **fields}])
    assert "rule 3 (metric '*.y')" in message
    assert expected in message


def test_missing_metric_key_is_named():
    message = rules_error([{"better": "ignore"}])
    assert "rule 1 (metric None): metric: Field required" in message


def test_duplicate_pattern_is_an_error():
    assert "rule 2 (metric '*.*.test_accuracy'): same pattern as rule 1" in rules_error(
        [GOOD, GOOD]
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, "expected a mapping with a `rules:` list"),
        ({"rules": []}, "non-empty list"),
        ({"rules": [GOOD], "rule": []}, "unknown top-level key(s) rule"),
        ({"rules": ["*.x"]}, "rule 1 (metric None): expected a mapping"),
    ],
)
def test_file_shape_errors(raw, expected: str):
    with pytest.raises(RulesError) as caught:
        parse_rules(raw, "gate.yaml")
    assert expected in str(caught.value)


def test_load_rules_reads_yaml_exponents_as_numbers(tmp_path: Path):
    path = tmp_path / "gate.yaml"
    path.write_text('rules:\n  - {metric: "*.diff", better: lower, tolerance: 1e-9}\n')
    (only,) = load_rules(path)
    assert only.tolerance == 1e-9


def test_load_rules_reports_missing_and_broken_files(tmp_path: Path):
    with pytest.raises(RulesError, match="rules file not found"):
        load_rules(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("rules: [\n")
    with pytest.raises(RulesError, match="cannot read rules"):
        load_rules(tmp_path / "bad.yaml")


def test_first_matching_rule_wins():
    rules = parse_rules(
        {
            "rules": [
                {"metric": "regularization.*.test_r2", "better": "higher", "relative_tolerance": 1},
                {"metric": "*.*.*_r2", "better": "higher", "tolerance": 0.01},
            ]
        }
    )
    assert rule_for("regularization.lasso.test_r2", rules) is rules[0]
    assert rule_for("features.raw.val_r2", rules) is rules[1]
    assert rule_for("features.raw.val_mse", rules) is None


# ---------------------------------------------------------------- verdicts


@pytest.mark.parametrize(
    ("the_rule", "old", "new", "status"),
    [
        # higher, absolute 0.01: the boundary passes, beyond it fails
        (rule("higher", 0.01), 0.9, 0.9, "ok"),
        (rule("higher", 0.01), 0.9, 0.89, "within tolerance"),
        (rule("higher", 0.01), 0.9, 0.8899, "regressed"),
        (rule("higher", 0.01), 0.9, 0.95, "improved"),
        # higher, relative 10% of |old|, also for a negative baseline
        (rule("higher", relative=0.1), 2.0, 1.8, "within tolerance"),
        (rule("higher", relative=0.1), 2.0, 1.79, "regressed"),
        (rule("higher", relative=0.01), -100.0, -101.0, "within tolerance"),
        (rule("higher", relative=0.01), -100.0, -101.5, "regressed"),
        (rule("higher", relative=0.01), -100.0, -50.0, "improved"),
        # lower, absolute
        (rule("lower", 0.1), 1.0, 1.1, "within tolerance"),
        (rule("lower", 0.1), 1.0, 1.1001, "regressed"),
        (rule("lower", 0.1), 1.0, 0.5, "improved"),
        # lower, relative 5%
        (rule("lower", relative=0.05), 100.0, 105.0, "within tolerance"),
        (rule("lower", relative=0.05), 100.0, 105.01, "regressed"),
        (rule("lower", relative=0.05), 100.0, 99.0, "improved"),
        (rule("lower", relative=0.02), 0.0, 1e-12, "regressed"),  # relative at 0 allows nothing
        # agreement errors ~1e-16 against an absolute 1e-9 bound
        (rule("lower", 1e-9), 2.2e-16, 5e-10, "within tolerance"),
        (rule("lower", 1e-9), 2.2e-16, 2e-9, "regressed"),
        # equal: either way
        (rule("equal", 0), 15, 15, "ok"),
        (rule("equal", 0), 15, 16, "changed"),
        (rule("equal", 0), 15, 14, "changed"),
        (rule("equal", 1), 15, 16, "within tolerance"),
        (rule("equal", 1), 15, 17, "changed"),
        (rule("equal", relative=0.01), 200.0, 202.0, "within tolerance"),
        (rule("equal", relative=0.01), 200.0, 197.9, "changed"),
        # ignore never fails on a value
        (rule("ignore"), 10.0, 1000.0, "ignored"),
        # booleans count as 0/1; text can only stay the same
        (rule("equal", 0), True, True, "ok"),
        (rule("equal", 0), True, False, "changed"),
        (rule("higher", 0), True, False, "regressed"),
        (rule("higher", 0), False, True, "improved"),
        (rule("equal", 0), "cpu", "cpu", "ok"),
        (rule("higher", 0), "cpu", "cuda", "changed"),
        # NaN
        (rule("lower", 0.1), 1.0, math.nan, "regressed"),
        (rule("lower", 0.1), math.nan, 1.0, "improved"),
        (rule("lower", 0.1), math.nan, math.nan, "ok"),
    ],
)
def test_judge(the_rule: Rule, old, new, status: str):
    verdict = judge("f.m.x", old, new, the_rule)
    assert verdict.status == status
    assert verdict.failed == (status in {"regressed", "changed"})
    assert bool(verdict.reason) == verdict.failed


def test_regression_message_says_what_moved_and_the_rule():
    verdict = judge("cnn.simple_cnn.test_accuracy", 0.994, 0.95, rule("higher", 0.01))
    assert verdict.failure() == (
        "cnn.simple_cnn.test_accuracy fell 0.994 -> 0.95 (higher is better, tolerance 0.01)"
    )
    verdict = judge("rnn.gru.test_mse", 2.0, 3.0, rule("lower", relative=0.05))
    assert verdict.failure() == (
        "rnn.gru.test_mse rose 2 -> 3 (lower is better, relative tolerance 0.05 = 0.1 here)"
    )


def test_missing_metric_fails_whatever_its_rule():
    rules = [Rule(metric="*.train_seconds", better="ignore"), rule("higher", 0.01)]
    verdicts = compare(diff_of(a__m__train_seconds=(3.0, None), a__m__acc=(0.9, None)), rules)
    assert [(v.metric, v.status) for v in verdicts] == [
        ("a.m.acc", "missing"),
        ("a.m.train_seconds", "missing"),
    ]
    assert all(v.failed for v in verdicts)
    assert (
        verdicts[0].failure() == "a.m.acc is missing from the workspace (was 0.9 in the baseline)"
    )


def test_metric_without_rule_fails_and_asks_for_one():
    rules = [Rule(metric="*.acc", better="higher", tolerance=0.01)]
    verdicts = compare(diff_of(a__m__acc=(0.9, 0.9), a__m__brand_new=(None, 1.0)), rules)
    by_name = {v.metric: v for v in verdicts}
    assert by_name["a.m.acc"].status == "ok"
    unruled = by_name["a.m.brand_new"]
    assert unruled.status == "no rule" and unruled.failed
    assert "matches no rule in gate.yaml" in unruled.reason
    assert "every new metric needs a rule" in unruled.reason


def test_new_metric_with_a_rule_passes():
    (verdict,) = compare(diff_of(a__m__acc=(None, 0.5)), [rule("higher", 0.01)])
    assert verdict.status == "new" and not verdict.failed


def test_several_files_prefix_the_metric_with_its_file():
    diff = diff_of(a__acc=(0.9, 0.9)) | {"other.json": {"b.acc": {"old": 1, "new": 1}}}
    names = [v.metric for v in compare(diff, [rule("higher", 0.0)])]
    assert names == ["other.json:b.acc", f"{METRICS_FILE}:a.acc"]


# ---------------------------------------------------------------- seed noise (make calibrate)

NOISE = Noise(3, {"f.m.x": 0.01})  # 3σ = 0.03


def test_seed_noise_widens_the_tolerance_and_says_so():
    within = judge("f.m.x", 0.9, 0.875, rule("higher", 0.01), NOISE)
    assert within.status == "within noise" and not within.failed
    assert within.noise == "3σ = 0.03"
    beyond = judge("f.m.x", 0.9, 0.869, rule("higher", 0.01), NOISE)
    assert beyond.failure() == (
        "f.m.x fell 0.9 -> 0.869 "
        "(higher is better, tolerance 0.01; widened to the seed noise 3σ = 0.03)"
    )
    # inside the rule's own tolerance it is "within tolerance", as without noise
    assert judge("f.m.x", 0.9, 0.895, rule("higher", 0.01), NOISE).status == "within tolerance"
    # a relative rule: max(2% of 1.0, 3 x 0.05) = 0.15
    lower = Noise(3, {"f.m.x": 0.05})
    assert judge("f.m.x", 1.0, 1.14, rule("lower", relative=0.02), lower).status == "within noise"
    assert judge("f.m.x", 1.0, 1.16, rule("lower", relative=0.02), lower).status == "regressed"


def test_the_rule_floor_wins_when_the_noise_is_tiny():
    tiny = Noise(3, {"f.m.x": 1e-4})
    verdict = judge("f.m.x", 0.9, 0.885, rule("higher", 0.01), tiny)
    assert verdict.failure() == (
        "f.m.x fell 0.9 -> 0.885 (higher is better, tolerance 0.01; the seed noise 3σ = 0.0003 "
        "is less)"
    )
    assert judge("f.m.x", 0.9, 0.891, rule("higher", 0.01), tiny).status == "within tolerance"


@pytest.mark.parametrize(
    "noise", [None, Noise(3, {"f.m.other": 1.0}), Noise(0, {"f.m.x": 1.0})], ids=str
)
def test_without_a_calibration_of_the_metric_the_rule_alone_applies(noise):
    verdict = judge("f.m.x", 0.9, 0.885, rule("higher", 0.01), noise)
    assert verdict.failure() == "f.m.x fell 0.9 -> 0.885 (higher is better, tolerance 0.01)"


def test_equal_rules_are_never_widened_by_noise():
    noise = Noise(3, {"f.m.x": 5.0})
    assert judge("f.m.x", 15, 16, rule("equal", 0), noise).status == "changed"


def test_markdown_shows_the_noise_tolerance_that_applied():
    diff = diff_of(f__m__x=(0.9, 0.875), f__m__y=(0.9, 0.9))
    table = markdown_table(compare(diff, [rule("higher", 0.01)], NOISE))
    assert "| higher ±0.01 (`*`) | within noise (3σ = 0.03) |" in table
    assert table.endswith("0 failed, 1 within noise, 1 ok")


@pytest.mark.parametrize("value", [-1, "three", math.inf, math.nan, True, [3]], ids=repr)
def test_bad_noise_k_is_an_error_naming_the_key(value):
    with pytest.raises(RulesError) as caught:
        parse_gate({"rules": [GOOD], "noise_k": value}, "gate.yaml")
    assert str(caught.value).startswith("gate.yaml: noise_k: must be a number >= 0")
    assert str(caught.value).endswith(f"got {value!r}")


def test_noise_k_in_yaml(tmp_path: Path):
    path = tmp_path / "gate.yaml"
    path.write_text('noise_k: 2e0\nrules:\n  - {metric: "*", better: ignore}\n')
    assert load_gate(path).noise_k == 2.0
    path.write_text('rules:\n  - {metric: "*", better: ignore}\n')
    assert load_gate(path).noise_k == 0  # off unless asked for


# ---------------------------------------------------------------- the Markdown table


def test_markdown_lists_failures_first_and_changes_but_not_unchanged_or_timings():
    rules = [
        Rule(metric="*.train_seconds", better="ignore"),
        Rule(metric="*.test_mse", better="lower", relative_tolerance=0.05),
        Rule(metric="*accuracy", better="higher", tolerance=0.01),
    ]
    diff = diff_of(
        cnn__c__test_accuracy=(0.994, 0.95),
        cnn__c__val_accuracy=(0.9, 0.9),
        rnn__r__test_mse=(2.0, 1.5),
        rnn__r__train_seconds=(3.0, 4.0),
        rnn__r__gone=(1.0, None),
    )
    table = markdown_table(compare(diff, rules))
    lines = table.splitlines()
    assert lines[0] == "| metric | old | new | change | rule | verdict |"
    assert lines[2] == (
        "| `cnn.c.test_accuracy` | 0.994 | 0.95 | -0.044 (-4.43%) "
        "| higher ±0.01 (`*accuracy`) | **regressed** |"
    )
    assert lines[3].startswith("| `rnn.r.gone` | 1 | — |")
    assert lines[3].endswith("| — | **missing** |")
    assert lines[4].startswith("| `rnn.r.test_mse` | 2 | 1.5 | -0.5 (-25.00%) | lower ±5% ")
    assert lines[4].endswith("| improved |")
    assert "val_accuracy" not in table and "train_seconds" not in table
    assert lines[-1] == (
        "**gate failed**: 5 metrics checked, 2 failed (1 regressed, 1 missing), "
        "1 improved, 1 ok, 1 ignored"
    )
    everything = markdown_table(compare(diff, rules), show_all=True)
    assert "`cnn.c.val_accuracy` | 0.9 | 0.9 | 0 |" in everything
    assert "`rnn.r.train_seconds` | 3 | 4 | +1 (+33.33%) | ignore" in everything


def test_markdown_when_nothing_changed():
    verdicts = compare(diff_of(a__acc=(0.5, 0.5)), [rule("higher", 0.01)])
    assert markdown_table(verdicts) == (
        "No metric changed.\n\n**gate passed**: 1 metrics checked, 0 failed, 1 ok"
    )


def test_markdown_formats_numbers_compactly():
    verdict = Verdict("a.b", 52495524.96105682, 46394646.30807198, rule("lower", 0.1), "improved")
    row = markdown_table([verdict]).splitlines()[2]
    assert "| 5.24955e+07 | 4.63946e+07 | -6.1e+06 (-11.62%) |" in row


# ---------------------------------------------------------------- the committed rules


def committed_metrics() -> dict[str, float]:
    def walk(tree: dict, prefix: str = "") -> dict[str, float]:
        flat = {}
        for key, value in tree.items():
            name = f"{prefix}{key}"
            flat |= walk(value, f"{name}.") if isinstance(value, dict) else {name: value}
        return flat

    return walk(json.loads((ROOT / METRICS_FILE).read_text()))


@pytest.fixture(scope="module")
def committed_rules() -> tuple[Rule, ...]:
    return load_rules(ROOT / "gate.yaml")


def test_committed_rules_cover_every_committed_metric_and_pass_against_themselves(
    committed_rules,
):
    metrics = committed_metrics()
    assert len(metrics) > 200
    same = {name: {"old": value, "new": value} for name, value in metrics.items()}
    verdicts = compare({METRICS_FILE: same}, committed_rules)
    assert [v.failure() for v in verdicts if v.failed] == []
    assert {v.status for v in verdicts} == {"ok", "ignored"}


def test_the_committed_gate_uses_the_seed_noise():
    assert load_gate(ROOT / "gate.yaml").noise_k == 3


def test_every_committed_rule_matches_some_metric(committed_rules):
    metrics = committed_metrics()
    matched = {rule_for(name, committed_rules).metric for name in metrics}
    assert [r.metric for r in committed_rules if r.metric not in matched] == []


def test_committed_rules_catch_regressions_and_ignore_timings(committed_rules):
    metrics = committed_metrics()
    changes = {
        "cnn.simple_cnn.test_accuracy": metrics["cnn.simple_cnn.test_accuracy"] - 0.05,
        "rnn.gru.test_mse": metrics["rnn.gru.test_mse"] * 1.10,
        "transfer.from_scratch.trainable_parameters": 1,
        "numpy_nn.agreement.conv2d_max_abs_diff": 1e-3,
        "numpy_nn.geometry_lr_0p6.diverged": 0.0,
        "cnn.simple_cnn.train_seconds": 1000.0,
        "cnn.simple_cnn.train_images_per_second": 1.0,
        "numpy_nn.batch_gd.seconds_per_epoch": 1.0,
        "linear.linear_regression.test_mse": metrics["linear.linear_regression.test_mse"] * 1.01,
    }
    diff = {k: {"old": v, "new": changes.get(k, v)} for k, v in metrics.items()}
    failed = {v.metric for v in compare({METRICS_FILE: diff}, committed_rules) if v.failed}
    assert failed == set(list(changes)[:5])


# ---------------------------------------------------------------- the CLI, in a temp repo

RULES = """\
rules:
  - {metric: "*.*.train_seconds", better: ignore}
  - {metric: "*.*.accuracy", better: higher, tolerance: 0.01}
  - {metric: "*.*.loss", better: lower, relative_tolerance: 0.05}
"""
DVC_YAML = """\
stages:
  evaluate:
    cmd: python -c "print('metrics are written by hand in this test')"
    metrics:  # as in dvc.yaml: the headline is declared, the gate's file is a plain out
      - reports/headline.json: {cache: false}
    outs:
      - reports/metrics.json: {cache: false}
"""
BASELINE = {"cnn": {"simple": {"accuracy": 0.994, "loss": 0.2, "train_seconds": 40.0}}}


def cli_env(home: Path) -> dict[str, str]:
    venv_bin = str(Path(sys.executable).parent)
    pythonpath = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    return os.environ | {
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": pythonpath,
        "HOME": str(home),  # no user git config (signing, hooks) in the way
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "gate test",
        "GIT_AUTHOR_EMAIL": "gate@test.invalid",
        "GIT_COMMITTER_NAME": "gate test",
        "GIT_COMMITTER_EMAIL": "gate@test.invalid",
        "DVC_NO_ANALYTICS": "1",
    }


def sh(repo: Path, env: dict[str, str], *cmd: str) -> str:
    out = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def new_repo(path: Path, env: dict[str, str]) -> Path:
    path.mkdir()
    sh(path, env, "git", "init", "--quiet")
    sh(path, env, sys.executable, "-m", "dvc", "init", "--quiet")
    (path / "dvc.yaml").write_text(DVC_YAML)
    (path / "gate.yaml").write_text(RULES)
    return path


def commit(repo: Path, env: dict[str, str], message: str) -> str:
    sh(repo, env, "git", "add", "-A")
    sh(repo, env, "git", "commit", "--quiet", "-m", message)
    return sh(repo, env, "git", "rev-parse", "HEAD")


def write_metrics(repo: Path, metrics: dict) -> None:
    (repo / "reports").mkdir(exist_ok=True)
    (repo / METRICS_FILE).write_text(json.dumps(metrics))


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory):
    """A git + DVC repo: commit 1 without metrics, commit 2 (HEAD) with BASELINE."""
    env = cli_env(tmp_path_factory.mktemp("home"))
    path = new_repo(tmp_path_factory.mktemp("gate") / "repo", env)
    without_metrics = commit(path, env, "pipeline, no metrics yet")
    write_metrics(path, BASELINE)
    commit(path, env, "baseline metrics")
    return path, env, without_metrics


def gate(
    repo: Path, env: dict[str, str], *args: str, process: bool = False
) -> subprocess.CompletedProcess[str]:
    """`python -m mlfund.gate ARGS` in `repo`: its exit code, stdout and stderr. In this
    process unless `process` (an interpreter and the gate's imports cost ~0.5 s a call; the
    `dvc metrics diff` the gate runs is a real process either way)."""
    cmd = [sys.executable, "-m", "mlfund.gate", *args]
    if process:
        return subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=60)
    out, err = io.StringIO(), io.StringIO()
    with (
        mock.patch.dict(os.environ, env, clear=True),
        contextlib.chdir(repo),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            code = main(list(args))
        except SystemExit as stop:  # argparse's --help and usage errors
            code = stop.code
    return subprocess.CompletedProcess(cmd, code, out.getvalue(), err.getvalue())


def test_cli_regression_exits_1_and_names_the_metric(repo):
    path, env, _ = repo
    write_metrics(path, {"cnn": {"simple": {"accuracy": 0.95, "loss": 0.2, "train_seconds": 9.0}}})
    result = gate(path, env, "--output", "out/comment.md", process=True)
    assert result.returncode == 1, result.stderr
    assert (
        "gate: FAILED: cnn.simple.accuracy fell 0.994 -> 0.95 (higher is better, tolerance 0.01)"
        in result.stderr
    )
    assert "| `cnn.simple.accuracy` | 0.994 | 0.95 |" in result.stdout
    assert "train_seconds" not in result.stdout + result.stderr
    assert (path / "out/comment.md").read_text() == result.stdout


def test_cli_improvement_exits_0(repo):
    path, env, _ = repo
    write_metrics(path, {"cnn": {"simple": {"accuracy": 0.999, "loss": 0.1, "train_seconds": 50}}})
    result = gate(path, env, "--baseline", "HEAD")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "| improved |" in result.stdout
    assert "**gate passed**: 3 metrics checked, 0 failed, 2 improved, 1 ignored" in result.stdout


def test_cli_unknown_baseline_exits_2(repo):
    path, env, _ = repo
    write_metrics(path, BASELINE)
    result = gate(path, env, "--baseline", "nope")
    assert result.returncode == 2
    assert "baseline revision 'nope' does not exist" in result.stderr
    assert "--baseline REV" in result.stderr and "BASELINE=" in result.stderr


def test_cli_baseline_without_metrics_file_exits_2(repo):
    path, env, without_metrics = repo
    write_metrics(path, BASELINE)
    result = gate(path, env, "--baseline", without_metrics)
    assert result.returncode == 2
    assert f"baseline {without_metrics} ({without_metrics[:10]}) has no {METRICS_FILE}" in (
        result.stderr
    )


def test_cli_missing_workspace_metrics_exits_2(repo):
    path, env, _ = repo
    (path / METRICS_FILE).unlink(missing_ok=True)
    result = gate(path, env)
    write_metrics(path, BASELINE)
    assert result.returncode == 2
    assert "run `dvc repro` first" in result.stderr


def test_cli_bad_rules_file_exits_2(repo, tmp_path: Path):
    path, env, _ = repo
    bad = tmp_path / "rules.yaml"
    bad.write_text('rules:\n  - {metric: "*.x", better: sideways, tolerance: 1}\n')
    result = gate(path, env, "--rules", str(bad))
    assert result.returncode == 2
    assert "rule 1 (metric '*.x'): better:" in result.stderr


def test_cli_repository_without_commits_exits_2(tmp_path: Path):
    env = cli_env(tmp_path)
    path = new_repo(tmp_path / "empty", env)
    write_metrics(path, BASELINE)
    result = gate(path, env)
    assert result.returncode == 2
    assert "the repository has no commits yet" in result.stderr


def test_cli_metrics_option_names_another_file(repo):
    path, env, _ = repo
    write_metrics(path, BASELINE)
    other = "reports/other.json"
    (path / other).write_text(json.dumps(BASELINE))
    missing = gate(path, env, "--metrics", "reports/none.json")
    assert missing.returncode == 2
    assert "reports/none.json is not in the workspace: run `dvc repro` first" in missing.stderr
    # the baseline commit has no reports/other.json: the message names the file asked for
    result = gate(path, env, "--metrics", f"./{other}")
    (path / other).unlink()
    assert result.returncode == 2
    assert f"has no {other}: pick a baseline that has one" in result.stderr


def test_cli_help_documents_the_metrics_option(repo):
    path, env, _ = repo
    result = gate(path, env, "--help")
    assert result.returncode == 0
    assert "--metrics FILE" in result.stdout
    assert "(default: reports/metrics.json)" in " ".join(result.stdout.split())


def calibrated(path: Path, values: list[float], params: str) -> None:
    """A calibration of `cnn` (made for cnn.seed 42) over `values`, and params.yaml."""
    run = FamilyRun(
        k=len(values),
        threads=1,
        seeds={"cnn.seed": list(range(42, 42 + len(values)))},
        params_keys=["cnn"],
        params_sha256=params_digest({"cnn": {"seed": 42}}, ["cnn"]),
        seconds=1.0,
        seconds_per_seed=[0.2] * len(values),
    )
    calibration = Calibration(
        machine={},
        seconds=1.0,
        families={"cnn": run},
        metrics={"cnn.simple.accuracy": spread(values)},
    )
    (path / "reports" / "calibration.json").write_text(dumps(calibration))
    (path / "params.yaml").write_text(params)


def test_cli_seed_noise_from_the_calibration_file(repo, tmp_path: Path):
    path, env, _ = repo
    rules = tmp_path / "noisy.yaml"
    rules.write_text("noise_k: 3\n" + RULES)
    drop = {"cnn": {"simple": {"accuracy": 0.95, "loss": 0.2, "train_seconds": 9.0}}}
    write_metrics(path, drop)  # fell 0.044: beyond the rule's 0.01
    calibrated(path, [0.96, 1.0, 1.04], "cnn: {seed: 42}\n")  # σ = 0.04
    try:
        within = gate(path, env, "--rules", str(rules))
        assert within.returncode == 0, within.stdout + within.stderr
        assert "| within noise (3σ = 0.12) |" in within.stdout
        assert "seed noise: tolerance max(rule, 3σ) for 1 metrics of cnn" in within.stdout
        # cnn's params changed since: its σ no longer counts, the rule's 0.01 does
        (path / "params.yaml").write_text("cnn: {seed: 7}\n")
        stale = gate(path, env, "--rules", str(rules))
        assert stale.returncode == 1
        assert "fell 0.994 -> 0.95 (higher is better, tolerance 0.01)" in stale.stderr
        assert "stale, their params changed since: cnn" in stale.stdout
        # no calibration file: the rules' tolerances
        (path / "reports" / "calibration.json").unlink()
        missing = gate(path, env, "--rules", str(rules))
        assert missing.returncode == 1
        assert "seed noise: no reports/calibration.json" in missing.stdout
        (path / "reports" / "calibration.json").write_text("{not json")
        broken = gate(path, env, "--rules", str(rules))
        assert broken.returncode == 2
        assert "reports/calibration.json: unreadable" in broken.stderr
    finally:
        (path / "reports" / "calibration.json").unlink(missing_ok=True)
        (path / "params.yaml").unlink(missing_ok=True)
        write_metrics(path, BASELINE)


def test_git_helpers_answer_about_the_temp_repo(repo, tmp_path: Path):
    path, env, without_metrics = repo
    head = sh(path, env, "git", "rev-parse", "HEAD")
    assert git.toplevel(path / "reports") == path.resolve()
    assert git.commit(path / "reports") == head
    assert git.resolve(path, without_metrics[:10]) == without_metrics
    assert git.resolve(path, "HEAD~1") == without_metrics
    for rev in ("nope", "", "--all"):
        assert git.resolve(path, rev) is None
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    assert git.toplevel(outside) is None  # tmp_path is outside any repository
    assert git.commit(outside) is None
