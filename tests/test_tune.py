"""`make tune` in process: the search space checks, what a trial may see, pruning, the
budget and failed trials of a study, and the storage errors. The worker processes,
PostgreSQL, the killed worker and the `dvc exp run` round trip are in test_tune_workers.py.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from torch import nn

from mlfund import tune as tune_cli
from mlfund.core import registry
from mlfund.core.config import Params, RnnParams
from mlfund.core.errors import NonFiniteLossError
from mlfund.core.family import FamilyResult, ModelRun
from mlfund.deep.device import Compute
from mlfund.deep.training import train_model, watching_epochs
from mlfund.tuning import study as studies
from mlfund.tuning.objective import (
    STRIDE,
    TRIAL_FAILURES,
    EpochReporter,
    ObjectiveError,
    TuneInputs,
    make_objective,
    objective_value,
)
from mlfund.tuning.space import (
    Objective,
    SpaceError,
    check_space,
    decoded,
    parse_tune_file,
    set_args,
    suggest,
)
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[1]
RNN = registry.get("rnn")


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def rnn_space(space: dict, **extra) -> dict:
    objective = {"metric": "val_mse", "direction": "minimize"}
    return {
        "families": {
            "rnn": {"objective": objective, "validation": "holdout", "space": space, **extra}
        }
    }


def check(raw: dict, tune: dict, family: registry.Family = RNN):
    return check_space(parse_tune_file(tune), family, raw, "tune.yaml")


def test_the_committed_search_spaces_fit_params_yaml(raw: dict) -> None:
    tune = tune_cli.load_tune_file(ROOT / "tune.yaml")
    for name in tune.families:
        check_space(tune, registry.get(name), raw, "tune.yaml")


@pytest.mark.parametrize(
    ("space", "message"),
    [
        (
            {"rnn.hidden_sise": {"int": [8, 64]}},
            "tune.yaml: rnn.space.rnn.hidden_sise: params.yaml has no key rnn.hidden_sise",
        ),
        (
            {"cnn.dropout": {"float": [0.0, 0.5]}},
            "tune.yaml: rnn.space.cnn.dropout: train@rnn does not read it",
        ),
        (
            {"rnn.hidden_size": {"int": [0, 64]}},
            "tune.yaml: rnn.space.rnn.hidden_size: 0 is rejected by the params schema "
            "(rnn.hidden_size: Input should be greater than 0 (got 0))",
        ),
        (
            {"rnn.batch_size": {"choice": [32, "large"]}},
            "tune.yaml: rnn.space.rnn.batch_size: 'large' is rejected by the params schema",
        ),
        (
            {
                "rnn.num_layers": {"int": [1, 2], "when": {"rnn.hidden_size": [64]}},
                "rnn.hidden_size": {"int": [8, 64]},
            },
            "rnn.space.rnn.num_layers.when.rnn.hidden_size: draw rnn.hidden_size before",
        ),
    ],
)
def test_a_bad_search_space_fails_naming_the_key(raw: dict, space: dict, message: str) -> None:
    with pytest.raises(SpaceError) as caught:
        check(raw, rnn_space(space))
    assert message in str(caught.value)


def test_values_valid_alone_but_not_together_fail_before_any_trial(raw: dict) -> None:
    space = {
        "transformer.d_model": {"choice": [64, 48]},
        "transformer.n_heads": {"choice": [4, 32]},
    }
    tune = {"families": {"transformer": {
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "validation": "holdout",
        "space": space,
    }}}  # fmt: skip
    with pytest.raises(
        SpaceError,
        match=r"transformer.space: every key at its highest value is "
        r"rejected .*d_model \(48\) must be divisible by n_heads \(32\)",
    ):
        check(raw, tune, registry.get("transformer"))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"objective": {"metric": "test_mse", "direction": "minimize"}}, "scores the test split"),
        ({"objective": {"metric": "train_mse", "direction": "minimize"}}, "named val_..."),
        ({"validation": "kfold"}, "validation kfold scores metrics named cv_..."),
        ({"space": {"rnn.learning_rate": {"float": [0.0, 0.1], "log": True}}}, "above 0"),
        ({"space": {"rnn.learning_rate": {"float": [0.1, 0.01]}}}, "is empty"),
        ({"space": {"rnn.batch_size": {"choice": [32], "log": True}}}, "not to choice"),
        ({"space": {"rnn.batch_size": {"int": [8, 64], "choice": [32]}}}, "exactly one of"),
    ],
)
def test_a_malformed_tune_file_names_the_entry(entry: dict, message: str) -> None:
    family = {"objective": {"metric": "val_mse", "direction": "minimize"}, "validation": "holdout",
              "space": {"rnn.hidden_size": {"int": [8, 64]}}} | entry  # fmt: skip
    with pytest.raises(SpaceError, match=r"families\.rnn") as caught:
        parse_tune_file({"families": {"rnn": family}})
    assert message in str(caught.value)


def test_the_check_command_exits_2_naming_the_key(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "tune.yaml"
    bad.write_text(yaml.safe_dump(rnn_space({"rnn.hiden_size": {"int": [8, 64]}})))
    code = tune_cli.main(["--check", "--space", str(bad), "--params", str(ROOT / "params.yaml")])
    assert code == 2
    assert "params.yaml has no key rnn.hiden_size" in capsys.readouterr().err


def test_conditional_keys_are_drawn_only_where_they_apply(raw: dict) -> None:
    space = {
        "cnn.dataset": {"choice": ["digits", "cifar10"]},
        "cnn.image_size": {"choice": [16, 24], "when": {"cnn.dataset": ["digits"]}},
        "cnn.channels": {"choice": [[16, 32], [32, 64, 128]]},
    }
    tune = {"families": {"cnn": {
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "validation": "holdout",
        "space": space,
    }}}  # fmt: skip
    spec = check(raw, tune, registry.get("cnn"))
    channels = "[16, 32]"  # a list choice, as Optuna holds it
    digits = optuna.trial.FixedTrial(
        {"cnn.dataset": "digits", "cnn.image_size": 24, "cnn.channels": channels}
    )
    assert suggest(digits, spec, raw) == {
        "cnn.dataset": "digits", "cnn.image_size": 24, "cnn.channels": [16, 32]
    }  # fmt: skip
    cifar = optuna.trial.FixedTrial({"cnn.dataset": "cifar10", "cnn.channels": channels})
    assert suggest(cifar, spec, raw) == {"cnn.dataset": "cifar10", "cnn.channels": [16, 32]}
    assert decoded({"cnn.channels": channels}) == {"cnn.channels": [16, 32]}


def test_dvc_set_arguments_read_back_as_the_same_values() -> None:
    overrides = {
        "a.rate": 1e-05, "a.alpha": 0.25, "a.sizes": [16, 8], "a.init": "auto",
        "a.flag": True, "a.none": None, "a.text": "true", "a.n": 3, "a.big": 1e20,
    }  # fmt: skip
    args = set_args(overrides)
    assert args[:2] == ["-S", "a.rate=1.0e-05"]
    assert "a.sizes=[16, 8]" in args and "a.init=auto" in args
    values = {arg.split("=", 1)[0]: yaml.safe_load(arg.split("=", 1)[1]) for arg in args[1::2]}
    assert values == overrides


def test_a_trial_never_sees_the_test_rows(inputs) -> None:
    full = inputs.split("sine_sequences")
    held = TuneInputs(inputs, "holdout").split("sine_sequences")
    assert held.test.index.equals(full.val.index)  # the validation rows stand in
    assert held.train.index.equals(full.train.index)
    # a dataset without validation rows: the training rows stand in
    assert (
        TuneInputs(inputs, "holdout")
        .split("circles")
        .test.index.equals(inputs.split("circles").train.index)
    )
    folds = [TuneInputs(inputs, "kfold", fold, 3).split("circles") for fold in range(3)]
    train = inputs.split("circles").train.index
    held_out = [f.test.index for f in folds]
    assert sorted(i for h in held_out for i in h) == sorted(train)  # a partition of train
    for f in folds:
        assert f.val.index.equals(f.test.index)
        assert not set(f.train.index) & set(f.test.index)
        assert not set(f.test.index) & set(inputs.split("circles").test.index)


def _tiny_fit(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 2, generator=generator)
    y = x @ torch.tensor([[1.0], [-2.0]])
    return train_model(
        lambda: nn.Linear(2, 1),
        (x[:48], y[:48]),
        (x[48:], y[48:]),
        nn.MSELoss(),
        Compute(torch.device("cpu"), "fp32"),
        seed=seed,
        learning_rate=0.05,
        batch_size=16,
        epochs=4,
    )


def test_each_models_validation_loss_reaches_the_trial_without_changing_training() -> None:
    study = optuna.create_study(direction="minimize", pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    reporter = EpochReporter(trial, "minimize")
    plain = _tiny_fit()
    with watching_epochs(reporter):
        watched = [_tiny_fit(), _tiny_fit(1)]  # two models of one family
    steps = study.trials[0].intermediate_values
    assert sorted(steps) == [0, 1, 2, 3, STRIDE, STRIDE + 1, STRIDE + 2, STRIDE + 3]
    assert [steps[s] for s in range(4)] == watched[0].history.val_loss
    for name, value in plain.model.state_dict().items():  # no watcher, same weights
        assert torch.equal(value, watched[0].model.state_dict()[name])


def test_a_pruned_trial_stops_its_training_and_maximising_studies_get_the_loss_negated() -> None:
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=-1e-9)
    )
    trial = study.ask()
    with watching_epochs(EpochReporter(trial, "maximize")):
        with pytest.raises(optuna.TrialPruned, match="pruned at model 1, epoch 1"):
            _tiny_fit()
    (value,) = study.trials[0].intermediate_values.values()
    assert value < 0  # -val_loss: higher is better, as the study's direction


def test_objective_value_is_the_mean_over_models_and_fails_on_nan() -> None:
    metrics = {"rnn.val_mse": 0.02, "lstm.val_mse": 0.04, "lstm.best_epoch": 3.0}
    objective = Objective(metric="val_mse", direction="minimize")
    assert objective_value(metrics, objective, "rnn") == pytest.approx(0.03)
    with pytest.raises(ObjectiveError, match=r"no gru\.val_mse among its metrics"):
        objective_value(metrics, Objective(metric="val_mse", direction="minimize",
                                           models=["gru"]), "rnn")  # fmt: skip
    with pytest.raises(NonFiniteLossError, match=r"objective val_mse is nan \(rnn nan"):
        objective_value({"rnn.val_mse": math.nan}, objective, "rnn")


@dataclass(frozen=True)
class DivergingRnn:
    """A stand-in for the rnn family: val_mse is smallest at learning rate 1e-3, and the
    loss diverges above 1e-2."""

    name: str = "rnn"
    torch: bool = False
    params_keys: tuple[str, ...] = ("compute", "rnn")

    def section(self, params: Params) -> RnnParams:
        return params.rnn

    def run(self, section: RnnParams, inputs, compute) -> FamilyResult:
        if section.learning_rate > 1e-2:
            raise NonFiniteLossError("training loss is nan; lower the learning rate")
        val_mse = 0.01 + (math.log10(section.learning_rate) + 3) ** 2
        return FamilyResult([ModelRun("lstm", "sine_sequences", {}, {"val_mse": val_mse})])


def rnn_study(tmp_path: Path, raw: dict, budget: int, name: str = "s") -> tuple:
    spec = check(raw, rnn_space({"rnn.learning_rate": {"float": [1e-4, 1.0], "log": True}}))
    tune = parse_tune_file({"families": {}})
    storage = studies.open_storage(f"sqlite:///{tmp_path / 'optuna.db'}", 1, 3, 0)
    plan = studies.plan_for(RNN, spec, raw, budget, name)
    study = studies.open_study(storage, plan, *studies.sampler_and_pruner(tune, True))
    return spec, storage, plan, study


def test_a_study_runs_its_budget_and_records_why_trials_failed(tmp_path: Path, raw: dict) -> None:
    spec, _, _, study = rnn_study(tmp_path, raw, budget=8)
    objective = make_objective(DivergingRnn(), spec, raw, inputs=None, compute_of=None)
    studies.work(study, objective, TRIAL_FAILURES, [], poll=0.1)
    trials = study.get_trials()
    assert [t.number for t in trials] == list(range(8))  # the budget, no more
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert failed, "the space reaches learning rates that diverge"
    for t in failed:
        assert t.params["rnn.learning_rate"] > 1e-2
        assert t.user_attrs["fail_reason"] == (
            "NonFiniteLossError: training loss is nan; lower the learning rate"
        )
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) + len(failed) == 8
    assert study.best_value == min(t.value for t in complete)
    result = studies.outcome(study)
    assert result.best.number == study.best_trial.number and result.lost == 0
    # no slot left: a worker joining now starts nothing (SlotStorage still takes)
    with pytest.raises(studies.BudgetSpent), pytest.warns(UserWarning, match="Heartbeat"):
        study.ask()


def test_a_study_of_the_same_name_with_another_space_is_refused(tmp_path: Path, raw: dict) -> None:
    _, storage, plan, _ = rnn_study(tmp_path, raw, budget=2)
    tune = parse_tune_file({"families": {}})
    other = studies.Plan(plan.name, "rnn", "minimize", 2, "0" * 12)
    with pytest.raises(studies.StudyMismatch, match="another search space or params"):
        studies.open_study(storage, other, *studies.sampler_and_pruner(tune, True))


def test_an_unreachable_storage_fails_in_seconds_naming_the_url() -> None:
    port = free_port()
    url = f"postgresql://tuner:secret@127.0.0.1:{port}/optuna"
    start = time.monotonic()
    with pytest.raises(studies.StorageUnavailable) as caught:
        studies.open_storage(url, 10, 60, 1)
    assert time.monotonic() - start < 10
    message = str(caught.value)
    assert message.startswith(
        f"Optuna storage postgresql://tuner:***@127.0.0.1:{port}/optuna cannot be opened"
    )
    assert "secret" not in message
