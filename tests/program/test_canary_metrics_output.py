"""The canary gate finds its metrics: every stack exports the Azure Monitor workspace's Prometheus query
endpoint under the one name scripts/ci/deploy.py --canary reads.

The value is read-only in Azure: `properties.metrics.prometheusQueryEndpoint` of Microsoft.Monitor/accounts
(verify/arm_types/microsoft.monitor/2023-04-03/accounts.json, flags 2 = ReadOnly), which the offline engine
answers in the shape Azure returns it (offline/mocks.py `_metrics_and_probe`; the format of the example
endpoints in MicrosoftDocs/azure-monitor-docs articles/azure-monitor/metrics/prometheus-api-promql.md at
07fdcc58a1d4d49b5138d8bfbb9dc9999981775e: `https://<workspace>-<id>.<region>.prometheus.monitor.azure.com`).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import Any

import pytest

from offline.engine import OfflinePlan
from stack.files import REPO_ROOT, read_stack
from stack.naming import ResourceNames
from verify.arm_types import load

sys.path.insert(0, str(REPO_ROOT / "scripts" / "ci"))
import deploy

READ_ONLY = 2  # bicep-types flag
ENDPOINT = re.compile(r"^https://[a-z0-9-]+\.[a-z0-9]+\.prometheus\.monitor\.azure\.com$")


def _deploy_reads() -> str:
    """The stack output `deploy.py --canary` queries, as its argument parser defaults it."""
    return str(deploy.build_parser().get_default("prometheus_output"))


def endpoint_problems(outputs: Mapping[str, Any], name: str, workspace: str) -> list[str]:
    """What keeps the canary gate of a stack with these outputs from its metrics ([] = it can query)."""
    if name not in outputs:
        return [f"no stack output {name!r}: the canary aborts with no metrics to gate on"]
    value = outputs[name].value
    if not isinstance(value, str) or not ENDPOINT.match(value):
        return [f"{name} = {value!r} is not a workspace query endpoint"]
    if not value.startswith(f"https://{workspace}-"):
        return [f"{name} = {value!r} is not the endpoint of the stack's workspace {workspace}"]
    return []


def test_the_endpoint_is_read_only_in_the_workspace_type_data() -> None:
    types = load("Microsoft.Monitor/accounts", "2023-04-03")
    by_name = {t.get("name"): t for t in types if t.get("$type") == "ObjectType"}
    metrics = by_name["AzureMonitorWorkspaceResourceProperties"]["properties"]["metrics"]
    endpoint = by_name["AzureMonitorWorkspaceMetrics"]["properties"]["prometheusQueryEndpoint"]
    assert metrics["flags"] & READ_ONLY and endpoint["flags"] & READ_ONLY


def test_every_stack_exports_the_endpoint_deploy_reads(plan: OfflinePlan) -> None:
    names = ResourceNames.for_stack(plan.stack, read_stack(plan.stack).config["muse:nameSuffix"])
    assert endpoint_problems(plan.outputs, _deploy_reads(), names.monitor_workspace) == []
    # The value is the workspace's own read-only answer (its region's endpoint), not a name made up.
    [workspace] = plan.of_type("azure-native:monitor:AzureMonitorWorkspace")
    location = workspace.get("location")
    assert f".{location}.prometheus.monitor.azure.com" in plan.outputs[_deploy_reads()].value


@pytest.mark.parametrize("defect", ["output missing", "deploy reads another name", "another workspace"])
def test_negative_control_the_check_fails_on_each_defect(plan: OfflinePlan, defect: str) -> None:
    names = ResourceNames.for_stack(plan.stack, read_stack(plan.stack).config["muse:nameSuffix"])
    outputs = dict(plan.outputs)
    name = _deploy_reads()
    workspace = names.monitor_workspace
    if defect == "output missing":
        outputs.pop(name)
    elif defect == "deploy reads another name":
        name = "prometheusEndpoint"
    else:
        workspace = "amw-other"
    assert endpoint_problems(outputs, name, workspace)
