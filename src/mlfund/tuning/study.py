"""The study every worker of `make tune` joins: its store, its budget, and its faults.

- Store: any Optuna RDB URL. On one machine, sqlite beside the MLflow store (safe for
  several local processes: sqlite locks the file; busy writers wait up to a minute); for
  many machines, a PostgreSQL database. A store that does not answer fails in seconds,
  naming the URL (its password hidden).
- Budget: the process that creates the study enqueues `budget` WAITING trials, its slots.
  Workers pop them (Optuna's own atomic WAITING -> RUNNING), and `SlotStorage` refuses to
  create any other trial, so however many workers join, the study runs exactly `budget`
  trials (and one rerun per trial lost with its worker).
- Faults: every running trial sends a heartbeat. A trial whose worker died (SIGKILL, a lost
  machine) goes stale after `grace` seconds; the next worker to look fails it and, up to
  `retries` times, enqueues it again with the same params (Optuna's
  RetryHeartbeatStaleTrialCallback). A worker with no slot left waits while trials still
  run, so a killed one is retried even when it was the last.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from mlfund.core.calibration import UPSTREAM_KEYS, params_digest
from mlfund.core.errors import MlfundError

if TYPE_CHECKING:
    from mlfund.core.registry import Family
    from mlfund.tuning.space import FamilySpace, TuneFile

log = logging.getLogger(__name__)
# Seconds to wait for a database server before calling it unreachable.
CONNECT_TIMEOUT_SECONDS = 5
# Seconds a joining worker waits for the study's creator to enqueue its budget.
CREATOR_WAIT_SECONDS = 60


class StorageUnavailable(MlfundError):
    """The Optuna storage URL cannot be opened."""


class StudyMismatch(MlfundError):
    """A study of that name exists, made for another family, search space or params."""

    exit_code = 2


class BudgetSpent(Exception):
    """Raised by `SlotStorage` instead of creating a trial beyond the study's budget."""


class SlotStorage(RDBStorage):
    """An RDB storage that only creates trials from a template (`enqueue_trial`, a stale
    trial's retry): `study.ask()` with no WAITING slot left raises BudgetSpent instead of
    starting trial budget + 1. (Overrides RDBStorage's `_create_new_trial`, which both
    `create_new_trial` and Optuna's cache call; optuna is pinned in requirements.lock and
    tests/test_tune.py checks the override still takes.)"""

    def _create_new_trial(
        self, study_id: int, template_trial: FrozenTrial | None = None
    ) -> FrozenTrial:
        if template_trial is None:
            raise BudgetSpent
        return super()._create_new_trial(study_id, template_trial)


def shown_url(url: str) -> str:
    """The URL with its password hidden."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def open_storage(url: str, heartbeat: int, grace: int, retries: int) -> SlotStorage:
    """The study store at `url` with heartbeats every `heartbeat` s; a trial silent for
    `grace` s is failed and retried up to `retries` times (0: failed and skipped)."""
    from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError

    engine: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine = {"connect_args": {"timeout": 60}}  # wait for other workers' writes
    elif url.startswith("postgresql"):
        engine = {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_SECONDS}}
        engine["pool_pre_ping"] = True  # a connection the server dropped is reopened
    for attempt in range(3):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return SlotStorage(
                    url,
                    engine_kwargs=engine,
                    heartbeat_interval=heartbeat,
                    grace_period=grace,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(retries),
                )
        except (SQLAlchemyError, ArgumentError, ImportError, ValueError) as error:
            reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
            # workers that start together on an empty database race to create its
            # tables: the loser sees them appear, and opens it again
            racing = isinstance(error, IntegrityError) or "already exists" in reason
            if racing and attempt < 2:
                time.sleep(1)
                continue
            raise StorageUnavailable(
                f"Optuna storage {shown_url(url)} cannot be opened ({reason}). Start the "
                "database or fix the URL (--storage, STORAGE=); without one, tune uses "
                "sqlite beside the MLflow store"
            ) from None
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Plan:
    """What every worker of one study must agree on."""

    name: str
    family: str
    direction: str
    budget: int
    digest: str  # of the search space and the params the family depends on


def plan_for(
    family: Family, spec: FamilySpace, raw: Mapping[str, Any], budget: int, name: str | None
) -> Plan:
    keys = [*UPSTREAM_KEYS, *family.params_keys]
    payload = json.dumps(
        {"space": spec.model_dump(mode="json"), "params": params_digest(raw, keys)}, sort_keys=True
    )
    digest = hashlib.sha256(payload.encode()).hexdigest()[:12]
    return Plan(
        name or f"{family.name}-{digest[:8]}", family.name, spec.objective.direction, budget, digest
    )


def sampler_and_pruner(
    tune: TuneFile, prune: bool
) -> tuple[optuna.samplers.BaseSampler, optuna.pruners.BasePruner]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(
            n_startup_trials=tune.sampler.startup_trials,
            seed=tune.sampler.seed,  # the creator's; a worker that joins reseeds
            multivariate=True,  # models the params together
            group=True,  # ... per set of params drawn together (conditional spaces)
            constant_liar=True,  # workers in parallel do not all draw the same point
        )
    pruner: optuna.pruners.BasePruner = (
        optuna.pruners.MedianPruner(
            n_startup_trials=tune.pruner.startup_trials, n_warmup_steps=tune.pruner.warmup_epochs
        )
        if prune
        else optuna.pruners.NopPruner()
    )
    return sampler, pruner


def open_study(
    storage: SlotStorage,
    plan: Plan,
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner,
) -> optuna.Study:
    """Create the study and enqueue its budget, or join it once its creator has (and
    draw from a seed of its own)."""
    try:
        study = optuna.create_study(
            storage=storage,
            study_name=plan.name,
            direction=plan.direction,
            sampler=sampler,
            pruner=pruner,
        )
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(
            study_name=plan.name, storage=storage, sampler=sampler, pruner=pruner
        )
        study.sampler.reseed_rng()  # its draws must differ from the other workers'
        return _joined(study, plan)
    study.set_user_attr("family", plan.family)
    study.set_user_attr("digest", plan.digest)
    for _ in range(plan.budget):
        study.enqueue_trial({})
    study.set_user_attr("budget", plan.budget)  # last: joiners wait for it
    return study


def _joined(study: optuna.Study, plan: Plan) -> optuna.Study:
    deadline = time.monotonic() + CREATOR_WAIT_SECONDS
    while "budget" not in study.user_attrs:
        if time.monotonic() > deadline:
            raise StudyMismatch(
                f"study {plan.name} has no budget after {CREATOR_WAIT_SECONDS} s: its creator "
                "stopped while setting it up; give another --study"
            )
        time.sleep(0.5)
    attrs = study.user_attrs
    if (attrs.get("family"), attrs.get("digest")) != (plan.family, plan.digest):
        raise StudyMismatch(
            f"study {plan.name} was made for {attrs.get('family')} with another search space "
            f"or params (digest {attrs.get('digest')}, here {plan.digest}); run every worker "
            "from the same commit, or give another --study"
        )
    if study.direction.name.lower() != plan.direction:
        raise StudyMismatch(f"study {plan.name} is to {study.direction.name.lower()}")
    if attrs["budget"] != plan.budget:
        log.warning(
            "study %s has a budget of %d trials (its creator's)", plan.name, attrs["budget"]
        )
    return study


def work(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    catch: tuple[type[Exception], ...],
    callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]],
    poll: float,
) -> None:
    """Run trials until no slot is left and no trial of any worker still runs."""
    while True:
        try:
            study.optimize(objective, catch=catch, callbacks=list(callbacks))
        except BudgetSpent:
            pass
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # a dead worker's trial back in the queue
        states = Counter(t.state for t in study.get_trials(deepcopy=False))
        if states[TrialState.WAITING]:
            continue
        if not states[TrialState.RUNNING]:
            return
        log.info("no trial left to start; waiting for %d running", states[TrialState.RUNNING])
        time.sleep(poll)


@dataclass(frozen=True)
class Outcome:
    counts: dict[str, int]  # trial state -> trials
    best: FrozenTrial | None
    # failed trials without a `fail_reason`: their worker died (stale by heartbeat) or
    # stopped on an error outside the trial
    lost: int


def outcome(study: optuna.Study) -> Outcome:
    trials = study.get_trials(deepcopy=False)
    counts = Counter(t.state.name.lower() for t in trials)
    lost = sum(t.state == TrialState.FAIL and "fail_reason" not in t.user_attrs for t in trials)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = study.best_trial if complete else None
    return Outcome(dict(sorted(counts.items())), best, lost)
