"""The Muse workload on AKS: the objects of `manifests.py` (this package), deployed through the cluster's
Kubernetes provider.

The Deployment is awaited, so `pulumi up` fails when the new pods are not ready within
`rolloutTimeoutMinutes` while the previous ReplicaSet keeps serving; the provider does not change when
credentials rotate, so it never takes these objects with it; the Gateway is awaited until Programmed, so
`url` is known when read. Why: docs/architecture/workload.md#the-workload-component."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.muse_workload import canary_load, evaluate_check, manifests


@dataclass(frozen=True, kw_only=True)
class MuseWorkloadArgs:
    """Inputs of `MuseWorkload`, field by field (what it is; default, and why that default).

    provider: the cluster's Kubernetes provider (`KubernetesCluster.provider`); every object goes through it.
        Required.
    spec: the workload's plain inputs (namespace, image tag, replicas, host, ...); its `azure` field is
        ignored and filled from the four inputs below. Required.
    registry_login_server: `<registry>.azurecr.io`, where the image is pulled from
        (`ContainerRegistry.login_server`). Required.
    workload_client_id: client id of the Muse workload identity (`WorkloadIdentity.client_id`), federated with
        `system:serviceaccount:<namespace>:<service account>`. Required.
    tenant_id: Entra ID tenant of the identity and the vault. Required.
    key_vault_name: the vault holding the workload's secrets (manifests.SECRETS) and the ingress certificate
        (`SecretVault.name`). Required.
    gateway_tls_client_id: client id of the identity the Gateway's certificate sync runs as
        (`WorkloadIdentity.client_id`); required with an ingress host, unused without. Default None.
    rollout_timeout_minutes: how long `pulumi up` waits for the Deployment to become ready before it fails.
        Default 10: twice the Deployment's progress deadline (manifests.PROGRESS_DEADLINE_SECONDS), so a
        stalled rollout is reported by Kubernetes first; it must not be below that deadline.
    prerequisites: Azure resources the pods need before the first one starts (AcrPull of the kubelet, the
        identity's federated credential, its read grant on the secret); the Deployment waits for them.
        Default () = nothing to wait for.
    gateway_prerequisites: Azure resources the Gateway's certificate sync needs (the TLS identity's federated
        credential and its read grant on the certificate); the Gateway waits for them. Default ().
    """

    provider: k8s.Provider
    spec: manifests.WorkloadSpec
    registry_login_server: pulumi.Input[str]
    workload_client_id: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    key_vault_name: pulumi.Input[str]
    gateway_tls_client_id: pulumi.Input[str] | None = None
    rollout_timeout_minutes: int = 10
    prerequisites: Sequence[pulumi.Resource] = ()
    gateway_prerequisites: Sequence[pulumi.Resource] = ()


# name in manifests.BUILDERS -> the typed pulumi-kubernetes resource for it.
_TYPED: dict[str, Callable[..., pulumi.CustomResource]] = {
    "namespace": k8s.core.v1.Namespace,
    "gatewaynamespace": k8s.core.v1.Namespace,
    "serviceaccount": k8s.core.v1.ServiceAccount,
    "gatewaytlsserviceaccount": k8s.core.v1.ServiceAccount,
    "configmap": k8s.core.v1.ConfigMap,
    "gatewayoptions": k8s.core.v1.ConfigMap,
    "deployment": k8s.apps.v1.Deployment,
    "service": k8s.core.v1.Service,
    "candidatedeployment": k8s.apps.v1.Deployment,
    "candidateservice": k8s.core.v1.Service,
    "candidatehorizontalpodautoscaler": k8s.autoscaling.v2.HorizontalPodAutoscaler,
    "poddisruptionbudget": k8s.policy.v1.PodDisruptionBudget,
    "horizontalpodautoscaler": k8s.autoscaling.v2.HorizontalPodAutoscaler,
    "networkpolicy": k8s.networking.v1.NetworkPolicy,
    "checknetworkpolicy": k8s.networking.v1.NetworkPolicy,
    "metricssettings": k8s.core.v1.ConfigMap,
}
# Top-level manifest fields that are resource arguments (apiVersion and kind come with the typed resource).
_FIELDS = {"metadata": "metadata", "spec": "spec", "data": "data", "immutable": "immutable"}
_SA_FIELDS = {**_FIELDS, "automountServiceAccountToken": "automount_service_account_token"}


class MuseWorkload(pulumi.ComponentResource):
    """`muse:kubernetes:MuseWorkload`.

    Exposes `namespace`, `deployment_name`, `image` (the full reference deployed), `url` (`https://<ingress
    host>`, or `http://<the Gateway's public IP>` without a host), `gateway_address` (that IP, for the DNS
    record of the host) and `deployment`.
    """

    TYPE = "muse:kubernetes:MuseWorkload"  # the type token of its URN

    def __init__(self, name: str, args: MuseWorkloadArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(self.TYPE, name, None, opts)
        spec = args.spec
        # The manifests are built with PLACEHOLDERS; each string holding one becomes an Output of the real
        # value. Everything else (names, namespaces, the whole pod spec but the image) stays known at preview,
        # and only the objects that hold an Azure value depend on the Azure resources.
        azure = {
            manifests.PLACEHOLDERS.registry_login_server: args.registry_login_server,
            manifests.PLACEHOLDERS.workload_client_id: args.workload_client_id,
            manifests.PLACEHOLDERS.tenant_id: args.tenant_id,
            manifests.PLACEHOLDERS.key_vault_name: args.key_vault_name,
        }
        if args.gateway_tls_client_id is not None:
            azure[manifests.PLACEHOLDERS.gateway_tls_client_id] = args.gateway_tls_client_id
        spec = replace(args.spec, azure=manifests.PLACEHOLDERS)
        if spec.ingress_host and args.gateway_tls_client_id is None:
            raise ValueError(
                "an ingress host needs gateway_tls_client_id: the identity that reads its certificate"
            )
        bodies = manifests.manifests(spec)

        def manifest(key: str) -> dict[str, Any]:
            resolved: dict[str, Any] = _with_outputs(bodies[key], azure)
            return resolved

        def options(*depends_on: pulumi.Resource, **extra: Any) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(
                parent=self, provider=args.provider, depends_on=list(depends_on), **extra
            )

        def typed(key: str, opts_: pulumi.ResourceOptions) -> pulumi.CustomResource:
            body = manifest(key)
            fields = _SA_FIELDS if body["kind"] == "ServiceAccount" else _FIELDS
            kwargs = {arg: body[top] for top, arg in fields.items() if top in body}
            return _TYPED[key](f"{name}-{key}", **kwargs, opts=opts_)

        def custom(key: str, opts_: pulumi.ResourceOptions) -> _CustomObject:
            return _CustomObject(f"{name}-{key}", manifest(key), opts_)

        self.namespace_resource = typed("namespace", options())
        ns = self.namespace_resource
        self.service_account = typed("serviceaccount", options(ns))
        spc_body = manifest("secretproviderclass")
        self.secret_provider_class = k8s.apiextensions.CustomResource(
            f"{name}-secretproviderclass",
            api_version="secrets-store.csi.x-k8s.io/v1",
            kind="SecretProviderClass",
            metadata=spc_body["metadata"],
            spec=spc_body["spec"],
            opts=options(ns),
        )
        # The ConfigMap's name carries a hash of its data: a change creates the new one before the Deployment
        # moves to it, and deletes the old one after.
        self.config_map = typed("configmap", options(ns, delete_before_replace=False))
        timeout = f"{args.rollout_timeout_minutes}m"
        self.deployment = typed(
            "deployment",
            options(
                ns,
                self.service_account,
                self.secret_provider_class,
                self.config_map,
                *args.prerequisites,
                # Awaited (no skipAwait): `pulumi up` fails when the rollout is not ready in time. The create
                # (the stack's first deploy) also waits out the grants its pods need, made moments before:
                # first_deploy_timeout_minutes says why and how long.
                custom_timeouts=pulumi.CustomTimeouts(
                    create=f"{first_deploy_timeout_minutes(args.rollout_timeout_minutes)}m", update=timeout
                ),
                # The autoscaler owns the live replica count after creation; `replicas` is its minimum.
                ignore_changes=["spec.replicas"],
            ),
        )
        self.service = typed("service", options(ns))
        # The canary's candidate (spec.candidate_image_tag): the same pod next to the stable one, awaited the
        # same way, so a candidate that never becomes ready fails `pulumi up` before the route sends it
        # anything (the route below waits for both Deployments).
        candidates: list[pulumi.Resource] = []
        if "candidatedeployment" in bodies:
            candidate = typed(
                "candidatedeployment",
                options(
                    ns,
                    self.service_account,
                    self.secret_provider_class,
                    self.config_map,
                    *args.prerequisites,
                    custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout),
                    ignore_changes=["spec.replicas"],
                ),
            )
            candidates = [candidate, typed("candidateservice", options(ns))]
            typed("candidatehorizontalpodautoscaler", options(ns, candidate))
        gateway_ns = typed("gatewaynamespace", options())
        gateway_needs: list[pulumi.Resource] = [gateway_ns, *args.gateway_prerequisites]
        # Before the Gateway: the controller renders the proxies' Deployment/HPA with it from the start.
        gateway_needs.append(typed("gatewayoptions", options(gateway_ns)))
        if "gatewaytlsserviceaccount" in bodies:
            gateway_needs.append(typed("gatewaytlsserviceaccount", options(gateway_ns)))
        self.gateway = custom("gateway", options(*gateway_needs))
        # After the stable Deployment (and the candidate's): when a release promotes the candidate's image to
        # the stable Deployment, the route moves its traffic back only once that rollout is ready; the
        # candidate's objects, gone from the program, are deleted after every update of the run.
        self.http_route = custom(
            "httproute", options(ns, self.service, self.gateway, self.deployment, *candidates)
        )
        if "httpsredirectroute" in bodies:
            custom("httpsredirectroute", options(gateway_ns, self.gateway))
        self.pod_disruption_budget = typed("poddisruptionbudget", options(ns))
        self.autoscaler = typed("horizontalpodautoscaler", options(ns, self.deployment))
        self.network_policy = typed("networkpolicy", options(ns))
        typed("checknetworkpolicy", options(ns))  # the release's check and load pods
        # The metrics add-on's settings (kube-system): scrape the annotated pods of this namespace.
        self.metrics_settings = typed("metricssettings", options())

        self.namespace: pulumi.Output[str] = pulumi.Output.from_input(spec.namespace)
        self.deployment_name: pulumi.Output[str] = pulumi.Output.from_input(manifests.DEPLOYMENT)
        self.image: pulumi.Output[str] = pulumi.Output.from_input(args.registry_login_server).apply(
            lambda server: manifests.image_reference(server, spec.image_tag)
        )
        # What the release script's canary needs (scripts/ci/deploy.py reads the stack outputs): the route it
        # moves the weights of, the end-to-end check Job of each track and the candidate's load Job, with the
        # registry filled in.
        self.route_urn: pulumi.Output[str] = self.http_route.urn
        tracks = [manifests.DEPLOYMENT] + ([manifests.CANDIDATE] if spec.candidate_image_tag else [])
        self.evaluate_checks: pulumi.Output[Any] = pulumi.Output.from_input(
            {track: _with_outputs(evaluate_check.job(spec, track), azure) for track in tracks}
        )
        # The candidate's load Job, one per canary step (canary_load.py); {} when no candidate is up.
        self.canary_load: pulumi.Output[Any] = pulumi.Output.from_input(
            _with_outputs(canary_load.job(spec), azure) if spec.candidate_image_tag else {}
        )
        # The Gateway is awaited until Programmed, when the controller has published its address.
        self.gateway_address: pulumi.Output[str] = self.gateway.status.apply(_gateway_address)
        if spec.ingress_host:
            self.url: pulumi.Output[str] = pulumi.Output.from_input(f"https://{spec.ingress_host}")
        else:
            # Plain HTTP on purpose: without `ingressHost` no certificate can match the address, so an https
            # URL would only promise what curl cannot verify.
            self.url = self.gateway_address.apply(lambda address: f"http://{address}" if address else "")
        self.register_outputs(
            {
                "namespace": self.namespace,
                "deploymentName": self.deployment_name,
                "image": self.image,
                "url": self.url,
                "gatewayAddress": self.gateway_address,
            }
        )


# The first deploy creates the kubelet's AcrPull and the workload identity's Key Vault grants moments before
# the Deployment, and Azure RBAC takes up to 10 minutes to apply a new assignment
# (learn.microsoft.com/azure/role-based-access-control/troubleshooting, "Role assignment changes are not
# being detected"). Until then the kubelet's image pulls fail and back off, doubling from 10 s up to 300 s
# (kubernetes.io/docs/concepts/containers/images/, "ImagePullBackOff": "up to a maximum of 300 seconds"), and
# the CSI volume mount of the token retries likewise; once a grant applies, the next retry (at most 300 s
# later) succeeds and the rollout proceeds as usual. So the create waits the propagation and one longest
# back-off on top of the usual rollout time; updates (the grants long in place) wait the rollout time only.
RBAC_PROPAGATION_MINUTES = 10
MAX_PULL_BACK_OFF_MINUTES = 5


def first_deploy_timeout_minutes(rollout_timeout_minutes: int) -> int:
    """How long `pulumi up` awaits the Deployment's creation: the rollout time, after the new grants applied
    and the kubelet's longest back-off ran out."""
    return RBAC_PROPAGATION_MINUTES + MAX_PULL_BACK_OFF_MINUTES + rollout_timeout_minutes


class _CustomObject(pulumi.CustomResource):
    """A Kubernetes object of a CRD (SecretProviderClass, Gateway, HTTPRoute) through the Kubernetes provider,
    with its `status` as an output: `k8s.apiextensions.CustomResource` registers only apiVersion, kind,
    metadata and spec, so the Gateway's published address would be unreadable."""

    status: pulumi.Output[Any]

    def __init__(self, name: str, body: dict[str, Any], opts: pulumi.ResourceOptions) -> None:
        props = {**body, "status": None}
        super().__init__(f"kubernetes:{body['apiVersion']}:{body['kind']}", name, props, opts)


def _with_outputs(value: Any, replacements: dict[str, pulumi.Input[str]]) -> Any:
    """`value` with every string that contains a placeholder turned into an Output of the filled-in string."""
    if isinstance(value, dict):
        return {k: _with_outputs(v, replacements) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_outputs(v, replacements) for v in value]
    if isinstance(value, str):
        needed = [p for p in replacements if p in value]
        if needed:

            def fill(values: list[str], template: str = value) -> str:
                for placeholder, real in zip(needed, values, strict=True):
                    template = template.replace(placeholder, real)
                return template

            return pulumi.Output.all(*(replacements[p] for p in needed)).apply(fill)
    return value


def _gateway_address(status: Any) -> str:
    """The first address a Gateway's status lists (`status.addresses[0].value`, an IP or a hostname, Gateway
    API GatewayStatus); empty until the controller has published one."""
    addresses = status.get("addresses") if isinstance(status, dict) else None
    return str(addresses[0].get("value") or "") if addresses else ""
