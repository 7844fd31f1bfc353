"""Changing a user pool's force-new settings is a surge (new pools first, old ones deleted last), not an
outage.

The plan diff between two runs of the whole program is what the engine acts on: a URN in the new run and not
in the state is a create, a URN in the state the program no longer registers is a delete that the engine
generates only after the program has exited and every create/update has run (pulumi/pulumi
pkg/resource/deploy/deployment_executor.go `performPostSteps` -> step_generator.go `GenerateDeletes`,
`ScheduleDeletes`), and a URN in both whose force-new input changed is a replacement, which azure-native does
delete-first (pulumi-azure-native provider/pkg/provider/provider.go `Diff`: `deleteBeforeReplace :=
len(replaces) > 0`; `vmSize` is force-new for AgentPool in provider/pkg/gen/replacement.go). AKS then drains
the deleted pool's nodes honouring PodDisruptionBudgets (MicrosoftDocs/azure-aks-docs
articles/aks/delete-node-pool.md at 59535a06c456f3cb789ffd49f57f6b84c4f2bde5, "Ignore PodDisruptionBudgets
(PDBs) when removing an existing node pool": PDBs hold the deletion back unless told to ignore them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pytest

import components.kubernetes_cluster as kubernetes_cluster
from components.kubernetes_cluster import FORCE_NEW_POOL_SETTINGS, LEGACY_POOL_SHAPES
from offline.engine import OfflinePlan, RecordingMonitor, run_stack
from offline.mocks import OfflineMocks

POOL = "azure-native:containerservice:AgentPool"
# The settings the engine cannot update in place, of the pools the program registers: force-new in
# azure-native (replacement.go) or create-only in AKS (the component's FORCE_NEW_POOL_SETTINGS).
FORCE_NEW = frozenset(FORCE_NEW_POOL_SETTINGS)


@dataclass(frozen=True)
class Steps:
    """What `pulumi up` does going from `before` (the state) to `after` (the program's registrations)."""

    creates: frozenset[str]
    deletes_at_end: frozenset[str]
    delete_first_replaces: frozenset[str]


def steps(before: OfflinePlan, after: OfflinePlan) -> Steps:
    old = {r.urn: r for r in before.resources}
    new = {r.urn: r for r in after.resources}
    replaces = frozenset(
        urn
        for urn in old.keys() & new.keys()
        if new[urn].type == POOL
        and any(old[urn].properties.get(key) != new[urn].properties.get(key) for key in FORCE_NEW)
    )
    return Steps(frozenset(new.keys() - old.keys()), frozenset(old.keys() - new.keys()), replaces)


def _pool_urns(plan: OfflinePlan) -> frozenset[str]:
    return frozenset(r.urn for r in plan.of_type(POOL))


@pytest.fixture(scope="module")
def prod(plans: dict[str, OfflinePlan]) -> OfflinePlan:
    return plans["prod"]


@pytest.mark.slow  # program runs
@pytest.mark.parametrize(
    "change",
    [
        {"muse:userNodeVmSize": "Standard_D8ds_v5"},
        {"muse:userNodeVmSize": "Standard_E4ds_v5"},
    ],
)
def test_a_vm_size_change_creates_new_pools_and_deletes_the_old_last(
    prod: OfflinePlan, change: dict[str, Any]
) -> None:
    changed = run_stack("prod", overrides=change)
    plan = steps(prod, changed)
    assert plan.delete_first_replaces == frozenset()
    # Exactly the pools move: three new ones are created during the update, the three old ones deleted at
    # its end; nothing else is created, deleted or replaced.
    assert plan.creates == _pool_urns(changed) and len(plan.creates) == 3
    assert plan.deletes_at_end == _pool_urns(prod)
    new_names = sorted(r.get("agentPoolName") for r in changed.of_type(POOL))
    assert [n[:6] for n in new_names] == ["musez1", "musez2", "musez3"]
    assert len({n[6:] for n in new_names}) == 1 and all(len(n) <= 12 for n in new_names)
    assert {r.get("vmSize") for r in changed.of_type(POOL)} == {change["muse:userNodeVmSize"]}


def test_every_force_new_setting_gives_new_pools() -> None:
    # The log rotation (kubeletConfig) too; the component's shape covers each force-new setting it sends.
    base = kubernetes_cluster.pool_shape(
        kubernetes_cluster.NodePoolSize(vm_size="Standard_D4ds_v5", count=1),
        (),
        kubernetes_cluster.ContainerLogRotation(max_size_mb=10, max_files=5),
    )
    fingerprint = kubernetes_cluster.shape_fingerprint(base)
    for key in FORCE_NEW - {"availabilityZones"}:  # the zone is in the name itself (musez1...)
        assert kubernetes_cluster.shape_fingerprint({**base, key: f"changed {key}"}) != fingerprint, key


@pytest.mark.slow  # program runs
def test_updatable_settings_keep_the_pools(prod: OfflinePlan) -> None:
    # Counts and autoscaler bounds are updated in place: same URNs, no create, no delete.
    changed = run_stack("prod", overrides={"muse:userNodeMaxCount": 3, "muse:userNodeCount": 2})
    plan = steps(prod, changed)
    assert (plan.creates, plan.deletes_at_end, plan.delete_first_replaces) == (frozenset(),) * 3


def test_the_upgrade_itself_replaces_none_of_todays_pools(plans: dict[str, OfflinePlan]) -> None:
    # State migration: the stacks' current settings are their legacy pools' shapes, so the URNs and AKS
    # names are the ones the pools were created with before names carried the shape.
    assert {r.name for r in plans["prod"].of_type(POOL)} == {
        "cluster-musez1",
        "cluster-musez2",
        "cluster-musez3",
    }
    assert {r.name for r in plans["dev"].of_type(POOL)} == {"cluster-museregional"}
    for plan in plans.values():
        for pool in plan.of_type(POOL):
            assert LEGACY_POOL_SHAPES[pool.get("agentPoolName")] is not None


@pytest.mark.slow  # program runs
def test_a_legacy_name_never_gets_another_shape(plans: dict[str, OfflinePlan]) -> None:
    # dev's regional pool at prod's VM size is not dev's legacy shape: a new pool, never `museregional`
    # updated in place (which would be a delete-first replace).
    dev = plans["dev"]
    bigger = run_stack("dev", overrides={"muse:userNodeVmSize": "Standard_D4ds_v5"})
    plan = steps(dev, bigger)
    assert plan.delete_first_replaces == frozenset()
    assert [r.get("agentPoolName")[:5] for r in bigger.of_type(POOL)] == ["muser"]
    assert plan.deletes_at_end == _pool_urns(dev)


@pytest.mark.slow  # program runs
def test_negative_control_fixed_names_make_the_edit_a_delete_first_replace(
    prod: OfflinePlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The defect this guards against: names that do not follow the shape (the old fixed names).
    monkeypatch.setattr(kubernetes_cluster, "user_pool_names", lambda zones, fingerprint=None: _fixed(zones))
    changed = run_stack("prod", overrides={"muse:userNodeVmSize": "Standard_D8ds_v5"})
    plan = steps(prod, changed)
    assert plan.delete_first_replaces == _pool_urns(prod)  # every zone's pool deleted at once: the outage
    assert plan.creates == frozenset()


def _fixed(zones: Any) -> dict[str, tuple[str, ...]]:
    return {f"musez{zone}": (zone,) for zone in zones} if zones else {"museregional": ()}


# --- the system pool: a refusal before anything is registered -----------------------------------------------

DEPLOYED = {
    "resourceGroupName": "rg-muse-prod-m7k2",
    "registryName": "acrmuseprodm7k2",
    "keyVaultName": "kv-muse-prod-m7k2",
    "clusterName": "aks-muse-prod-m7k2",
}


def _run_on_existing(
    system_pool: dict[str, Any], overrides: dict[str, Any] | None = None
) -> RecordingMonitor:
    monitor = RecordingMonitor(
        OfflineMocks("prod", deployed_outputs=DEPLOYED, live_agent_pools={"system": system_pool})
    )
    run_stack("prod", overrides=overrides, monitor=monitor)
    return monitor


@pytest.mark.slow  # program runs
def test_a_system_pool_edit_is_refused_before_anything_is_registered() -> None:
    live = {"vmSize": "Standard_D4ds_v5", "count": 3}
    with pytest.raises(pulumi.RunError) as raised:
        _run_on_existing(live, {"muse:systemNodeVmSize": "Standard_D8ds_v5"})
    message = str(raised.value)
    assert "3 x Standard_D4ds_v5" in message and "3 x Standard_D8ds_v5" in message
    assert "docs/runbook.md#changing-the-system-pool" in message
    with pytest.raises(pulumi.RunError, match="systemNodeCount"):
        _run_on_existing(live, {"muse:systemNodeCount": 4})


@pytest.mark.slow  # program runs
def test_negative_control_the_live_system_pool_matching_the_config_deploys() -> None:
    monitor = _run_on_existing({"vmSize": "Standard_D4ds_v5", "count": 3})
    assert any(r.type == POOL for r in monitor.recorded)


@pytest.mark.slow  # program runs
def test_a_refused_system_pool_registers_nothing() -> None:
    monitor = RecordingMonitor(
        OfflineMocks(
            "prod",
            deployed_outputs=DEPLOYED,
            live_agent_pools={"system": {"vmSize": "Standard_D2ds_v5", "count": 3}},
        )
    )
    with pytest.raises(pulumi.RunError):
        run_stack("prod", monitor=monitor)
    assert monitor.recorded == []


def test_a_pool_change_names_the_surge_vcpus_and_the_quota_check() -> None:
    from stack.deployed import DeployedStack, pool_change_warning

    before = DeployedStack({"userPoolNames": ["musez1", "musez2", "musez3"]})
    after = ["musez1abc123", "musez2abc123", "musez3abc123"]
    warning = pool_change_warning(
        before, after, vm_size="Standard_D8ds_v5", nodes_per_pool=2, location="westeurope"
    )
    assert "48 extra vCPUs" in warning  # 3 pools x 2 nodes x 8 vCPUs
    assert "az vm list-usage --location westeurope" in warning
    # Negative control: the same pools (or a first deploy) warn of nothing.
    same = pool_change_warning(
        before,
        list(before.outputs["userPoolNames"]),
        vm_size="Standard_D8ds_v5",
        nodes_per_pool=2,
        location="westeurope",
    )
    assert same == ""
    assert (
        pool_change_warning(
            DeployedStack(), after, vm_size="Standard_D8ds_v5", nodes_per_pool=2, location="westeurope"
        )
        == ""
    )


def test_the_refusal_links_a_runbook_section_that_exists() -> None:
    import re

    from stack.deployed import SYSTEM_POOL_PROCEDURE
    from stack.files import REPO_ROOT

    path, anchor = SYSTEM_POOL_PROCEDURE.split("#")
    headings = re.findall(r"(?m)^#{2,4} (.+)$", (REPO_ROOT / path).read_text())
    assert anchor in {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-") for h in headings}
