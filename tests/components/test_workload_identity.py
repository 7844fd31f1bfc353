"""WorkloadIdentity in isolation: federated credentials for Kubernetes service accounts."""

from __future__ import annotations

from components.workload_identity import (
    TOKEN_EXCHANGE_AUDIENCE,
    ServiceAccountRef,
    WorkloadIdentity,
    WorkloadIdentityArgs,
)
from offline.engine import OfflinePlan, run_offline

CREDENTIAL = "azure-native:managedidentity:FederatedIdentityCredential"
ISSUER = "https://westeurope.oic.prod-aks.azure.com/tenant/issuer/"


def _plan(accounts: list[ServiceAccountRef]) -> OfflinePlan:
    def program() -> None:
        WorkloadIdentity(
            "muse-workload",
            WorkloadIdentityArgs(
                resource_group_name="rg-test",
                location="westeurope",
                identity_name="id-muse-test-workload",
                oidc_issuer_url=ISSUER,
                service_accounts=accounts,
                tags={"env": "dev", "owner": "t", "app": "muse", "managed-by": "pulumi"},
            ),
        )

    return run_offline(program, project="muse", stack="unit")


def test_each_service_account_gets_a_federated_credential_from_the_cluster_issuer() -> None:
    plan = _plan([ServiceAccountRef("muse-dev", "muse")])
    [credential] = plan.of_type(CREDENTIAL)
    assert credential.get("subject") == "system:serviceaccount:muse-dev:muse"
    assert credential.get("issuer") == ISSUER
    assert credential.get("audiences") == [TOKEN_EXCHANGE_AUDIENCE]
    assert credential.get("resourceName") == "id-muse-test-workload"


def test_credentials_on_one_identity_are_created_one_after_another() -> None:
    accounts = [
        ServiceAccountRef("muse-dev", "muse"),
        ServiceAccountRef("muse-dev", "jobs"),
        ServiceAccountRef("ops", "x"),
    ]
    plan = _plan(accounts)
    credentials = {c.get("subject"): c for c in plan.of_type(CREDENTIAL)}
    chain = [credentials[f"system:serviceaccount:{a.namespace}:{a.name}"] for a in accounts]
    earlier_credentials = [{d for d in c.depends_on if d in {x.urn for x in chain}} for c in chain]
    assert earlier_credentials == [set(), {chain[0].urn}, {chain[1].urn}]
