"""The Kubernetes objects of the Muse workload, as plain manifests: one model for two deploy paths.

`MuseWorkload` (this package's `__init__.py`) deploys these dicts through the cluster's Kubernetes
provider, and `make export` writes the same dicts as `deploy/base` + `deploy/overlays/<env>`
(export/deploy_manifests.py) for `kubectl apply -k`. Nothing here touches Pulumi: every function takes a
`WorkloadSpec` of plain values and returns plain dicts, so tests, the exporter and the component all read the
same numbers (the service contract, measured resources, the user pools' labels and log rotation, the
application routing add-on's Gateway API).
Why: docs/architecture/workload.md#where-the-manifests-numbers-come-from."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from muse import contract
from muse.contract import (
    DEFAULT_METRICS_PORT,
    DEFAULT_PORT,
    ENV_DRAIN_SECONDS,
    ENV_ENVIRONMENT,
    ENV_HOST,
    ENV_LOG_LEVEL,
    ENV_MEMORY_LIMIT_BYTES,
    ENV_METRICS_PORT,
    ENV_PORT,
    ENV_SHUTDOWN_TIMEOUT_SECONDS,
    ENV_VERSION,
    HEALTH_PATH,
    METRICS_PATH,
    READINESS_PATH,
    ROOT_PATH,
)

APP = "muse"
CONTAINER = "muse"
DEPLOYMENT = "muse"
SERVICE = "muse"
# The canary (scripts/ci/canary.py): while a release is on trial, a second Deployment and Service run the
# candidate image next to the stable ones, and the HTTPRoute splits the traffic between the two Services by
# weight. The candidate's pods carry their own `app.kubernetes.io/name`: the stable Deployment's selector
# (immutable, selector_labels) would otherwise match them, and Kubernetes warns against Deployments with
# overlapping selectors ("Deployments", Label selector updates / "Do not overlap labels or selectors with
# other controllers"); the stable autoscaler and disruption budget would count them too. Both tracks share
# `app.kubernetes.io/part-of: muse`, which the NetworkPolicy selects.
CANDIDATE = "muse-candidate"
# The end-to-end check of a candidate (scripts/ci/check_job.py runs it as a Job): a pod with this label
# may reach the Muse pods, like the Gateway's proxies.
EVALUATE_CHECK_LABEL = {"muse.check": "evaluate"}
SECRET_PROVIDER_CLASS = "muse-secrets"  # noqa: S105 - an object name
SYNCED_SECRET_KEY = "token"  # noqa: S105 - a key name


@dataclass(frozen=True)
class WorkloadSecret:
    """One secret the workload reads. __main__.py generates it into Key Vault and lets the workload identity
    (and nobody else) read it; the CSI driver mounts it as the file `<name>` under SECRETS_MOUNT and syncs it
    to the Kubernetes Secret `<name>` (key SYNCED_SECRET_KEY, which exists only while a pod mounts the
    volume); the container reads it as `env`. The access model forbids every CI identity to read it, and
    the generated docs list it: all from SECRETS.

    name: the Key Vault secret, the mounted file and the synced Kubernetes Secret.
    env: the service's environment variable (muse/contract.py, read by muse/config.py).
    what: how the docs and the access model call it.
    length: letters and digits Pulumi generates.
    grant: Pulumi name prefix of its read grant (`<grant>-secrets-user`).
    """

    name: str
    env: str
    what: str
    length: int = 48
    grant: str = ""

    def __post_init__(self) -> None:
        if not self.grant:
            object.__setattr__(self, "grant", f"muse-workload-{self.name}")


# The API token keeps the grant name it had before secrets were a list: a new Pulumi name would replace
# the role assignment.
_HISTORIC_GRANTS = {contract.API_TOKEN.name: "muse-workload"}
# Every secret of the workload: the service's list (muse/contract.py SECRETS), add one there.
SECRETS: tuple[WorkloadSecret, ...] = tuple(
    WorkloadSecret(s.name, s.env, s.what, grant=_HISTORIC_GRANTS.get(s.name, "")) for s in contract.SECRETS
)
API_TOKEN = next(secret for secret in SECRETS if secret.name == contract.API_TOKEN.name)
IMAGE_REPOSITORY = "muse"
PORT = DEFAULT_PORT
# Prometheus metrics, on a port of their own (MUSE_METRICS_PORT, the service's contract): the Service and the
# Gateway route only PORT, the NetworkPolicy admits only the metrics agent here, and the Azure Monitor metrics
# add-on scrapes it through the pod annotations below.
METRICS_PORT = DEFAULT_METRICS_PORT
METRICS_PORT_NAME = "metrics"
# Azure Monitor managed Prometheus scrapes annotated pods only in the namespaces this ConfigMap's regex names
# (learn.microsoft.com/azure/azure-monitor/containers/prometheus-metrics-scrape-configuration, "Pod
# annotation-
# based scraping"; template: Azure/prometheus-collector otelcollector/configmaps/ama-metrics-settings-
# configmap.yaml at 02e468d12f7504f054aa30bf11232053185399b6). Sections left out keep the add-on's defaults.
METRICS_SETTINGS_CONFIGMAP = "ama-metrics-settings-configmap"
METRICS_SETTINGS_NAMESPACE = "kube-system"
SERVICE_PORT = 80
# Azure Monitor managed Prometheus: the replica pods that run custom and pod-annotation scrape jobs carry
# rsName=ama-metrics in kube-system (Azure/prometheus-collector@75bfeadb otelcollector/deploy/addon-chart/
# azure-monitor-metrics-addon/templates/ama-metrics-deployment.yaml, spec.template.metadata.labels). Only
# they: the replica runs every job that uses service discovery (PodMonitor, pod annotations), the per-node
# DaemonSet (dsName=ama-metrics-node) only node-level targets and static configs
# (learn.microsoft.com/azure/azure-monitor/containers/prometheus-metrics-scrape-scale). tests/deploy/
# upstream/ama-metrics-collectors.json records both label sets with their source.
METRICS_AGENT_NAMESPACE = "kube-system"
METRICS_AGENT_LABELS = {"rsName": "ama-metrics"}
# Cluster DNS: CoreDNS pods in kube-system keep the k8s-app=kube-dns label on AKS. The only egress Muse needs
# (it calls nothing; the CSI driver fetches the secret on the node): the node's metadata endpoint
# 169.254.169.254 and its identity tokens stay out of reach of a compromised pod.
DNS_NAMESPACE = "kube-system"
DNS_LABELS = {"k8s-app": "kube-dns"}

# Ingress: a Gateway of the application routing add-on's Gateway API implementation, in its own namespace
# (GATEWAY_NAMESPACE_SUFFIX), and HTTPRoutes. Istio's gateway controller runs the Gateway's proxy pods in the
# Gateway's namespace, labelled with the Gateway's name (istio/istio manifests/charts/istio-control/
# istio-discovery/files/kube-gateway.yaml), which is how the NetworkPolicy below recognises them.
GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1"
GATEWAY_CLASS = "approuting-istio"
GATEWAY = "muse"
GATEWAY_NAMESPACE_SUFFIX = "-gateway"
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
HTTP_ROUTE = "muse"
HTTPS_REDIRECT_ROUTE = "muse-https-redirect"
HTTP_LISTENER = "http"
HTTPS_LISTENER = "https"
# The Gateway's own proxy pods (a Deployment, HPA and PDB istio's controller renders for it): the add-on's
# defaults for every Gateway of the class (ConfigMap istio-gateway-class-defaults: HPA 2-5, PDB
# minAvailable 1) say nothing about zones. A per-Gateway ConfigMap, referenced by the Gateway's
# spec.infrastructure.parametersRef, overlays the rendered objects: its keys are `deployment`,
# `horizontalPodAutoscaler`, `podDisruptionBudget`, `service`, each a YAML document, and only allow-listed
# fields are accepted (among them spec.template.spec.topologySpreadConstraints and the HPA's
# spec.minReplicas, "Must not be below 2", spec.maxReplicas): MicrosoftDocs/azure-aks-docs@fb060abe
# articles/aks/istio-gateway-api.md, "ConfigMap customizations" to "Configure settings for a specific
# gateway"; app-routing-gateway-api.md applies the same allow list to approuting-istio. The proxy pods carry
# GATEWAY_NAME_LABEL=<Gateway name> (istio/istio@03404d0 manifests/charts/istio-control/istio-discovery/files/
# kube-gateway.yaml), which the spread selects on.
GATEWAY_OPTIONS = "muse-gateway-options"
GATEWAY_HPA_MIN_REPLICAS_FLOOR = 2  # the allow list: "Must not be below 2"
# The application routing operator's listener TLS options: it makes a SecretProviderClass for the Key Vault
# certificate (objectType secret: the certificate's secret holds key and chain), syncs it as a
# kubernetes.io/tls Secret through a placeholder pod that runs as this service account (workload identity:
# the account's client-id annotation), and points the listener's certificateRefs at it. An unversioned URI
# follows renewals (azure-aks-docs app-routing-gateway-api-dns-tls.md; Azure/aks-app-routing-operator
# pkg/controller/keyvault/spc/gateway.go and reconcile.go).
TLS_CERT_KEYVAULT_URI_OPTION = "kubernetes.azure.com/tls-cert-keyvault-uri"
TLS_CERT_SERVICE_ACCOUNT_OPTION = "kubernetes.azure.com/tls-cert-service-account"
GATEWAY_TLS_SERVICE_ACCOUNT = "muse-gateway-tls"
# pulumi-kubernetes waits for a custom resource only when told what to wait for: the Gateway is ready (and has
# its address) once the controller reports Programmed (Gateway API GatewayConditionType).
PULUMI_WAIT_FOR = "pulumi.com/waitFor"
GATEWAY_READY = "condition=Programmed"
# The nodes Muse runs on: stack/args.py puts this label on the cluster's user pool, the Deployment selects it.
USER_POOL_LABEL = {"workload": "muse"}
WORKLOAD_IDENTITY_CLIENT_ID = "azure.workload.identity/client-id"
WORKLOAD_IDENTITY_USE = "azure.workload.identity/use"

# The service's shutdown (docs/service.md): readiness goes 503 at SIGTERM, the listener closes after the
# drain, the process exits by MUSE_SHUTDOWN_TIMEOUT_SECONDS at the latest. preStop runs *before* SIGTERM and
# lets the endpoint removal reach the ingress; the grace period covers preStop + shutdown + a margin, else
# SIGKILL.
DRAIN_SECONDS = 5
SHUTDOWN_TIMEOUT_SECONDS = 20
PRESTOP_SLEEP_SECONDS = 5
TERMINATION_MARGIN_SECONDS = 5
TERMINATION_GRACE_SECONDS = PRESTOP_SLEEP_SECONDS + SHUTDOWN_TIMEOUT_SECONDS + TERMINATION_MARGIN_SECONDS
# Kubernetes marks a rollout that makes no progress for this long as failed (ProgressDeadlineExceeded):
# `kubectl rollout status` and the pulumi-kubernetes await both stop there. rolloutTimeoutMinutes >= 5.
PROGRESS_DEADLINE_SECONDS = 300
REVISION_HISTORY = 10  # ReplicaSets kept for `kubectl rollout undo`
HPA_CPU_UTILIZATION = 70

# Requests and limits from the measured figures (`make bench`, written up in docs/benchmarks.md; the runs of
# 2026-11-26 on 2 cores, one replica of the real service, process and container, RSS from /proc):
# - memory: RSS ~41-42 MiB right after /readyz and under the rolling-update load (/api/v1/policies, 16
#   connections); evaluating a 1900-resource, ~1 MiB inventory (the MUSE_MAX_BODY_BYTES limit) peaks at
#   ~62 MiB (VmHWM 61.8). Request 128 Mi = 2x that peak; limit 256 Mi = 4x, so an OOM kill means a leak,
#   not load.
# - CPU: ~55-64 ms of CPU per 1 MiB evaluate, ~5.6 ms per 200-resource one; one uvicorn worker is one Python
#   process and used 0.97-1.00 of a core when saturated (0.5-0.85 in runs starved by other load). Request
#   250m keeps probes and light traffic responsive on a shared node and is the base of the autoscaler's 70 %
#   target (a replica busy with large evaluates scales out early); limit 1000m = the one core a worker uses.
#
# Ephemeral storage: the kubelet counts a container's log files towards its ephemeral-storage limit
# (kubernetes.io/docs/concepts/configuration/manage-resources-containers/#local-ephemeral-storage), besides
# the /tmp emptyDir and the writable layer (none: read-only root). The user pools rotate logs at
# CONTAINER_LOG_MAX_SIZE_MB x CONTAINER_LOG_MAX_FILES (their kubelet config, set here rather than left to
# AKS's defaults of 50 MB x 5, which azure-aks-docs custom-node-configuration.md says change with OS
# versions). The kubelet rotates only every 10 s (containerLogMonitorInterval), so the current file can run
# over by what Muse writes in that time: LOG_ROTATION_OVERSHOOT_MIB covers 1 MiB/s, ~3,200 requests/s of
# ~325-byte access-log lines (284 bytes of JSON + the container runtime's line prefix), about twice what one
# replica served in the rollout benchmark. docs/benchmarks.md has the arithmetic; tests/deploy check
# limit >= logs + overshoot + /tmp.
CONTAINER_LOG_MAX_SIZE_MB = 20
CONTAINER_LOG_MAX_FILES = 5
LOG_ROTATION_OVERSHOOT_MIB = 10
TMP_SIZE_LIMIT_MIB = 64
TMP_SIZE_LIMIT = f"{TMP_SIZE_LIMIT_MIB}Mi"  # the only writable path (the image writes nothing but /tmp)
EPHEMERAL_STORAGE_LIMIT_MIB = 256
RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "250m", "memory": "128Mi", "ephemeral-storage": "64Mi"},
    "limits": {"cpu": "1000m", "memory": "256Mi", "ephemeral-storage": f"{EPHEMERAL_STORAGE_LIMIT_MIB}Mi"},
}


def ephemeral_storage_worst_case_mib(max_size_mb: int, max_files: int) -> int:
    """The most ephemeral storage the Muse container can use: every kept log file full (rotated files count
    uncompressed, the worst case), the current one over by one monitor interval, and /tmp full."""
    return max_size_mb * max_files + LOG_ROTATION_OVERSHOOT_MIB + TMP_SIZE_LIMIT_MIB


SECRETS_MOUNT = "/mnt/secrets-store"

# Checks checkov reports on these manifests that do not apply, with the reason (written as checkov's inline
# skip annotations on the object, so the reason travels with the manifest).
CHECKOV_SKIPS: dict[str, dict[str, str]] = {
    "Deployment": {
        "CKV_K8S_35": (
            "Muse reads configuration from environment variables only (docs/service.md); the token "
            "reaches the env through a secretKeyRef to the Secret the CSI driver syncs from Key Vault"
        ),
        "CKV_K8S_43": (
            "the image is set per deploy: MUSE_IMAGE (deploy/) or muse:imageTag, which CI sets to the pushed "
            "sha256 digest"
        ),
        "CKV_K8S_14": "same as CKV_K8S_43: the tag or digest is set per deploy, CI deploys by digest",
    },
}


@dataclass(frozen=True)
class AzureRefs:
    """Values Azure computes, which the manifests need.

    registry_login_server: `<registry>.azurecr.io` (stack output registryLoginServer).
    workload_client_id: client id of the Muse workload identity (stack output museWorkloadClientId).
    tenant_id: Entra ID tenant of that identity and of the Key Vault (stack output tenantId).
    key_vault_name: the vault holding SECRETS and the ingress certificate (stack output
        keyVaultName).
    gateway_tls_client_id: client id of the identity that reads the ingress certificate for the Gateway
        (stack output gatewayTlsClientId); used only with an ingress host.
    """

    registry_login_server: str
    workload_client_id: str
    tenant_id: str
    key_vault_name: str
    gateway_tls_client_id: str


# What the generated deploy/ manifests carry until a person's params.env replaces them (each overlay's header
# and docs/runbook.md, "Manual deploy", give the commands that write params.env).
PLACEHOLDERS = AzureRefs(
    registry_login_server="REGISTRY_LOGIN_SERVER",
    workload_client_id="MUSE_WORKLOAD_CLIENT_ID",
    tenant_id="AZURE_TENANT_ID",
    key_vault_name="KEY_VAULT_NAME",
    gateway_tls_client_id="GATEWAY_TLS_CLIENT_ID",
)


@dataclass(frozen=True, kw_only=True)
class WorkloadSpec:
    """Every input of the Muse manifests, as plain values, field by field (what it is; default and why).

    environment: MUSE_ENV and the `app.kubernetes.io/instance` label (dev, prod). Required.
    namespace: the namespace every object but the Gateway lives in. Required.
    gateway_namespace: the namespace of the Gateway (and its proxy pods, which Pod Security `restricted`
        would refuse: see gateway_namespace()). Required.
    service_account: the service account federated with the workload identity. Required.
    image_tag: a tag (`latest`, a git sha) or a digest `sha256:<64 hex>`. Required: what to run is the
        deploy's decision (CI deploys by digest).
    replicas: the Deployment's replicas and the autoscaler's minimum. Required.
    max_replicas: the autoscaler's maximum. Required.
    ingress_host: DNS name the Gateway serves with TLS (HTTPS listener; its HTTP listener only redirects to
        HTTPS); empty = any host, plain HTTP on the Gateway's public IP (no certificate can match a bare
        IP). Required.
    tls_certificate: name of the Key Vault certificate served for ingress_host ("" without a host).
        Required.
    zone_spread: pods must spread across availability zones (the pools have zones); without zones the zone
        constraint is best-effort. Required.
    azure: registry, identity, tenant and vault. Default PLACEHOLDERS: the generated deploy/ files carry
        them until params.env fills them; `MuseWorkload` fills them from its Azure inputs.
    log_level: MUSE_LOG_LEVEL. Default INFO: the service's own default (docs/service.md).
    gateway_min_replicas: the Gateway proxies' HPA minimum (its maximum is twice that), e.g. one per zone;
        at least 2 (the add-on's allow list). Default None: the add-on's class defaults (2-5), cheap for dev.
    candidate_image_tag: the image on trial during a canary release (scripts/ci/canary.py), run by a second
        Deployment and Service next to the stable ones. Default "": no canary, one Deployment.
    candidate_weight: the candidate's percent of the HTTPRoute's traffic (0-100); the stable Service gets the
        rest. Default 0: a candidate that is up but gets no user traffic yet.
    canary_step_seconds: how long the release holds each canary step (stack config canaryStepSeconds); the
        canary's load Job (canary_load.py) runs that long plus the gate's hold for data. Default 60: the
        shortest step the stack config allows.
    """

    environment: str
    namespace: str
    gateway_namespace: str
    service_account: str
    image_tag: str
    replicas: int
    max_replicas: int
    ingress_host: str
    tls_certificate: str
    zone_spread: bool
    azure: AzureRefs = field(default=PLACEHOLDERS)
    log_level: str = "INFO"
    gateway_min_replicas: int | None = None
    candidate_image_tag: str = ""
    candidate_weight: int = 0
    canary_step_seconds: int = 60

    def __post_init__(self) -> None:
        if not 0 <= self.candidate_weight <= 100:
            raise ValueError(f"candidate_weight {self.candidate_weight}: a percentage, 0-100")
        if self.candidate_weight and not self.candidate_image_tag:
            raise ValueError(f"candidate_weight {self.candidate_weight} without a candidate_image_tag")


_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def image_reference(login_server: str, image_tag: str) -> str:
    """`<login server>/muse:<tag>`, or `<login server>/muse@sha256:<hex>` for a digest."""
    separator = "@" if _DIGEST.match(image_tag) else ":"
    return f"{login_server}/{IMAGE_REPOSITORY}{separator}{image_tag}"


def selector_labels(track: str = DEPLOYMENT) -> dict[str, str]:
    """A Deployment's selector (immutable once created: keep it minimal and stable); `track` is DEPLOYMENT
    (the stable one) or CANDIDATE."""
    return {"app.kubernetes.io/name": track}


def labels(spec: WorkloadSpec, track: str = DEPLOYMENT) -> dict[str, str]:
    return {
        **selector_labels(track),
        "app.kubernetes.io/instance": f"{APP}-{spec.environment}",
        "app.kubernetes.io/part-of": APP,
    }


def _part_of() -> dict[str, str]:
    """Every Muse pod, stable or candidate."""
    return {"app.kubernetes.io/part-of": APP}


def _metadata(spec: WorkloadSpec, name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": spec.namespace, "labels": labels(spec), **extra}


def namespace(spec: WorkloadSpec) -> dict[str, Any]:
    """The environment's namespace, Pod Security Admission `restricted` for enforce, audit and warn."""
    psa = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")}
    psa.update(
        {f"pod-security.kubernetes.io/{mode}-version": "latest" for mode in ("enforce", "audit", "warn")}
    )
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": spec.namespace, "labels": {**labels(spec), **psa}},
    }


def service_account(spec: WorkloadSpec) -> dict[str, Any]:
    """Federated with the workload identity: the annotation names the identity's client id."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(
            spec,
            spec.service_account,
            annotations={WORKLOAD_IDENTITY_CLIENT_ID: spec.azure.workload_client_id},
        ),
        # Muse never calls the Kubernetes API; pods opt out of the API token (see deployment()).
        "automountServiceAccountToken": False,
    }


# The custom resources the workload creates, as (API group, plural kind): what a reader of the stack must be
# allowed to read beyond the built-in kinds (bootstrap/__main__.py grants exactly these to the previews).
SECRET_PROVIDER_CLASS_GROUP = "secrets-store.csi.x-k8s.io"  # noqa: S105 - an API group, not a secret
CUSTOM_RESOURCES: tuple[tuple[str, str], ...] = (
    (SECRET_PROVIDER_CLASS_GROUP, "secretproviderclasses"),
    # The Gateway API kinds are CRDs too (AKS-managed, ingressProfile.gatewayAPI), not built-in groups.
    (GATEWAY_API_VERSION.split("/")[0], "gateways"),
    (GATEWAY_API_VERSION.split("/")[0], "httproutes"),
)


def secret_provider_class(spec: WorkloadSpec) -> dict[str, Any]:
    """Each of SECRETS, read from Key Vault with the workload identity, mounted as a file and synced to the
    Kubernetes Secret of the same name (key `token`) that the Deployment maps to its environment variable."""
    objects = "array:\n" + "".join(
        f"  - |\n    objectName: {secret.name}\n    objectType: secret\n" for secret in SECRETS
    )
    return {
        "apiVersion": f"{SECRET_PROVIDER_CLASS_GROUP}/v1",
        "kind": "SecretProviderClass",
        "metadata": _metadata(spec, SECRET_PROVIDER_CLASS),
        "spec": {
            "provider": "azure",
            "parameters": {
                "usePodIdentity": "false",
                "clientID": spec.azure.workload_client_id,
                "keyvaultName": spec.azure.key_vault_name,
                "tenantId": spec.azure.tenant_id,
                "cloudName": "AzurePublicCloud",
                "objects": objects,
            },
            "secretObjects": [
                {
                    "secretName": secret.name,
                    "type": "Opaque",
                    "labels": labels(spec),
                    "data": [{"objectName": secret.name, "key": SYNCED_SECRET_KEY}],
                }
                for secret in SECRETS
            ],
        },
    }


def config_data(spec: WorkloadSpec) -> dict[str, str]:
    """The service's non-secret environment (docs/service.md, "Configuration")."""
    return {
        ENV_PORT: str(PORT),
        ENV_HOST: "0.0.0.0",  # noqa: S104 - a pod is reached through the pod network, never loopback
        ENV_ENVIRONMENT: spec.environment,
        ENV_LOG_LEVEL: spec.log_level,
        ENV_DRAIN_SECONDS: str(DRAIN_SECONDS),
        ENV_SHUTDOWN_TIMEOUT_SECONDS: str(SHUTDOWN_TIMEOUT_SECONDS),
        ENV_METRICS_PORT: str(METRICS_PORT),
    }


def config_map_name(spec: WorkloadSpec) -> str:
    """`muse-config-<hash of the data>`: a config change is a new name, hence a new pod template, hence a
    rolling update (a ConfigMap edited in place would reach the pods only at their next restart)."""
    digest = hashlib.sha256(json.dumps(config_data(spec), sort_keys=True).encode()).hexdigest()[:10]
    return f"{APP}-config-{digest}"


def config_map(spec: WorkloadSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(spec, config_map_name(spec)),
        "data": config_data(spec),
        "immutable": True,
    }


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http", "scheme": "HTTP"},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": 2,
    }


def _skip_annotations(kind: str) -> dict[str, str]:
    skips = CHECKOV_SKIPS.get(kind, {})
    return {
        f"checkov.io/skip{i}": f"{check}={reason}"
        for i, (check, reason) in enumerate(sorted(skips.items()), 1)
    }


def _topology_spread(spec: WorkloadSpec, pod_labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    selector = {"matchLabels": pod_labels or selector_labels()}
    return [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            # With zones (prod) a replica never lands in an already fuller zone; without (dev) it is a hint.
            "whenUnsatisfiable": "DoNotSchedule" if spec.zone_spread else "ScheduleAnyway",
            # A zone whose nodes are unreachable leaves the count: the node lifecycle controller taints them
            # node.kubernetes.io/unreachable:NoSchedule, which the pods do not tolerate (the admission default
            # tolerates only the NoExecute one). With the default `Ignore`, a zone outage would keep its
            # empty domain in the skew and leave the replacement pods Pending (kubernetes.io/docs/concepts/
            # scheduling-eviction/topology-spread-constraints/, nodeTaintsPolicy; GA in Kubernetes 1.33).
            "nodeTaintsPolicy": "Honor",
            "labelSelector": selector,
            # Spread each ReplicaSet on its own, so a rollout's new pods spread too.
            "matchLabelKeys": ["pod-template-hash"],
        },
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": selector,
            "matchLabelKeys": ["pod-template-hash"],
        },
    ]


def scrape_annotations() -> dict[str, str]:
    """What the metrics add-on's pod-annotation job reads (the Prometheus convention it implements)."""
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(METRICS_PORT),
        "prometheus.io/path": METRICS_PATH,
    }


def metrics_settings(spec: WorkloadSpec) -> dict[str, Any]:
    """The add-on's settings: scrape annotated pods in Muse's namespace (and only there)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": METRICS_SETTINGS_CONFIGMAP,
            "namespace": METRICS_SETTINGS_NAMESPACE,
            "labels": labels(spec),
        },
        "data": {
            "schema-version": "v1",
            "config-version": "muse-1",
            "pod-annotation-based-scraping": f'podannotationnamespaceregex = "{spec.namespace}"',
        },
    }


def deployment(spec: WorkloadSpec, track: str = DEPLOYMENT) -> dict[str, Any]:
    """Zero-downtime rollout: one surge pod at a time, never one fewer ready pod than wanted. `track`
    CANDIDATE: the same pod for the candidate image (the canary), under its own name and selector."""
    image_tag = spec.candidate_image_tag if track == CANDIDATE else spec.image_tag
    restricted = {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = {
        "name": CONTAINER,
        "image": image_reference(spec.azure.registry_login_server, image_tag),
        # Always: a manual deploy by tag (e.g. latest) gets the pushed image; with a digest, a cheap check.
        "imagePullPolicy": "Always",
        "ports": [
            {"name": "http", "containerPort": PORT, "protocol": "TCP"},
            {"name": METRICS_PORT_NAME, "containerPort": METRICS_PORT, "protocol": "TCP"},
        ],
        "envFrom": [{"configMapRef": {"name": config_map_name(spec)}}],
        "env": [
            *(
                {
                    "name": secret.env,
                    "valueFrom": {"secretKeyRef": {"name": secret.name, "key": SYNCED_SECRET_KEY}},
                }
                for secret in SECRETS
            ),
            # The deployed image's tag or digest: the version label of the request metrics (not in the
            # ConfigMap, whose hashed name would then change with every image); the canary's gate tells the
            # candidate's series from the stable ones by it (scripts/ci/canary_gate.py).
            {"name": ENV_VERSION, "value": image_tag},
            # The limit below, in bytes, through the Downward API: the service derives its input and output
            # caps from it (docs/service.md, "Limits"), so a new limit here moves them with it.
            {
                "name": ENV_MEMORY_LIMIT_BYTES,
                "valueFrom": {
                    "resourceFieldRef": {
                        "containerName": CONTAINER,
                        "resource": "limits.memory",
                        "divisor": "1",
                    }
                },
            },
        ],
        "resources": RESOURCES,
        # Startup: up to 30 s to come up; liveness only afterwards. Readiness follows /readyz, which turns
        # 503 at SIGTERM so the pod leaves the endpoints while it drains.
        "startupProbe": _probe(HEALTH_PATH, period=1, failures=30),
        "readinessProbe": _probe(READINESS_PATH, period=5, failures=1),
        "livenessProbe": _probe(HEALTH_PATH, period=10, failures=3),
        "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_SECONDS}}},
        "securityContext": restricted,
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - the emptyDir the read-only image writes to
            {"name": "secrets-store", "mountPath": SECRETS_MOUNT, "readOnly": True},
        ],
    }
    pod_labels = {**labels(spec, track), WORKLOAD_IDENTITY_USE: "true"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            **_metadata(spec, track, annotations=_skip_annotations("Deployment")),
            "labels": labels(spec, track),
        },
        "spec": {
            "replicas": spec.replicas,
            "revisionHistoryLimit": REVISION_HISTORY,
            "progressDeadlineSeconds": PROGRESS_DEADLINE_SECONDS,
            "minReadySeconds": 5,
            "selector": {"matchLabels": selector_labels(track)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": pod_labels, "annotations": scrape_annotations()},
                "spec": {
                    "serviceAccountName": spec.service_account,
                    # The workload identity webhook injects its own projected token (audience
                    # api://AzureADTokenExchange) because of the `azure.workload.identity/use` label, and
                    # the CSI driver requests its token itself; the Kubernetes API token is not needed.
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                    "nodeSelector": USER_POOL_LABEL,
                    "topologySpreadConstraints": _topology_spread(spec, selector_labels(track)),
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "fsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [
                        {"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}},
                        {
                            # Mounting the volume is what makes the driver fetch the secrets and sync the
                            # Kubernetes Secrets the environment variables read.
                            "name": "secrets-store",
                            "csi": {
                                "driver": "secrets-store.csi.k8s.io",
                                "readOnly": True,
                                "volumeAttributes": {"secretProviderClass": SECRET_PROVIDER_CLASS},
                            },
                        },
                    ],
                },
            },
        },
    }


def service(spec: WorkloadSpec, track: str = SERVICE) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {**_metadata(spec, track), "labels": labels(spec, track)},
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(track),
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def candidate_deployment(spec: WorkloadSpec) -> dict[str, Any] | None:
    return deployment(spec, CANDIDATE) if spec.candidate_image_tag else None


def candidate_service(spec: WorkloadSpec) -> dict[str, Any] | None:
    return service(spec, CANDIDATE) if spec.candidate_image_tag else None


def tls_certificate_uri(spec: WorkloadSpec) -> str:
    """The unversioned Key Vault URI of the ingress certificate: the operator follows its new versions."""
    return f"https://{spec.azure.key_vault_name}.vault.azure.net/certificates/{spec.tls_certificate}"


def gateway_namespace(spec: WorkloadSpec) -> dict[str, Any]:
    """The Gateway's namespace. Pod Security `baseline` is enforced (with `restricted` audited and warned):
    Istio's gateway proxy pods set the sysctl net.ipv4.ip_unprivileged_port_start (allowed by `baseline`) and
    no seccomp profile unless the mesh is configured to (kube-gateway.yaml), which `restricted` refuses."""
    psa = {
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
    }
    psa.update(
        {f"pod-security.kubernetes.io/{mode}-version": "latest" for mode in ("enforce", "audit", "warn")}
    )
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": spec.gateway_namespace, "labels": {**labels(spec), **psa}},
    }


def gateway_tls_service_account(spec: WorkloadSpec) -> dict[str, Any] | None:
    """With a host: the service account the operator's certificate sync runs as, federated with the identity
    that holds Key Vault Secrets User on the certificate (stack/args.py, SecretVault.grant_certificate_read).
    The operator requires it in the Gateway's namespace with the client-id annotation; the
    `azure.workload.identity/use` label is what azure-aks-docs app-routing-gateway-api-dns-tls.md sets."""
    if not spec.ingress_host:
        return None
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": GATEWAY_TLS_SERVICE_ACCOUNT,
            "namespace": spec.gateway_namespace,
            "labels": {**labels(spec), WORKLOAD_IDENTITY_USE: "true"},
            "annotations": {WORKLOAD_IDENTITY_CLIENT_ID: spec.azure.gateway_tls_client_id},
        },
        # The operator's placeholder pod turns it on for itself; nothing else needs the API token.
        "automountServiceAccountToken": False,
    }


def gateway_options(spec: WorkloadSpec) -> dict[str, Any]:
    """The per-Gateway customization ConfigMap (GATEWAY_OPTIONS says where its format comes from): the proxy
    pods spread over zones like Muse's pods (hard with zones, a hint without) and over nodes; with
    gateway_min_replicas, the proxies' autoscaler keeps at least that many (prod: one per zone)."""
    if spec.gateway_min_replicas is not None and spec.gateway_min_replicas < GATEWAY_HPA_MIN_REPLICAS_FLOOR:
        raise ValueError(
            f"gateway_min_replicas {spec.gateway_min_replicas}: the add-on refuses an HPA minimum below "
            f"{GATEWAY_HPA_MIN_REPLICAS_FLOOR}"
        )
    spread = _topology_spread(spec, {GATEWAY_NAME_LABEL: GATEWAY})
    data = {"deployment": _yaml({"spec": {"template": {"spec": {"topologySpreadConstraints": spread}}}})}
    if spec.gateway_min_replicas is not None:
        data["horizontalPodAutoscaler"] = _yaml(
            {"spec": {"minReplicas": spec.gateway_min_replicas, "maxReplicas": 2 * spec.gateway_min_replicas}}
        )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": GATEWAY_OPTIONS, "namespace": spec.gateway_namespace, "labels": labels(spec)},
        "data": data,
    }


class _NoAliasDumper(yaml.SafeDumper):
    """Plain YAML for the controller: a dict used twice (the spread's selector) is written twice, not as an
    anchor and alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _yaml(document: dict[str, Any]) -> str:
    return str(yaml.dump(document, Dumper=_NoAliasDumper, sort_keys=False, default_flow_style=False))


def _routes_from_workload_namespace(spec: WorkloadSpec) -> dict[str, Any]:
    return {
        "namespaces": {
            "from": "Selector",
            "selector": {"matchLabels": {"kubernetes.io/metadata.name": spec.namespace}},
        }
    }


def gateway(spec: WorkloadSpec) -> dict[str, Any]:
    """GatewayClass `approuting-istio`. With a host: an HTTPS listener that terminates TLS with the Key Vault
    certificate (the operator's TLS options) and takes the Muse route, and an HTTP listener for the host that
    takes only the redirect route of its own namespace. Without: one HTTP listener for any host on the
    Gateway's public IP (no certificate can match a bare IP)."""
    if spec.ingress_host:
        listeners: list[dict[str, Any]] = [
            {
                "name": HTTPS_LISTENER,
                "hostname": spec.ingress_host,
                "port": 443,
                "protocol": "HTTPS",
                "tls": {
                    "mode": "Terminate",
                    "options": {
                        TLS_CERT_KEYVAULT_URI_OPTION: tls_certificate_uri(spec),
                        TLS_CERT_SERVICE_ACCOUNT_OPTION: GATEWAY_TLS_SERVICE_ACCOUNT,
                    },
                },
                "allowedRoutes": _routes_from_workload_namespace(spec),
            },
            {
                "name": HTTP_LISTENER,
                "hostname": spec.ingress_host,
                "port": 80,
                "protocol": "HTTP",
                "allowedRoutes": {"namespaces": {"from": "Same"}},
            },
        ]
    else:
        listeners = [
            {
                "name": HTTP_LISTENER,
                "port": 80,
                "protocol": "HTTP",
                "allowedRoutes": _routes_from_workload_namespace(spec),
            }
        ]
    return {
        "apiVersion": GATEWAY_API_VERSION,
        "kind": "Gateway",
        "metadata": {
            "name": GATEWAY,
            "namespace": spec.gateway_namespace,
            "labels": labels(spec),
            "annotations": {PULUMI_WAIT_FOR: GATEWAY_READY},
        },
        "spec": {
            "gatewayClassName": GATEWAY_CLASS,
            # LocalParametersReference: a ConfigMap in the Gateway's namespace (group "" is the core group).
            "infrastructure": {"parametersRef": {"group": "", "kind": "ConfigMap", "name": GATEWAY_OPTIONS}},
            "listeners": listeners,
        },
    }


def _parent(spec: WorkloadSpec, listener: str) -> dict[str, Any]:
    return {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "name": GATEWAY,
        "namespace": spec.gateway_namespace,
        "sectionName": listener,
    }


def backend_refs(spec: WorkloadSpec) -> list[dict[str, Any]]:
    """The stable Service alone, or, during a canary, both Services with weights that add up to 100.

    Gateway API (HTTPBackendRef -> BackendRef.weight, gateway-api apis/v1/shared_types.go and
    httproute_types.go): a backend gets weight / (sum of the rule's weights) of the rule's requests; weight 0
    means no traffic to that backend; the default is 1, so the single-backend route needs none."""
    stable = {"group": "", "kind": "Service", "name": SERVICE, "port": SERVICE_PORT}
    if not spec.candidate_image_tag:
        return [stable]
    candidate = {**stable, "name": CANDIDATE}
    return [
        {**stable, "weight": 100 - spec.candidate_weight},
        {**candidate, "weight": spec.candidate_weight},
    ]


# Without a host (dev) the Gateway has only plain HTTP on its public IP: it routes these GET paths, which
# carry no credential, and nothing under /api, so the bearer-token API is never served in clear (the Gateway
# answers 404 for every other request, without reaching Muse). The API of such a stack is reached through
# `kubectl port-forward` (docs/architecture/workload.md, "Plain HTTP without a host").
PLAIN_HTTP_PATHS = (HEALTH_PATH, READINESS_PATH, ROOT_PATH)


# The release's emergency move of the traffic (scripts/ci/deploy.py route_to_stable, the runbook's "In a
# hurry") is a `kubectl patch`, whose field manager then owns the route's `spec.rules`: rules and backendRefs
# are `+listType=atomic` (gateway-api apis/v1/httproute_types.go), so that manager owns each list whole.
# Pulumi's provider applies server-side with force=false unless this annotation is set
# (pulumi/pulumi-kubernetes provider/pkg/await/await.go ssaUpdate -> patchForce), and takes over only
# `kubectl` and its own former managers (fixCSAFieldManagers), not `kubectl-patch`: without it the next
# `pulumi up` of the route (a weight move, a rollback, the next release) fails with "Server-Side Apply field
# conflict detected". Pulumi owns the route, so its apply wins ("Upsert a Resource": `pulumi.com/patchForce`,
# www.pulumi.com/registry/packages/kubernetes/how-to-guides/managing-resources-with-server-side-apply/).
PATCH_FORCE = "pulumi.com/patchForce"


def http_route(spec: WorkloadSpec) -> dict[str, Any]:
    """With a host: every path to the Muse Service(s) on the HTTPS listener. Without one: only the
    PLAIN_HTTP_PATHS, by GET and exact path, on the HTTP listener."""
    if spec.ingress_host:
        matches: list[dict[str, Any]] = [{"path": {"type": "PathPrefix", "value": "/"}}]
    else:
        matches = [{"path": {"type": "Exact", "value": path}, "method": "GET"} for path in PLAIN_HTTP_PATHS]
    route: dict[str, Any] = {
        "parentRefs": [_parent(spec, HTTPS_LISTENER if spec.ingress_host else HTTP_LISTENER)],
        "rules": [{"matches": matches, "backendRefs": backend_refs(spec)}],
    }
    if spec.ingress_host:
        route["hostnames"] = [spec.ingress_host]
    return {
        "apiVersion": GATEWAY_API_VERSION,
        "kind": "HTTPRoute",
        "metadata": _metadata(spec, HTTP_ROUTE, annotations={PATCH_FORCE: "true"}),
        "spec": dict(sorted(route.items())),
    }


def https_redirect_route(spec: WorkloadSpec) -> dict[str, Any] | None:
    """With a host: plain HTTP to the host is answered with a permanent redirect to HTTPS and reaches no
    backend (Gateway API HTTPRoute RequestRedirect filter), so the bearer token never crosses in clear after
    the first request; a client that sends it on http:// has already leaked it, which the redirect cannot
    undo, hence prod's URL is https:// only."""
    if not spec.ingress_host:
        return None
    return {
        "apiVersion": GATEWAY_API_VERSION,
        "kind": "HTTPRoute",
        "metadata": {
            "name": HTTPS_REDIRECT_ROUTE,
            "namespace": spec.gateway_namespace,
            "labels": labels(spec),
        },
        "spec": {
            "hostnames": [spec.ingress_host],
            "parentRefs": [_parent(spec, HTTP_LISTENER)],
            "rules": [
                {
                    "filters": [
                        {
                            "type": "RequestRedirect",
                            "requestRedirect": {"scheme": "https", "statusCode": 301},
                        }
                    ]
                }
            ],
        },
    }


def pod_disruption_budget(spec: WorkloadSpec) -> dict[str, Any]:
    """At most one pod evicted at a time. maxUnavailable (not minAvailable) so that a single-replica dev can
    still be drained by a node upgrade instead of blocking it."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(spec, DEPLOYMENT),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels()}},
    }


def horizontal_pod_autoscaler(spec: WorkloadSpec, track: str = DEPLOYMENT) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {**_metadata(spec, track), "labels": labels(spec, track)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": track},
            "minReplicas": spec.replicas,
            "maxReplicas": spec.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": HPA_CPU_UTILIZATION},
                    },
                }
            ],
        },
    }


def candidate_horizontal_pod_autoscaler(spec: WorkloadSpec) -> dict[str, Any] | None:
    """The candidate scales like the stable Deployment: at 100 % it carries all the traffic."""
    return horizontal_pod_autoscaler(spec, CANDIDATE) if spec.candidate_image_tag else None


def network_policy(spec: WorkloadSpec) -> dict[str, Any]:
    """Who reaches Muse, per port, and what Muse reaches (Cilium enforces it); it selects every Muse pod,
    stable and candidate (the canary). PORT: only the Gateway's proxy pods (labelled with the Gateway's name
    in the Gateway's namespace) and the release's end-to-end check pods in Muse's own namespace.
    METRICS_PORT: only the metrics agent. Kubelet probes come from the node and are always allowed. Egress:
    cluster DNS only, so nothing else, the node's metadata endpoint included, is reachable from the pod."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(spec, f"{APP}-ingress"),
        "spec": {
            "podSelector": {"matchLabels": _part_of()},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": spec.gateway_namespace}
                            },
                            "podSelector": {"matchLabels": {GATEWAY_NAME_LABEL: GATEWAY}},
                        },
                        {"podSelector": {"matchLabels": EVALUATE_CHECK_LABEL}},
                    ],
                    "ports": [{"protocol": "TCP", "port": PORT}],
                },
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": METRICS_AGENT_NAMESPACE}
                            },
                            "podSelector": {"matchLabels": dict(METRICS_AGENT_LABELS)},
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": METRICS_PORT}],
                },
            ],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": DNS_NAMESPACE}
                            },
                            "podSelector": {"matchLabels": dict(DNS_LABELS)},
                        }
                    ],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                }
            ],
        },
    }


def check_network_policy(spec: WorkloadSpec) -> dict[str, Any]:
    """What the release's own pods (the end-to-end check and the canary's load, EVALUATE_CHECK_LABEL) reach:
    the Muse pods on PORT (the candidate's or the stable Service resolves to them) and cluster DNS, nothing
    else - not the node's metadata endpoint, not the internet; nothing reaches them. The Key Vault token they
    read is mounted by the CSI driver on the node, so they need no route to Azure themselves."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(spec, f"{APP}-release-checks"),
        "spec": {
            "podSelector": {"matchLabels": dict(EVALUATE_CHECK_LABEL)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": [
                {
                    "to": [{"podSelector": {"matchLabels": _part_of()}}],
                    "ports": [{"protocol": "TCP", "port": PORT}],
                },
                {
                    "to": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": DNS_NAMESPACE}
                            },
                            "podSelector": {"matchLabels": dict(DNS_LABELS)},
                        }
                    ],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                },
            ],
        },
    }


# name -> builder, in apply order (the namespaces first, the objects pods need before the Deployment). A
# builder that returns None has no object for that spec (the TLS objects without an ingress host).
BUILDERS: dict[str, Callable[[WorkloadSpec], dict[str, Any] | None]] = {
    "namespace": namespace,
    "gatewaynamespace": gateway_namespace,
    "serviceaccount": service_account,
    "secretproviderclass": secret_provider_class,
    "configmap": config_map,
    "deployment": deployment,
    "service": service,
    "candidatedeployment": candidate_deployment,
    "candidateservice": candidate_service,
    "gatewaytlsserviceaccount": gateway_tls_service_account,
    "gatewayoptions": gateway_options,
    "gateway": gateway,
    "httproute": http_route,
    "httpsredirectroute": https_redirect_route,
    "poddisruptionbudget": pod_disruption_budget,
    "horizontalpodautoscaler": horizontal_pod_autoscaler,
    "candidatehorizontalpodautoscaler": candidate_horizontal_pod_autoscaler,
    "networkpolicy": network_policy,
    "checknetworkpolicy": check_network_policy,
    "metricssettings": metrics_settings,
}


def manifests(spec: WorkloadSpec) -> dict[str, dict[str, Any]]:
    """Every object of the workload for `spec`, keyed by its name in BUILDERS (in that order)."""
    built = {name: build(spec) for name, build in BUILDERS.items()}
    return {name: body for name, body in built.items() if body is not None}
