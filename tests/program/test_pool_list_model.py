"""The cluster's inline pool list after a pool was deleted: why every `pulumi up` must refresh first.

The cluster is a generic `azure-native:resources:Resource` with `properties.agentPoolProfiles` ignored, so
every update PUTs the pool list *stored in state* (pulumi/pulumi step_generator.go `processIgnoreChanges`),
and that stored list is whatever the last saved refresh made of it: azure-native's `Read` applies the change
between the old and the new outputs to the stored inputs (pulumi/pulumi-azure-native
provider/pkg/provider/diff.go `applyDiff`/`applyValueDiff`, read at commit
03707ff7fc10b70f7dd23ec847a3ce1e9264c124; modelled in tests/pulumi_engine_model.py). AKS lists every pool
of the cluster in `agentPoolProfiles`, the user pools that are separate AgentPool resources too, so after a
refresh the stored list is all live pools.

What applyValueDiff does with arrays, element by element *by position*: the result has the new array's
length; an index the stored or the old array lacks takes the new element as is; any other index merges the
stored element with what changed between the old and the new element at that index. So a shorter live list
shortens the stored one, and a reordered one merges pool B's changes into what was stored for pool A
(fields that did not change between old[i] and new[i], input-only ones included, stay A's).

AKS refuses a managed-cluster PUT that lists a pool the cluster does not have: "A new agent pool was
introduced. Adding agent pools to an existing cluster is not allowed through managed cluster operations"
(the RP's error, quoted in microsoft/tyger#121 and Azure/AKS#4383). A stored list that still names a pool
deleted since the last saved refresh (the old `muse` pool, which the move to the zone pools deletes at the
end of its update) is exactly that, so a `pulumi up` without `--refresh` after such a deletion fails. CI's
deploys run `pulumi up --refresh` (scripts/ci/deploy.py); the runbook requires it for every manual run.
"""

from __future__ import annotations

import copy
from typing import Any

from offline.engine import OfflinePlan
from tests.program.test_upgrade_model import _cluster
from tests.pulumi_engine_model import ignored_inputs, refreshed_inputs

NEW_POOL_REFUSED = (
    "A new agent pool was introduced. Adding agent pools to an existing cluster is not allowed through "
    "managed cluster operations."
)


def aks_put(sent: dict[str, Any], live_pools: set[str]) -> str:
    """AKS's answer to a managed-cluster PUT on an existing cluster: a listed pool it does not have is
    refused (the RP error above); pools it has but the body leaves out are not touched by the PUT (they are
    per-agent-pool resources; only a real update confirms this, docs/architecture/azure.md)."""
    listed = {pool["name"] for pool in sent["properties"]["agentPoolProfiles"]}
    return NEW_POOL_REFUSED if listed - live_pools else "Succeeded"


def _pool(name: str, mode: str = "User", **extra: Any) -> dict[str, Any]:
    """A pool as AKS's GET lists it in agentPoolProfiles (read-only fields included)."""
    return {"name": name, "mode": mode, "count": 1, "provisioningState": "Succeeded", **extra}


def _answer(program: dict[str, Any], pools: list[dict[str, Any]]) -> dict[str, Any]:
    answer = copy.deepcopy(program)
    answer["properties"]["agentPoolProfiles"] = copy.deepcopy(pools)
    return answer


def _after_the_move(plan: OfflinePlan) -> tuple[dict[str, Any], dict[str, Any], list[str], dict[str, Any]]:
    """(program inputs, state after the moving deploy, its ignoreChanges, AKS's GET now): the moving deploy
    refreshed while `muse` still existed, then created the zone pools and deleted `muse`."""
    cluster = _cluster(plan)
    program = copy.deepcopy(cluster.properties)
    [system] = program["properties"]["agentPoolProfiles"]
    created = _answer(program, [_pool(system["name"], "System")])
    before_move = _answer(program, [_pool(system["name"], "System"), _pool("muse")])
    state = refreshed_inputs(program, created, before_move)  # the moving deploy's --refresh
    zone_pools = [_pool(f"musez{zone}") for zone in (1, 2, 3)]
    now = _answer(program, [_pool(system["name"], "System"), *zone_pools])
    return program, state, list(cluster.ignore_changes), {"before": before_move, "now": now}


def test_without_a_saved_refresh_the_put_names_the_deleted_pool_and_aks_refuses_it(plan: OfflinePlan) -> None:
    program, state, ignore, _ = _after_the_move(plan)
    sent, invalid = ignored_inputs(program, state, ignore)
    assert invalid == []
    assert [p["name"] for p in sent["properties"]["agentPoolProfiles"]][-1] == "muse"
    assert aks_put(sent, live_pools={"system", "musez1", "musez2", "musez3"}) == NEW_POOL_REFUSED


def test_with_refresh_the_put_names_exactly_the_live_pools(plan: OfflinePlan) -> None:
    # The negative control above differs only in the missing refresh.
    program, state, ignore, answers = _after_the_move(plan)
    refreshed = refreshed_inputs(state, answers["before"], answers["now"])
    sent, _ = ignored_inputs(program, refreshed, ignore)
    names = [p["name"] for p in sent["properties"]["agentPoolProfiles"]]
    assert names == ["system", "musez1", "musez2", "musez3"]
    assert aks_put(sent, live_pools=set(names)) == "Succeeded"


def test_apply_value_diff_is_positional_for_a_shorter_and_a_reordered_list() -> None:
    a, b = _pool("a", note="input-only of a"), _pool("b")
    old = {"pools": [_pool("a"), _pool("b")]}
    stored = {"pools": [a, b]}
    # Shorter: the stored list takes the new length.
    assert refreshed_inputs(stored, old, {"pools": [_pool("a")]}) == {"pools": [a]}
    # Reordered: index 0 gets b's changed fields (its name) but keeps a's unchanged input-only field.
    reordered = refreshed_inputs(stored, old, {"pools": [_pool("b"), _pool("a")]})
    assert reordered["pools"][0] == {**_pool("b"), "note": "input-only of a"}
    assert reordered["pools"][1] == _pool("a")
