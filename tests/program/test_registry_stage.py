"""The program's registry stage (MUSE_BOOTSTRAP_STAGE=registry), which scripts/bootstrap.sh runs once on a
fresh stack so the first main.yml run has a registry to push to.

It must register exactly what the full program registers for the registry (same URNs, same inputs, same
parents, dependencies and providers), so the first full deploy sees those resources as `same` and keeps them;
and a misspelt stage must fail before anything is registered, never fall back to a partial program."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict

import pulumi
import pytest

from offline.engine import OfflinePlan, RecordingMonitor, run_stack
from offline.mocks import OfflineMocks
from stack.environments import ENVIRONMENTS

STACKS = ENVIRONMENTS
DEPLOY_PRINCIPAL = "00000000-0000-0000-0000-0000000000aa"  # what bootstrap.sh step 3 sets
STAGE_TYPES = {
    "muse:azure:ContainerRegistry",
    "azure-native:containerregistry:Registry",
    "azure-native:authorization:RoleAssignment",
}


@pytest.fixture
def stage_env() -> Iterator[None]:
    previous = os.environ.get("MUSE_BOOTSTRAP_STAGE")
    os.environ["MUSE_BOOTSTRAP_STAGE"] = "registry"
    yield
    if previous is None:
        del os.environ["MUSE_BOOTSTRAP_STAGE"]
    else:
        os.environ["MUSE_BOOTSTRAP_STAGE"] = previous


IMPORT_PRINCIPAL = "00000000-0000-0000-0000-0000000000bb"  # prod's deployer, set on dev only


def _plan(stack: str) -> OfflinePlan:
    overrides = {"muse:imagePushPrincipalId": DEPLOY_PRINCIPAL}
    if stack == "dev":
        overrides["muse:imageImportPrincipalId"] = IMPORT_PRINCIPAL
    return run_stack(stack, overrides=overrides)


@pytest.fixture(scope="module")
def full() -> dict[str, OfflinePlan]:
    assert "MUSE_BOOTSTRAP_STAGE" not in os.environ
    return {stack: _plan(stack) for stack in STACKS}


@pytest.mark.parametrize("stack", STACKS)
def test_registry_stage_registers_the_registry_its_component_and_acr_push_as_the_full_plan_does(
    stack: str, full: dict[str, OfflinePlan], stage_env: None
) -> None:
    stage = _plan(stack)
    assert {r.type for r in stage.resources} == STAGE_TYPES
    [component] = stage.of_type("muse:azure:ContainerRegistry")
    [registry] = stage.of_type("azure-native:containerregistry:Registry")
    grants = {r.name: r for r in stage.of_type("azure-native:authorization:RoleAssignment")}
    push = grants.pop("image-push-acr-push")
    assert registry.parent == push.parent == component.urn
    assert push.get("principalId") == DEPLOY_PRINCIPAL
    assert push.get("roleDefinitionId").endswith(
        "/roleDefinitions/8311e382-0749-4cb8-b61a-304f252e45ec"
    )  # AcrPush
    # Prod's Reader on the dev registry is in the stage too: prod's first `az acr import` finds it whether or
    # not dev's first full deploy has run, and it has had the whole bootstrap to propagate.
    if stack == "dev":
        importing = grants.pop("image-import-acr-import-source")
        assert importing.parent == component.urn and importing.get("principalId") == IMPORT_PRINCIPAL
        assert importing.get("roleDefinitionId").endswith(
            "/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"
        )  # Reader
        assert importing.get("scope") == full[stack].outputs["registryId"].value
    assert grants == {}
    assert len(stage.resources) == (4 if stack == "dev" else 3)
    # Identical to the full program's registrations: URN, inputs, parent, dependencies, provider, options.
    for resource in stage.resources:
        assert asdict(full[stack].by_urn(resource.urn)) == asdict(resource), resource.urn
    # The outputs the first main.yml build reads (registryName, registryId, registryLoginServer) are there.
    for name in ("resourceGroupName", "registryName", "registryId", "registryLoginServer"):
        assert stage.outputs[name] == full[stack].outputs[name], name
    assert "clusterName" not in stage.outputs


def test_the_full_program_registers_more_than_the_stage(full: dict[str, OfflinePlan]) -> None:
    """Control: without the variable the program is the whole stack (the stage test is not vacuous)."""
    for plan in full.values():
        # The AKS cluster is the generic ARM resource (components/kubernetes_cluster.py: API 2026-05-01).
        assert [
            r
            for r in plan.of_type("azure-native:resources:Resource")
            if r.get("resourceProviderNamespace") == "Microsoft.ContainerService"
            and r.get("resourceType") == "managedClusters"
        ]
        assert len(plan.of_type("azure-native:containerservice:AgentPool")) >= 1
        assert len(plan.resources) > 30


@pytest.mark.parametrize("value", ["Registry", "registries", "full", " registry", "Vault", "keyvault"])
def test_an_unknown_stage_is_refused_before_any_resource_is_registered(value: str) -> None:
    previous = os.environ.get("MUSE_BOOTSTRAP_STAGE")
    os.environ["MUSE_BOOTSTRAP_STAGE"] = value
    monitor = RecordingMonitor(OfflineMocks("dev"))
    try:
        with pytest.raises(pulumi.RunError) as raised:
            run_stack("dev", monitor=monitor)
    finally:
        if previous is None:
            del os.environ["MUSE_BOOTSTRAP_STAGE"]
        else:
            os.environ["MUSE_BOOTSTRAP_STAGE"] = previous
    assert f"MUSE_BOOTSTRAP_STAGE={value!r} is not a stage" in str(raised.value)
    assert monitor.recorded == [], "a resource was registered before the stage was checked"


VAULT_STAGE_TYPES = STAGE_TYPES | {"muse:azure:SecretVault", "azure-native:keyvault:Vault"}


@pytest.mark.parametrize("stack", STACKS)
def test_vault_stage_registers_the_registry_stage_and_the_vault_as_the_full_plan_does(
    stack: str, full: dict[str, OfflinePlan]
) -> None:
    previous = os.environ.get("MUSE_BOOTSTRAP_STAGE")
    os.environ["MUSE_BOOTSTRAP_STAGE"] = "vault"
    try:
        stage = _plan(stack)
    finally:
        if previous is None:
            del os.environ["MUSE_BOOTSTRAP_STAGE"]
        else:
            os.environ["MUSE_BOOTSTRAP_STAGE"] = previous
    assert {r.type for r in stage.resources} == VAULT_STAGE_TYPES
    # The registry stage's resources (on dev also prod's deployer's Reader on the registry), the vault's two.
    assert len(stage.resources) == (6 if stack == "dev" else 5)
    for resource in stage.resources:
        assert asdict(full[stack].by_urn(resource.urn)) == asdict(resource), resource.urn
    # What scripts/tls-certificate.sh reads (`pulumi stack output keyVaultName`), equal to the full program's.
    for name in ("registryName", "keyVaultName", "keyVaultUri"):
        assert stage.outputs[name] == full[stack].outputs[name], name
    assert "clusterName" not in stage.outputs
    [vault] = stage.of_type("azure-native:keyvault:Vault")
    assert vault.protect is (stack == "prod")  # protected from its first deploy on


# --- a stage never runs on a stack that holds more ----------------------------------------------------------

REGISTRY_ONLY = {"resourceGroupName": "rg", "registryName": "acr"}
WITH_VAULT = {**REGISTRY_ONLY, "keyVaultName": "kv"}
FULL_STACK = {**WITH_VAULT, "clusterName": "aks"}


def _with_stage(stage: str, deployed: dict[str, str]) -> tuple[RecordingMonitor, BaseException | None]:
    previous = os.environ.get("MUSE_BOOTSTRAP_STAGE")
    os.environ["MUSE_BOOTSTRAP_STAGE"] = stage
    monitor = RecordingMonitor(OfflineMocks("prod", deployed_outputs=deployed))
    try:
        run_stack("prod", monitor=monitor)
        return monitor, None
    except pulumi.RunError as error:
        return monitor, error
    finally:
        if previous is None:
            del os.environ["MUSE_BOOTSTRAP_STAGE"]
        else:
            os.environ["MUSE_BOOTSTRAP_STAGE"] = previous


@pytest.mark.slow  # a program run each
@pytest.mark.parametrize(
    ("stage", "deployed", "holds"),
    [("registry", WITH_VAULT, "vault"), ("registry", FULL_STACK, "full"), ("vault", FULL_STACK, "full")],
)
def test_a_stage_on_a_stack_that_holds_more_is_refused_before_anything(
    stage: str, deployed: dict[str, str], holds: str
) -> None:
    # Run, the stage would register less than the stack holds and the engine would delete the rest.
    monitor, error = _with_stage(stage, deployed)
    assert error is not None
    assert f"MUSE_BOOTSTRAP_STAGE={stage} on stack prod, which already holds the {holds!r} stage" in str(
        error
    )
    assert "Unset MUSE_BOOTSTRAP_STAGE" in str(error)
    assert monitor.recorded == []


@pytest.mark.slow  # a program run each
@pytest.mark.parametrize(
    ("stage", "deployed"),
    [("registry", {}), ("registry", REGISTRY_ONLY), ("vault", REGISTRY_ONLY), ("vault", WITH_VAULT)],
)
def test_negative_control_a_stage_on_a_stack_that_holds_no_more_runs(
    stage: str, deployed: dict[str, str]
) -> None:
    monitor, error = _with_stage(stage, deployed)
    assert error is None
    assert any(r.type == "azure-native:containerregistry:Registry" for r in monitor.recorded)
