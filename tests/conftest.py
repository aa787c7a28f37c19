"""Shared fixtures: the default params and every dataset made from them (once per session)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from mlfund.config import Params, load_params
from mlfund.datasets import make_all

ROOT = Path(__file__).resolve().parents[1]
PARAMS_FILE = ROOT / "params.yaml"


@pytest.fixture(scope="session")
def params() -> Params:
    return load_params(PARAMS_FILE)


@pytest.fixture(scope="session")
def datasets(params: Params) -> dict[str, pd.DataFrame]:
    return make_all(params.data)


@pytest.fixture
def close_figures():
    """Close every matplotlib figure a test opened, pass or fail."""
    yield
    plt.close("all")
