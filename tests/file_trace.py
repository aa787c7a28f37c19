"""Which repository files a command reads and writes, from strace, checked against DVC.

`trace(command, work)` runs a stage's command under `strace -f` (every process it
starts included), keeps the opens, renames and unlinks of files inside `work`, and
`undeclared(...)` lists the reads that no dep covers and the writes that no out covers.
Python's own reads count: importing a module opens its source (or its cached bytecode,
which we map back to the source).
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

# With -y strace prints the path behind every descriptor, so an open's result names the
# file opened, whatever directory descriptor it was relative to:
#   1234 openat(3</repo/src>, "x.py", O_RDONLY|O_CLOEXEC) = 4</repo/src/x.py>
_PID = r"^(?:\[pid\s+\d+\]\s+|\d+\s+)?"
_OPEN = re.compile(_PID + r"open(?:at)?\((?P<args>.*)\) = \d+<(?P<path>[^>]+)>$")
_FLAGS = re.compile(r"\bO_[A-Z_|]+")
# rename(at2) and unlink(at): each path after its optional directory descriptor <dir>
_PATHS = re.compile(r'(?:\d+<(?P<dir>[^>]+)>|AT_FDCWD<(?P<cwd>[^>]+)>)?,? ?"(?P<path>[^"]+)"')
_RENAME = re.compile(_PID + r"rename(?:at2?)?\((?P<args>.*)\) = 0$")
_UNLINK = re.compile(_PID + r"unlink(?:at)?\((?P<args>.*)\) = 0$")
_WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC")

# Never deps or outs: the tracking store, git and DVC internals, Python's caches, and the
# metadata `pip install -e` leaves in src/ (importlib.metadata scans it for every package).
IGNORED = (".git", ".dvc", "mlruns", "mlflow.db", "mlflow.db-journal", "mlflow.db.lock")


@dataclass
class Trace:
    reads: set[str] = field(default_factory=set)  # repository-relative paths
    writes: set[str] = field(default_factory=set)


def _relative(path: str, work: Path) -> str | None:
    absolute = Path(os.path.normpath(work / path))  # relative paths are relative to `work`
    try:
        relative = absolute.relative_to(work)
    except ValueError:
        return None
    parts = relative.parts
    if not parts or parts[0] in IGNORED or any(p.endswith(".egg-info") for p in parts):
        return None
    if "__pycache__" in parts:  # foo/__pycache__/bar.cpython-311.pyc stands for foo/bar.py
        if not relative.name.endswith(".pyc"):
            return None
        source = relative.parent.parent / (relative.name.split(".")[0] + ".py")
        return str(source)
    return str(relative)


def _paths(args: str) -> list[str]:
    """The paths of a rename or unlink call, joined to their directory descriptors."""
    found = []
    for match in _PATHS.finditer(args):
        folder = match.group("dir") or match.group("cwd")
        found.append(os.path.join(folder, match.group("path")) if folder else match.group("path"))
    return found


def parse(lines: list[str], work: Path) -> Trace:
    found = Trace()
    for line in lines:
        if match := _OPEN.match(line):
            flags = _FLAGS.search(match.group("args"))
            if flags is None or "O_DIRECTORY" in flags.group(0):
                continue  # a directory listing
            path = _relative(match.group("path"), work)
            if path is None:
                continue
            if any(flag in flags.group(0) for flag in _WRITE_FLAGS):
                if not path.endswith(".py"):  # .pyc writes map to their source: not a write
                    found.writes.add(path)
            else:
                found.reads.add(path)
        elif match := _RENAME.match(line) or _UNLINK.match(line):
            for path in map(lambda p: _relative(p, work), _paths(match.group("args"))):
                if path is not None and not path.endswith(".py"):
                    found.writes.add(path)
    return found


def trace(command: str, work: Path, env: dict[str, str], log: Path) -> Trace:
    """Run `command` (a shell command line, as dvc.yaml's cmd) in `work`, traced."""
    result = subprocess.run(
        [
            "strace",
            "-f",
            "-qq",
            "-y",  # paths behind descriptors: what an open really opened
            # the kernel stops the process only on the traced calls, not on every stat and
            # read of an import (strace's cost on `import torch, mlflow, sklearn`: 7.9 s -> 2.2 s)
            "--seccomp-bpf",
            "-e",
            "trace=open,openat,rename,renameat,renameat2,unlink,unlinkat",
            "-o",
            str(log),
            "sh",
            "-c",
            command,
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-3000:]
        raise RuntimeError(f"{command} exited {result.returncode} under strace:\n{output}")
    return parse(log.read_text().splitlines(), work)


def covered(path: str, declared: set[str]) -> bool:
    """`path` is a declared path or inside a declared directory."""
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in declared)


def undeclared(found: Trace, deps: set[str], outs: set[str]) -> tuple[list[str], list[str]]:
    """(reads covered by no dep, out or params.yaml; writes covered by no out)."""
    allowed_reads = deps | outs | {"params.yaml"}
    reads = sorted(p for p in found.reads if not covered(p, allowed_reads))
    writes = sorted(p for p in found.writes if not covered(p, outs))
    return reads, writes
