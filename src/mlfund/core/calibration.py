"""How much each metric moves with the seed: what `make calibrate` measured.

`python -m mlfund.calibrate` retrains every family that depends on a seed (the registry's
`seeds`) over K seeds and writes this file (reports/calibration.json); the gate widens a
tolerance to `noise_k` standard deviations of it, and the report prints mean ± std next
to each family's headline number.

A spread holds for the params it was measured with: each family records the params.yaml
keys its results depend on (the datasets, the split and the keys dvc.yaml gives its train
stage) and their digest. When they have changed since, the family is stale and its spread
is not used until `make calibrate` measures it again.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from mlfund.core.config import lookup
from mlfund.core.errors import MlfundError
from mlfund.core.report import SeedSpread

# Upstream of every family: the data it trains on comes from these sections.
UPSTREAM_KEYS = ("data", "featurize", "split")


class CalibrationError(MlfundError):
    exit_code = 2


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Spread(Record):
    """One metric over the seeds; `n` counts its finite values (NaN/inf are null)."""

    n: int
    mean: float | None
    std: float | None  # sample standard deviation (ddof=1); None below two finite values
    min: float | None
    max: float | None
    values: list[float | None]  # per seed, in the order of the family's seeds


class FamilyRun(Record):
    """How one family was calibrated, and what it cost."""

    k: int
    threads: int  # torch intra-op, BLAS and OpenMP threads
    seeds: dict[str, list[int]]  # params key -> the K values it took
    params_keys: list[str]  # the params.yaml keys the spread depends on
    params_sha256: str  # their digest (`params_digest`)
    seconds: float  # wall time of the K runs, scoring included
    seconds_per_seed: list[float]


class Calibration(Record):
    machine: dict[str, Any]
    seconds: float  # wall time of the families below, summed
    families: dict[str, FamilyRun]
    metrics: dict[str, Spread]  # `family.model.metric`, as reports/metrics.json names it

    def fresh(self, raw_params: Mapping[str, Any]) -> tuple[dict[str, FamilyRun], list[str]]:
        """(families whose params are unchanged, names of the stale ones)."""
        fresh, stale = {}, []
        for name, run in self.families.items():
            if params_digest(raw_params, run.params_keys) == run.params_sha256:
                fresh[name] = run
            else:
                stale.append(name)
        return fresh, stale

    def sigmas(self, raw_params: Mapping[str, Any]) -> dict[str, float]:
        """Standard deviation per metric of the families still calibrated for these params."""
        fresh, _ = self.fresh(raw_params)
        return {
            metric: spread.std
            for metric, spread in self.metrics.items()
            if spread.std is not None and metric.split(".", 1)[0] in fresh
        }

    def seed_spread(
        self, family: str, metric: str, raw_params: Mapping[str, Any]
    ) -> SeedSpread | None:
        """Mean ± std of `family`'s `metric` per model; None unless calibrated for these params."""
        run = self.fresh(raw_params)[0].get(family)
        if run is None:
            return None
        by_model = {}
        for name, spread in self.metrics.items():
            owner, model, measured = name.split(".", 2)
            if owner == family and measured == metric and spread.mean is not None:
                by_model[model] = (spread.mean, spread.std if spread.std is not None else 0.0)
        seeds = "; ".join(f"{key} = {v[0]}..{v[-1]}" for key, v in run.seeds.items())
        return SeedSpread(metric, seeds, run.k, by_model)


def spread(values: Sequence[float]) -> Spread:
    finite = [float(v) for v in values if math.isfinite(v)]
    return Spread(
        n=len(finite),
        mean=statistics.fmean(finite) if finite else None,
        std=statistics.stdev(finite) if len(finite) >= 2 else None,
        min=min(finite, default=None),
        max=max(finite, default=None),
        values=[float(v) if math.isfinite(v) else None for v in values],
    )


def spreads(runs: Sequence[Mapping[str, float]]) -> dict[str, Spread]:
    """Per metric, its spread over the runs (one `{metric: value}` per seed)."""
    names = sorted({name for run in runs for name in run})
    return {name: spread([run.get(name, math.nan) for run in runs]) for name in names}


def params_digest(raw: Mapping[str, Any], keys: Sequence[str]) -> str:
    """sha256 of the values at `keys` of the parsed params.yaml (comments do not count)."""
    payload = json.dumps({key: lookup(raw, key) for key in keys}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def parse_calibration(raw: Any, source: str) -> Calibration:
    try:
        return Calibration.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise CalibrationError(
            f"{source}: not a calibration file ({where}: {first['msg']}); "
            "run `make calibrate` again"
        ) from None


def load_calibration(path: Path) -> Calibration | None:
    """The calibration file, or None when there is none; CalibrationError when unreadable."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise CalibrationError(f"{path}: unreadable ({error}); run `make calibrate`") from None
    return parse_calibration(raw, str(path))


def dumps(calibration: Calibration) -> str:
    """The file's text: indented, with one line per metric so a diff shows which moved."""
    data = calibration.model_dump(exclude={"metrics"})
    lines = [
        f"    {json.dumps(name)}: {json.dumps(spread.model_dump())}"
        for name, spread in calibration.metrics.items()
    ]
    head = json.dumps(data, indent=2).removesuffix("\n}")
    return head + ',\n  "metrics": {\n' + ",\n".join(lines) + "\n  }\n}\n"
