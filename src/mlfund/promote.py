"""`make promote`: the alias `champion` on the registered versions the current metrics score.

Every model a training stage logs is a version of the registered model
`mlfund.<family>.<model>` (mlfund.core.tracking), and the family's manifest
(`models/<family>/manifest.json`) names that version; reports/metrics.json is evaluate's
score of exactly the models the manifests list. Run after `make gate` passes, this points
`champion` at each listed version, so that

    mlflow models serve -m models:/mlfund.cnn.simple_cnn@champion --env-manager local

serves the model the committed metrics describe. A registered model of ours (under the
model prefix) that no manifest lists any more loses the alias.

    python -m mlfund.promote [--models DIR] [--tracking-uri URI] [--alias NAME] [--dry-run]

All or nothing: when a card has no version (trained untracked, or before models were
registered), or its version is not in the store or came from another run (the store is not
the one that trained the models), nothing moves. Exit status: 0 promoted (or would be, with
--dry-run); 1 some card's version cannot be promoted; 2 no manifests, or no store to reach.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlfund.core.modelstore import MANIFEST, ModelCard, read_manifest
from mlfund.core.tracking import TrackingUnavailable, check_server, model_prefix, tracking_uri

ALIAS = "champion"


@dataclass(frozen=True)
class Promotion:
    family: str
    card: ModelCard

    @property
    def name(self) -> str:
        return self.card.registered_model

    @property
    def version(self) -> str:
        return self.card.registered_version


def manifest_cards(models: Path) -> list[Promotion]:
    """Every card of every `<family>/manifest.json` under `models`, families sorted."""
    return [
        Promotion(path.parent.name, card)
        for path in sorted(models.glob(f"*/{MANIFEST}"))
        for card in read_manifest(path.parent)
    ]


def problems(client: Any, promotions: Sequence[Promotion]) -> list[str]:
    """Why some card's version cannot carry the alias; empty when all can."""
    from mlflow.exceptions import MlflowException

    found = []
    for promotion in promotions:
        card, where = promotion.card, f"{promotion.family}/{promotion.card.name}"
        if not promotion.version:
            found.append(
                f"{where}: its card names no registered version (trained untracked, or "
                f"before models were registered): retrain it, `dvc repro -f "
                f"train@{promotion.family}`"
            )
            continue
        try:
            version = client.get_model_version(promotion.name, promotion.version)
        except MlflowException:
            found.append(f"{where}: {promotion.name} version {promotion.version} is not here")
            continue
        if version.run_id != card.run_id:
            found.append(
                f"{where}: {promotion.name} version {promotion.version} comes from run "
                f"{version.run_id}, its card from run {card.run_id}"
            )
    return found


def stale(client: Any, promotions: Sequence[Promotion], alias: str) -> list[str]:
    """Our registered models that carry `alias` but are in no manifest."""
    listed = {p.name for p in promotions}
    ours = client.search_registered_models(
        filter_string=f"name LIKE '{model_prefix()}%'", max_results=1000
    )
    return sorted(m.name for m in ours if alias in m.aliases and m.name not in listed)


def promote(client: Any, promotions: Sequence[Promotion], alias: str) -> list[str]:
    """Set `alias` on every card's version and take it off stale models; those models."""
    for promotion in promotions:
        client.set_registered_model_alias(promotion.name, alias, promotion.version)
    dropped = stale(client, promotions, alias)
    for name in dropped:
        client.delete_registered_model_alias(name, alias)
    return dropped


def main(argv: Sequence[str] | None = None) -> int:
    from mlfund.compare import default_root

    parser = argparse.ArgumentParser(
        prog="python -m mlfund.promote", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--models", type=Path, help="model folders (default: <repo>/models)")
    parser.add_argument(
        "--tracking-uri",
        help="MLflow store (default: MLFLOW_TRACKING_URI, else sqlite:///<repo root>/mlflow.db)",
    )
    parser.add_argument("--alias", default=ALIAS, help=f"the alias to set (default: {ALIAS})")
    parser.add_argument("--dry-run", action="store_true", help="check and list, move nothing")
    args = parser.parse_args(argv)
    root = default_root()
    models = args.models or root / "models"
    uri = args.tracking_uri or tracking_uri(root)
    promotions = manifest_cards(models)
    if not promotions:
        print(f"error: no model in {models}/*/{MANIFEST}: run `dvc repro`", file=sys.stderr)
        return 2
    try:
        check_server(uri)
    except TrackingUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    import mlflow

    client = mlflow.MlflowClient(uri, registry_uri=uri)
    if found := problems(client, promotions):
        print(f"error: nothing promoted; in {uri}:", file=sys.stderr)
        for problem in found:
            print(f"  {problem}", file=sys.stderr)
        return 1
    for p in promotions:
        print(f"{p.name} version {p.version} (run {p.card.run_id}) -> @{args.alias}")
    if args.dry_run:
        return 0
    for name in promote(client, promotions, args.alias):
        print(f"{name}: @{args.alias} removed (in no manifest)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
