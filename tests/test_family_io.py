"""The generic stage layer: writing a FamilyResult, and errors mapped to exit codes."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from mlfund.core.family import FamilyResult, ModelRun, SavedModel
from mlfund.core.figures import new_figure
from mlfund.core.modelstore import load_card_model, read_manifest
from mlfund.core.report import Paragraph, Table
from mlfund.core.tracking import OfflineRun
from stages.family_io import FamilyOutputs, write_result

ROOT = Path(__file__).resolve().parents[1]


class RecordingTracker:
    """A tracker that logs nothing and remembers which runs were opened, in order."""

    def __init__(self) -> None:
        self.run_ids: dict[str, str] = {}
        self.opened: list[tuple[str, str]] = []

    @contextmanager
    def run(self, model: str, dataset: str, params):
        self.opened.append((model, dataset))
        self.run_ids[model] = f"id-{model}"
        yield OfflineRun()


@pytest.fixture
def result() -> FamilyResult:
    x = pd.DataFrame({"x0": [0.0, 1.0, 2.0, 3.0]})
    fitted = LinearRegression().fit(x, [1.0, 3.0, 5.0, 7.0])
    figure, _ = new_figure()
    return FamilyResult(
        runs=[
            ModelRun("study", "toy", {"k": 1}, {"score": 0.5}, figures=["b_plot"]),
            ModelRun(
                "line", "toy", {}, {"train_r2": 1.0}, SavedModel(fitted, "regression", x, "y")
            ),
        ],
        figures={"b_plot": figure},
        plots={"curve": pd.DataFrame({"step": [0, 1], "loss": [1.0, 0.5]})},
        extras={"kept": [1, 2]},
        captions={"z_first": "Listed first.", "b_plot": "Listed second."},
        notes=[Paragraph("A note."), Table(["a"], [["1"]])],
    )


def test_write_result_saves_every_part(tmp_path: Path, result) -> None:
    out = FamilyOutputs("toy", tmp_path / "models", tmp_path)
    tracker = RecordingTracker()
    write_result(result, out, tracker)

    assert tracker.opened == [("study", "toy"), ("line", "toy")]  # the family's order
    assert (tmp_path / "figures" / "toy" / "b_plot.png").stat().st_size > 0
    assert pd.read_csv(tmp_path / "plots" / "toy" / "curve.csv")["loss"].tolist() == [1.0, 0.5]
    (card,) = read_manifest(tmp_path / "models" / "toy")  # only the run with a model has a card
    assert (card.name, card.file, card.task, card.features) == (
        "line",
        "line.skops",
        "regression",
        ["x0"],
    )
    reloaded = load_card_model(tmp_path / "models" / "toy", card)
    assert reloaded.predict(pd.DataFrame({"x0": [4.0]}))[0] == pytest.approx(9.0)
    written = json.loads(out.metrics.read_text())
    assert written["metrics"] == {"toy": {"study": {"score": 0.5}, "line": {"train_r2": 1.0}}}
    assert written["runs"] == {"study": "id-study", "line": "id-line"}
    assert written["extras"] == {"kept": [1, 2]}
    # captions keep the family's order (JSON objects would come back sorted)
    assert written["captions"] == [["z_first", "Listed first."], ["b_plot", "Listed second."]]
    assert written["notes"] == [{"text": "A note."}, {"header": ["a"], "rows": [["1"]]}]


def test_a_scikit_learn_model_ends_with_one_summary_line(tmp_path: Path, result, caplog):
    """A torch model's line comes from train_model; the others' from here, with their
    train-side metrics (the study run has no model: no line)."""
    caplog.set_level(logging.INFO, logger="mlfund")
    write_result(result, FamilyOutputs("toy", tmp_path / "models", tmp_path), RecordingTracker())
    lines = [r.getMessage() for r in caplog.records if r.name == "mlfund"]
    assert lines == ["toy/line trained: train_r2=1"]


def test_unscored_model_is_saved_but_not_in_the_manifest(tmp_path: Path, result):
    result.runs[1].model.scored = False
    out = FamilyOutputs("toy", tmp_path / "models", tmp_path)
    write_result(result, out, RecordingTracker())
    assert read_manifest(tmp_path / "models" / "toy") == []
    assert (tmp_path / "models" / "toy" / "line.skops").exists()


def stage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_an_unknown_family_is_a_clear_error() -> None:
    result = stage("stages.train", "no_such_family", DVC_STAGE="train@no_such_family")
    assert result.returncode != 0
    assert "no family 'no_such_family'" in result.stderr
    assert "Traceback" not in result.stderr
