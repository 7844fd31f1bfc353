"""Muse's landing zone: what an administrator creates once per subscription so CI needs no standing rights.

Run by a person with Owner on the subscription and Application Administrator in Entra ID, as step 2 of
scripts/bootstrap.sh, after its step 1 created the state backend (docs/bootstrap.md). It reads every
environment's settings from the same stack files the environment deploys with (../Pulumi.<env>.yaml), and
creates:

  per environment   the resource group the environment's stack deploys into (tagged like everything else)
  muse-github-preview       pull_request + ref:refs/heads/main (drift)   read-only: Reader, AKS Cluster User,
                                                                          AKS RBAC Reader on every group
  muse-github-deploy-dev    ref:refs/heads/main (build, push, deploy)    on the dev group only
  muse-github-deploy-prod   environment:prod (after required review)     on the prod group only, plus AcrPull
                                                                          on dev to import the tested digest
  every GitHub identity     Storage Blob Data Contributor on the state container (previews take the state
                            lock too) and Key Vault Crypto User on the key that encrypts stack secrets.

A deployer's roles on its group: Contributor (create and change resources), Role Based Access Control
Administrator constrained to AcrPull / AcrPush / Key Vault Secrets User / Managed Identity Operator for
service principals (it wires the cluster and Muse identities but can never grant itself more), Key Vault
Secrets Officer (writes the Muse API token) and AKS RBAC Cluster Admin (creates the Muse namespace and its
objects). No identity has a role on the subscription.
"""

from pathlib import Path

import pulumi
from pulumi_azure_native import authorization

from components.github_identity import GitHubOidcIdentity, GitHubOidcIdentityArgs
from components.resource_group import ResourceGroup
from rbac.roles import DELEGABLE_BY_CI, PrincipalType, Role, only_assigning
from stack import args as stack_args
from stack.config import StackConfig, load_stack_config
from stack.files import read_stack
from stack.naming import ResourceNames, StateBackendNames
from stack.tags import standard_tags

REPO_ROOT = Path(__file__).resolve().parent.parent
DEPLOY_SUBJECTS = {"dev": "ref:refs/heads/main", "prod": "environment:prod"}


def environment_config(environment: str) -> StackConfig:
    try:
        return load_stack_config(environment, read_stack(environment, REPO_ROOT).config)
    except ValueError as error:
        raise pulumi.RunError(str(error)) from None


environments = [environment_config(env) for env in pulumi.Config().require_object("environments")]
repositories = {env.github_repository for env in environments}
suffixes = {env.name_suffix for env in environments}
if len(repositories) != 1 or "" in repositories or len(suffixes) != 1:
    raise pulumi.RunError(
        "Every environment must set the same muse:githubRepository (owner/name) and muse:nameSuffix; "
        f"found repositories {sorted(repositories)} and suffixes {sorted(suffixes)}."
    )
repository = repositories.pop()
state = StateBackendNames.for_suffix(suffixes.pop())
subscription_id = authorization.get_client_config_output().subscription_id
state_group = subscription_id.apply(lambda sub: f"/subscriptions/{sub}/resourceGroups/{state.resource_group}")
state_container = state_group.apply(
    lambda group: (
        f"{group}/providers/Microsoft.Storage/storageAccounts/{state.storage_account}"
        f"/blobServices/default/containers/{state.container}"
    )
)
state_key = state_group.apply(
    lambda group: f"{group}/providers/Microsoft.KeyVault/vaults/{state.key_vault}/keys/{state.key}"
)

groups: dict[str, ResourceGroup] = {}
for env in environments:
    names = ResourceNames.for_stack(env.environment, env.name_suffix)
    groups[env.environment] = ResourceGroup(
        f"{env.environment}",
        stack_args.resource_group_args(env, names, standard_tags(env)),
        # Everything of an environment lives in its group: a `pulumi destroy` of this stack, or a group
        # renamed or dropped here, must stop instead of deleting it (docs/runbook.md says how to remove the
        # protection on purpose). No CanNotDelete lock on the group: it would also stop the environment's
        # stack from deleting anything inside (an old pool, a replaced alert); the stateful resources inside
        # carry their own locks (components/deletion_protection.py), which also make `az group delete` fail.
        opts=pulumi.ResourceOptions(protect=True),
    )

preview = GitHubOidcIdentity(
    "preview",
    GitHubOidcIdentityArgs(
        display_name="muse-github-preview",
        repository=repository,
        subjects=["pull_request", "ref:refs/heads/main"],
        description="Muse CI: pulumi preview on pull requests and the drift check. Read-only.",
    ),
)
deployers: dict[str, GitHubOidcIdentity] = {}
for env in environments:
    deployers[env.environment] = GitHubOidcIdentity(
        f"deploy-{env.environment}",
        GitHubOidcIdentityArgs(
            display_name=f"muse-github-deploy-{env.environment}",
            repository=repository,
            subjects=[DEPLOY_SUBJECTS.get(env.environment, f"environment:{env.environment}")],
            description=f"Muse CI: builds, pushes and deploys the {env.environment} stack.",
        ),
    )

for environment, group in groups.items():
    preview.grant(f"preview-{environment}", Role.READER, group.id)
    preview.grant(f"preview-{environment}", Role.AKS_CLUSTER_USER, group.id)
    preview.grant(f"preview-{environment}", Role.AKS_RBAC_READER, group.id)

    deployer = deployers[environment]
    deployer.grant(environment, Role.CONTRIBUTOR, group.id)
    deployer.grant(
        environment,
        Role.RBAC_ADMINISTRATOR,
        group.id,
        condition=only_assigning(list(DELEGABLE_BY_CI), PrincipalType.SERVICE_PRINCIPAL),
    )
    deployer.grant(environment, Role.KEY_VAULT_SECRETS_OFFICER, group.id)
    deployer.grant(environment, Role.AKS_RBAC_CLUSTER_ADMIN, group.id)

if "dev" in groups and "prod" in deployers:
    # prod never rebuilds: it imports the digest dev tested (`az acr import` reads the dev registry).
    deployers["prod"].grant("import-from-dev", Role.ACR_PULL, groups["dev"].id)

for name, identity in [("preview", preview), *deployers.items()]:
    identity.grant(f"{name}-state", Role.STORAGE_BLOB_DATA_CONTRIBUTOR, state_container)
    identity.grant(f"{name}-state", Role.KEY_VAULT_CRYPTO_USER, state_key)

# Values for the GitHub repository variables (docs/github-setup.md) and the stacks' config.
pulumi.export("AZURE_PREVIEW_CLIENT_ID", preview.client_id)
for environment, deployer in deployers.items():
    pulumi.export(f"{environment}DeployClientId", deployer.client_id)
    pulumi.export(f"{environment}DeployPrincipalId", deployer.principal_id)
pulumi.export("AZURE_TENANT_ID", authorization.get_client_config_output().tenant_id)
pulumi.export("AZURE_SUBSCRIPTION_ID", subscription_id)
pulumi.export("PULUMI_BACKEND_URL", state.backend_url)
pulumi.export("secretsProvider", state.secrets_provider)
pulumi.export("resourceGroups", {environment: group.name for environment, group in groups.items()})
