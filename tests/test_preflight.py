"""Every bad params.yaml edit that used to lose outputs (issue 13, section 3) is caught by
check_params, before DVC deletes anything, with one line naming the key; and what can
still fail at run time names its key, with no traceback.

| edit                                        | caught by                        |
|---------------------------------------------|----------------------------------|
| compute.device: cuda on a CPU machine       | preflight.device_problems        |
| data.classification_2d.n_samples: 10**12    | preflight.memory_problems        |
| cnn.cifar10_url: ../../../etc/passwd        | the schema (CnnParams)           |
| transfer.resnet18_weights: a missing file   | preflight.weights_problems       |
| data.regression_1d.noise: .inf, and any     | the schema (allow_inf_nan=False) |
|   other float that is inf or nan            |                                  |
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
import yaml

from mlfund import preflight
from mlfund.core.config import Params, ParamsError, parse_params
from mlfund.core.datasets import makers
from mlfund.core.errors import DatasetError
from mlfund.core.tables import table_sizes
from tests.test_config import run_check_params

ROOT = Path(__file__).resolve().parents[1]
GB = 10**9


@pytest.fixture
def raw() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def error_of(raw: dict) -> str:
    with pytest.raises(ParamsError) as info:
        parse_params(raw)
    return str(info.value)


def test_committed_params_pass_every_check(params: Params):
    assert preflight.problems(params) == []


# ---------------------------------------------------------------- devices
@pytest.fixture
def cpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine as one without cuda or mps, whatever it has."""
    import mlfund.deep.device

    monkeypatch.setattr(mlfund.deep.device, "_available", lambda kind: kind == "cpu")


@pytest.mark.parametrize(
    ("section", "device", "key"),
    [("compute", "cuda", "compute.device"), ("cnn", "mps", "cnn.device")],
)
def test_missing_device_names_its_key(raw: dict, cpu_only, section: str, device: str, key: str):
    raw[section]["device"] = device
    found = preflight.problems(parse_params(raw))
    assert found == [
        f"{key} is '{device}' but no {device} device is available here; use device: auto or cpu"
    ]


def test_a_family_override_hides_the_shared_device(raw: dict, cpu_only):
    raw["compute"]["device"] = "cuda"
    for family in ("mlp", "cnn", "rnn", "transformer", "generative", "transfer"):
        raw[family]["device"] = "cpu"  # compute.device is then used by nobody
    assert preflight.device_problems(parse_params(raw)) == []


def test_an_available_device_passes(raw: dict, monkeypatch: pytest.MonkeyPatch):
    import mlfund.deep.device

    monkeypatch.setattr(mlfund.deep.device, "_available", lambda kind: True)
    raw["rnn"]["device"] = "cuda"
    assert preflight.device_problems(parse_params(raw)) == []


def test_default_devices_do_not_import_torch():
    """check_params runs before every repro: auto/cpu are settled without torch (~2 s)."""
    code = (
        "import sys; from mlfund import preflight; from mlfund.core.config import load_params;"
        "assert preflight.problems(load_params('params.yaml')) == [];"
        "print(sorted(m for m in ('torch', 'mlfund.deep', 'mlfund.families') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# ---------------------------------------------------------------- the CIFAR-10 URL
@pytest.mark.parametrize(
    "url",
    [
        "../../../etc/passwd",
        "/etc/passwd",
        "",
        "ftp://mirror.example/cifar-10-python.tar.gz",
        "javascript:alert(1)",
        "http:///cifar-10-python.tar.gz",  # no host
        "https://mirror.example:http/cifar-10-python.tar.gz",  # no port
        "file://mirror.example/cifar-10-python.tar.gz",  # a host in a file: URL
    ],
)
def test_bad_cifar10_url_names_the_key(raw: dict, url: str):
    raw["cnn"]["cifar10_url"] = url
    message = error_of(raw)
    assert "  cnn.cifar10_url: " in message
    assert repr(url) in message


@pytest.mark.parametrize(
    "url",
    [
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "http://127.0.0.1:8000/cifar-10-python.tar.gz",
        "file:///srv/mirror/cifar-10-python.tar.gz",
    ],
)
def test_mirror_urls_pass(raw: dict, url: str):
    raw["cnn"]["cifar10_url"] = url
    assert parse_params(raw).cnn.cifar10_url == url


# ---------------------------------------------------------------- weights files
def test_missing_resnet18_weights_name_the_key(raw: dict, tmp_path: Path):
    raw["transfer"].update(backbone="resnet18_imagenet", resnet18_weights=str(tmp_path / "no.pth"))
    (line,) = preflight.problems(parse_params(raw))
    assert f"transfer.resnet18_weights ({tmp_path / 'no.pth'})" in line
    assert line.startswith("transfer.backbone resnet18_imagenet needs ResNet-18 ImageNet weights")


def test_present_resnet18_weights_pass(raw: dict, tmp_path: Path):
    weights = tmp_path / "resnet18.pth"
    weights.write_bytes(b"")  # check_params looks for the file; train@transfer loads it
    raw["transfer"].update(backbone="resnet18_imagenet", resnet18_weights=str(weights))
    assert preflight.weights_problems(parse_params(raw)) == []


def test_pipeline_backbone_needs_no_weights(raw: dict, tmp_path: Path):
    raw["transfer"]["resnet18_weights"] = str(tmp_path / "no.pth")  # unused by pipeline_cnn
    assert preflight.weights_problems(parse_params(raw)) == []


# ---------------------------------------------------------------- finite floats
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize(
    "path",
    [
        ("data", "regression_1d", "noise"),
        ("data", "blobs", "cluster_std"),
        ("data", "noisy_sine", "slope"),  # no range at all
        ("regularization", "ridge_alphas", "start"),
        ("numpy_nn", "geometry", "start", 1),  # in a tuple
        ("regularization", "ridge_strengths", 2),  # in a list
        ("featurize", "age_bins", 4),
    ],
)
def test_non_finite_float_names_its_key(raw: dict, path: tuple, value: float):
    *parents, last = path
    node = raw
    for part in parents:
        node = node[part]
    node[last] = value
    message = error_of(raw)
    dotted = ".".join(str(p) for p in path)
    assert f"  {dotted}: " in message
    assert "finite number" in message


def test_yaml_spellings_of_infinity_are_rejected(raw: dict):
    edited = yaml.safe_dump(raw).replace("cluster_std: 0.6", "cluster_std: .inf")
    assert "data.blobs.cluster_std: Input should be a finite number (got inf)" in error_of(
        yaml.safe_load(edited)
    )


# ---------------------------------------------------------------- memory
def test_huge_dataset_names_the_key_and_estimate(raw: dict):
    raw["data"]["classification_2d"]["n_samples"] = 10**12
    params = parse_params(raw)  # in range for the schema: only the machine says no
    (line,) = preflight.memory_problems(params, 16 * GB)
    assert line == (
        "data.classification_2d.n_samples (1000000000000): 1000000000000 rows x 3 columns "
        "need about 96,000.0 GB of memory to generate, more than this machine's memory "
        "(16.0 GB); lower it, or raise data.memory_limit_gb if you know it fits"
    )
    (here,) = preflight.problems(params)  # on the machine check_params runs on
    assert here.startswith("data.classification_2d.n_samples (1000000000000): ")


def test_memory_limit_overrides_the_machine(raw: dict):
    raw["data"]["classification_2d"]["n_samples"] = 10**8  # 9.6 GB estimated
    raw["data"]["memory_limit_gb"] = 64
    assert preflight.memory_problems(parse_params(raw), 4 * GB) == []
    raw["data"]["memory_limit_gb"] = 0.001  # and may be lower than the machine, too
    found = preflight.memory_problems(parse_params(raw), 4 * GB)
    assert [line.split(" (")[0] for line in found] == [
        "data.classification_2d.n_samples",
        "data.sine_sequences.n_sequences",  # 2000 x 31 cells: 2 MB estimated
    ]
    assert "more than data.memory_limit_gb (0.001 GB)" in found[0]


def test_unknown_machine_memory_skips_the_check(raw: dict):
    raw["data"]["classification_2d"]["n_samples"] = 10**12
    assert preflight.memory_problems(parse_params(raw), None) == []


def test_machine_memory_is_known_here():
    assert preflight.memory_bytes() > GB


def test_estimates_bound_the_measured_peak(raw: dict):
    """The estimate is what making each table really takes (tracemalloc sees NumPy's and
    pandas' buffers), and at most twice that: not a guess."""
    sizes = {
        "classification_2d": 10**6,
        "regression_1d": 10**6,
        "regression_10d": 2 * 10**5,
        "regression_sparse": 10**5,
        "blobs": 10**6,
        "circles": 10**6,
        "noisy_sine": 10**6,
        "sine_sequences": 5 * 10**4,
        "salary": 8 * 10**4,
    }
    for name, rows in sizes.items():
        raw["data"][name]["n_sequences" if name == "sine_sequences" else "n_samples"] = rows
    data = parse_params(raw).data
    estimates = table_sizes(data)
    assert set(estimates) == set(sizes)
    for name, make in makers(data).items():
        if name == "digits":
            continue
        tracemalloc.start()
        try:
            make()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        estimate = estimates[name].peak_bytes
        assert estimate / 2 <= peak <= estimate, (name, peak, estimate)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"n_samples": 100_000}, "n_samples (100000) days from start_date (2020-01-01)"),
        ({"start_date": "1600-01-01"}, "must stay within 1677-09-22..2262-04-11"),
    ],
)
def test_salary_dates_must_fit_pandas(raw: dict, change: dict, expected: str):
    """One row a day: past 2262-04-11, generate died on OutOfBoundsDatetime."""
    raw["data"]["salary"].update(change)
    message = error_of(raw)
    assert "  data.salary: " in message
    assert expected in message


# ---------------------------------------------------------------- the stages
def test_check_params_stops_before_anything_runs(raw: dict, tmp_path: Path):
    raw["data"]["classification_2d"]["n_samples"] = 10**12
    raw["features"]["k_best"] = 50
    result = run_check_params(raw, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "  data.classification_2d.n_samples (1000000000000): " in result.stderr
    assert "  features.k_best (50) exceeds" in result.stderr
    assert not (tmp_path / "reports").exists()  # so no stage downstream runs


def test_generate_failure_names_the_dataset_and_how_to_restore(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    """What check_params cannot foresee (memory taken by others, a limit raised too far)
    still ends in one line naming the key and `dvc checkout`, no traceback."""
    from stages import generate
    from stages.common import run_stage

    def too_big():
        raise MemoryError("Unable to allocate 14.6 TiB for an array")

    monkeypatch.setattr(generate, "makers", lambda data: {"blobs": too_big})
    monkeypatch.setenv("DVC_STAGE", "generate")
    monkeypatch.delenv("MLFUND_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_:
        run_stage(generate.main)
    assert exit_.value.code == DatasetError.exit_code
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: data.blobs: could not make this dataset (MemoryError: ")
    assert line.endswith("(`dvc checkout generate` restores its previous outputs)")

    monkeypatch.setenv("MLFUND_DEBUG", "1")  # the traceback, on request
    with pytest.raises(DatasetError) as error:
        run_stage(generate.main)
    assert isinstance(error.value.__cause__, MemoryError)
