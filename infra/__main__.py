"""`pulumi up` entry point: load the stack's settings and build the platform."""

import sys
from pathlib import Path

# Pulumi runs this directory as a script; make the `infra` package importable from it.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from infra.program import main  # noqa: E402

main()
