"""The few git look-ups the project needs: a folder's commit, a repository's top level, and
the commit a revision names.

Each runs `git rev-parse` in a subprocess and returns None when git gives no answer: the
folder is not in a repository, the repository has no commit yet, the revision does not
exist, or git itself cannot be run. Callers decide what that means (an "unknown" tag, the
working directory, an error).
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def _rev_parse(folder: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", *args], cwd=folder, capture_output=True, text=True, check=False
        )
    except OSError:  # no git, or `folder` is not a directory
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def toplevel(folder: Path) -> Path | None:
    """The top level of the git work tree `folder` is in."""
    top = _rev_parse(folder, "--show-toplevel")
    return Path(top) if top else None


def resolve(folder: Path, rev: str) -> str | None:
    """The full id of the commit `rev` names (a branch, tag, short id, `HEAD~1`...) in the
    repository of `folder`; an empty `rev` or one that looks like an option names none."""
    if not rev or rev.startswith("-"):
        return None
    return _rev_parse(folder, "--verify", "--quiet", f"{rev}^{{commit}}") or None


def commit(folder: Path) -> str | None:
    """The commit checked out (HEAD) in the repository of `folder`."""
    return resolve(folder, "HEAD")
