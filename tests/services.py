"""Loopback services the scale-out tests start: a throwaway PostgreSQL and an `mlflow
server` on it. tests/conftest.py wraps them as the `postgres` and `tracking_server`
fixtures."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# .ci/run sets this: there, a missing PostgreSQL is a failure, not a skip.
REQUIRE_SERVICES = os.environ.get("MLFUND_REQUIRE_SERVICES") == "1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _postgres_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return candidates[-1].parent if candidates else None


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL on 127.0.0.1 (Debian's packages; .ci/run installs them);
    the URL of its database `mlflow`, user `mlflow`, no password."""
    binaries = _postgres_bin()
    if binaries is None:
        if REQUIRE_SERVICES:
            pytest.fail("PostgreSQL is not installed (apt-get install postgresql)")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    # initdb refuses to run as root; as root, run the server as Debian's postgres user, in
    # a folder it can reach (pytest's own temporary folders are private to root).
    home = Path(tempfile.mkdtemp(prefix="mlfund-postgres-"))
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(home, "postgres")
    port = free_port()
    data = home / "data"
    subprocess.run(
        [*as_user, binaries / "initdb", "-D", data, "-A", "trust", "-U", "mlflow", "--no-sync"],
        check=True,
        capture_output=True,
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {home} -c fsync=off"
    subprocess.run(
        [
            *as_user,
            binaries / "pg_ctl",
            "-D",
            data,
            "-o",
            options,
            "-l",
            home / "server.log",
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        create_database(f"postgresql://mlflow@127.0.0.1:{port}", "mlflow")
        yield f"postgresql://mlflow@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run(
            [*as_user, binaries / "pg_ctl", "-D", data, "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(home, ignore_errors=True)


def create_database(server: str, name: str) -> str:
    """Create database `name` on the server at `server` (a URL without a database); its URL."""
    binaries = _postgres_bin()
    assert binaries is not None
    host, port = server.rsplit("@", 1)[1].split(":")
    user = server.split("//", 1)[1].split("@", 1)[0]
    subprocess.run(
        [binaries / "createdb", "-h", host, "-p", port, "-U", user, name],
        check=True,
        capture_output=True,
    )
    return f"{server}/{name}"


@contextmanager
def mlflow_server(backend: str, home: Path) -> Iterator[str]:
    """`mlflow server` on `backend`, serving (proxying) the artifacts itself; its URL."""
    port = free_port()
    log = (home / "server.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            backend,
            "--artifacts-destination",
            str(home / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        from mlfund.core.tracking import TrackingUnavailable, check_server

        deadline = time.monotonic() + 90
        while True:
            try:
                check_server(uri, timeout=1)
                break
            except TrackingUnavailable:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"mlflow server did not start:\n{(home / 'server.log').read_text()}"
                    )
                time.sleep(0.5)
        yield uri
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
