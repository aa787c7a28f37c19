"""Data-parallel training (mlfund.deep.distributed) on this machine: gloo on 127.0.0.1.

Two torchrun workers train through the real path (`process_group` + `deep.training`) and
match one process; a rank that dies or hangs fails the run within a bounded time; a bad
`compute.distributed` fails before training naming its key; the cnn stage on 2 processes
writes its outputs once (rank 0).

Run as a script, this file is a torchrun worker: `test_distributed.py <mode> <out>`.
"""

from __future__ import annotations

# isort: off
import mlfund  # noqa: F401  (first: pins the numerical kernels before NumPy loads)
# isort: on

import json
import os
import shutil
import signal
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from mlfund.core.config import parse_params
from mlfund.core.errors import ParamsError
from mlfund.deep import distributed
from mlfund.deep.device import setup_compute
from mlfund.deep.training import make_loader, train_model

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve()
CPU = setup_compute("cpu", "fp32", 0)
STEPS_PER_EPOCH, EPOCHS, BATCH = 4, 3, 16  # 12 optimizer steps on 64 rows
DIE_AFTER = 1  # steps the failing rank takes before it dies or hangs


# ---------------------------------------------------------------- what the workers run
def tiny_task() -> tuple[torch.Tensor, torch.Tensor]:
    """64 rows of 6 features, 3 classes: seeded, the same in every process."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(STEPS_PER_EPOCH * BATCH, 6, generator=generator)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    return x, y


def tiny_net() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))


def tiny_fit(transform=None) -> nn.Module:
    """No dropout and no BatchNorm, so N processes must match one exactly (up to float
    rounding): Adam through `train_model`, shuffled batches of BATCH, no validation
    (the last weights are kept)."""
    fitted = train_model(
        tiny_net,
        tiny_task(),
        None,
        F.cross_entropy,
        CPU,
        seed=7,
        learning_rate=0.01,
        batch_size=BATCH,
        epochs=EPOCHS,
        transform=transform,
    )
    return fitted.model


class FailAfter:
    """A batch transform that kills (`die`) or stalls (`hang`) rank 1 after DIE_AFTER
    steps: the failure a crashed or wedged worker makes in the middle of training."""

    def __init__(self, how: str) -> None:
        self.how, self.steps = how, 0

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        if self.steps == DIE_AFTER and torch.distributed.get_rank() == 1:
            if self.how == "die":
                os._exit(1)
            time.sleep(600)  # hang: rank 0 waits in all-reduce until the timeout
        self.steps += 1
        return batch


def worker(mode: str, out: Path) -> None:
    """One torchrun rank: join the group, train, rank 0 saves the weights."""
    torch.set_num_threads(1)
    with distributed.process_group("gloo", CPU.device, timeout=5):
        model = tiny_fit(None if mode == "equivalence" else FailAfter(mode))
        if distributed.is_rank0():
            torch.save(model.state_dict(), out)


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail with TimeoutError if the block runs longer (SIGALRM: pytest-timeout's way);
    `relaunch` then stops torchrun and its workers on the way out."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def torchrun(monkeypatch):
    """Run this file's `worker(mode, out)` on 2 ranks, as the train stage relaunches
    itself (`distributed.relaunch`); returns the seconds it took."""
    monkeypatch.setenv("PYTHONPATH", f"{ROOT / 'src'}:{ROOT}")
    for name in distributed.WORKER_ENV:
        monkeypatch.delenv(name, raising=False)

    def run(mode: str, out: Path) -> float:
        start = time.perf_counter()
        with deadline(120):
            distributed.relaunch(2, [str(WORKER), mode, str(out)], timeout=30)
        return time.perf_counter() - start

    return run


# ---------------------------------------------------------------- the claims
@pytest.mark.e2e  # three processes importing torch: ~15 s, too slow for make test-fast
def test_two_processes_train_the_weights_of_one(tmp_path: Path, torchrun) -> None:
    """2 ranks with batches of BATCH / 2 (each rank the half `ShardedSampler` gives it of
    the single-process batch), gradients averaged by DDP, reach the weights of one
    process with batches of BATCH after 12 Adam steps."""
    out = tmp_path / "ranks.pt"
    seconds = torchrun("equivalence", out)
    one = tiny_fit().state_dict()
    two = torch.load(out)
    assert one.keys() == two.keys()
    diff = max(float((one[k] - two[k]).abs().max()) for k in one)
    print(f"max |w1 - w2| = {diff:.3g} after {STEPS_PER_EPOCH * EPOCHS} steps, {seconds:.1f} s")
    assert diff < 1e-5
    torch.manual_seed(7)  # as train_model seeds the build
    start = tiny_net().state_dict()
    assert min(float((one[k] - start[k]).abs().max()) for k in one) > 1e-3  # it trained


@pytest.mark.e2e
@pytest.mark.parametrize("how", ["die", "hang"])
def test_a_failed_rank_fails_the_run_in_bounded_time(tmp_path, torchrun, capfd, how) -> None:
    """Rank 1 exits (`die`) or stops answering (`hang`, caught by the 5 s process-group
    timeout) after its first step: the run fails with a clear error, not a hang."""
    start = time.perf_counter()
    with pytest.raises(distributed.DistributedError) as failed:
        torchrun(how, tmp_path / "never.pt")
    seconds = time.perf_counter() - start
    print(f"{how}: failed in {seconds:.1f} s")
    assert str(failed.value) == (
        "training on 2 processes (compute.distributed.nproc_per_node) failed: torchrun "
        "exited with status 1; its 'Root Cause' above names the first rank that failed"
    )
    log = capfd.readouterr().err
    assert "Root Cause" in log
    if how == "die":  # rank 1 is the root cause; a hung rank is killed after rank 0 fails
        assert "rank      : 1" in log and "exitcode  : 1" in log
    else:
        assert "rank      : 0" in log and "timed out" in log.lower()
    assert not (tmp_path / "never.pt").exists()
    assert seconds < 60


def test_sharded_batches_are_the_halves_of_single_process_batches() -> None:
    """Step k of W ranks reads exactly the single-process batch k, epoch after epoch;
    when the rows do not split evenly over the ranks, the last step adds the order's
    first rows again (DistributedSampler's padding)."""
    for rows, world in ((64, 2), (10, 2), (9, 3), (9, 2)):
        dataset = torch.utils.data.TensorDataset(torch.arange(rows), torch.zeros(rows))
        single = make_loader(*dataset.tensors, 6, shuffle=True, generator=_gen())
        shards = [
            torch.utils.data.DataLoader(
                dataset,
                6 // world,
                sampler=distributed.ShardedSampler(dataset, g, world, rank),
                generator=g,
            )
            for rank, g in enumerate(_gen() for _ in range(world))
        ]
        orders = []
        for _epoch in range(3):
            steps = list(zip(single, *shards, strict=True))
            order = torch.cat([batch[0] for batch, *_ in steps]).tolist()
            padding = order[: -rows % world]
            for k, (batch, *parts) in enumerate(steps):
                together = sorted(torch.cat([part[0] for part in parts]).tolist())
                extra = padding if k == len(steps) - 1 else []
                assert together == sorted(batch[0].tolist() + extra)
            orders.append(order)
        assert orders[0] != orders[1] != orders[2]  # reshuffled every epoch


def test_the_model_gets_back_the_batchnorm_it_was_built_with() -> None:
    """On CUDA with NCCL a replica trains SyncBatchNorm layers (DDP refuses them on CPU);
    `restore_batchnorm`, which `unwrap` calls, puts the model's own BatchNorm2d back with
    the trained weights and running statistics, so the saved model is what `build_cnn`
    rebuilds. Outside a process group SyncBatchNorm computes what BatchNorm does."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten())
    original = model[1]
    synced = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert synced is model and isinstance(model[1], nn.SyncBatchNorm)
    synced.to(torch.float64)  # new buffers in the synced layer: the original's go stale
    optimizer = torch.optim.SGD(synced.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        synced(torch.randn(8, 1, 6, 6, dtype=torch.float64)).pow(2).mean().backward()
        optimizer.step()
    trained = {k: v.clone() for k, v in synced.state_dict().items()}
    restored = distributed.restore_batchnorm(synced, {"1": original})
    assert restored is model and restored[1] is original
    assert type(restored[1]) is nn.BatchNorm2d
    state = restored.state_dict()
    assert state.keys() == trained.keys()
    assert all(torch.equal(state[k], trained[k]) for k in state)
    assert int(state["1.num_batches_tracked"]) == 3
    assert not torch.allclose(state["1.running_mean"], torch.zeros(4, dtype=torch.float64))


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(3)


def raw_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def with_distributed(device: str = "auto", **setting) -> dict:
    raw = raw_params()
    raw["compute"]["device"] = device
    raw["compute"]["distributed"].update(setting)
    return raw


def test_nccl_on_cpu_fails_in_the_schema_naming_the_key() -> None:
    with pytest.raises(ParamsError, match=r"compute\.distributed\.backend is nccl but compute"):
        parse_params(with_distributed("cpu", backend="nccl"))


def test_preflight_names_the_key_of_a_setting_this_machine_cannot_run(monkeypatch) -> None:
    from mlfund import preflight

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    found = preflight.problems(parse_params(with_distributed(backend="nccl")))
    assert found == [
        "compute.distributed.backend is nccl but training runs on cpu (compute.device): "
        "NCCL runs on CUDA GPUs only; use backend auto or gloo"
    ]
    found = preflight.problems(parse_params(with_distributed(nproc_per_node=4)))
    assert found == [
        "transfer.batch_size (10) does not split over compute.distributed.nproc_per_node "
        "(4) processes; make it a multiple"
    ]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    found = preflight.problems(parse_params(with_distributed("cuda", nproc_per_node=2)))
    assert found == [
        "compute.distributed.nproc_per_node is 2 but this machine has 1 CUDA GPU(s) "
        "(compute.device is cuda): one process per GPU, so at most 1"
    ]
    assert preflight.distributed_problems(parse_params(raw_params())) == []


@pytest.mark.e2e
def test_the_cnn_stage_on_two_processes_writes_once(tmp_path: Path, split_tables) -> None:
    """`python -m stages.train cnn` with nproc_per_node 2 relaunches itself under torchrun;
    both ranks train, rank 0 alone writes the model, the metrics and one MLflow run."""
    work = tmp_path / "repo"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "stages", work / "stages", ignore=ignore)
    shutil.copytree(ROOT / "src", work / "src", ignore=ignore)
    raw = with_distributed("cpu", nproc_per_node=2)
    raw["compute"]["threads"] = 1
    short = {"channels": [8, 16], "fc_size": 32, "image_size": 16, "epochs": 2, "patience": 2}
    raw["cnn"].update(short, learning_rate=3e-3, augment=False)
    (work / "params.yaml").write_text(yaml.safe_dump(raw))
    (work / "data" / "split").mkdir(parents=True)
    split_tables["digits"].to_parquet(work / "data" / "split" / "digits.parquet", index=False)
    from tests import e2e  # not in the torchrun workers, which run this file too

    start = time.perf_counter()
    result = e2e.run(work, sys.executable, "-m", "stages.train", "cnn")  # fails on an error
    print(f"stage on 2 processes: {time.perf_counter() - start:.1f} s")
    assert "training on 2 processes" in result.stderr
    assert "process group: 2 ranks, gloo on cpu" in result.stderr
    assert "BatchNorm per rank" in result.stderr
    assert (work / "models" / "cnn" / "simple_cnn.pt").exists()
    written = json.loads((work / "reports" / "train" / "cnn.json").read_text())
    assert written["metrics"]["cnn"]["simple_cnn"]["val_accuracy"] > 0.5
    with sqlite3.connect(work / "mlflow.db") as db:
        names = [name for (name,) in db.execute("select name from runs")]
    assert names.count("cnn/simple_cnn") == 1  # rank 1 trained too, and logged nothing
    assert len(names) == len(set(names))


if __name__ == "__main__":  # a torchrun worker of the tests above
    worker(sys.argv[1], Path(sys.argv[2]))
