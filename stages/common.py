"""What every stage shares: where things live in the repository, and small file I/O.

Paths live here and only here; the library under src/mlfund never sees them.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlfund.core.config import Params, load_params
from mlfund.core.errors import MlfundError, ParamsError

if TYPE_CHECKING:  # pandas costs ~0.5 s at start-up; the metrics and report stages never need it
    import pandas as pd

# Data and outputs live in the checkout this code runs from (a queued `dvc exp run` runs in
# a temporary copy). The MLflow store lives at DVC_ROOT when DVC sets it, which for queued
# experiments is the user's repository, so every experiment logs into one store.
ROOT = Path(__file__).resolve().parents[1]
TRACKING_ROOT = Path(os.environ.get("DVC_ROOT") or ROOT)
PARAMS_FILE = ROOT / "params.yaml"
DATA = ROOT / "data"
RAW = DATA / "raw"  # generated datasets (the generate stage)
DOWNLOADS = DATA / "downloads"  # datasets fetched from the network, in their own format
FEATURES = DATA / "features"
SPLIT = DATA / "split"
MODELS = ROOT / "models"
REPORTS = ROOT / "reports"
VALIDATION = REPORTS / "validation"

log = logging.getLogger("mlfund")


def read_params() -> Params:
    return load_params(PARAMS_FILE)


def write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def write_table(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


def read_table(path: Path) -> pd.DataFrame:
    import pandas as pd

    return pd.read_parquet(path)


def run_stage(main: Callable[[Params], None]) -> None:
    """Entry point of every stage: logging, params validation, and errors to exit codes.

    Params are validated before `main` runs, so a bad params.yaml stops the stage before
    it touches any output. An expected failure (`MlfundError`: bad params, a missing
    device, an unreachable server, a non-finite loss, missing data) prints one line naming
    what to change and exits with its code; `MLFUND_DEBUG=1` shows the traceback too.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    try:
        main(read_params())
    except MlfundError as error:
        if os.environ.get("MLFUND_DEBUG") == "1":
            raise
        stage = os.environ.get("DVC_STAGE")
        restore = f" (`dvc checkout {stage}` restores its previous outputs)" if stage else ""
        lost = "" if isinstance(error, ParamsError) else restore
        print(f"error: {error}{lost}", file=sys.stderr)
        raise SystemExit(error.exit_code) from None
