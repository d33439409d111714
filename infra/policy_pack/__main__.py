"""Entry point Pulumi runs for `pulumi preview --policy-pack infra/policy_pack`."""

import sys
from pathlib import Path

# Pulumi runs this directory as a script in the pack's own virtualenv; the policies live in
# the `infra` package two levels up and need only the standard library.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from infra.policy_pack.pack import main  # noqa: E402

main()
