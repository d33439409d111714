"""Orchestration of the MLOps lifecycle: the `mlops` command line and its targets."""
