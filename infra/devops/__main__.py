"""`pulumi up` entry point of the Azure DevOps stack: load the settings and build."""

import sys
from pathlib import Path

# Pulumi runs this directory as a script; make the `infra` package importable from it.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from infra.devops.program import main  # noqa: E402

main()
