"""Hyperparameter search with Optuna (`make tune`), on the family registry.

- `space`: tune.yaml, the search space of each family with params.yaml's key paths,
  validated against params.yaml and its schema before any trial runs.
- `objective`: one trial = the family's pure `run` on overridden params, scored on its
  validation rows (or k folds of its training rows), never on its test rows; PyTorch
  families report each epoch's validation loss so that a pruner stops bad trials early.
- `study`: the study in a shared store (sqlite beside the MLflow store on one machine,
  PostgreSQL for many), its trial budget, killed workers' trials retried by heartbeat,
  and the best params as the `dvc exp run -S ...` that reproduces them.

`python -m mlfund.tune` is the command line over these.
"""
