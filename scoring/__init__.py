"""Scoring: the entry script for the Azure ML inference server, the batch driver, the image."""
