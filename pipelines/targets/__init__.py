"""Targets: where deployments run. `local` (this machine) and `azure` share one interface."""
