"""What this stack already holds: the outputs of its last update, read from the state backend before the
program registers anything.

Read with the engine's built-in `pulumi:pulumi:readStackOutputs` invoke (synchronous, so a refusal leaves
nothing behind); `clusterName`, `keyVaultName` and `registryName` tell the stage deployed. For an existing
cluster it also reads the live system pool. Why, with the engine code it relies on:
docs/architecture/azure.md#what-a-stack-already-holds."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

READ_STACK_OUTPUTS = "pulumi:pulumi:readStackOutputs"
# Stages in the order each includes the one before; "" = nothing deployed.
STAGE_ORDER = ("", "registry", "vault", "full")
SYSTEM_POOL_PROCEDURE = "docs/runbook.md#changing-the-system-pool"


@dataclass(frozen=True)
class DeployedStack:
    """The last update's outputs of this stack (empty for a stack never deployed)."""

    outputs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def stage(self) -> str:
        if "clusterName" in self.outputs:
            return "full"
        if "keyVaultName" in self.outputs:
            return "vault"
        if "registryName" in self.outputs:
            return "registry"
        return ""

    @property
    def has_cluster(self) -> bool:
        return self.stage == "full"

    def holds_more_than(self, stage: str) -> bool:
        return STAGE_ORDER.index(self.stage) > STAGE_ORDER.index(stage)


def stack_name() -> str:
    """This stack's fully qualified name, as a StackReference names it (`organization/project/stack`; the
    DIY backend's organization is `organization`)."""
    import pulumi

    return f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"


def read() -> DeployedStack:
    """This stack's outputs as its last update left them (synchronous: call it before registering)."""
    import pulumi

    # A failed invoke raises (the SDK turns the engine's failures into an exception), stopping the program.
    result = pulumi.runtime.invoke(READ_STACK_OUTPUTS, {"name": stack_name()})
    outputs = (result.value or {}).get("outputs") or {}
    return DeployedStack(outputs=dict(outputs))


@dataclass(frozen=True)
class SystemPool:
    vm_size: str
    count: int


def live_system_pool(deployed: DeployedStack) -> SystemPool | None:
    """The existing cluster's system pool as AKS reports it now (None when there is no cluster yet)."""
    if not deployed.has_cluster:
        return None
    from pulumi_azure_native import containerservice

    from components.kubernetes_cluster import SYSTEM_POOL

    pool = containerservice.get_agent_pool(
        resource_group_name=str(deployed.outputs["resourceGroupName"]),
        resource_name=str(deployed.outputs["clusterName"]),
        agent_pool_name=SYSTEM_POOL,
    )
    return SystemPool(vm_size=str(pool.vm_size), count=int(pool.count or 0))


def system_pool_problem(live: SystemPool | None, *, vm_size: str, count: int) -> str:
    """Why the config's system pool cannot be deployed to the live cluster ("" when it can): the cluster
    resource cannot change its inline pool, so the change is a procedure, not a deploy."""
    if live is None or (live.vm_size, live.count) == (vm_size, count):
        return ""
    return (
        f"the system pool runs {live.count} x {live.vm_size}, but the stack config asks for {count} x "
        f"{vm_size} (muse:systemNodeCount / muse:systemNodeVmSize). A deploy cannot change it: the cluster "
        f"resource ignores its inline pool after creation. Either set the config back to what runs, or "
        f"change the pool by the procedure in {SYSTEM_POOL_PROCEDURE} (az aks nodepool scale for the count; "
        f"a temporary system pool for the VM size) and then commit the config. Nothing was changed."
    )


_VCPUS = re.compile(r"^Standard_[A-Z]+?(\d+)")


def vm_vcpus(vm_size: str) -> int:
    """vCPUs of an Azure VM size by its name: the number after the family letters (Standard_D4ds_v5 -> 4;
    learn.microsoft.com/azure/virtual-machines/vm-naming-conventions, "# of vCPUs")."""
    match = _VCPUS.match(vm_size)
    if match is None:
        raise ValueError(f"{vm_size!r} is not an Azure VM size name")
    return int(match.group(1))


def pool_change_warning(
    deployed: DeployedStack, pool_names: Sequence[str], *, vm_size: str, nodes_per_pool: int, location: str
) -> str:
    """The warning a deploy that replaces the user pools prints ("" when the pools stay): the new pools run
    beside the old ones until the old are drained and deleted at the end of the update, so the regional vCPU
    quota must hold both generations for a while."""
    previous = deployed.outputs.get("userPoolNames")
    if not previous or set(previous) == set(pool_names):
        return ""
    new = sorted(set(pool_names) - set(previous))
    gone = sorted(set(previous) - set(pool_names))
    extra = len(new) * nodes_per_pool * vm_vcpus(vm_size)
    return (
        f"user pools change by surge: creating {', '.join(new)} ({vm_size}) beside {', '.join(gone)}, which "
        f"are drained and deleted at the end of this update. Up to {extra} extra vCPUs run during the change "
        f"({len(new)} pool(s) x {nodes_per_pool} node(s) x {vm_vcpus(vm_size)} vCPUs); the region's quota "
        f"must have them free: az vm list-usage --location {location} -o table (docs/runbook.md, 'Changing "
        f"the user pools')."
    )
