"""Who reaches which port of Muse, what Muse reaches, and what the pod tells the service about itself.

The NetworkPolicy is read as Kubernetes evaluates it (networking.k8s.io/v1: policies are allow lists; a
peer with both selectors matches pods that satisfy both; a rule without ``ports`` admits every port; with
``Egress`` in policyTypes, traffic no egress rule admits is dropped), and each check runs against the former
policy (ingress on 8080 from the Gateway only, egress unrestricted) or a widened one as its negative control.
"""

from __future__ import annotations

import copy
import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest

from components.muse_workload.manifests import (
    CONTAINER,
    METRICS_PORT,
    METRICS_PORT_NAME,
    PORT,
    RESOURCES,
    SERVICE_PORT,
)
from muse.config import MIB, load_settings
from muse.contract import secret_environment
from muse.limits import derive_limits
from offline.engine import OfflinePlan

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
HTTP_ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
METADATA_ENDPOINT = ipaddress.ip_address("169.254.169.254")

# The collectors' pod labels as the add-on's chart writes them (file, commit and scrape roles in the JSON):
# the policy is checked against upstream's labels, not against a copy of the manifest's constant.
UPSTREAM = json.loads((Path(__file__).parent / "upstream" / "ama-metrics-collectors.json").read_text())
_AGENT_NAMESPACE = {"kubernetes.io/metadata.name": UPSTREAM["namespace"]}
# The replica runs every scrape job that uses service discovery (PodMonitor, pod annotations): Muse's path.
AMA_METRICS = (_AGENT_NAMESPACE, dict(UPSTREAM["collectors"]["replica"]["pod_labels"]))
# The per-node DaemonSet scrapes node-level targets and static configs only: not admitted (least privilege).
AMA_METRICS_NODE = (_AGENT_NAMESPACE, dict(UPSTREAM["collectors"]["daemonset"]["pod_labels"]))
COREDNS = ({"kubernetes.io/metadata.name": "kube-system"}, {"k8s-app": "kube-dns"})


def _matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    if selector is None:
        return True
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def admits(rules: list[dict[str, Any]], key: str, peer: Any, port: int, protocol: str = "TCP") -> bool:
    """Whether any rule admits ``peer`` (namespace labels, pod labels) or an IP address on ``port``."""
    for rule in rules:
        ports = rule.get("ports")
        if ports is not None and not any(
            p.get("port") == port and p.get("protocol", "TCP") == protocol for p in ports
        ):
            continue
        peers = rule.get(key)
        if not peers:  # absent or empty: every source / destination
            return True
        for entry in peers:
            if "ipBlock" in entry:
                if isinstance(peer, ipaddress.IPv4Address):
                    block = entry["ipBlock"]
                    inside = peer in ipaddress.ip_network(block["cidr"])
                    excepted = any(peer in ipaddress.ip_network(c) for c in block.get("except", []))
                    if inside and not excepted:
                        return True
                continue
            if isinstance(peer, ipaddress.IPv4Address):
                continue  # selectors match pods, never an outside address
            namespace_labels, pod_labels = peer
            if _matches(entry.get("namespaceSelector"), namespace_labels) and _matches(
                entry.get("podSelector"), pod_labels
            ):
                return True
    return False


def _policy(plan: OfflinePlan) -> dict[str, Any]:
    return dict(plan.one(NETWORK_POLICY, "muse-networkpolicy").get("spec"))


def _gateway_proxies(plan: OfflinePlan) -> tuple[dict[str, str], dict[str, str]]:
    # The rule's peer with a namespace selector: the Gateway's namespace (the other peer is the release's
    # end-to-end check pods in Muse's own namespace, components/muse_workload/evaluate_check.py).
    [policy_peer] = [p for p in _policy(plan)["ingress"][0]["from"] if "namespaceSelector" in p]
    namespace = policy_peer["namespaceSelector"]["matchLabels"]
    return namespace, {"gateway.networking.k8s.io/gateway-name": "muse"}


def _former(spec: dict[str, Any]) -> dict[str, Any]:
    former = copy.deepcopy(spec)
    former["policyTypes"] = ["Ingress"]
    former["ingress"] = former["ingress"][:1]
    del former["egress"]
    return former


def _egress(spec: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The egress rules in force: None when the policy does not restrict egress at all."""
    return spec["egress"] if "Egress" in spec.get("policyTypes", []) else None


def test_each_port_admits_exactly_who_needs_it(plan: OfflinePlan) -> None:
    ingress = _policy(plan)["ingress"]
    proxies, other = _gateway_proxies(plan), ({"kubernetes.io/metadata.name": "muse"}, {"app": "x"})
    assert admits(ingress, "from", proxies, PORT)
    assert admits(ingress, "from", AMA_METRICS, METRICS_PORT)
    assert not admits(ingress, "from", proxies, METRICS_PORT)  # the Gateway never reaches the metrics
    assert not admits(ingress, "from", AMA_METRICS, PORT)
    assert not admits(ingress, "from", other, PORT) and not admits(ingress, "from", other, METRICS_PORT)
    # the end-to-end check pods reach the API port of the pods in their own namespace, never the metrics
    check = ({"kubernetes.io/metadata.name": "muse-dev"}, {"muse.check": "evaluate"})
    assert admits(ingress, "from", check, PORT) and not admits(ingress, "from", check, METRICS_PORT)
    # the ama-metrics label outside kube-system is anybody's pod
    assert not admits(
        ingress, "from", ({"kubernetes.io/metadata.name": "muse"}, AMA_METRICS[1]), METRICS_PORT
    )


def test_the_node_collector_which_runs_no_service_discovery_jobs_is_not_admitted(plan: OfflinePlan) -> None:
    ingress = _policy(plan)["ingress"]
    assert not admits(ingress, "from", AMA_METRICS_NODE, METRICS_PORT)
    assert not admits(ingress, "from", AMA_METRICS_NODE, PORT)


def test_upstream_labels_negative_control_a_policy_with_renamed_labels_admits_no_collector(
    plan: OfflinePlan,
) -> None:
    # The labels upstream might rename to (the DaemonSet's key on the replica): the check follows upstream's
    # record, so a manifest constant that drifted from it fails here instead of passing against itself.
    drifted = copy.deepcopy(_policy(plan))
    drifted["ingress"][1]["from"][0]["podSelector"]["matchLabels"] = {"dsName": "ama-metrics"}
    assert not admits(drifted["ingress"], "from", AMA_METRICS, METRICS_PORT)


def test_metrics_negative_control_the_former_policy_admits_no_scraper(plan: OfflinePlan) -> None:
    assert not admits(_former(_policy(plan))["ingress"], "from", AMA_METRICS, METRICS_PORT)


def test_egress_is_dns_only_and_never_the_metadata_endpoint(plan: OfflinePlan) -> None:
    egress = _egress(_policy(plan))
    assert egress is not None
    assert admits(egress, "to", COREDNS, 53, "UDP") and admits(egress, "to", COREDNS, 53, "TCP")
    for port in (80, 443):
        assert not admits(egress, "to", METADATA_ENDPOINT, port)
        assert not admits(egress, "to", ipaddress.ip_address("20.1.2.3"), port)


@pytest.mark.parametrize(
    "widen",
    [
        lambda spec: _former(spec),  # egress not restricted at all
        lambda spec: {**spec, "egress": [*spec["egress"], {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]},
        lambda spec: {**spec, "egress": [*spec["egress"], {"ports": [{"protocol": "TCP", "port": 80}]}]},
    ],
)
def test_egress_negative_controls_reach_the_metadata_endpoint(plan: OfflinePlan, widen: Any) -> None:
    egress = _egress(widen(_policy(plan)))
    assert egress is None or admits(egress, "to", METADATA_ENDPOINT, 80)


def test_the_metrics_port_is_neither_on_the_service_nor_routed_by_the_gateway(plan: OfflinePlan) -> None:
    [container] = plan.one(DEPLOYMENT).get("spec.template.spec.containers")
    assert {"name": METRICS_PORT_NAME, "containerPort": METRICS_PORT, "protocol": "TCP"} in container["ports"]
    service = plan.one(SERVICE)
    assert [p["targetPort"] for p in service.get("spec.ports")] == ["http"]
    for route in plan.of_type(HTTP_ROUTE):
        for rule in route.get("spec.rules"):
            assert all(ref["port"] == SERVICE_PORT for ref in rule.get("backendRefs", []))
    # the service reads the same port
    [name] = [c["configMapRef"]["name"] for c in container["envFrom"]]
    [config] = [c for c in plan.of_type("kubernetes:core/v1:ConfigMap") if c.get("metadata.name") == name]
    assert config.get("data")["MUSE_METRICS_PORT"] == str(METRICS_PORT)


def test_the_pod_passes_its_memory_limit_and_image_version_to_the_service(plan: OfflinePlan) -> None:
    [container] = plan.one(DEPLOYMENT).get("spec.template.spec.containers")
    env = {e["name"]: e for e in container["env"]}
    assert env["MUSE_MEMORY_LIMIT_BYTES"]["valueFrom"] == {
        "resourceFieldRef": {"containerName": CONTAINER, "resource": "limits.memory", "divisor": "1"}
    }
    image_ref = container["image"]
    assert image_ref.endswith(env["MUSE_VERSION"]["value"])


def test_the_memory_limit_gives_the_service_its_documented_caps() -> None:
    # What the Downward API passes for RESOURCES' limit (divisor 1: bytes), through the service's derivation.
    limit = int(RESOURCES["limits"]["memory"].removesuffix("Mi")) * MIB
    settings = load_settings({**secret_environment("t" * 32), "MUSE_MEMORY_LIMIT_BYTES": str(limit)})
    limits = derive_limits(settings)
    assert (limits.max_body_bytes, limits.max_violations) == (MIB, 10922)


# ----------------------------------------------------------------------------------------------------------
# Plain HTTP carries no bearer token: what a Gateway listener routes, read as Gateway API matches requests
# (gateway.networking.k8s.io/v1 HTTPRoute: a rule matches when any of its matches does; a match needs its path
# (Exact: equal; PathPrefix: equal or followed by "/", element-wise) and, when set, its method; a request no
# route matches gets 404 from the Gateway and never reaches a backend).

API_REQUESTS = [("GET", "/api/v1/policies"), ("POST", "/api/v1/evaluate"), ("GET", "/api/v1/governance")]


def _path_matches(match: dict[str, Any], path: str) -> bool:
    kind, value = match["path"]["type"], match["path"]["value"]
    if kind == "Exact":
        return path == value
    prefix = value.rstrip("/")
    return path in (value, prefix) or prefix == "" or path.startswith(prefix + "/")


def routed(routes: list[dict[str, Any]], listener: str, method: str, path: str) -> bool:
    """Whether a request on ``listener`` reaches a backend (a redirect route reaches none)."""
    for route in routes:
        if not any(p.get("sectionName") == listener for p in route["parentRefs"]):
            continue
        for rule in route["rules"]:
            if not rule.get("backendRefs"):
                continue
            for match in rule.get("matches", [{"path": {"type": "PathPrefix", "value": "/"}}]):
                if _path_matches(match, path) and match.get("method", method) == method:
                    return True
    return False


def _routes(plan: OfflinePlan) -> list[dict[str, Any]]:
    return [dict(route.get("spec")) for route in plan.of_type(HTTP_ROUTE)]


def test_plain_http_routes_no_api_request_and_still_the_probes(plan: OfflinePlan) -> None:
    routes = _routes(plan)
    for method, path in API_REQUESTS:
        assert not routed(routes, "http", method, path)
    listeners = {p["sectionName"] for route in routes for p in route["parentRefs"]}
    if "https" in listeners:  # a host: the API on HTTPS, plain HTTP only redirects
        assert all(routed(routes, "https", method, path) for method, path in API_REQUESTS)
        assert not routed(routes, "http", "GET", "/healthz")
    else:  # no host (dev): the smoke check's /healthz still answers on plain HTTP
        assert routed(routes, "http", "GET", "/healthz") and routed(routes, "http", "GET", "/readyz")
        assert not routed(routes, "http", "GET", "/healthz/../api/v1/policies")
        assert not routed(routes, "http", "POST", "/healthz")


def test_plain_http_negative_control_the_former_catch_all_route_serves_the_api(plan: OfflinePlan) -> None:
    former = [
        {
            **route,
            "rules": [
                {**rule, "matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}
                for rule in route["rules"]
            ],
        }
        for route in _routes(plan)
    ]
    listeners = {p["sectionName"] for route in former for p in route["parentRefs"]}
    listener = "https" if "https" in listeners else "http"
    # Without a host that is the token in clear: dev's former route served the API on plain HTTP.
    assert all(routed(former, listener, method, path) for method, path in API_REQUESTS)
