"""tune.yaml: what `make tune` may change in each family, checked before any trial runs.

    rnn:
      objective: {metric: val_mse, direction: minimize}  # mean over the models reporting it
      validation: holdout     # holdout | kfold | all_rows
      space:                  # params.yaml key paths, drawn in this order
        rnn.learning_rate: {float: [1.0e-4, 3.0e-2], log: true}
        rnn.hidden_size: {int: [16, 128], log: true}
        rnn.batch_size: {choice: [32, 64, 128]}
        cnn.image_size: {choice: [16, 32], when: {cnn.dataset: [digits]}}

A key with `when` is drawn only in trials where each named key (drawn earlier in the same
trial, or else its params.yaml value) has one of the listed values; otherwise it keeps
its params.yaml value. Choices may be lists (`[[16, 8], [32]]` for layer sizes): Optuna
holds them as their JSON text.

`check_space` fails, naming the key, when a key is not in params.yaml or not read by the
family, or when a value the space can draw (each end of a range, each choice, and all
lows or all highs together) is rejected by the params schema.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mlfund.core.config import error_lines, has_key, lookup, parse_params
from mlfund.core.errors import MlfundError, ParamsError

if TYPE_CHECKING:
    import optuna

    from mlfund.core.registry import Family

Scalar = bool | int | float | str | None
Choice = Scalar | list[Any]


class SpaceError(MlfundError):
    """tune.yaml is invalid or does not fit params.yaml; the message names the key."""

    exit_code = 2


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Distribution(Spec):
    """Exactly one of `float: [low, high]`, `int: [low, high]` or `choice: [...]`."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, populate_by_name=True
    )

    float_range: tuple[float, float] | None = Field(None, alias="float")
    int_range: tuple[int, int] | None = Field(None, alias="int")
    choice: list[Choice] | None = Field(None, min_length=1)
    log: bool = False  # draw uniformly in log space (float and int only)
    step: Annotated[float, Field(gt=0)] | None = None  # grid step (float and int only)
    when: dict[str, list[Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_kind(self) -> Distribution:
        kinds = [k for k in ("float_range", "int_range", "choice") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of float: [low, high], int: [low, high], choice")
        bounds = self.float_range or self.int_range
        if bounds is None:
            if self.log or self.step is not None:
                raise ValueError("log and step apply to float and int ranges, not to choice")
            texts = [json.dumps(c) for c in self.choice or []]
            if len(set(texts)) != len(texts):
                raise ValueError(f"a choice is listed twice in {self.choice}")
            return self
        low, high = bounds
        if not low < high:
            raise ValueError(f"the range [{low}, {high}] is empty: low must be below high")
        if self.log and low <= 0:
            raise ValueError(f"a log range must start above 0 (got {low})")
        if self.log and self.step is not None:
            raise ValueError("log and step cannot be combined (Optuna draws one or the other)")
        if self.int_range is not None and self.step is not None and self.step != int(self.step):
            raise ValueError(f"the step of an int range must be whole (got {self.step})")
        return self

    def extremes(self) -> list[Any]:
        """Every value the schema must accept: both ends of a range, every choice."""
        bounds = self.float_range or self.int_range
        return list(bounds) if bounds is not None else list(self.choice or [])

    def draw(self, trial: optuna.Trial, name: str) -> Any:
        if self.float_range is not None:
            low, high = self.float_range
            return trial.suggest_float(name, low, high, log=self.log, step=self.step)
        if self.int_range is not None:
            low, high = self.int_range
            step = int(self.step or 1)
            return trial.suggest_int(name, low, high, log=self.log, step=step)
        encoded = [_encode(c) for c in self.choice or []]
        return _decode(trial.suggest_categorical(name, encoded))


class Objective(Spec):
    """The number a trial returns: `metric`'s mean over `models` (default: every model of
    the family that reports it), as the family's `run` (or k-fold scoring) names it."""

    metric: str
    direction: Literal["minimize", "maximize"]
    models: list[str] | None = Field(None, min_length=1)

    def describe(self) -> str:
        over = f" (mean over {', '.join(self.models)})" if self.models else ""
        return f"{self.metric}{over}, {self.direction}d"


# holdout: the family's validation rows (and they stand in for its test rows);
# kfold: `folds` folds of its training rows, scored on each held-out fold (cv_ metrics);
# all_rows: an unsupervised family scored on every row without held-out labels.
Validation = Literal["holdout", "kfold", "all_rows"]
PREFIX = {"holdout": "val_", "kfold": "cv_"}


class FamilySpace(Spec):
    objective: Objective
    validation: Validation
    folds: Annotated[int, Field(ge=2, le=20)] = 5  # kfold only
    space: dict[str, Distribution] = Field(min_length=1)

    @model_validator(mode="after")
    def _validation_metric(self) -> FamilySpace:
        metric = self.objective.metric
        if metric.startswith("test_"):
            raise ValueError(
                f"objective.metric {metric} scores the test split, which only the final "
                "`dvc exp` run may see; tune on a validation metric"
            )
        prefix = PREFIX.get(self.validation)
        if prefix and not metric.startswith(prefix):
            raise ValueError(
                f"objective.metric {metric}: validation {self.validation} scores metrics "
                f"named {prefix}..."
            )
        return self


class SamplerSpec(Spec):
    startup_trials: Annotated[int, Field(ge=0)] = 4  # random trials before TPE models them
    seed: Annotated[int, Field(ge=0)] = 0  # of the study's creator; joining workers reseed


class PrunerSpec(Spec):
    startup_trials: Annotated[int, Field(ge=0)] = 3  # finished trials before any pruning
    warmup_epochs: Annotated[int, Field(ge=0)] = 5  # epochs of the first model never pruned


class TuneFile(Spec):
    sampler: SamplerSpec = SamplerSpec()
    pruner: PrunerSpec = PrunerSpec()
    families: dict[str, FamilySpace]


def parse_tune_file(raw: object, source: str = "tune.yaml") -> TuneFile:
    try:
        return TuneFile.model_validate(raw)
    except ValidationError as error:
        lines = error_lines(error)
        raise SpaceError(
            "\n".join([f"{source}: {len(lines)} invalid entr(y/ies)", *(f"  {x}" for x in lines)])
        ) from None


def load_tune_file(path: Path) -> TuneFile:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SpaceError(f"{path}: file not found") from None
    except yaml.YAMLError as error:
        raise SpaceError(f"{path}: not valid YAML: {error}") from None
    return parse_tune_file(raw, str(path))


def with_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the parsed params.yaml with each dotted key set to its value."""
    result = copy.deepcopy(dict(raw))
    for key, value in overrides.items():
        *parents, last = key.split(".")
        node = result
        for part in parents:
            node = node[part]
        node[last] = value
    return result


def reads(family: Family, key: str) -> bool:
    """Whether the family's train stage reads `key` (dvc.yaml's params of train@<family>)."""
    return any(key == own or key.startswith(f"{own}.") for own in family.params_keys)


def check_space(tune: TuneFile, family: Family, raw: Mapping[str, Any], source: str) -> FamilySpace:
    """The family's search space, once every key and every drawable value is known good."""
    if family.name not in tune.families:
        listed = ", ".join(tune.families) or "none"
        raise SpaceError(f"{source}: no search space for {family.name} (it has: {listed})")
    spec = tune.families[family.name]
    where = f"{source}: {family.name}.space"
    drawn: list[str] = []
    for key, dist in spec.space.items():
        if not has_key(raw, key):
            raise SpaceError(f"{where}.{key}: params.yaml has no key {key}")
        if not reads(family, key):
            raise SpaceError(
                f"{where}.{key}: train@{family.name} does not read it "
                f"(it reads {', '.join(family.params_keys)})"
            )
        for other in dist.when:
            if not has_key(raw, other):
                raise SpaceError(f"{where}.{key}.when.{other}: params.yaml has no key {other}")
            if other in spec.space and other not in drawn:
                raise SpaceError(f"{where}.{key}.when.{other}: draw {other} before {key}")
        for value in dist.extremes():
            _check_params(with_overrides(raw, {key: value}), f"{where}.{key}: {value!r}")
        drawn.append(key)
    for end, label in ((0, "lowest"), (-1, "highest")):
        corner = {key: dist.extremes()[end] for key, dist in spec.space.items()}
        _check_params(with_overrides(raw, corner), f"{where}: every key at its {label} value")
    return spec


def _check_params(raw: Mapping[str, Any], what: str) -> None:
    try:
        parse_params(raw)
    except ParamsError as error:
        reasons = "; ".join(line.strip() for line in str(error).splitlines()[1:])
        raise SpaceError(f"{what} is rejected by the params schema ({reasons})") from None


def suggest(trial: optuna.Trial, spec: FamilySpace, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Draw the trial's params: {params key: value}, conditional keys only where they apply."""
    drawn: dict[str, Any] = {}
    for key, dist in spec.space.items():
        if all(drawn.get(k, lookup(raw, k)) in allowed for k, allowed in dist.when.items()):
            drawn[key] = dist.draw(trial, key)
    return drawn


def decoded(params: Mapping[str, Any]) -> dict[str, Any]:
    """A finished trial's params as params.yaml values (list choices back from JSON)."""
    return {key: _decode(value) for key, value in params.items()}


def set_args(overrides: Mapping[str, Any]) -> list[str]:
    """`-S key=value` arguments of `dvc exp run`, values written as YAML reads them back."""
    args = []
    for key, value in overrides.items():
        args += ["-S", f"{key}={_yaml_text(value)}"]
    return args


def _yaml_text(value: Any) -> str:
    if isinstance(value, str) and yaml.safe_load(value) == value:
        return value
    if isinstance(value, float) and math.isfinite(value):
        mantissa, e, exponent = repr(value).partition("e")
        # 1.0e-05, not 1e-05: YAML 1.1 readers (PyYAML) take the latter for a string
        return mantissa + ("" if "." in mantissa or not e else ".0") + e + exponent
    return json.dumps(value, separators=(", ", ": "))


def _encode(choice: Choice) -> Scalar:
    return json.dumps(choice) if isinstance(choice, list) else choice


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("["):
        return json.loads(value)
    return value
