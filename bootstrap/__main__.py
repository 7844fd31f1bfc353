"""Muse's landing zone: what an administrator creates once per subscription so CI needs no standing rights.

Run by a person with Owner on the subscription and Application Administrator in Entra ID, as step 2 of
scripts/bootstrap.sh (docs/bootstrap.md). From every environment's stack file (../Pulumi.<env>.yaml) it
creates, per environment, the resource group and a deny policy on federated credentials from any issuer but
this tenant's AKS clusters there (rbac/policies.py); the custom roles (state decrypter, custom resource
reader, Kubernetes operator, alert responder); and five GitHub OIDC identities, each trusted by exactly one
set of workflow contexts and granted only what its jobs need. No identity has a role on the subscription,
and none reaches another environment's state or key; verify/access/ proves every grant is needed
(docs/access-matrix.md). Why: docs/bootstrap.md#what-the-bootstrap-program-creates."""

from pathlib import Path

import pulumi
from pulumi_azure_native import authorization

from components.github_identity import GitHubOidcIdentity, GitHubOidcIdentityArgs
from components.muse_workload.manifests import CUSTOM_RESOURCES
from components.resource_group import ResourceGroup
from rbac.arm import KEY_VAULTS, STORAGE_ACCOUNTS
from rbac.policies import (
    ALLOWED_ISSUER_PARAMETER,
    FEDERATION_DESCRIPTION,
    FEDERATION_DISPLAY_NAME,
    aks_issuer_pattern,
    federation_definition_name,
    federation_policy_parameters,
    federation_policy_rule,
)
from rbac.roles import (
    DELEGABLE_BY_CI,
    OPERATOR_CUSTOM_RESOURCE_VERBS,
    OPERATOR_ROLES,
    OPERATOR_STATE_ROLE,
    CustomRole,
    CustomRoles,
    PrincipalType,
    Role,
    assign_role,
    only_assigning,
    only_custom_resources,
    only_reading_custom_resources,
)
from stack import args as stack_args
from stack.config import PLACEHOLDER_OBJECT_ID, StackConfig, load_stack_config
from stack.environments import ENVIRONMENTS, image_importer
from stack.files import read_stack
from stack.naming import ResourceNames, StateBackendNames
from stack.tags import standard_tags

REPO_ROOT = Path(__file__).resolve().parent.parent
# The workflow contexts (OIDC subjects after the repository's prefix, muse:githubSubjectPrefixes) each
# identity trusts. Pull requests preview
# dev only; prod is previewed by a job in the `preview-prod` environment, which only `main` can enter.
PREVIEW_SUBJECTS = {ENVIRONMENTS[0]: ["pull_request", f"environment:preview-{ENVIRONMENTS[0]}"]}
BUILD_SUBJECTS = ["ref:refs/heads/main"]
# The environments in promotion order (stack/environments.txt): the build pushes to the first one's registry,
# and each later one imports the tested digest from the one before it (`image_source`).
IMAGE_SOURCE = ENVIRONMENTS[0]


def environment_config(environment: str) -> StackConfig:
    try:
        files = read_stack(environment, REPO_ROOT)
        return load_stack_config(
            environment, files.config, stack_file=files.stack_file_config, written=files.written
        )
    except ValueError as error:
        raise pulumi.RunError(str(error)) from None


environments = [environment_config(env) for env in ENVIRONMENTS]
repositories = {env.github_repository for env in environments}
suffixes = {env.name_suffix for env in environments}
prefix_sets = {env.github_subject_prefixes for env in environments}
if len(repositories) != 1 or "" in repositories or len(suffixes) != 1 or len(prefix_sets) != 1:
    raise pulumi.RunError(
        "Every environment must set the same muse:githubRepository (owner/name), muse:githubSubjectPrefixes "
        f"and muse:nameSuffix; found repositories {sorted(repositories)}, subject prefixes "
        f"{sorted(prefix_sets)} and suffixes {sorted(suffixes)}."
    )
repository = repositories.pop()
# The prefixes of the repository's OIDC subjects (rbac/github_subjects.py): scripts/bootstrap.sh has checked
# them against GitHub's answer when it could read it.
subject_prefixes = prefix_sets.pop()
suffix = suffixes.pop()
subscription_id = authorization.get_client_config_output().subscription_id
subscription = subscription_id.apply(lambda sub: f"/subscriptions/{sub}")


def state_scopes(names: StateBackendNames) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
    """(container id, key id) of one environment's state."""
    group = subscription.apply(lambda sub: f"{sub}/resourceGroups/{names.resource_group}")
    container = group.apply(
        lambda g: (
            f"{g}/providers/{STORAGE_ACCOUNTS}/{names.storage_account}"
            f"/blobServices/default/containers/{names.container}"
        )
    )
    key = group.apply(lambda g: f"{g}/providers/{KEY_VAULTS}/{names.key_vault}/keys/{names.key}")
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
# Assignable in the environments' groups only. Assigned at the group, not at the cluster: the cluster is
# created by the environment's stack after this runs, and its deployer may assign roles to service
# principals only (DELEGABLE_BY_CI); its data actions reach nothing but the group's one AKS cluster.
kubernetes_operator = custom_role(CustomRoles.KUBERNETES_OPERATOR, [group.id for group in groups.values()])
alert_responder = custom_role(CustomRoles.ALERT_RESPONDER, [group.id for group in groups.values()])


def identity(name: str, subjects: list[str], description: str) -> GitHubOidcIdentity:
    return GitHubOidcIdentity(
        name,
        GitHubOidcIdentityArgs(
            display_name=f"muse-github-{name}",
            subject_prefixes=subject_prefixes,
            subjects=subjects,
            description=description,
        ),
    )


previews: dict[str, GitHubOidcIdentity] = {}
deployers: dict[str, GitHubOidcIdentity] = {}
for environment in groups:
    previews[environment] = identity(
        f"preview-{environment}",
        PREVIEW_SUBJECTS.get(environment, [f"environment:preview-{environment}"]),
        f"Muse CI: pulumi preview and drift of the {environment} stack. Reads, writes nothing.",
    )
    deployers[environment] = identity(
        f"deploy-{environment}",
        [f"environment:{environment}"],
        f"Muse CI: deploys the {environment} stack.",
    )
build: GitHubOidcIdentity | None = None
if IMAGE_SOURCE in groups:
    build = identity(
        "build",
        BUILD_SUBJECTS,
        f"Muse CI: builds the image and pushes it to the {IMAGE_SOURCE} registry.",
    )


# Each environment's registry is read by exactly one importer, the next environment's deployer (`az acr
# import` needs Reader on the source registry), granted by that environment's stack
# (muse:imageImportPrincipalId, one principal).
importers = {
    env: deployers[after]
    for env in deployers
    if (after := image_importer(env)) is not None and after in deployers
}


def delegation_condition(environment: str) -> pulumi.Output[str]:
    """The deployer's delegation: the roles a stack assigns, to service principals, never to a CI identity
    (a deployer could otherwise give a pull request's preview identity Key Vault Secrets User). In the
    environment whose registry the build pushes to and the others import from, two CI identities are the
    exception, each for exactly one role: the build may get AcrPush (muse:imagePushPrincipalId), the importing
    deployer Reader (muse:imageImportPrincipalId), and Reader goes to no one else; elsewhere they are excluded
    like the others."""
    others = [i.principal_id for i in (*previews.values(), *deployers.values())]
    builds = [build.principal_id] if build is not None else []
    importer_ids = [importers[environment].principal_id] if environment in importers else []

    def condition(ids: list[str]) -> str:
        ci, build_ids = ids[: len(others)], ids[len(others) : len(others) + len(builds)]
        importing = ids[len(others) + len(builds) :]
        pushing = build_ids if environment == IMAGE_SOURCE else []
        if pushing or importing:
            return only_assigning(
                list(DELEGABLE_BY_CI),
                PrincipalType.SERVICE_PRINCIPAL,
                never_to=[i for i in ci if i not in importing] + [b for b in build_ids if b not in pushing],
                only_role_to=dict.fromkeys(pushing, Role.ACR_PUSH) | dict.fromkeys(importing, Role.READER),
                only_to={Role.READER: importing},
            )
        return only_assigning(list(DELEGABLE_BY_CI), PrincipalType.SERVICE_PRINCIPAL, never_to=ci + build_ids)

    return pulumi.Output.all(*others, *builds, *importer_ids).apply(condition)


for environment, group in groups.items():
    container, key = state_scopes(states[environment])

    preview = previews[environment]
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

    deployer = deployers[environment]
    deployer.grant(environment, Role.CONTRIBUTOR, group.id)
    deployer.grant(
        environment, Role.RBAC_ADMINISTRATOR, group.id, condition=delegation_condition(environment)
    )
    deployer.grant(environment, Role.AKS_RBAC_CLUSTER_ADMIN, group.id)
    # The canary gate's PromQL query (scripts/ci/canary_gate.py) reads the environment's Azure Monitor
    # workspace. Granted here on the group, not by the stack on the workspace: the workspace exists only after
    # the stack's first up, and the stack could grant it only if the delegation condition let a deployer give
    # a role to a CI identity - itself - which it never may. The group holds that one workspace, and the
    # grant is old before the first canary (the second deploy: deploy.py skips it on a first), so no
    # propagation wait races it. A data read only, where the deployer is already AKS Cluster Admin.
    deployer.grant(environment, Role.MONITORING_DATA_READER, group.id)
    deployer.grant(f"{environment}-state", Role.STORAGE_BLOB_DATA_CONTRIBUTOR, container)
    deployer.grant_custom(f"{environment}-state", CustomRoles.STATE_DECRYPTER, decrypter.id, key)

# People: each environment's operators' group (muse:operatorsGroupObjectId) gets OPERATOR_ROLES, the
# Kubernetes operator role (conditioned to Muse's custom resource kinds) and the alert responder role on the
# environment's group, so a member can run docs/runbook.md's triage (portal, Log Analytics) and kubectl
# steps (local accounts are off: only Azure RBAC reaches the cluster). Unset (dev may leave it) or the
# committed placeholder: no grant, and every real deploy of prod refuses the placeholder
# (scripts/ci/placeholders.py).
for env in environments:
    operators = env.operators_group_object_id
    if operators and operators != PLACEHOLDER_OBJECT_ID:
        for role in OPERATOR_ROLES:
            assign_role(
                f"operators-{env.environment}-{role.name.lower().replace('_', '-')}",
                role=role,
                scope=groups[env.environment].id,
                principal_id=operators,
                principal_type=PrincipalType.GROUP,
                parent=groups[env.environment],
            )
        assign_role(
            f"operators-{env.environment}-kubernetes",
            role=(CustomRoles.KUBERNETES_OPERATOR, kubernetes_operator.id),
            scope=groups[env.environment].id,
            principal_id=operators,
            principal_type=PrincipalType.GROUP,
            parent=groups[env.environment],
            condition=only_custom_resources(list(CUSTOM_RESOURCES), OPERATOR_CUSTOM_RESOURCE_VERBS),
        )
        assign_role(
            f"operators-{env.environment}-alerts",
            role=(CustomRoles.ALERT_RESPONDER, alert_responder.id),
            scope=groups[env.environment].id,
            principal_id=operators,
            principal_type=PrincipalType.GROUP,
            parent=groups[env.environment],
        )
        state_container, _ = state_scopes(states[env.environment])
        assign_role(
            f"operators-{env.environment}-state",
            role=OPERATOR_STATE_ROLE,
            scope=state_container,
            principal_id=operators,
            principal_type=PrincipalType.GROUP,
            parent=groups[env.environment],
        )

if build is not None:
    # `pulumi stack output` of the source stack (registry name, group): blob reads only; outputs are read
    # with a blinding secrets provider, so no key (pulumi/pulumi pkg/cmd/pulumi/stack/stack_output.go).
    source_container, _ = state_scopes(states[IMAGE_SOURCE])
    build.grant(f"build-{IMAGE_SOURCE}-state", Role.STORAGE_BLOB_DATA_READER, source_container)
# prod never rebuilds: `az acr import --registry <source registry id>` copies the digest the source
# environment tested, which needs Reader on the source registry (container-registry-import-images.md). The
# source registry is made by its stack after this runs, so the grant is the source stack's
# (muse:imageImportPrincipalId, registry.grant_import_source), on that registry only, like the build's
# AcrPush.

# What scripts/bootstrap.sh writes where (docs/github-setup.md): the GitHub variables per level, and the stack
# config each environment needs. verify/access/ resolves every workflow job's identity through these.
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

# Each environment's stack config: who pushes to its registry (the first one's: the build), and who imports
# from it (the next environment's deployer).
stack_config: dict[str, dict[str, pulumi.Input[str]]] = {}
for environment in groups:
    config_values: dict[str, pulumi.Input[str]] = {}
    if build is not None and environment == IMAGE_SOURCE:
        config_values["muse:imagePushPrincipalId"] = build.principal_id
    if environment in importers:
        config_values["muse:imageImportPrincipalId"] = importers[environment].principal_id
    stack_config[environment] = config_values
pulumi.export("githubVariables", {"repository": repository_variables, "environments": environment_variables})
pulumi.export("stackConfig", stack_config)
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


# --- federated credentials: only this tenant's AKS issuers --------------------------------------------------
# The deployers' Contributor can write federated credentials on any user-assigned identity of their group, and
# the delegation condition bounds role assignments only. A deny policy at each environment group keeps every
# issuer but the environment's AKS clusters out (rbac/policies.py): the stacks' credentials (the workload
# identity, federated to the cluster's issuer) stay allowed, GitHub's issuer and foreign issuers are refused
# by ARM whoever asks. Contributor's notActions (Microsoft.Authorization/*/Write, */Delete) and the delegation
# role's actions (roleAssignments only) leave CI no way to delete the assignment or write an exemption.
federation_policy = authorization.PolicyDefinition(
    "aks-issuers-only",
    policy_definition_name=federation_definition_name(suffix),
    display_name=f"{FEDERATION_DISPLAY_NAME} ({suffix})",
    description=FEDERATION_DESCRIPTION,
    mode="All",
    policy_type="Custom",
    parameters={
        name: authorization.ParameterDefinitionsValueArgs(
            type=spec["type"],
            metadata=authorization.ParameterDefinitionsValueMetadataArgs(
                display_name=spec["metadata"]["displayName"], description=spec["metadata"]["description"]
            ),
        )
        for name, spec in federation_policy_parameters().items()
    },
    policy_rule=federation_policy_rule(),
)


def federation_policy_assignment(env: StackConfig, group: ResourceGroup) -> authorization.PolicyAssignment:
    """Deny, in `env`'s group, federated credentials whose issuer is not an AKS cluster of this tenant in the
    environment's region (every stack's cluster is created in `muse:location`)."""
    return authorization.PolicyAssignment(
        f"aks-issuers-only-{env.environment}",
        policy_assignment_name=f"muse-aks-issuers-only-{env.environment}",
        display_name=f"{FEDERATION_DISPLAY_NAME} ({env.environment})",
        description=FEDERATION_DESCRIPTION,
        scope=group.id,
        policy_definition_id=federation_policy.id,
        enforcement_mode="Default",
        parameters={
            ALLOWED_ISSUER_PARAMETER: authorization.ParameterValuesValueArgs(
                value=tenant_id.apply(lambda tenant: aks_issuer_pattern(env.location, tenant))
            )
        },
    )


federation_policies = {
    env.environment: federation_policy_assignment(env, groups[env.environment]) for env in environments
}
