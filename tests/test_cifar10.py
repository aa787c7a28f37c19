"""CIFAR-10 download and loading, end to end, on a tiny archive in the real format served
by a local HTTP server on 127.0.0.1 (no internet), and the cnn family's CIFAR-10 path."""

from __future__ import annotations

import hashlib
import http.server
import io
import pickle
import socket
import tarfile
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from mlfund.core import registry
from mlfund.deep.cnn import predict
from mlfund.deep.device import setup_compute
from mlfund.deep.predictor import build
from mlfund.families.cnn.cifar10 import (
    ARCHIVE,
    FOLDER,
    Cifar10Error,
    download_cifar10,
    is_extracted,
    label_names,
    load_cifar10,
    validation_split,
)
from tests.conftest import FrameInputs

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
PER_BATCH, TEST_IMAGES = 3, 4


def _pickle(content: dict) -> bytes:
    return pickle.dumps(content, protocol=2)  # CIFAR-10's batches are Python 2 (protocol 2)


def _batch(rng: np.random.Generator, n: int, name: str) -> tuple[dict, np.ndarray, np.ndarray]:
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)  # R plane, G plane, B plane
    labels = rng.integers(0, 10, size=n).tolist()
    content = {b"batch_label": name.encode(), b"labels": labels, b"data": data}
    content[b"filenames"] = [f"{name}_{i}.png".encode() for i in range(n)]
    return content, data, np.asarray(labels)


def _file(name: str, payload: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    return info, payload


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, b""


def _write_archive(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> str:
    """Writes a .tar.gz of `members` in order, as given (no name cleaning); returns its md5."""
    with tarfile.open(path, "w:gz") as archive:
        for info, payload in members:
            archive.addfile(info, io.BytesIO(payload) if info.isreg() else None)
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny_archive(tmp_path_factory) -> dict:
    """cifar-10-python.tar.gz with cifar-10-batches-py/ holding the real file set."""
    rng = np.random.default_rng(0)
    files, train_x, train_y = {}, [], []
    for i in range(1, 6):
        content, data, labels = _batch(rng, PER_BATCH, f"data_batch_{i}")
        files[f"data_batch_{i}"] = _pickle(content)
        train_x.append(data)
        train_y.append(labels)
    content, test_x, test_y = _batch(rng, TEST_IMAGES, "test_batch")
    files["test_batch"] = _pickle(content)
    meta = {b"label_names": [n.encode() for n in NAMES], b"num_cases_per_batch": PER_BATCH}
    files["batches.meta"] = _pickle(meta)
    served = tmp_path_factory.mktemp("served")
    _write_archive(served / ARCHIVE, [_file(f"{FOLDER}/{name}", b) for name, b in files.items()])
    return {
        "files": files,
        "folder": served,
        "md5": hashlib.md5((served / ARCHIVE).read_bytes()).hexdigest(),
        "train_x": np.concatenate(train_x),
        "train_y": np.concatenate(train_y),
        "test_x": test_x,
        "test_y": test_y,
    }


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


@pytest.fixture
def serve():
    """serve(folder) starts an HTTP server for `folder` on a free port of 127.0.0.1 in a
    thread and returns (archive url, GETs); every server stops after the test."""
    running = []

    def start(folder: Path) -> tuple[str, list[str]]:
        requests: list[str] = []
        handler = type("Handler", (_CountingHandler,), {"requests": requests})
        httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), partial(handler, directory=str(folder))
        )
        # a short poll interval: shutdown() waits for one poll
        thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
        thread.start()
        running.append((httpd, thread))
        return f"http://127.0.0.1:{httpd.server_address[1]}/{ARCHIVE}", requests

    yield start
    for httpd, thread in running:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def server(serve, tiny_archive):
    return serve(tiny_archive["folder"])


def test_download_verifies_extracts_and_loads(tmp_path, server, tiny_archive):
    url, requests = server
    folder = download_cifar10(tmp_path, url, tiny_archive["md5"])
    assert folder == tmp_path / FOLDER
    assert requests and set(requests) == {f"/{ARCHIVE}"}
    data = load_cifar10(tmp_path)
    assert data.train_x.shape == (5 * PER_BATCH, 3, 32, 32) and data.train_x.dtype == np.uint8
    assert data.test_x.shape == (TEST_IMAGES, 3, 32, 32)
    np.testing.assert_array_equal(data.train_y, tiny_archive["train_y"])
    np.testing.assert_array_equal(data.test_y, tiny_archive["test_y"])
    # row layout: 1024 red values (row-major 32x32), then green, then blue
    raw = tiny_archive["train_x"]
    np.testing.assert_array_equal(data.train_x[4, 0], raw[4, :1024].reshape(32, 32))
    np.testing.assert_array_equal(data.train_x[4, 2, 5], raw[4, 2048 + 5 * 32 : 2048 + 6 * 32])
    assert label_names(tmp_path) == NAMES
    assert load_cifar10(folder).test_y.tolist() == data.test_y.tolist()  # the folder itself


def test_no_second_download(tmp_path, server, tiny_archive):
    url, requests = server
    download_cifar10(tmp_path, url, tiny_archive["md5"])
    first = len(requests)  # torchvision asks once for redirects, then downloads
    download_cifar10(tmp_path, url, tiny_archive["md5"])  # extracted: nothing to do
    assert len(requests) == first
    for file in (tmp_path / FOLDER).iterdir():  # archive kept and verified: extract only
        file.unlink()
    download_cifar10(tmp_path, url, tiny_archive["md5"])
    assert len(requests) == first
    assert len(load_cifar10(tmp_path).train_y) == 5 * PER_BATCH


def test_files_placed_by_hand_need_no_server(tmp_path, tiny_archive):
    with tarfile.open(tiny_archive["folder"] / ARCHIVE) as archive:
        archive.extractall(tmp_path, filter="data")
    closed = "http://127.0.0.1:9/nowhere.tar.gz"
    assert download_cifar10(tmp_path, closed, tiny_archive["md5"]) == tmp_path / FOLDER


def test_wrong_checksum_is_a_clear_error(tmp_path, server):
    url, _ = server
    with pytest.raises(Cifar10Error) as error:
        download_cifar10(tmp_path, url, "0" * 32)
    message = str(error.value)
    assert "CIFAR-10" in message and url in message and "checksum" in message
    assert ARCHIVE in message and "0" * 32 in message
    assert not (tmp_path / ARCHIVE).exists()  # no corrupt file left behind
    assert not (tmp_path / FOLDER).exists()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed when the block ends: connections are refused


def test_unreachable_server_is_a_clear_error(tmp_path, tiny_archive):
    url = f"http://127.0.0.1:{_closed_port()}/{ARCHIVE}"
    with pytest.raises(Cifar10Error) as error:
        download_cifar10(tmp_path, url, tiny_archive["md5"])
    message = str(error.value)
    assert "CIFAR-10" in message and url in message
    assert ARCHIVE in message and FOLDER in message and str(tmp_path) in message


def test_batch_with_foreign_code_is_refused(tmp_path, tiny_archive):
    with tarfile.open(tiny_archive["folder"] / ARCHIVE) as archive:
        archive.extractall(tmp_path, filter="data")
    (tmp_path / FOLDER / "test_batch").write_bytes(pickle.dumps({b"data": Path("x")}))
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        load_cifar10(tmp_path)


def _tree(folder: Path) -> set[Path]:
    return {*folder.rglob("*")}


# Each archive is the tiny one with hostile members after the first good file, so some
# files are already extracted when the hostile one comes. Names and links point into the
# test's tmp_path (the `outside` folder, next to the target's parents), never at real
# system paths: `{up}` climbs past `/` (where `..` stays at `/`) from any depth.
HOSTILE = {
    "dotdot": [("../../pwned-dotdot", None)],
    "deep_dotdot": [("{up}{tmp}/outside/pwned-deep", None)],
    "absolute": [("/{tmp}/outside/pwned-absolute", None)],
    "symlink_then_write": [
        (f"{FOLDER}/escape", "/{tmp}/outside"),
        (f"{FOLDER}/escape/pwned-through-symlink", None),
    ],
    "hardlink_then_write": [
        (f"{FOLDER}/victim", "/{tmp}/outside/victim"),
        (f"{FOLDER}/victim", None),  # a file of the same name would write through the link
    ],
}


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_member_writes_nothing_outside(tmp_path, serve, tiny_archive, kind):
    """A mirror with the right md5 for a hostile archive: refused, naming the member and
    the URL, and nothing written outside the target folder (nor kept inside it)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_bytes(b"unchanged")
    root = tmp_path / "repo" / "data" / "downloads" / "cifar10"
    root.mkdir(parents=True)
    served = tmp_path / "served"
    served.mkdir()
    good = [_file(f"{FOLDER}/{name}", b) for name, b in tiny_archive["files"].items()]
    tmp, up = str(tmp_path).lstrip("/"), "../" * (len(tmp_path.parts) + 8)
    hostile = []
    for name, link in HOSTILE[kind]:
        name = name.format(tmp=tmp, up=up)
        if link is None:
            hostile.append(_file(name, b"pwned"))
        else:
            kind_type = tarfile.LNKTYPE if kind.startswith("hardlink") else tarfile.SYMTYPE
            hostile.append(_link(name, link.format(tmp=tmp), kind_type))
    md5 = _write_archive(served / ARCHIVE, [good[0], *hostile, *good[1:]])
    url, _ = serve(served)
    before = _tree(tmp_path)
    with pytest.raises(Cifar10Error) as error:
        download_cifar10(root, url, md5)
    message = str(error.value)
    assert url in message and repr(hostile[0][0].name) in message, message
    assert _tree(tmp_path) == before  # nothing new anywhere, the target folder included
    assert list(root.iterdir()) == []  # no archive, no temp folder, no half folder
    assert (outside / "victim").read_bytes() == b"unchanged"


def _truncated_batch_archive(path: Path, files: dict[str, bytes]) -> str:
    """A well-formed archive whose test_batch is cut short: only loading it tells."""
    cut = {**files, "test_batch": files["test_batch"][: len(files["test_batch"]) * 4 // 5]}
    return _write_archive(path, [_file(f"{FOLDER}/{n}", b) for n, b in cut.items()])


@pytest.mark.parametrize("cut", ["archive", "batch"])
def test_truncated_archive_leaves_nothing_and_a_retry_succeeds(tmp_path, serve, tiny_archive, cut):
    """A truncated archive with its own md5 (the gzip stream cut short, or a batch cut
    short inside a well-formed archive) fails clearly and keeps nothing; a retry with the
    good archive's md5 downloads it and succeeds."""
    root, served = tmp_path / "cifar10", tmp_path / "served"
    served.mkdir()
    if cut == "archive":
        whole = (tiny_archive["folder"] / ARCHIVE).read_bytes()
        (served / ARCHIVE).write_bytes(whole[: len(whole) * 3 // 5])
        md5 = hashlib.md5((served / ARCHIVE).read_bytes()).hexdigest()
    else:
        md5 = _truncated_batch_archive(served / ARCHIVE, tiny_archive["files"])
    url, _ = serve(served)
    with pytest.raises(Cifar10Error) as error:
        download_cifar10(root, url, md5)
    message = str(error.value)
    assert url in message and "refused" in message
    assert ("truncated" in message) if cut == "archive" else (f"{FOLDER}/test_batch" in message)
    assert list(root.iterdir()) == []  # no archive, no temp folder, no half folder
    with pytest.raises(Cifar10Error):  # the same params fail again, not take a half folder
        download_cifar10(root, url, md5)
    good_url, _ = serve(tiny_archive["folder"])
    assert download_cifar10(root, good_url, tiny_archive["md5"]) == root / FOLDER
    np.testing.assert_array_equal(load_cifar10(root).test_y, tiny_archive["test_y"])


def test_half_extracted_folder_is_not_taken_as_complete(tmp_path, server, tiny_archive):
    """A folder with every file but a truncated test_batch (as an unsafe extraction left
    it) is extracted again; a batch truncated after verification is caught by its size."""
    url, requests = server
    served = tmp_path / "half"
    served.mkdir()
    _truncated_batch_archive(served / ARCHIVE, tiny_archive["files"])
    with tarfile.open(served / ARCHIVE) as archive:
        archive.extractall(tmp_path, filter="data")
    assert not is_extracted(tmp_path)
    download_cifar10(tmp_path, url, tiny_archive["md5"])
    assert len(requests) > 0 and is_extracted(tmp_path)
    np.testing.assert_array_equal(load_cifar10(tmp_path).test_y, tiny_archive["test_y"])
    batch = tmp_path / FOLDER / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:-100])
    assert not is_extracted(tmp_path)


def test_validation_split_is_seeded_and_disjoint():
    train, val = validation_split(100, 10, seed=3)
    again, val_again = validation_split(100, 10, seed=3)
    assert len(val) == 10 and len(train) == 90 and not set(train) & set(val)
    assert val.tolist() == val_again.tolist() and train.tolist() == again.tolist()
    assert val.tolist() != validation_split(100, 10, seed=4)[1].tolist()


def test_cnn_family_on_cifar10(tmp_path, tiny_archive, params, close_figures):
    """The family's CIFAR-10 path on the tiny archive's extracted folder: trains on the
    official training batches minus a seeded validation image, scores the official test
    batch itself (evaluate scores split tables only, so the model is saved unscored) and
    names the classes from batches.meta. Random pixels and labels teach nothing: what
    holds is that the reported accuracy is the saved model's on the test batch."""
    with tarfile.open(tiny_archive["folder"] / ARCHIVE) as archive:
        archive.extractall(tmp_path, filter="data")
    family = registry.get("cnn")
    small = {"dataset": "cifar10", "epochs": 2, "channels": [4, 8, 8], "fc_size": 16}
    section = family.section(params).model_copy(update=small)
    compute = setup_compute("cpu", "fp32", 0)
    result = family.run(section, FrameInputs(folders={"cifar10": tmp_path}), compute)
    (run,) = result.runs
    assert (run.name, run.dataset) == ("simple_cnn", "cifar10")
    assert run.metrics["epochs_run"] == 2 and len(run.history["val_loss"]) == 2
    assert (
        set(result.figures)
        == set(run.figures)
        == {
            "components",
            "feature_maps",
            "prediction_grid",
            "confusion_matrix",
            "curves",
        }
    )
    confusion = result.figures["confusion_matrix"].axes[0]
    assert [label.get_text() for label in confusion.get_yticklabels()] == NAMES
    saved = run.model
    assert not saved.scored and saved.classes == list(range(10))
    assert saved.example.shape == (TEST_IMAGES, 3, 32, 32) and saved.example.dtype == np.float32
    rebuilt = build(saved.builder, saved.config)
    rebuilt.load_state_dict(saved.estimator.state_dict())
    test_x = torch.from_numpy(tiny_archive["test_x"].reshape(-1, 3, 32, 32))
    pred = predict(rebuilt, test_x, compute, 2)
    accuracy = float((pred == tiny_archive["test_y"]).mean())
    assert run.metrics["test_accuracy"] == accuracy  # on all 4 official test images
