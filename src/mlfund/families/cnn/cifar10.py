"""CIFAR-10: download (torchvision, checksum verified) and load the python-pickle batches.

The archive `cifar-10-python.tar.gz` holds `cifar-10-batches-py/` with `data_batch_1..5`,
`test_batch` and `batches.meta`: pickled dicts (written by Python 2) whose `b"data"` is a
uint8 array (n, 3072) (1024 red, then green, then blue values, row-major 32x32) and whose
`b"labels"` is a list of ints 0..9; `batches.meta` has `b"label_names"`.
"""

from __future__ import annotations

import hashlib
import pickle
import socket
import urllib.error
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np

from mlfund.core.errors import DataUnavailableError

ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
IMAGE_SHAPE = (3, 32, 32)
SOCKET_TIMEOUT_S = 60.0  # per blocking socket operation (connect, each read)


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


def is_extracted(root: Path) -> bool:
    """Every batch file of the extracted archive is present under `root`."""
    folder = root / FOLDER
    return all((folder / name).is_file() for name in (*TRAIN_BATCHES, TEST_BATCH, META))


def download_cifar10(root: Path, url: str, md5: str) -> Path:
    """Download `url` into `root`, verify its md5, extract it; returns the batches folder.

    Nothing is downloaded when the extracted folder is already complete (placed by hand or
    extracted earlier) or when an archive with the right checksum is already in `root`.
    A failed download or a checksum mismatch raises `Cifar10Error` naming the dataset, the
    URL and how to place the files by hand; a corrupt archive is removed so a retry starts
    clean. Never substitutes other data.
    """
    from torchvision.datasets.utils import download_and_extract_archive

    root = Path(root)
    if is_extracted(root):
        return root / FOLDER
    archive = root / ARCHIVE
    previous = socket.getdefaulttimeout()
    # torchvision's urlopen has no timeout: a black-holed network would hang the stage
    socket.setdefaulttimeout(SOCKET_TIMEOUT_S)
    try:
        # torchvision skips the download when `archive` exists with this md5
        download_and_extract_archive(url, root, filename=ARCHIVE, md5=md5)
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
    if not is_extracted(root):
        raise Cifar10Error(
            f"{archive} (from {url}) does not contain {FOLDER}/ with every batch file. "
            + _by_hand(root, url)
        )
    return root / FOLDER


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
