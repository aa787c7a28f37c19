"""The shared library every stage and family builds on: params schema, errors, the family
contract and registry, datasets and splits, figures, the model store and MLflow tracking.

A change here re-runs every family (dvc.yaml lists this folder as one dep of each).
"""
