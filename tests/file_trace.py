"""Which repository files a command reads and writes, from strace, checked against DVC.

`strace_prefix(output)` runs a command (the e2e project's `dvc repro`) under strace, every
process it starts included, one log per process; `by_command(...)` gives each stage
command's opens, renames and unlinks of files inside `work`, from its own processes only,
and `undeclared(...)` lists the reads that no dep covers and the writes that no out covers.
Python's own reads count: importing a module opens its source (or its cached bytecode,
which we map back to the source).
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

# One log per process (-ff), so no line starts with a pid. With -y strace prints the path
# behind every descriptor, so an open's result names the file opened, whatever directory
# descriptor it was relative to:
#   openat(3</repo/src>, "x.py", O_RDONLY|O_CLOEXEC) = 4</repo/src/x.py>
_OPEN = re.compile(r"^open(?:at)?\((?P<args>.*)\) = \d+<(?P<path>[^>]+)>$")
_FLAGS = re.compile(r"\bO_[A-Z_|]+")
# rename(at2) and unlink(at): each path after its optional directory descriptor <dir>
_PATHS = re.compile(r'(?:\d+<(?P<dir>[^>]+)>|AT_FDCWD<(?P<cwd>[^>]+)>)?,? ?"(?P<path>[^"]+)"')
_RENAME = re.compile(r"^rename(?:at2?)?\((?P<args>.*)\) = 0$")
_UNLINK = re.compile(r"^unlink(?:at)?\((?P<args>.*)\) = 0$")
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


def strace_prefix(output: Path) -> list[str]:
    """The strace command line that runs a command with every process it starts traced,
    one log per process: `output`.PID (no interleaved, split lines), for `by_command`."""
    return [
        "strace",
        "-ff",
        "-qq",
        "-y",  # paths behind descriptors: what an open really opened
        "-s",
        "4096",  # whole strings: command lines and renamed paths
        # the kernel stops the process only on the traced calls, not on every stat and
        # read of an import (strace's cost on `import torch, mlflow, sklearn`: 7.9 s -> 2.2 s)
        "--seccomp-bpf",
        "-e",
        "trace=open,openat,rename,renameat,renameat2,unlink,unlinkat,execve,clone,clone3,fork,vfork",
        "-o",
        str(output),
    ]


# the process a clone/fork started, and the argv of a successful execve
_CHILD = re.compile(r"^(?:clone3?|v?fork)\(.*\)\s*= (?P<pid>\d+)$")
_EXEC = re.compile(r'^execve\("[^"]*", \[(?P<argv>.*)\], 0x[0-9a-f]+ /\* \d+ vars \*/\) = 0$')
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _argv(line: str) -> list[str] | None:
    match = _EXEC.match(line)
    if match is None:
        return None
    return [ast.literal_eval(f'"{arg}"') for arg in _STRING.findall(match.group("argv"))]


def by_command(output: Path, work: Path, commands: dict[str, str]) -> dict[str, Trace]:
    """What each command of `commands` (command line -> name) read and wrote, with every
    process it started, from the logs `strace_prefix(output)` left.

    A command's root is the process that exec'd `SHELL [options] -c COMMAND` (how DVC runs
    a stage); its descendants follow the clone/fork results. A command that never ran there
    has no entry.
    """
    lines = {
        int(log.suffix[1:]): log.read_text().splitlines()
        for log in output.parent.glob(f"{output.name}.*")
    }
    parent, root = {}, {}
    for pid, calls in lines.items():
        for index, line in enumerate(calls):
            if match := _CHILD.match(line):
                parent[int(match.group("pid"))] = pid
            elif (argv := _argv(line)) and len(argv) >= 3 and argv[-2] == "-c":
                if argv[-1] in commands:
                    root[pid] = (commands[argv[-1]], index)

    def command_of(pid: int) -> str | None:
        while pid not in root:
            if pid not in parent:
                return None
            pid = parent[pid]
        return root[pid][0]

    found: dict[str, list[str]] = {}
    for pid, calls in lines.items():
        name = command_of(pid)
        if name is not None:
            # the root's calls before its exec are its parent's (DVC's fork)
            first = root[pid][1] if pid in root else 0
            found.setdefault(name, []).extend(calls[first:])
    return {name: parse(calls, work) for name, calls in found.items()}


def covered(path: str, declared: set[str]) -> bool:
    """`path` is a declared path or inside a declared directory."""
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in declared)


def undeclared(found: Trace, deps: set[str], outs: set[str]) -> tuple[list[str], list[str]]:
    """(reads covered by no dep, out or params.yaml; writes covered by no out)."""
    allowed_reads = deps | outs | {"params.yaml"}
    reads = sorted(p for p in found.reads if not covered(p, allowed_reads))
    writes = sorted(p for p in found.writes if not covered(p, outs))
    return reads, writes
