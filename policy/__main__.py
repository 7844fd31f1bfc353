"""The Muse CrossGuard policy pack: `pulumi preview --policy-pack policy` runs this file.

The policies themselves are muse.governance.policies (the same code the Muse service and `make export` use);
muse_pack.py wraps each as a pulumi-policy ResourceValidationPolicy. Constructing the PolicyPack starts the
analyzer's gRPC server and serves the engine until it exits, so tests import muse_pack instead.
"""

import sys
from pathlib import Path

# The Pulumi CLI runs this file from the pack directory; neither it nor the repository root (for `muse`)
# is guaranteed to be on sys.path.
_HERE = Path(__file__).resolve().parent
for _path in (_HERE, _HERE.parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from muse_pack import PACK_NAME, build_policies  # noqa: E402
from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

PolicyPack(
    name=PACK_NAME,
    policies=build_policies(),
    # Each policy sets its own level (mandatory for critical/high); anything unset stays advisory.
    enforcement_level=EnforcementLevel.ADVISORY,
    description="Muse governance: tags, registry, Key Vault, AKS, secrets, RBAC, Kubernetes workloads",
)
