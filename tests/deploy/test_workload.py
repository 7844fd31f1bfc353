"""The Muse workload as the whole program plans it for dev and prod, under the offline mocks.

Expected values come from the stack config, the naming rules, the stack outputs (identity, tenant, vault) and
the service contract (muse/config.py defaults, docs/service.md), never from the manifest module itself.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from components.muse_workload.manifests import SECRETS, SYNCED_SECRET_KEY
from muse.config import Settings
from offline.engine import OfflinePlan, RecordingMonitor, run_offline, run_stack
from offline.mocks import OfflineMocks, deterministic_uuid
from offline.plan import render_text
from rbac.roles import Role
from stack.config import load_stack_config
from stack.environments import ENVIRONMENTS
from stack.files import read_stack
from stack.naming import ResourceNames

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
NAMESPACE = "kubernetes:core/v1:Namespace"
SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
SPC = "kubernetes:secrets-store.csi.x-k8s.io/v1:SecretProviderClass"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
APP_CONFIG = "muse-configmap"  # the service's env; muse-gatewayoptions is the Gateway's
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
HTTP_ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
CREDENTIAL = "azure-native:managedidentity:FederatedIdentityCredential"
SERVICE = "kubernetes:core/v1:Service"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
DIGEST = "sha256:" + "3f" * 32
SERVICE_DEFAULTS = Settings.model_fields


def _config(stack: str) -> Any:
    return load_stack_config(stack, read_stack(stack).config)


def _names(stack: str) -> ResourceNames:
    config = _config(stack)
    return ResourceNames.for_stack(config.environment, config.name_suffix)


def _pod(plan: OfflinePlan) -> dict[str, Any]:
    return plan.one(DEPLOYMENT).get("spec.template.spec")


def _container(plan: OfflinePlan) -> dict[str, Any]:
    [container] = _pod(plan)["containers"]
    return container


def _default(name: str) -> Any:
    return SERVICE_DEFAULTS[name].default


def _named(plan: OfflinePlan, type_token: str, name: str) -> Any:
    [found] = [r for r in plan.of_type(type_token) if r.get("metadata.name") == name]
    return found


def _objects(plan: OfflinePlan) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of every Kubernetes object the program deploys."""
    return {
        (r.get("kind"), r.get("metadata.namespace") or "", r.get("metadata.name"))
        for r in plan.resources
        if r.type.startswith("kubernetes:")
    }


def test_every_kubernetes_object_goes_through_the_clusters_provider(plan: OfflinePlan) -> None:
    names = _names(plan.stack)
    app, gateway = names.namespace, names.gateway_namespace
    expected = {
        ("Namespace", "", app),
        ("Namespace", "", gateway),
        ("ServiceAccount", app, "muse"),
        ("SecretProviderClass", app, "muse-secrets"),
        ("ConfigMap", app, plan.one(CONFIG_MAP, APP_CONFIG).get("metadata.name")),
        ("Deployment", app, "muse"),
        ("Service", app, "muse"),
        ("Gateway", gateway, "muse"),
        ("ConfigMap", gateway, "muse-gateway-options"),
        ("HTTPRoute", app, "muse"),
        ("PodDisruptionBudget", app, "muse"),
        ("HorizontalPodAutoscaler", app, "muse"),
        ("NetworkPolicy", app, "muse-ingress"),
        ("NetworkPolicy", app, "muse-release-checks"),  # the end-to-end check and canary load pods
        # The metrics add-on's settings: the one object outside Muse's namespaces (it lives with the add-on).
        ("ConfigMap", "kube-system", "ama-metrics-settings-configmap"),
    }
    if _config(plan.stack).ingress_host:  # prod: the certificate's reader and the HTTP -> HTTPS redirect
        expected |= {
            ("ServiceAccount", gateway, "muse-gateway-tls"),
            ("HTTPRoute", gateway, "muse-https-redirect"),
        }
    assert _objects(plan) == expected
    kubernetes = [r for r in plan.resources if r.type.startswith("kubernetes:")]
    [provider] = plan.of_type("pulumi:providers:kubernetes")
    workload = plan.one("muse:kubernetes:MuseWorkload")
    for resource in kubernetes:
        assert resource.provider is not None and resource.provider.startswith(provider.urn), resource.urn
        assert resource.parent == workload.urn
    # The provider is the cluster's (its kubeconfig is the stable kubelogin one, pulumi-kubernetes #1148).
    assert plan.by_urn(provider.parent).type == "muse:azure:KubernetesCluster"


def test_namespace_enforces_the_restricted_pod_security_standard(plan: OfflinePlan) -> None:
    names = _names(plan.stack)
    namespace = _named(plan, NAMESPACE, names.namespace)
    assert namespace.get("metadata.name") == f"muse-{plan.stack}"
    labels = namespace.get("metadata.labels")
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    # Only the Gateway and the objects that must sit beside it live in the Gateway's namespace.
    namespaced = {(kind, ns) for kind, ns, _ in _objects(plan) if kind != "Namespace" and ns != "kube-system"}
    beside_the_gateway = {(kind, ns) for kind, ns in namespaced if ns == names.gateway_namespace}
    assert {ns for _, ns in namespaced} == {names.namespace, names.gateway_namespace}
    assert {kind for kind, _ in beside_the_gateway} <= {"Gateway", "ServiceAccount", "HTTPRoute", "ConfigMap"}


def test_the_gateway_namespace_enforces_baseline_and_warns_restricted(plan: OfflinePlan) -> None:
    # Istio's gateway pods set the sysctl net.ipv4.ip_unprivileged_port_start (Pod Security baseline allows
    # it) and no seccomp profile (restricted requires one): istio/istio manifests/charts/istio-control/
    # istio-discovery/files/kube-gateway.yaml. Nothing but the Gateway's proxy pods runs there.
    labels = _named(plan, NAMESPACE, _names(plan.stack).gateway_namespace).get("metadata.labels")
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert (
        labels["pod-security.kubernetes.io/audit"]
        == labels["pod-security.kubernetes.io/warn"]
        == "restricted"
    )


def test_service_account_is_the_federated_one_with_the_identitys_client_id(plan: OfflinePlan) -> None:
    names = _names(plan.stack)
    account = _named(plan, SERVICE_ACCOUNT, names.service_account)
    [credential] = [c for c in plan.of_type(CREDENTIAL) if c.get("resourceName") == names.workload_identity]
    subject = f"system:serviceaccount:{account.get('metadata.namespace')}:{account.get('metadata.name')}"
    assert credential.get("subject") == subject
    annotations = account.get("metadata.annotations")
    assert annotations["azure.workload.identity/client-id"] == plan.outputs["museWorkloadClientId"].value
    pod = _pod(plan)
    assert pod["serviceAccountName"] == account.get("metadata.name")
    # The webhook injects the federated token because of this label; the Kubernetes API token stays out.
    template_labels = plan.one(DEPLOYMENT).get("spec.template.metadata.labels")
    assert template_labels["azure.workload.identity/use"] == "true"
    assert pod["automountServiceAccountToken"] is False
    assert account.get("automountServiceAccountToken") is False


def test_secret_provider_class_reads_the_vault_with_the_workload_identity(plan: OfflinePlan) -> None:
    spc = plan.one(SPC)
    assert spc.get("apiVersion") == "secrets-store.csi.x-k8s.io/v1"
    parameters = spc.get("spec.parameters")
    assert spc.get("spec.provider") == "azure"
    assert parameters["clientID"] == plan.outputs["museWorkloadClientId"].value
    assert parameters["keyvaultName"] == plan.outputs["keyVaultName"].value == _names(plan.stack).key_vault
    assert parameters["tenantId"] == plan.outputs["tenantId"].value
    assert parameters["usePodIdentity"] == "false"
    # The objects it mounts are the secrets __main__.py writes to the vault, and that the identity may read.
    written = [s.get("secretName") for s in plan.of_type("azure-native:keyvault:Secret")]
    assert written == [secret.name for secret in SECRETS]
    for name in written:
        assert f"objectName: {name}\n" in parameters["objects"]
    synced = spc.get("spec.secretObjects")
    assert [s["data"] for s in synced] == [
        [{"objectName": name, "key": SYNCED_SECRET_KEY}] for name in written
    ]


def test_the_token_reaches_the_env_through_the_synced_secret_and_the_mounted_volume(
    plan: OfflinePlan,
) -> None:
    spc = plan.one(SPC)
    synced = {s["secretName"]: s["data"][0]["key"] for s in spc.get("spec.secretObjects")}
    container, pod = _container(plan), _pod(plan)
    for secret in SECRETS:
        [env] = [e for e in container["env"] if e["name"] == secret.env]
        assert "value" not in env
        assert env["valueFrom"]["secretKeyRef"] == {"name": secret.name, "key": synced[secret.name]}
    # The CSI driver syncs the Secret only while a pod mounts the volume of this SecretProviderClass.
    [csi] = [v for v in pod["volumes"] if "csi" in v]
    assert csi["csi"]["driver"] == "secrets-store.csi.k8s.io"
    assert csi["csi"]["volumeAttributes"]["secretProviderClass"] == spc.get("metadata.name")
    assert any(m["name"] == csi["name"] and m["readOnly"] for m in container["volumeMounts"])


def test_config_map_holds_the_rest_of_the_env_and_matches_the_service(plan: OfflinePlan) -> None:
    config_map = plan.one(CONFIG_MAP, APP_CONFIG)
    data = config_map.get("data")
    assert data["MUSE_ENV"] == plan.stack
    assert int(data["PORT"]) == _default("port")
    assert int(data["MUSE_DRAIN_SECONDS"]) == _default("drain_seconds")
    assert int(data["MUSE_SHUTDOWN_TIMEOUT_SECONDS"]) == _default("shutdown_timeout_seconds")
    assert not {secret.env for secret in SECRETS} & set(data)
    container = _container(plan)
    assert container["envFrom"] == [{"configMapRef": {"name": config_map.get("metadata.name")}}]


def test_different_config_data_is_a_different_config_map_so_the_pods_roll(
    plans: dict[str, OfflinePlan],
) -> None:
    dev, prod = plans["dev"].one(CONFIG_MAP, APP_CONFIG), plans["prod"].one(CONFIG_MAP, APP_CONFIG)
    assert dev.get("data") != prod.get("data")
    assert dev.get("metadata.name") != prod.get("metadata.name")
    assert dev.get("immutable") is prod.get("immutable") is True
    for plan in plans.values():
        pod_refs = _container(plan)["envFrom"]
        assert pod_refs == [{"configMapRef": {"name": plan.one(CONFIG_MAP, APP_CONFIG).get("metadata.name")}}]


def test_deployment_image_comes_from_the_registry_and_image_tag(plan: OfflinePlan) -> None:
    config = _config(plan.stack)
    login_server = plan.outputs["registryLoginServer"].value
    assert _container(plan)["image"] == f"{login_server}/muse:{config.image_tag}"
    assert plan.outputs["museImage"].value == _container(plan)["image"]


@pytest.mark.slow  # a program run per stack
@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_a_digest_image_tag_deploys_by_digest(stack: str) -> None:
    plan = run_stack(stack, overrides={"muse:imageTag": DIGEST})
    login_server = plan.outputs["registryLoginServer"].value
    assert _container(plan)["image"] == f"{login_server}/muse@{DIGEST}"


def test_rollout_never_drops_below_the_wanted_replicas(plan: OfflinePlan) -> None:
    deployment = plan.one(DEPLOYMENT)
    assert deployment.get("spec.strategy") == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    assert deployment.get("spec.replicas") == _config(plan.stack).replicas
    assert deployment.get("spec.revisionHistoryLimit") >= 2  # something to `kubectl rollout undo` to
    assert deployment.get("spec.progressDeadlineSeconds") <= _config(plan.stack).rollout_timeout_minutes * 60


def test_pulumi_up_awaits_the_rollout_within_the_configured_timeout(plan: OfflinePlan) -> None:
    deployment = plan.one(DEPLOYMENT)
    minutes = _config(plan.stack).rollout_timeout_minutes
    # The create (first deploy) also waits out the new grants' propagation (test_first_deploy_propagation.py).
    assert deployment.custom_timeouts == {"create": f"{minutes + 15}m", "update": f"{minutes}m"}
    annotations = deployment.get("metadata.annotations") or {}
    assert "pulumi.com/skipAwait" not in annotations
    # The autoscaler owns the live count; config replicas is its floor.
    assert deployment.ignore_changes == ("spec.replicas",)


@pytest.mark.slow  # a program run
def test_rollout_timeout_follows_the_config() -> None:
    plan = run_stack("dev", overrides={"muse:rolloutTimeoutMinutes": 7})
    assert plan.one(DEPLOYMENT).custom_timeouts == {"create": "22m", "update": "7m"}


def test_the_deployment_waits_for_the_azure_grants_its_pods_need(plan: OfflinePlan) -> None:
    depends = set(plan.one(DEPLOYMENT).depends_on)
    names = _names(plan.stack)
    [credential] = [c for c in plan.of_type(CREDENTIAL) if c.get("resourceName") == names.workload_identity]
    assert credential.urn in depends
    roles = {
        plan.by_urn(urn).get("roleDefinitionId").rsplit("/", 1)[-1]
        for urn in depends
        if "RoleAssignment" in urn
    }
    assert roles == {Role.ACR_PULL.definition_id, Role.KEY_VAULT_SECRETS_USER.definition_id}
    secret_reads = [
        plan.by_urn(urn).get("scope") for urn in depends if "RoleAssignment" in urn and "secrets-user" in urn
    ]
    assert sorted(scope.rsplit("/", 2)[-2:] for scope in secret_reads) == sorted(
        ["secrets", s.name] for s in SECRETS
    )


def test_probes_use_the_services_endpoints(plan: OfflinePlan) -> None:
    container = _container(plan)
    port = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port["http"] == _default("port")
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http", "scheme": "HTTP"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    # Startup allows the slow start before liveness may kill; readiness reacts to the drain at once.
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30
    assert container["readinessProbe"]["periodSeconds"] <= _default("drain_seconds")


def test_shutdown_fits_in_the_grace_period(plan: OfflinePlan) -> None:
    container, pod = _container(plan), _pod(plan)
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pre_stop >= 1
    grace = pod["terminationGracePeriodSeconds"]
    # docs/service.md: grace >= preStop + MUSE_SHUTDOWN_TIMEOUT_SECONDS + 5, else SIGKILL cuts the drain.
    assert grace >= pre_stop + _default("shutdown_timeout_seconds") + 5
    assert grace <= 60  # and not so long that a node drain crawls


def test_security_context_is_restricted(plan: OfflinePlan) -> None:
    container, pod = _container(plan), _pod(plan)
    ctx = container["securityContext"]
    assert ctx["runAsNonRoot"] is True and pod["securityContext"]["runAsNonRoot"] is True
    assert ctx["runAsUser"] == pod["securityContext"]["runAsUser"] == 10001  # the image's USER
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "privileged" not in ctx
    [tmp] = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    [volume] = [v for v in pod["volumes"] if v["name"] == tmp["name"]]
    assert "emptyDir" in volume


def test_resources_have_requests_and_limits_with_headroom(plan: OfflinePlan) -> None:
    resources = _container(plan)["resources"]

    def mebibytes(quantity: str) -> int:
        return int(quantity.removesuffix("Mi"))

    def millicores(quantity: str) -> int:
        return int(quantity.removesuffix("m"))

    # Measured (make bench, docs/benchmarks.md): RSS ~42 MiB at rest, ~62 MiB at the peak of 1 MiB evaluates,
    # at most one core (one Python worker).
    assert mebibytes(resources["requests"]["memory"]) >= 2 * 62
    assert mebibytes(resources["limits"]["memory"]) >= mebibytes(resources["requests"]["memory"])
    assert millicores(resources["requests"]["cpu"]) <= millicores(resources["limits"]["cpu"]) <= 1000


def _mebibytes(quantity: str) -> int:
    return int(quantity.removesuffix("Mi"))


def _ephemeral_need_mib(kubelet_config: dict[str, int], tmp_size_limit: str) -> int:
    """What the Muse container can use: every kept log file full, uncompressed (the kubelet compresses older
    rotated files, not counted here), the current one over by 10 s of logging at 1 MiB/s (the kubelet checks
    rotation every 10 s, containerLogMonitorInterval), and /tmp full (its emptyDir sizeLimit)."""
    logs = kubelet_config["containerLogMaxSizeMB"] * kubelet_config["containerLogMaxFiles"]
    return logs + 10 + _mebibytes(tmp_size_limit)


def test_the_ephemeral_storage_limit_covers_the_pools_log_rotation(plan: OfflinePlan) -> None:
    # Container logs count towards the ephemeral-storage limit; past it the kubelet evicts the pod.
    pod, container = _pod(plan), _container(plan)
    [tmp] = [v for v in pod["volumes"] if v["name"] == "tmp"]
    limit = _mebibytes(container["resources"]["limits"]["ephemeral-storage"])
    pools = plan.of_type("azure-native:containerservice:AgentPool")
    rotations = {json.dumps(p.get("kubeletConfig"), sort_keys=True) for p in pools}
    assert len(rotations) == 1 and None not in [p.get("kubeletConfig") for p in pools]  # set, and the same
    need = _ephemeral_need_mib(pools[0].get("kubeletConfig"), tmp["emptyDir"]["sizeLimit"])
    assert limit >= need, (limit, need)
    # Negative control: AKS's own default rotation (50 MB x 5, azure-aks-docs
    # custom-node-configuration-reference.md) would not fit this limit, which is why the pools set theirs.
    assert limit < _ephemeral_need_mib({"containerLogMaxSizeMB": 50, "containerLogMaxFiles": 5}, "64Mi")


def test_pods_spread_across_zones_and_nodes_on_the_user_pool(plan: OfflinePlan) -> None:
    pod = _pod(plan)
    config = _config(plan.stack)
    pools = plan.of_type("azure-native:containerservice:AgentPool")
    assert pools and all(pod["nodeSelector"] == pool.get("nodeLabels") for pool in pools)
    spread = {c["topologyKey"]: c for c in pod["topologySpreadConstraints"]}
    assert set(spread) == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    zoned = len(config.availability_zones) > 1
    zone = spread["topology.kubernetes.io/zone"]
    assert zone["whenUnsatisfiable"] == ("DoNotSchedule" if zoned else "ScheduleAnyway")
    # A zone whose nodes are down (tainted unreachable:NoSchedule) leaves the skew instead of holding the
    # replacement pods Pending; with one pool per zone the autoscaler can add a node in the zone a pod needs.
    assert zone["nodeTaintsPolicy"] == "Honor"
    if zoned:
        assert sorted(tuple(p.get("availabilityZones")) for p in pools) == [
            (z,) for z in config.availability_zones
        ]
    selector = plan.one(DEPLOYMENT).get("spec.selector.matchLabels")
    for constraint in spread.values():
        assert constraint["labelSelector"] == {"matchLabels": selector}
        assert constraint["maxSkew"] == 1


def test_autoscaler_and_disruption_budget(plan: OfflinePlan) -> None:
    config = _config(plan.stack)
    hpa, pdb = plan.one(HPA), plan.one(PDB)
    assert hpa.get("spec.scaleTargetRef") == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "muse"}
    assert (hpa.get("spec.minReplicas"), hpa.get("spec.maxReplicas")) == (
        config.replicas,
        config.max_replicas,
    )
    if plan.stack == "prod":
        assert hpa.get("spec.minReplicas") >= 2
    selector = plan.one(DEPLOYMENT).get("spec.selector.matchLabels")
    assert pdb.get("spec.selector.matchLabels") == selector
    # One pod at a time, and a single-replica dev can still be drained.
    assert pdb.get("spec.maxUnavailable") == 1 and pdb.get("spec.minAvailable") is None


def test_the_gateway_routes_to_the_service_and_only_its_pods_reach_muse(plan: OfflinePlan) -> None:
    names = _names(plan.stack)
    service, policy = plan.one(SERVICE), plan.one(NETWORK_POLICY, "muse-networkpolicy")
    gateway, route = plan.one(GATEWAY), _named(plan, HTTP_ROUTE, "muse")
    assert service.get("spec.type") == "ClusterIP"
    assert service.get("spec.selector") == plan.one(DEPLOYMENT).get("spec.selector.matchLabels")
    # The application routing add-on's Gateway API implementation (azure-aks-docs app-routing-gateway-api.md).
    assert gateway.get("spec.gatewayClassName") == "approuting-istio"
    assert gateway.get("metadata.namespace") == names.gateway_namespace
    [rule] = route.get("spec.rules")
    assert rule["backendRefs"] == [
        {
            "group": "",
            "kind": "Service",
            "name": service.get("metadata.name"),
            "port": service.get("spec.ports.0.port"),
        }
    ]
    [parent] = route.get("spec.parentRefs")
    assert (parent["name"], parent["namespace"]) == (gateway.get("metadata.name"), names.gateway_namespace)
    # The listener the route attaches to admits routes from Muse's namespace (a cross-namespace attachment).
    [listener] = [x for x in gateway.get("spec.listeners") if x["name"] == parent["sectionName"]]
    assert listener["allowedRoutes"]["namespaces"]["selector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": names.namespace}
    }
    # Cilium admits traffic to Muse only from the Gateway's proxy pods: Istio labels them with the Gateway's
    # name (kube-gateway.yaml), in the Gateway's namespace; and from the release's end-to-end check pods in
    # Muse's namespace (components/muse_workload/evaluate_check.py).
    [source, check] = policy.get("spec.ingress.0.from")
    assert check == {"podSelector": {"matchLabels": {"muse.check": "evaluate"}}}
    assert source == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": names.gateway_namespace}},
        "podSelector": {
            "matchLabels": {"gateway.networking.k8s.io/gateway-name": gateway.get("metadata.name")}
        },
    }
    assert policy.get("spec.ingress.0.ports") == [{"protocol": "TCP", "port": _default("port")}]


def test_pulumi_waits_until_the_gateway_is_programmed(plan: OfflinePlan) -> None:
    # pulumi-kubernetes awaits a custom resource only with pulumi.com/waitFor; Programmed is when the
    # controller has published the address museUrl is made of.
    assert plan.one(GATEWAY).get("metadata.annotations") == {"pulumi.com/waitFor": "condition=Programmed"}
    assert plan.outputs["museGatewayAddress"].value.startswith("203.0.113.")


def test_without_a_host_museurl_is_plain_http_on_the_gateway_address(plans: dict[str, OfflinePlan]) -> None:
    plan = plans["dev"]
    assert _config("dev").ingress_host == ""
    [listener] = plan.one(GATEWAY).get("spec.listeners")
    assert (listener["protocol"], listener["port"], "hostname" in listener, "tls" in listener) == (
        "HTTP",
        80,
        False,
        False,
    )
    assert "hostnames" not in _named(plan, HTTP_ROUTE, "muse").get("spec")
    assert plan.outputs["museUrl"].value == f"http://{plan.outputs['museGatewayAddress'].value}"
    assert plan.outputs["museDeployment"].value == plan.one(DEPLOYMENT).get("metadata.name")
    assert plan.outputs["museNamespace"].value == _names("dev").namespace
    assert "gatewayTlsClientId" not in plan.outputs


def test_prod_serves_https_with_the_key_vault_certificate_and_redirects_http(
    plans: dict[str, OfflinePlan],
) -> None:
    plan, config, names = plans["prod"], _config("prod"), _names("prod")
    listeners = {x["name"]: x for x in plan.one(GATEWAY).get("spec.listeners")}
    https, http = listeners["https"], listeners["http"]
    assert (https["protocol"], https["port"], https["hostname"]) == ("HTTPS", 443, config.ingress_host)
    vault_uri = plan.outputs["keyVaultUri"].value
    # The application routing operator's listener TLS options (azure-aks-docs
    # app-routing-gateway-api-dns-tls.md): the unversioned certificate URI follows renewals; the service
    # account is the one federated below.
    certificate_uri = f"{vault_uri}certificates/{config.ingress_tls_certificate}"
    assert https["tls"] == {
        "mode": "Terminate",
        "options": {
            "kubernetes.azure.com/tls-cert-keyvault-uri": certificate_uri,
            "kubernetes.azure.com/tls-cert-service-account": "muse-gateway-tls",
        },
    }
    assert (http["protocol"], http["port"], http["hostname"]) == ("HTTP", 80, config.ingress_host)
    assert http["allowedRoutes"] == {"namespaces": {"from": "Same"}}  # only the redirect route below
    route = _named(plan, HTTP_ROUTE, "muse")
    assert route.get("spec.hostnames") == [config.ingress_host]
    assert [p["sectionName"] for p in route.get("spec.parentRefs")] == ["https"]
    redirect = _named(plan, HTTP_ROUTE, "muse-https-redirect")
    assert redirect.get("metadata.namespace") == names.gateway_namespace
    assert [p["sectionName"] for p in redirect.get("spec.parentRefs")] == ["http"]
    assert redirect.get("spec.rules") == [
        {"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]}
    ]
    assert plan.outputs["museUrl"].value == f"https://{config.ingress_host}"


def test_prod_certificate_is_read_by_its_own_identity_with_a_grant_on_that_certificate_only(
    plans: dict[str, OfflinePlan],
) -> None:
    plan, config, names = plans["prod"], _config("prod"), _names("prod")
    account = _named(plan, SERVICE_ACCOUNT, "muse-gateway-tls")
    assert account.get("metadata.namespace") == names.gateway_namespace
    client_id = plan.outputs["gatewayTlsClientId"].value
    assert account.get("metadata.annotations") == {"azure.workload.identity/client-id": client_id}
    assert account.get("metadata.labels")["azure.workload.identity/use"] == "true"
    [identity] = [
        r
        for r in plan.of_type("azure-native:managedidentity:UserAssignedIdentity")
        if r.get("resourceName") == names.gateway_tls_identity
    ]
    [credential] = [
        c for c in plan.of_type(CREDENTIAL) if c.get("resourceName") == names.gateway_tls_identity
    ]
    assert credential.get("subject") == f"system:serviceaccount:{names.gateway_namespace}:muse-gateway-tls"
    assert credential.get("issuer") == plan.outputs["oidcIssuerUrl"].value
    [grant] = [
        r
        for r in plan.of_type("azure-native:authorization:RoleAssignment")
        if r.get("scope").endswith(f"/secrets/{config.ingress_tls_certificate}")
    ]
    vault = plan.one("azure-native:keyvault:Vault")
    assert grant.get("scope").endswith(
        f"/vaults/{vault.get('vaultName')}/secrets/{config.ingress_tls_certificate}"
    )
    assert grant.get("roleDefinitionId").endswith(
        "/4633458b-17de-408a-b874-0445c86b69e6"
    )  # Key Vault Secrets User
    assert grant.get("principalId") == deterministic_uuid(plan.stack, "gateway-tls", "principal")
    assert grant.get("principalType") == "ServicePrincipal"
    # The Gateway waits for the grant and the federation, so the operator's first sync can read it.
    assert {grant.urn, credential.urn} <= set(plan.one(GATEWAY).depends_on)
    assert (
        identity.parent == credential.parent
    )  # one WorkloadIdentity component: the identity and its credential


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"muse:imageTag": "sha256:abc"}, "imageTag"),
        ({"muse:imageTag": "sha256:" + "A" * 64}, "imageTag"),
        ({"muse:replicas": 4}, "maxReplicas"),  # prod maxReplicas 6 -> dev's 2
        ({"muse:maxReplicas": 1, "muse:replicas": 2}, "maxReplicas"),
        ({"muse:rolloutTimeoutMinutes": 2}, "rolloutTimeoutMinutes"),
        ({"muse:ingressTlsCertificate": "bad name"}, "ingressTlsCertificate"),
        ({"muse:ingressHost": "muse-dev.example.org"}, "ingressTlsCertificate"),
    ],
)
def test_bad_workload_config_fails_before_any_resource(overrides: dict[str, Any], key: str) -> None:
    monitor = RecordingMonitor(OfflineMocks("dev"))
    with pytest.raises(pulumi.RunError, match=f"muse:{key}:"):
        run_stack("dev", overrides=overrides, monitor=monitor)
    assert monitor.recorded == []


def test_prod_refuses_a_single_replica() -> None:
    monitor = RecordingMonitor(OfflineMocks("prod"))
    with pytest.raises(pulumi.RunError, match="muse:replicas: the production tier runs at least 2"):
        run_stack("prod", overrides={"muse:replicas": 1}, monitor=monitor)
    assert monitor.recorded == []


def test_the_offline_plan_shows_what_a_reviewer_checks(plan: OfflinePlan) -> None:
    text = render_text(plan)
    section = text[text.index('muse:kubernetes:MuseWorkload  "muse"') :]
    minutes = _config(plan.stack).rollout_timeout_minutes
    assert f"awaited, timeout create {minutes + 15}m, update {minutes}m" in section
    assert "readiness /readyz every 5s x1" in section
    assert "runAsNonRoot=true runAsUser=10001 readOnlyRootFilesystem=true" in section
    assert "{maxSurge: 1, maxUnavailable: 0}" in section
    assert "pod-security.kubernetes.io/enforce" in section and "restricted" in section
    assert plan.outputs["museWorkloadClientId"].value in section


def test_only_objects_holding_an_azure_value_depend_on_azure_resources(plan: OfflinePlan) -> None:
    def azure_types(type_token: str, name: str | None = None) -> set[str]:
        deps = plan.one(type_token, name).depends_on
        return {plan.by_urn(urn).type for urn in deps if plan.by_urn(urn).type.startswith("azure-native:")}

    for plain in (SERVICE, PDB, HPA):
        assert azure_types(plain) == set(), plain
    for policy in plan.of_type(NETWORK_POLICY):  # Muse's and the release pods'
        assert azure_types(NETWORK_POLICY, policy.name) == set(), policy.name
    for config_map in plan.of_type(CONFIG_MAP):  # the service's env and the Gateway's options
        assert azure_types(CONFIG_MAP, config_map.name) == set(), config_map.name
    for resource in plan.of_type(NAMESPACE) + plan.of_type(HTTP_ROUTE):
        deps = {plan.by_urn(urn).type for urn in resource.depends_on}
        assert not {t for t in deps if t.startswith("azure-native:")}, resource.urn
    identity = "azure-native:managedidentity:UserAssignedIdentity"
    assert azure_types(SPC) == {identity, "azure-native:keyvault:Vault"}
    if plan.stack == "prod":  # the certificate URI names the vault; the sync needs the grant and federation
        assert azure_types(GATEWAY) == {
            "azure-native:keyvault:Vault",
            "azure-native:authorization:RoleAssignment",
            "azure-native:managedidentity:FederatedIdentityCredential",
        }
    else:
        assert azure_types(GATEWAY) == set()
    identity_of = {
        r.get("metadata.name"): {
            plan.by_urn(urn).type for urn in r.depends_on if plan.by_urn(urn).type.startswith("azure-native:")
        }
        for r in plan.of_type(SERVICE_ACCOUNT)
    }
    assert all(deps == {identity} for deps in identity_of.values()), identity_of
    assert "azure-native:containerregistry:Registry" in azure_types(DEPLOYMENT)


class _HostnameGatewayMocks(OfflineMocks):
    """A Gateway controller that publishes a DNS name instead of an IP (GatewayStatusAddress type Hostname, as
    some load balancers do)."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        resource_id, outputs = super().new_resource(args)
        if args.typ == GATEWAY:
            outputs["status"]["addresses"] = [{"type": "Hostname", "value": "lb.example.net"}]
        return resource_id, outputs


def _isolated(mocks: OfflineMocks, ingress_host: str = "") -> OfflinePlan:
    import pulumi_kubernetes as k8s

    from components.muse_workload import MuseWorkload, MuseWorkloadArgs
    from components.muse_workload.manifests import WorkloadSpec

    def program() -> None:
        workload = MuseWorkload(
            "muse",
            MuseWorkloadArgs(
                provider=k8s.Provider("k8s", kubeconfig="{}"),
                spec=WorkloadSpec(
                    environment="dev",
                    namespace="muse-dev",
                    gateway_namespace="muse-dev-gateway",
                    service_account="muse",
                    image_tag="v1",
                    replicas=2,
                    max_replicas=4,
                    ingress_host=ingress_host,
                    tls_certificate="cert" if ingress_host else "",
                    zone_spread=False,
                ),
                registry_login_server="acrunit.azurecr.io",
                workload_client_id="11111111-2222-4333-8444-555555555555",
                tenant_id="66666666-7777-4888-9999-000000000000",
                key_vault_name="kv-unit",
                gateway_tls_client_id="77777777-8888-4999-8aaa-bbbbbbbbbbbb" if ingress_host else None,
                rollout_timeout_minutes=6,
            ),
        )
        pulumi.export("url", workload.url)
        pulumi.export("image", workload.image)

    return run_offline(program, project="muse", stack="unit", monitor=RecordingMonitor(mocks))


def test_in_isolation_the_url_follows_what_the_controller_publishes() -> None:
    assert _isolated(_HostnameGatewayMocks("unit")).outputs["url"].value == "http://lb.example.net"
    assert _isolated(OfflineMocks("unit")).outputs["url"].value.startswith("http://203.0.113.")
    hosted = _isolated(OfflineMocks("unit"), ingress_host="muse.example.org")
    assert hosted.outputs["url"].value == "https://muse.example.org"
    [https] = [x for x in hosted.one(GATEWAY).get("spec.listeners") if x["protocol"] == "HTTPS"]
    assert https["tls"]["options"]["kubernetes.azure.com/tls-cert-keyvault-uri"] == (
        "https://kv-unit.vault.azure.net/certificates/cert"
    )
    tls_account = _named(hosted, SERVICE_ACCOUNT, "muse-gateway-tls")
    assert tls_account.get("metadata.annotations")["azure.workload.identity/client-id"] == (
        "77777777-8888-4999-8aaa-bbbbbbbbbbbb"
    )


def test_in_isolation_a_host_without_the_certificate_reader_is_refused() -> None:
    from components.muse_workload import MuseWorkload, MuseWorkloadArgs
    from components.muse_workload.manifests import WorkloadSpec

    def program() -> None:
        import pulumi_kubernetes as k8s

        MuseWorkload(
            "muse",
            MuseWorkloadArgs(
                provider=k8s.Provider("k8s", kubeconfig="{}"),
                spec=WorkloadSpec(
                    environment="dev",
                    namespace="muse-dev",
                    gateway_namespace="muse-dev-gateway",
                    service_account="muse",
                    image_tag="v1",
                    replicas=1,
                    max_replicas=1,
                    ingress_host="muse.example.org",
                    tls_certificate="cert",
                    zone_spread=False,
                ),
                registry_login_server="acrunit.azurecr.io",
                workload_client_id="11111111-2222-4333-8444-555555555555",
                tenant_id="66666666-7777-4888-9999-000000000000",
                key_vault_name="kv-unit",
            ),
        )

    with pytest.raises(Exception, match="needs gateway_tls_client_id"):
        run_offline(program, project="muse", stack="unit")


def test_in_isolation_every_placeholder_is_filled() -> None:
    from components.muse_workload.manifests import PLACEHOLDERS

    isolated = _isolated(OfflineMocks("unit"), ingress_host="muse.example.org")
    text = json.dumps([r.properties for r in isolated.resources if r.type.startswith("kubernetes:")])
    for placeholder in vars(PLACEHOLDERS).values():
        assert placeholder not in text
    assert isolated.outputs["image"].value == "acrunit.azurecr.io/muse:v1"
    assert isolated.one(DEPLOYMENT).custom_timeouts == {"create": "21m", "update": "6m"}


def test_the_gateway_is_created_after_its_options(plan: OfflinePlan) -> None:
    # The controller renders the proxies' Deployment and HPA from the options when the Gateway appears; a
    # Gateway created first would run the add-on's defaults (no zone spread) until the next reconcile.
    options = plan.one(CONFIG_MAP, "muse-gatewayoptions")
    assert options.urn in plan.one(GATEWAY).depends_on
    assert options.get("metadata.namespace") == _names(plan.stack).gateway_namespace
