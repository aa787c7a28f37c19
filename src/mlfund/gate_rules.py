"""gate.yaml, the rules of the CI metric gate (`python -m mlfund.gate`): read and validate.

Per metric glob, which way is better (higher, lower, equal, ignore) and by how much the
metric may move (an absolute or a relative tolerance), plus `noise_k`, how many seed
standard deviations a calibrated metric may move. A bad file fails with a RulesError that
names the rule and the key, so the gate can stop with exit 2 before it runs dvc.

Pure: it reads one YAML file and runs no git or dvc; the gate judges metrics with it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlfund.core.config import error_lines

RULES_FILE = "gate.yaml"  # default rules, at the repository root

Better = Literal["higher", "lower", "equal", "ignore"]
Tolerance = Annotated[float, Field(ge=0.0, strict=True, allow_inf_nan=False)]
_FLOAT_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


class RulesError(ValueError):
    """The rules file is missing, not YAML, or a rule does not match the schema."""


class Rule(BaseModel):
    """How one family of metrics may move: `metric` is an fnmatch glob over dotted paths."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str = Field(min_length=1)
    better: Better
    tolerance: Tolerance | None = None  # absolute
    relative_tolerance: Tolerance | None = None  # a fraction of |baseline value|

    @field_validator("tolerance", "relative_tolerance", mode="before")
    @classmethod
    def _yaml_exponent(cls, value: Any) -> Any:
        """PyYAML reads `1e-9` (no dot) as text; take it as the number it means."""
        if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
            return float(value)
        return value

    @model_validator(mode="after")
    def _one_tolerance(self) -> Rule:
        given = [k for k in ("tolerance", "relative_tolerance") if getattr(self, k) is not None]
        if self.better == "ignore" and given:
            raise ValueError(f"{given[0]}: `better: ignore` takes no tolerance, remove it")
        if self.better != "ignore" and len(given) != 1:
            raise ValueError(
                "tolerance / relative_tolerance: give exactly one of them "
                f"(absolute or relative) for `better: {self.better}`"
            )
        return self

    def matches(self, metric: str) -> bool:
        return fnmatchcase(metric, self.metric)

    def allowance(self, old: float) -> float:
        """The largest change in the bad direction that still passes, at baseline `old`."""
        if self.tolerance is not None:
            return self.tolerance
        return (self.relative_tolerance or 0.0) * abs(old)

    def short(self) -> str:
        """`higher ±0.01` (absolute), `lower ±2%` (relative), `ignore`: the rule column."""
        if self.better == "ignore":
            return "ignore"
        if self.tolerance is not None:
            return f"{self.better} ±{self.tolerance:g}"
        return f"{self.better} ±{(self.relative_tolerance or 0.0) * 100:.6g}%"

    def explain(self, old: float) -> str:
        """`higher is better, tolerance 0.01`: the reason in a FAILED line."""
        what = {
            "higher": "higher is better",
            "lower": "lower is better",
            "equal": "must stay equal",
            "ignore": "ignored",
        }[self.better]
        if self.tolerance is not None:
            return f"{what}, tolerance {self.tolerance:g}"
        # The allowance is a float (pydantic stores the tolerance as one): `.6g` is how the
        # gate's table prints a float, so the FAILED line and the table agree.
        return (
            f"{what}, relative tolerance {self.relative_tolerance:g} "
            f"= {self.allowance(old):.6g} here"
        )


UNKNOWN_RULE_KEY = f"unknown key (typo?); allowed: {', '.join(Rule.model_fields)}"
TOP_LEVEL_KEYS = ("rules", "noise_k")


@dataclass(frozen=True)
class GateRules:
    """gate.yaml: the rules, and how many seed standard deviations a metric may move."""

    rules: tuple[Rule, ...]
    noise_k: float = 0.0  # 0: the rules' tolerances only


def parse_gate(raw: Any, source: str = RULES_FILE) -> GateRules:
    """Validate the parsed YAML `{"rules": [...], "noise_k": k}`; errors name the rule and
    the bad key."""
    if not isinstance(raw, Mapping) or "rules" not in raw:
        raise RulesError(f"{source}: expected a mapping with a `rules:` list at the top")
    if extra := sorted(str(k) for k in raw if k not in TOP_LEVEL_KEYS):
        raise RulesError(f"{source}: unknown top-level key(s) {', '.join(extra)} (typo?)")
    return GateRules(_rule_list(raw["rules"], source), _noise_k(raw.get("noise_k", 0), source))


def parse_rules(raw: Any, source: str = RULES_FILE) -> tuple[Rule, ...]:
    return parse_gate(raw, source).rules


def _noise_k(value: Any, source: str) -> float:
    if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
        value = float(value)  # PyYAML reads `3e0` (no dot) as text
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise RulesError(
            f"{source}: noise_k: must be a number >= 0, how many seed standard deviations "
            f"a calibrated metric may move (0: the rules' tolerances only); got {value!r}"
        )
    return float(value)


def _rule_list(items: Any, source: str) -> tuple[Rule, ...]:
    if not isinstance(items, list) or not items:
        raise RulesError(f"{source}: `rules` must be a non-empty list")
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for number, item in enumerate(items, start=1):
        pattern = item.get("metric") if isinstance(item, Mapping) else None
        where = f"{source}: rule {number} (metric {pattern!r})"
        if not isinstance(item, Mapping):
            raise RulesError(f"{where}: expected a mapping with metric, better, tolerance")
        try:
            rule = Rule.model_validate(item)
        except ValidationError as error:
            lines = error_lines(error, unknown_key=UNKNOWN_RULE_KEY)
            raise RulesError("\n".join(f"{where}: {line}" for line in lines)) from None
        if rule.metric in seen:
            raise RulesError(
                f"{where}: same pattern as rule {seen[rule.metric]}, so it never applies"
            )
        seen[rule.metric] = number
        rules.append(rule)
    return tuple(rules)


def load_gate(path: str | Path) -> GateRules:
    """Read and validate a rules file; raises RulesError naming the rule and the bad key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise RulesError(f"{path}: rules file not found") from None
    except (OSError, yaml.YAMLError) as error:
        raise RulesError(f"{path}: cannot read rules: {error}") from None
    return parse_gate(raw, str(path))


def load_rules(path: str | Path) -> tuple[Rule, ...]:
    return load_gate(path).rules


def rule_for(metric: str, rules: Iterable[Rule]) -> Rule | None:
    """The first rule whose glob matches `metric`, or None."""
    return next((rule for rule in rules if rule.matches(metric)), None)
