"""CIFAR-10: download (torchvision, checksum verified), extract safely, and load the batches.

The archive `cifar-10-python.tar.gz` holds `cifar-10-batches-py/` with `data_batch_1..5`,
`test_batch` and `batches.meta`: pickled dicts (written by Python 2) whose `b"data"` is a
uint8 array (n, 3072) (1024 red, then green, then blue values, row-major 32x32) and whose
`b"labels"` is a list of ints 0..9; `batches.meta` has `b"label_names"`.

The mirror URL is a param, so the archive is untrusted input: a member with an absolute
path, a `..` component, a link or a special file is refused before it is written. Members
go into a temp folder inside `root`; the batches folder is moved into place only after
every batch has loaded, with a marker of their sizes, so a truncated archive never leaves
a folder that a later run takes as complete.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import shutil
import socket
import tarfile
import tempfile
import urllib.error
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, NamedTuple

import numpy as np

from mlfund.core.errors import DataUnavailableError

ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
BATCH_FILES = (*TRAIN_BATCHES, TEST_BATCH, META)
MARKER = "verified.json"  # in the batches folder: each batch file's size when it was verified
IMAGE_SHAPE = (3, 32, 32)
SOCKET_TIMEOUT_S = 60.0  # per blocking socket operation (connect, each read)
# tarfile's own "data" filter (Python 3.11.4+) backs up the member check below
_DATA_FILTER: dict[str, str] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


class Cifar10Error(DataUnavailableError):
    """CIFAR-10 could not be downloaded, verified or read."""


class Cifar10(NamedTuple):
    train_x: np.ndarray  # uint8 (n, 3, 32, 32)
    train_y: np.ndarray  # int64 (n,)
    test_x: np.ndarray
    test_y: np.ndarray


def _by_hand(root: Path, url: str) -> str:
    return (
        f"To provide it by hand, download {url} elsewhere and copy {ARCHIVE} into {root}/ "
        f"(or extract it there, so that {root / FOLDER}/ holds data_batch_1..5, test_batch and "
        "batches.meta), then run again."
    )


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sizes(folder: Path) -> dict[str, int]:
    return {name: (folder / name).stat().st_size for name in BATCH_FILES}


def _verify(folder: Path) -> None:
    """Every batch file in `folder` loads and has the CIFAR-10 layout; else Cifar10Error."""
    for name in BATCH_FILES:
        path = folder / name
        if not path.is_file():
            raise Cifar10Error(f"{FOLDER}/{name} is missing")
        try:
            if name == META:
                names = _read(path)[b"label_names"]
                if len(names) != 10:
                    raise ValueError(f"{len(names)} label names, expected 10")
            else:
                _batch(path)
        # untrusted bytes: any failure to unpickle or index them means an unusable batch
        except Exception as error:
            raise Cifar10Error(
                f"{FOLDER}/{name} does not load ({type(error).__name__}: {error})"
            ) from error


def _mark_verified(folder: Path) -> None:
    (folder / MARKER).write_text(json.dumps(_sizes(folder), indent=1) + "\n")


def is_extracted(root: Path) -> bool:
    """The batches folder under `root` is complete: every batch file has the size it had
    when verified. A folder without the marker (placed by hand, or left by an older
    version) is verified now, once; a truncated or missing batch makes it incomplete."""
    folder = Path(root) / FOLDER
    try:
        if json.loads((folder / MARKER).read_text()) == _sizes(folder):
            return True
    except (OSError, ValueError):
        pass
    try:
        _verify(folder)
    except Cifar10Error:
        return False
    try:
        _mark_verified(folder)
    except OSError:  # a read-only folder placed by hand: verify again next time
        pass
    return True


def download_cifar10(root: Path, url: str, md5: str) -> Path:
    """Download `url` into `root`, verify its md5, extract it safely; returns the batches folder.

    Nothing is downloaded when the extracted folder is already complete (placed by hand or
    extracted earlier) or when an archive with the right checksum is already in `root`.
    A failed download, a checksum mismatch, an unsafe member or a batch that does not load
    raises `Cifar10Error` naming the dataset, the URL and how to place the files by hand;
    a corrupt or refused archive is removed so a retry downloads it again. Never writes
    outside `root`, never substitutes other data.
    """
    from torchvision.datasets.utils import download_url

    root = Path(root)
    if is_extracted(root):
        return root / FOLDER
    archive = root / ARCHIVE
    previous = socket.getdefaulttimeout()
    # torchvision's urlopen has no timeout: a black-holed network would hang the stage
    socket.setdefaulttimeout(SOCKET_TIMEOUT_S)
    try:
        # torchvision skips the download when `archive` exists with this md5
        download_url(url, root, filename=ARCHIVE, md5=md5)
    except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
        archive.unlink(missing_ok=True)  # a partial file would only fail the checksum later
        raise Cifar10Error(
            f"could not download CIFAR-10 from {url}: {error}. " + _by_hand(root, url)
        ) from error
    except RuntimeError as error:  # torchvision: "File not found or corrupted."
        actual = _md5(archive) if archive.is_file() else "no file"
        archive.unlink(missing_ok=True)
        raise Cifar10Error(
            f"CIFAR-10 archive from {url} failed its checksum: md5 {actual}, expected {md5} "
            "(cnn.cifar10_md5); a mirror may serve another file. " + _by_hand(root, url)
        ) from error
    finally:
        socket.setdefaulttimeout(previous)
    _extract(archive, root, url)
    return root / FOLDER


def _unsafe(member: tarfile.TarInfo) -> str | None:
    """Why `member` could write outside the extraction folder, or None when it cannot."""
    path = PurePosixPath(member.name)
    if path.is_absolute():
        return "an absolute path"
    if ".." in path.parts:
        return "a path that climbs out with '..'"
    if not (member.isreg() or member.isdir()):
        # the real archive holds one folder of regular files: no link needs to be followed
        return "a link or special file"
    return None


def _checked(tar: tarfile.TarFile, archive: Path, url: str) -> Iterator[tarfile.TarInfo]:
    """The members of `tar`, each refused before its data is written if it is unsafe."""
    for member in tar:  # lazily: one pass over the compressed stream
        reason = _unsafe(member)
        if reason is not None:
            raise _refused(archive, url, f"member {member.name!r} is {reason}")
        # the archive's permission bits are not trusted either: a read-only folder would
        # block the marker and the clean-up
        member.mode = 0o755 if member.isdir() else 0o644
        yield member


def _extract(archive: Path, root: Path, url: str) -> None:
    """Extract `archive` into a temp folder inside `root` (same file system, so the final
    rename is atomic), verify every batch, then move the batches folder into place."""
    staging = Path(tempfile.mkdtemp(prefix=".extracting-", dir=root))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(staging, members=_checked(tar, archive, url), **_DATA_FILTER)
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
            raise _refused(archive, url, f"it is corrupt or truncated ({error})") from error
        new, target = staging / FOLDER, root / FOLDER
        try:
            _verify(new)
        except Cifar10Error as error:
            raise _refused(archive, url, str(error)) from error
        _mark_verified(new)
        if os.path.lexists(target):  # incomplete (a complete one returned early), and
            target.rename(staging / "incomplete")  # rename cannot replace a non-empty folder
        new.rename(target)
    except OSError as error:  # the disk, not the archive: keep the archive for a retry
        raise Cifar10Error(f"could not extract {archive} into {root}: {error}") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _refused(archive: Path, url: str, why: str) -> Cifar10Error:
    archive.unlink(missing_ok=True)  # a retry downloads it again rather than reusing it
    return Cifar10Error(
        f"refused the CIFAR-10 archive from {url}: {why}; nothing was kept. The mirror "
        "(cnn.cifar10_url) may serve a broken or hostile file. " + _by_hand(archive.parent, url)
    )


class _BatchUnpickler(pickle.Unpickler):
    """Pickle is the format CIFAR-10 ships in; allow only what its batches contain (numpy
    arrays and Python 2 byte strings), so a tampered file cannot run code."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"CIFAR-10 batch refers to {module}.{name}; refused")
        return super().find_class(module, name)


def _read(path: Path) -> dict[bytes, Any]:
    if not path.is_file():
        raise Cifar10Error(f"missing CIFAR-10 file {path}; run the download_cifar10 stage first")
    with path.open("rb") as file:
        # Python 2 pickles: keys and array bytes come back as bytes with encoding="bytes"
        return _BatchUnpickler(file, encoding="bytes").load()


def _batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    content = _read(path)
    data = np.asarray(content[b"data"], dtype=np.uint8)  # (n, 3072)
    labels = np.asarray(content[b"labels"], dtype=np.int64)  # (n,)
    if data.ndim != 2 or data.shape[1] != np.prod(IMAGE_SHAPE) or len(data) != len(labels):
        raise Cifar10Error(f"{path}: expected data (n, 3072) and n labels, got {data.shape}")
    return data.reshape(-1, *IMAGE_SHAPE), labels  # (n, 3, 32, 32): channel planes first


def _folder(root: Path) -> Path:
    root = Path(root)
    return root if root.name == FOLDER else root / FOLDER


def load_cifar10(root: Path) -> Cifar10:
    """The five training batches and the test batch as uint8 (n, 3, 32, 32) and labels.

    `root` is the folder given to `download_cifar10` or the batches folder itself.
    """
    folder = _folder(root)
    train = [_batch(folder / name) for name in TRAIN_BATCHES]
    test_x, test_y = _batch(folder / TEST_BATCH)
    return Cifar10(
        np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), test_x, test_y
    )


def label_names(root: Path) -> list[str]:
    """Class names in label order, from batches.meta."""
    names = _read(_folder(root) / META)[b"label_names"]
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def validation_split(n: int, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, validation) row indices of the official training set."""
    if not 0 < val_size < n:
        raise ValueError(f"validation size {val_size} must be between 0 and {n}")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[val_size:]), np.sort(order[:val_size])
