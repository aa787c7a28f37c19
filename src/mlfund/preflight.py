"""Checks of params.yaml beyond its schema, run by check_params before any output is lost.

The schema (`mlfund.core.config`) knows types and ranges of single keys; these checks need the
library's own facts, such as how many engineered features exist. DVC deletes a stage's
outputs before running it, so whatever can be known before training is checked here.
"""

from __future__ import annotations

from mlfund.core.config import Params
from mlfund.core.feature_engineering import model_columns


def problems(params: Params) -> list[str]:
    """One line per problem, each naming its params key; empty when all is well."""
    found = []
    candidates = len(model_columns(engineered=True))
    for name in ("k_best", "rfe_n_features"):
        value = getattr(params.features, name)
        if value > candidates:
            found.append(f"features.{name} ({value}) exceeds the {candidates} engineered features")
    return found
