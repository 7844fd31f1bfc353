"""Muse's landing zone: what an administrator creates once per subscription so CI needs no standing rights.

Run by a person with Owner on the subscription and Application Administrator in Entra ID, as step 2 of
scripts/bootstrap.sh, after its step 1 created the state backend and registered the resource providers
(docs/bootstrap.md). It reads every environment's settings from the same stack files the environment deploys
with (../Pulumi.<env>.yaml), and creates:

  per environment  the resource group the environment's stack deploys into (tagged like everything else)
  custom roles     Muse Pulumi state decrypter (one key's decrypt), Muse Kubernetes custom resource reader
  five GitHub OIDC identities, each trusted by exactly one set of workflow contexts (no subject is shared, so
  a job can only sign in as the identity its context was made for):

  muse-github-preview-dev   pull_request, environment:preview-dev  dev group: Reader, AKS Cluster User, AKS
                            RBAC Reader, custom resource reader (SecretProviderClass only); dev state: Blob
                            Data Reader on its container, decrypt on its key. Writes nothing.
  muse-github-preview-prod  environment:preview-prod               the same on prod; no pull request gets it.
  muse-github-build         ref:refs/heads/main                     Blob Data Reader on dev's state container
                            (stack outputs; no key: `pulumi stack output` blinds secrets); AcrPush on the dev
                            registry comes from the dev stack (muse:imagePushPrincipalId, bootstrap output).
  muse-github-deploy-dev    environment:dev                         dev group: Contributor, Role Based Access
                            Control Administrator constrained to AcrPull / AcrPush / Key Vault Secrets User /
                            Managed Identity Operator for service principals, AKS RBAC Cluster Admin; dev
                            state: Blob Data Contributor on its container, decrypt on its key.
  muse-github-deploy-prod   environment:prod (required reviewers)   the same on prod, plus Reader on the dev
                            group: `az acr import` reads the source registry (ACR import docs: "Reader role").

No identity has a role on the subscription, and none reaches another environment's state or key.
export/access/ proves, from this plan and the stacks' plans, that each grant is needed by a workflow step
and that every step is allowed (docs/access-matrix.md).
"""

from pathlib import Path

import pulumi
from pulumi_azure_native import authorization

from components.github_identity import GitHubOidcIdentity, GitHubOidcIdentityArgs
from components.muse_workload.manifests import CUSTOM_RESOURCES
from components.resource_group import ResourceGroup
from rbac.roles import (
    DELEGABLE_BY_CI,
    CustomRole,
    CustomRoles,
    PrincipalType,
    Role,
    only_assigning,
    only_reading_custom_resources,
)
from stack import args as stack_args
from stack.config import StackConfig, load_stack_config
from stack.files import read_stack
from stack.naming import ResourceNames, StateBackendNames
from stack.tags import standard_tags

REPO_ROOT = Path(__file__).resolve().parent.parent
# The workflow contexts (OIDC subjects after `repo:<owner/name>:`) each identity trusts. Pull requests preview
# dev only; prod is previewed by a job in the `preview-prod` environment, which only `main` can enter.
PREVIEW_SUBJECTS = {"dev": ["pull_request", "environment:preview-dev"]}
BUILD_SUBJECTS = ["ref:refs/heads/main"]
# The environment whose registry the build pushes to; every other environment imports from it.
IMAGE_SOURCE = "dev"


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
suffix = suffixes.pop()
subscription_id = authorization.get_client_config_output().subscription_id
subscription = subscription_id.apply(lambda sub: f"/subscriptions/{sub}")


def state_scopes(names: StateBackendNames) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
    """(container id, key id) of one environment's state."""
    group = subscription.apply(lambda sub: f"{sub}/resourceGroups/{names.resource_group}")
    container = group.apply(
        lambda g: (
            f"{g}/providers/Microsoft.Storage/storageAccounts/{names.storage_account}"
            f"/blobServices/default/containers/{names.container}"
        )
    )
    key = group.apply(lambda g: f"{g}/providers/Microsoft.KeyVault/vaults/{names.key_vault}/keys/{names.key}")
    return container, key


groups: dict[str, ResourceGroup] = {}
states: dict[str, StateBackendNames] = {}
for env in environments:
    names = ResourceNames.for_stack(env.environment, env.name_suffix)
    groups[env.environment] = ResourceGroup(
        f"{env.environment}",
        stack_args.resource_group_args(env, names, standard_tags(env)),
        # Everything of an environment lives in its group: a `pulumi destroy` of this stack, or a group
        # renamed or dropped here, must stop instead of deleting it (docs/runbook.md says how to remove the
        # protection on purpose). No CanNotDelete lock on the group: it would also stop the environment's
        # stack from deleting anything inside (an old pool, a replaced alert). Prod's stateful resources
        # carry Pulumi `protect` too, and no lock (components/deletion_protection.py: CI cannot write locks);
        # neither stops an `az group delete` outside Pulumi, which only an Owner's lock by hand would.
        opts=pulumi.ResourceOptions(protect=True),
    )
    states[env.environment] = StateBackendNames.for_environment(env.environment, suffix)

state_group = subscription.apply(
    lambda sub: f"{sub}/resourceGroups/{StateBackendNames.for_bootstrap(suffix).resource_group}"
)


def custom_role(role: CustomRole, assignable_scopes: list[pulumi.Input[str]]) -> authorization.RoleDefinition:
    return authorization.RoleDefinition(
        role.key,
        role_definition_id=role.definition_id(suffix),
        role_name=role.role_name(suffix),
        description=role.description,
        scope=subscription,
        assignable_scopes=assignable_scopes,
        permissions=[
            authorization.PermissionArgs(actions=list(role.actions), data_actions=list(role.data_actions))
        ],
    )


decrypter = custom_role(CustomRoles.STATE_DECRYPTER, [state_group])
custom_resource_reader = custom_role(
    CustomRoles.CUSTOM_RESOURCE_READER, [group.id for group in groups.values()]
)


def identity(name: str, subjects: list[str], description: str) -> GitHubOidcIdentity:
    return GitHubOidcIdentity(
        name,
        GitHubOidcIdentityArgs(
            display_name=f"muse-github-{name}",
            repository=repository,
            subjects=subjects,
            description=description,
        ),
    )


previews: dict[str, GitHubOidcIdentity] = {}
deployers: dict[str, GitHubOidcIdentity] = {}
for environment, group in groups.items():
    container, key = state_scopes(states[environment])

    preview = previews[environment] = identity(
        f"preview-{environment}",
        PREVIEW_SUBJECTS.get(environment, [f"environment:preview-{environment}"]),
        f"Muse CI: pulumi preview and drift of the {environment} stack. Reads, writes nothing.",
    )
    preview.grant(f"preview-{environment}", Role.READER, group.id)
    preview.grant(f"preview-{environment}", Role.AKS_CLUSTER_USER, group.id)
    preview.grant(f"preview-{environment}", Role.AKS_RBAC_READER, group.id)
    preview.grant_custom(
        f"preview-{environment}",
        CustomRoles.CUSTOM_RESOURCE_READER,
        custom_resource_reader.id,
        group.id,
        condition=only_reading_custom_resources(list(CUSTOM_RESOURCES)),
    )
    preview.grant(f"preview-{environment}-state", Role.STORAGE_BLOB_DATA_READER, container)
    preview.grant_custom(f"preview-{environment}-state", CustomRoles.STATE_DECRYPTER, decrypter.id, key)

    deployer = deployers[environment] = identity(
        f"deploy-{environment}",
        [f"environment:{environment}"],
        f"Muse CI: deploys the {environment} stack.",
    )
    deployer.grant(environment, Role.CONTRIBUTOR, group.id)
    deployer.grant(
        environment,
        Role.RBAC_ADMINISTRATOR,
        group.id,
        condition=only_assigning(list(DELEGABLE_BY_CI), PrincipalType.SERVICE_PRINCIPAL),
    )
    deployer.grant(environment, Role.AKS_RBAC_CLUSTER_ADMIN, group.id)
    deployer.grant(f"{environment}-state", Role.STORAGE_BLOB_DATA_CONTRIBUTOR, container)
    deployer.grant_custom(f"{environment}-state", CustomRoles.STATE_DECRYPTER, decrypter.id, key)

build: GitHubOidcIdentity | None = None
if IMAGE_SOURCE in groups:
    build = identity(
        "build",
        BUILD_SUBJECTS,
        f"Muse CI: builds the image and pushes it to the {IMAGE_SOURCE} registry.",
    )
    # `pulumi stack output` of the source stack (registry name, group): blob reads only; outputs are read
    # with a blinding secrets provider, so no key (pulumi/pulumi pkg/cmd/pulumi/stack/stack_output.go).
    source_container, _ = state_scopes(states[IMAGE_SOURCE])
    build.grant(f"build-{IMAGE_SOURCE}-state", Role.STORAGE_BLOB_DATA_READER, source_container)
    for environment, deployer in deployers.items():
        if environment != IMAGE_SOURCE:
            # prod never rebuilds: `az acr import --registry <source registry id>` copies the digest the
            # source environment tested; ACR's import needs Reader on the source registry and importImage on
            # the target (container-registry-import-images.md, "Import from an Azure container registry in the
            # same AD tenant"). The source registry is made by its stack, after this runs: the group is the
            # scope.
            deployer.grant(f"import-from-{IMAGE_SOURCE}", Role.READER, groups[IMAGE_SOURCE].id)

# What scripts/bootstrap.sh writes where (docs/github-setup.md): the GitHub variables per level, and the stack
# config each environment needs. export/access/ resolves every workflow job's identity through these.
tenant_id = authorization.get_client_config_output().tenant_id
repository_variables: dict[str, pulumi.Input[str]] = {
    "AZURE_TENANT_ID": tenant_id,
    "AZURE_SUBSCRIPTION_ID": subscription_id,
}
environment_variables: dict[str, dict[str, pulumi.Input[str]]] = {}
for environment in groups:
    backend = states[environment].backend_url
    environment_variables[environment] = {
        "AZURE_CLIENT_ID": deployers[environment].client_id,
        "PULUMI_BACKEND_URL": backend,
    }
    environment_variables[f"preview-{environment}"] = {
        "AZURE_PREVIEW_CLIENT_ID": previews[environment].client_id,
        "PULUMI_BACKEND_URL": backend,
    }
if IMAGE_SOURCE in groups and build is not None:
    # Pull requests and the build job run in no environment: the repository level is theirs.
    repository_variables["AZURE_PREVIEW_CLIENT_ID"] = previews[IMAGE_SOURCE].client_id
    repository_variables["AZURE_BUILD_CLIENT_ID"] = build.client_id
    repository_variables["PULUMI_BACKEND_URL"] = states[IMAGE_SOURCE].backend_url

pulumi.export("githubVariables", {"repository": repository_variables, "environments": environment_variables})
pulumi.export(
    "stackConfig",
    {
        environment: (
            {"muse:imagePushPrincipalId": build.principal_id}
            if build is not None and environment == IMAGE_SOURCE
            else {}
        )
        for environment in groups
    },
)
pulumi.export(
    "stateBackends",
    {
        environment: {"backendUrl": names.backend_url, "secretsProvider": names.secrets_provider}
        for environment, names in states.items()
    },
)
pulumi.export("AZURE_TENANT_ID", tenant_id)
pulumi.export("AZURE_SUBSCRIPTION_ID", subscription_id)
pulumi.export("resourceGroups", {environment: group.name for environment, group in groups.items()})
