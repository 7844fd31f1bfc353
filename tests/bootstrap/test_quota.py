"""stack/quota.py: the vCPUs the stacks' pools need, per VM family and for the region, as Azure counts.

Stand-ins are Azure's own JSON shapes: `az vm list-skus` (ResourceSku with `family` and the `vCPUs`
capability) and `az vm list-usage` (Usage with `currentValue`, `limit`, `name.value`)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from components.kubernetes_cluster import MAX_SURGE
from stack.config import load_stack_config
from stack.files import read_stack
from stack.quota import REGIONAL_TOTAL, Pool, pools, shape_change_pools, shortfalls, surge_nodes


def _sku(name: str, family: str, vcpus: int) -> dict[str, object]:
    return {"name": name, "family": family, "capabilities": [{"name": "vCPUs", "value": str(vcpus)}]}


SKUS = [
    _sku("Standard_D2ds_v5", "standardDDSv5Family", 2),
    _sku("Standard_D4ds_v5", "standardDDSv5Family", 4),
    _sku("Standard_E4ds_v5", "standardEDSv5Family", 4),
    # A constrained-vCPU size: the name says 8, the capability says 2 (what the quota counts).
    _sku("Standard_E8-2ds_v5", "standardEDSv5Family", 2),
]


def _usage(**limits: tuple[int, int]) -> list[dict[str, object]]:
    return [{"currentValue": u, "limit": lim, "name": {"value": k}} for k, (u, lim) in limits.items()]


def test_surge_is_a_third_of_the_pool_rounded_up() -> None:
    assert MAX_SURGE == "33%"
    assert [surge_nodes(n) for n in (1, 2, 3, 4, 10)] == [1, 1, 1, 2, 4]


def test_prod_pools_are_one_system_pool_and_one_user_pool_per_zone_at_their_maximum() -> None:
    config = load_stack_config("prod", read_stack("prod").config)
    found = pools(config)
    assert found[0] == Pool(config.system_node_vm_size, config.system_node_count)
    assert found[1:] == [Pool(config.user_node_vm_size, config.user_node_max_count)] * 3


def test_sizes_of_one_family_add_up_and_the_region_total_counts_each_once() -> None:
    two_pools = [Pool("Standard_D2ds_v5", 1), Pool("Standard_D4ds_v5", 3)]  # (1+1)*2 + (3+1)*4 = 20
    assert shortfalls(two_pools, _usage(standardDDSv5Family=(0, 20), cores=(0, 20)), SKUS) == []
    # Negative control: one vCPU less of the family, or of the region, refuses, naming what to request.
    short_family = shortfalls(two_pools, _usage(standardDDSv5Family=(1, 20), cores=(0, 20)), SKUS)
    assert short_family == [
        "the pools need 20 vCPUs of standardDDSv5Family (1 of 20 used): request 21 "
        "(Portal > Quotas > Compute, or az quota update)"
    ]
    mixed = [Pool("Standard_D4ds_v5", 1), Pool("Standard_E4ds_v5", 1)]  # 8 + 8, 16 for the region
    assert (
        shortfalls(mixed, _usage(standardDDSv5Family=(0, 8), standardEDSv5Family=(0, 8), cores=(0, 16)), SKUS)
        == []
    )
    refused = shortfalls(
        mixed, _usage(standardDDSv5Family=(0, 8), standardEDSv5Family=(0, 8), cores=(0, 15)), SKUS
    )
    assert len(refused) == 1 and f"16 vCPUs of {REGIONAL_TOTAL}" in refused[0]


def test_vcpus_come_from_the_sku_capability_not_the_size_name() -> None:
    pool = [Pool("Standard_E8-2ds_v5", 1)]  # 2 nodes of 2 vCPUs, not 2 of 8
    assert shortfalls(pool, _usage(standardEDSv5Family=(0, 4), cores=(0, 4)), SKUS) == []


def test_a_size_the_region_does_not_offer_is_refused_by_name() -> None:
    found = shortfalls([Pool("Standard_D2ds_v9", 1)], _usage(cores=(0, 100)), SKUS)
    assert found == ["Standard_D2ds_v9 is not offered in this region to this subscription (az vm list-skus)"]


@pytest.mark.parametrize("shape", ["flat", "row"])
def test_negative_control_a_flat_tsv_list_left_the_shell_read_without_a_limit(shape: str) -> None:
    # What `az ... --query "[0].[currentValue, limit]" --output tsv` prints: one value per line for a flat
    # list, one tab-separated row for a list of one list (microsoft/knack knack/output.py format_tsv and
    # _TsvOutput._dump_row, commit 162e5993095f147e434bb09c2de195ad31251d9a). The former `read -r used limit`
    # got an empty limit from the flat shape, so it refused every real run; the check now reads JSON.
    printed = "4\n20\n" if shape == "flat" else "4\t20\n"
    limit = subprocess.run(
        ["bash", "-c", 'read -r used limit; echo "${limit:-EMPTY}"'],
        input=printed, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert limit == ("EMPTY" if shape == "flat" else "20")


# --- a shape change of the user pools: a whole second generation, not a surge node -----------------------

D8 = _sku("Standard_D8ds_v5", "standardDDSv5Family", 8)
# Deployed prod (3 system and 3 user nodes of Standard_D4ds_v5 running), with the quota the bootstrap asked
# for: its pools at their maximum plus one surge node each, (3+1)*4 + 3*(2+1)*4 = 52.
DEPLOYED_PROD = {"standardDDSv5Family": (24, 52), REGIONAL_TOTAL: (24, 52)}


def test_a_shape_change_needs_the_whole_second_generation_not_a_surge_node() -> None:
    """prod's userNodeVmSize edited to Standard_D8ds_v5: the new pools (3 x 2 nodes x 8 vCPUs) run beside the
    old ones until the end of the update (components/kubernetes_cluster.py pool_shape), 48 vCPUs on top of
    what runs, which the bootstrap's quota does not hold."""
    config = load_stack_config(
        "prod", read_stack("prod", overrides={"muse:userNodeVmSize": "Standard_D8ds_v5"}).config
    )
    generation = shape_change_pools(config)
    assert generation == [Pool("Standard_D8ds_v5", 2)] * 3
    found = shortfalls(generation, _usage(**DEPLOYED_PROD), [*SKUS, D8], surge=False)
    assert found == [
        f"the pools need 48 vCPUs of {name} (24 of 52 used): request 72 (Portal > Quotas > Compute, or az "
        "quota update)"
        for name in ("standardDDSv5Family", REGIONAL_TOTAL)
    ]
    # Negative control: counted as one surge node per pool (what the preflight reserves for an upgrade), the
    # same change looks as if it fitted.
    one_node_each = [Pool("Standard_D8ds_v5", surge_nodes(p.nodes)) for p in generation]
    assert shortfalls(one_node_each, _usage(**DEPLOYED_PROD), [*SKUS, D8], surge=False) == []


def test_the_shape_change_check_and_the_bootstrap_note_run_from_the_stack_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.quota import main

    skus = tmp_path / "skus.json"
    skus.write_text(json.dumps(SKUS))
    usage = tmp_path / "usage.json"
    # prod as committed (Standard_D4ds_v5): the second generation is 3 x 2 x 4 = 24 vCPUs over the 24 running.
    usage.write_text(json.dumps(_usage(standardDDSv5Family=(24, 48), cores=(24, 48))))
    assert main(["--shape-change", str(usage), str(skus), "prod"]) == 0
    usage.write_text(json.dumps(_usage(standardDDSv5Family=(24, 47), cores=(24, 100))))
    assert main(["--shape-change", str(usage), str(skus), "prod"]) == 1
    assert (
        "shape change: the new user pools need 24 vCPUs of standardDDSv5Family (24 of 47 used): request 48"
        in (capsys.readouterr().err)
    )
    # The bootstrap's preflight of a new prod passes with 52 and names the figure of a later shape change.
    usage.write_text(json.dumps(_usage(standardDDSv5Family=(0, 52), cores=(0, 52))))
    assert main([str(usage), str(skus), "prod"]) == 0
    note = capsys.readouterr().out
    assert "prod: a later shape change of the user pools" in note
    assert "3 pool(s) x 2 node(s) of Standard_D4ds_v5, 24 more vCPUs (24 of standardDDSv5Family)" in note
