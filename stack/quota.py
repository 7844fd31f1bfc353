"""The vCPU quota the stacks' node pools need, per VM family and for the region, against what Azure grants.

    python -m cli.quota <list-usage.json> <list-skus.json> <stack>...
    python -m cli.quota --shape-change <list-usage.json> <list-skus.json> <stack>

A pool needs its maximum node count plus its upgrade surge, against its size's family and once against the
regional `cores`; prints what is short and exits 1. The bootstrap checks only stacks without a cluster (a
deployed one is already in `currentValue`); `--shape-change` checks a deployed stack before a pool-shape
change, which creates a second generation of pools. Why: docs/bootstrap.md#vcpu-quota."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from components.kubernetes_cluster import MAX_SURGE, user_pool_names
from stack.config import StackConfig

REGIONAL_TOTAL = "cores"  # list-usage's name.value of the region's total vCPU quota


@dataclass(frozen=True)
class Pool:
    vm_size: str
    nodes: int  # the most nodes it runs: the count, or the autoscaler's maximum


def surge_nodes(nodes: int, max_surge: str = MAX_SURGE) -> int:
    """Nodes an upgrade adds: a percentage of the pool rounded up, or an absolute count."""
    if max_surge.endswith("%"):
        return math.ceil(nodes * int(max_surge[:-1]) / 100)
    return int(max_surge)


def pools(config: StackConfig) -> list[Pool]:
    users = config.user_node_max_count if config.user_node_autoscale else config.user_node_count
    user_pools = [Pool(config.user_node_vm_size, users) for _ in user_pool_names(config.availability_zones)]
    return [Pool(config.system_node_vm_size, config.system_node_count), *user_pools]


def shape_change_pools(config: StackConfig) -> list[Pool]:
    """The second generation of user pools a shape change creates beside the first: one per user pool, at its
    maximum, of the stack file's size (the new one, when run with the edited stack file)."""
    users = config.user_node_max_count if config.user_node_autoscale else config.user_node_count
    return [Pool(config.user_node_vm_size, users) for _ in user_pool_names(config.availability_zones)]


def sku_table(skus: Iterable[Mapping[str, Any]]) -> dict[str, tuple[str, int]]:
    """size name -> (quota family, vCPUs) from list-skus' `family` and capability `vCPUs`."""
    table = {}
    for sku in skus:
        capabilities = {c.get("name"): c.get("value") for c in sku.get("capabilities") or []}
        if sku.get("family") and capabilities.get("vCPUs"):
            table[sku["name"]] = (sku["family"], int(capabilities["vCPUs"]))
    return table


def vcpus_needed(
    all_pools: Sequence[Pool], skus: Iterable[Mapping[str, Any]], *, surge: bool = True
) -> tuple[Counter[str], list[str]]:
    """(vCPUs per quota family and for the region, sizes not offered): each pool at its nodes, plus an
    upgrade's surge when `surge`."""
    table = sku_table(skus)
    need: Counter[str] = Counter()
    problems = []
    for pool in all_pools:
        if pool.vm_size not in table:
            problems.append(
                f"{pool.vm_size} is not offered in this region to this subscription (az vm list-skus)"
            )
            continue
        family, vcpus = table[pool.vm_size]
        needed = vcpus * (pool.nodes + (surge_nodes(pool.nodes) if surge else 0))
        need[family] += needed
        need[REGIONAL_TOTAL] += needed
    return need, problems


def shortfalls(
    all_pools: Sequence[Pool],
    usage: Iterable[Mapping[str, Any]],
    skus: Iterable[Mapping[str, Any]],
    *,
    surge: bool = True,
) -> list[str]:
    need, problems = vcpus_needed(all_pools, skus, surge=surge)
    quota = {u["name"]["value"]: (int(u["currentValue"]), int(u["limit"])) for u in usage}
    for name, vcpus in need.items():
        used, limit = quota.get(name, (0, 0))
        if used + vcpus > limit:
            problems.append(
                f"the pools need {vcpus} vCPUs of {name} ({used} of {limit} used): request "
                f"{used + vcpus} (Portal > Quotas > Compute, or az quota update)"
            )
    return problems


def shape_change_note(stack: str, config: StackConfig, skus: Iterable[Mapping[str, Any]]) -> str:
    """What a later shape change of `stack`'s user pools needs beyond what is checked now (today's size)."""
    generation = shape_change_pools(config)
    need, _ = vcpus_needed(generation, skus, surge=False)
    families = ", ".join(f"{vcpus} of {name}" for name, vcpus in need.items() if name != REGIONAL_TOTAL)
    return (
        f"{stack}: a later shape change of the user pools (VM size, zones, ...) runs a second generation "
        f"beside the first until the end of that deploy: {len(generation)} pool(s) x {generation[0].nodes} "
        f"node(s) of {config.user_node_vm_size}, {need[REGIONAL_TOTAL]} more vCPUs ({families}) than this "
        "check counts. Check before that deploy: python -m cli.quota --shape-change <usage> <skus> "
        f"{stack} (docs/runbook.md, 'Changing the user pools')"
    )
