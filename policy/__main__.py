"""The Muse CrossGuard policy pack: `pulumi preview --policy-pack policy` runs this file.

The policies themselves are muse.governance.policies (the same code the Muse service and `make export` use);
muse_pack.py wraps each as a pulumi-policy ResourceValidationPolicy. Constructing the PolicyPack starts the
analyzer's gRPC server and serves the engine until it exits, so tests import muse_pack instead.
"""

# The Pulumi CLI runs this file with the pack's virtualenv (../.venv, PulumiPolicy.yaml), where `make venv`
# installed this project editable: `policy` and `muse` import from there, whatever the working directory.
from pulumi_policy import EnforcementLevel, PolicyPack

from policy.muse_pack import PACK_NAME, build_policies

PolicyPack(
    name=PACK_NAME,
    policies=build_policies(),
    # Each policy sets its own level (mandatory for critical/high); anything unset stays advisory.
    enforcement_level=EnforcementLevel.ADVISORY,
    description="Muse governance: tags, registry, Key Vault, AKS, secrets, RBAC, Kubernetes workloads",
)
