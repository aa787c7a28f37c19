"""requirements.lock installs on every platform the README promises, and `mlflow run`'s
environment file follows it.

For Linux x86_64, Linux aarch64 and macOS arm64 (CPython 3.11), every pin whose marker
holds there must have a wheel PyPI lists for that platform, or be pure Python (an sdist
that builds the same `py3-none-any` wheel anywhere, as the installed copy here shows).
PyPI's simple API (PEP 691 JSON) lists each project's files: metadata only, no downloads,
one request per pin, in parallel (a few seconds). Without PyPI those tests skip, and
fail where MLFUND_REQUIRE_SERVICES=1 (CI).
"""

from __future__ import annotations

import importlib.metadata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from mlflow.utils.conda import _get_conda_env_name
from mlflow.utils.environment import _PythonEnv
from mlflow.utils.virtualenv import _get_virtualenv_name
from packaging import tags
from packaging.requirements import Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version
from urllib3.util.retry import Retry

from mlfund.lockfile import conda_env, lock_pins
from tests.services import REQUIRE_SERVICES

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
ENV_FILE = ROOT / "conda.yaml"
PYTHON = "3.11"  # the Makefile's LOCK_PYTHON
PYPI_SIMPLE = "https://pypi.org/simple"
# The oldest glibc the Linux wheels may ask for: torch 2.14.1's are manylinux_2_28 (Debian
# 10+, Ubuntu 20.04+, RHEL 8+), so nothing older can run the pipeline anyway.
GLIBC_MINOR = 28
MACOS = (14, 0)  # torch 2.14.1's macOS wheels are macosx_14_0_arm64

CPYTHON_311 = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.9",
    "platform_python_implementation": "CPython",
    "python_version": "3.11",
    "python_full_version": "3.11.9",
    "os_name": "posix",
    "platform_release": "",
    "platform_version": "",
}


def manylinux(arch: str) -> tuple[str, ...]:
    """The platform tags pip accepts on a glibc 2.GLIBC_MINOR Linux, newest first (the
    manylinux2014/2010/1 names are aliases of 2_17, 2_12 and 2_5)."""
    legacy = ("manylinux2014", "manylinux2010", "manylinux1")
    return (
        *(f"manylinux_2_{minor}_{arch}" for minor in range(GLIBC_MINOR, 4, -1)),
        *(f"{name}_{arch}" for name in legacy),
    )


@dataclass(frozen=True)
class Platform:
    name: str
    markers: dict[str, str]  # the PEP 508 environment pip evaluates the lock's markers in
    wheel_platforms: tuple[str, ...]  # platform tags of the wheels pip accepts there

    def applies(self, pin: str) -> bool:
        marker = Requirement(pin).marker
        return marker is None or marker.evaluate(self.markers)

    def wheel_tags(self) -> frozenset[tags.Tag]:
        """cp311, abi3 and pure-Python tags, as pip on CPython 3.11 there would accept."""
        cpython = tags.cpython_tags((3, 11), abis=["cp311"], platforms=self.wheel_platforms)
        generic = tags.compatible_tags((3, 11), "cp311", self.wheel_platforms)
        return frozenset([*cpython, *generic])


LINUX = {**CPYTHON_311, "sys_platform": "linux", "platform_system": "Linux"}
PLATFORMS = [
    Platform("linux-x86_64", {**LINUX, "platform_machine": "x86_64"}, manylinux("x86_64")),
    Platform("linux-aarch64", {**LINUX, "platform_machine": "aarch64"}, manylinux("aarch64")),
    Platform(
        "macos-arm64",
        {**CPYTHON_311, "sys_platform": "darwin", "platform_system": "Darwin"}
        | {"platform_machine": "arm64"},
        tuple(tags.mac_platforms(MACOS, "arm64")),
    ),
]


def pinned(pin: str) -> tuple[str, str]:
    """(canonical name, version) of a `name==version ; marker` line."""
    requirement = Requirement(pin)
    (specifier,) = requirement.specifier
    assert specifier.operator == "==", pin
    return canonicalize_name(requirement.name), specifier.version


def release_files(session: requests.Session, name: str, version: str) -> list[str]:
    """File names PyPI lists for one release: the project's simple API page (PEP 691
    JSON), the files whose names carry that version. Yanked files count, as pip installs
    a yanked release when pinned to it exactly."""
    response = session.get(
        f"{PYPI_SIMPLE}/{name}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        timeout=30,
    )
    response.raise_for_status()
    files = [file["filename"] for file in response.json()["files"]]
    # parse only names that spell the version (thousands of files per project otherwise)
    return [file for file in files if version in file and file_version(file) == Version(version)]


def file_version(filename: str) -> Version | None:
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[1]
        return parse_sdist_filename(filename)[1]
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None  # an egg, an exe installer, a nonstandard name: nothing pip installs


def has_wheel(filenames: list[str], accepted: frozenset[tags.Tag]) -> bool:
    wheels = [parse_wheel_filename(name) for name in filenames if name.endswith(".whl")]
    return any(wheel_tags & accepted for _, _, _, wheel_tags in wheels)


def pure_python_here(name: str) -> bool:
    """The copy installed here is a pure-Python wheel (for an sdist-only pin: pip built it
    from the sdist, and that sdist builds the same wheel on any platform)."""
    try:
        wheel = importlib.metadata.distribution(name).read_text("WHEEL") or ""
    except importlib.metadata.PackageNotFoundError:
        return False
    return "Root-Is-Purelib: true" in wheel


@pytest.fixture(scope="module")
def pins() -> list[str]:
    return lock_pins(LOCK.read_text())


@pytest.fixture(scope="module")
def pypi_files(pins: list[str]) -> dict[tuple[str, str], list[str]]:
    """(name, version) -> the file names PyPI lists, for every pin of the lock."""
    releases = sorted({pinned(pin) for pin in pins})
    # one session: kept-alive connections make ~200 requests take a second or two, where a
    # new TLS connection per request took 10-17 s here and 7 CPU seconds
    with requests.Session() as session:
        retries = Retry(total=3, backoff_factor=0.5, status_forcelist=[429, 500, 502, 503, 504])
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=16, max_retries=retries)
        session.mount("https://", adapter)
        try:
            # one request first: an unreachable index answers in seconds, not 200 times
            files = [release_files(session, *releases[0])]
            with ThreadPoolExecutor(max_workers=16) as pool:
                files += pool.map(lambda release: release_files(session, *release), releases[1:])
        except requests.RequestException as error:
            message = f"PyPI did not answer ({error})"
            if REQUIRE_SERVICES:
                pytest.fail(message)
            pytest.skip(message)
    return dict(zip(releases, files, strict=True))


@pytest.mark.e2e  # ~200 requests to PyPI: for make test, not the offline edit loop
@pytest.mark.parametrize("platform", PLATFORMS, ids=lambda platform: platform.name)
def test_every_pin_has_a_wheel(
    platform: Platform, pins: list[str], pypi_files: dict[tuple[str, str], list[str]]
) -> None:
    accepted = platform.wheel_tags()
    missing = []
    for pin in filter(platform.applies, pins):
        name, version = pinned(pin)
        files = pypi_files[name, version]
        if has_wheel(files, accepted):
            continue
        if any(f.endswith((".tar.gz", ".zip")) for f in files) and pure_python_here(name):
            continue
        missing.append(f"{name}=={version} (PyPI has: {', '.join(files) or 'nothing'})")
    assert not missing, f"no {platform.name} wheel for:\n" + "\n".join(missing)


@pytest.mark.parametrize("platform", PLATFORMS, ids=lambda platform: platform.name)
def test_torch_everywhere_cuda_wheels_only_on_linux(platform: Platform, pins: list[str]) -> None:
    installed = dict(pinned(pin) for pin in pins if platform.applies(pin))
    assert installed["torch"] == "2.14.1"
    assert installed["torchvision"] == "0.29.1"
    cuda = sorted(name for name in installed if name.startswith(("nvidia-", "cuda-", "triton")))
    if platform.markers["sys_platform"] == "linux":
        assert "nvidia-cudnn-cu13" in cuda and "triton" in cuda
    else:
        assert cuda == []


UV_LOCK = """\
# This file was autogenerated by uv via the following command:
#    make lock
torch==2.14.1
    # via
    #   mlfund (pyproject.toml)
    #   torchvision
triton==3.8.0 ; python_full_version < '3.15' and sys_platform == 'linux'
    # via torch
"""


def test_lock_pins_keeps_markers_drops_comments() -> None:
    assert lock_pins(UV_LOCK) == [
        "torch==2.14.1",
        "triton==3.8.0 ; python_full_version < '3.15' and sys_platform == 'linux'",
    ]


def test_env_file_is_the_committed_lock() -> None:
    assert ENV_FILE.read_text() == conda_env(lock_pins(LOCK.read_text()), PYTHON), (
        "conda.yaml is stale: run `make lock`"
    )


def test_a_lock_change_is_a_new_mlflow_environment(tmp_path: Path) -> None:
    """MLflow reuses an environment whose name matches; the name must follow the lock."""
    before, after = tmp_path / "before.yaml", tmp_path / "after.yaml"
    before.write_text(conda_env(lock_pins(UV_LOCK), PYTHON))
    after.write_text(conda_env(lock_pins(UV_LOCK.replace("3.8.0", "3.8.1")), PYTHON))

    python_env = _PythonEnv.from_conda_yaml(after)
    assert python_env.python == PYTHON
    assert python_env.dependencies == lock_pins(UV_LOCK.replace("3.8.0", "3.8.1"))
    # --env-manager conda names the env after the file's text, virtualenv and uv after
    # its python and pip lines
    assert _get_conda_env_name(str(before)) != _get_conda_env_name(str(after))
    names = {
        _get_virtualenv_name(_PythonEnv.from_conda_yaml(path), tmp_path) for path in (before, after)
    }
    assert len(names) == 2
