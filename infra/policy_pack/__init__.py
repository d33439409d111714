"""CrossGuard policy pack built from `infra.policies` (see `pack.py`)."""
