"""The CrossGuard pack (policy/) evaluated offline: the engine's argument objects are built from the offline
plans of both stacks (properties in the engine's wire form, secrets with the engine's secret signature), and
the pack's own validators run with a violation-reporting function, exactly as pulumi-policy's analyzer calls
them. Both stacks pass; for every Muse policy a resource of the plan passes and the same resource, changed to
break that one rule, is reported by that policy and no other."""

from __future__ import annotations

import copy
import runpy
from pathlib import Path
from types import ModuleType
from typing import Any

import pulumi_policy
import pytest
from google.protobuf import json_format, struct_pb2
from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY
from pulumi_policy.policy import PolicyCustomTimeouts
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from muse.governance.policies import POLICIES, Severity
from offline.engine import OfflinePlan, PlannedResource
from policy import muse_pack, secret_masking

ROOT = Path(__file__).resolve().parents[2]
PACK_DIR = ROOT / "policy"
SECRET_VALUE = "s3cr3t-Value-that-must-never-reach-a-check"  # pragma: allowlist secret


pack: ModuleType = muse_pack


# --- engine-shaped arguments --------------------------------------------------------------------------------


def set_path(obj: Any, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        obj = obj[int(part)] if isinstance(obj, list) else obj.setdefault(part, {})
    last = parts[-1]
    if isinstance(obj, list):
        obj[int(last)] = value
    elif value is _DELETE:
        obj.pop(last, None)
    else:
        obj[last] = value


_DELETE = object()


def wire_properties(properties: dict[str, Any], secret_paths: tuple[str, ...]) -> dict[str, Any]:
    """The plan's inputs as the engine sends them: each secret (masked `[secret]` in the plan) becomes the
    engine's secret object around a real-looking value, round-tripped through protobuf like a gRPC call."""
    wire = copy.deepcopy(properties)
    for path in secret_paths:
        set_path(wire, path, {SPECIAL_SIG_KEY: SPECIAL_SECRET_SIG, "value": SECRET_VALUE})
    struct = struct_pb2.Struct()
    struct.update(wire)
    return dict(json_format.MessageToDict(struct))


def engine_props(properties: dict[str, Any], secret_paths: tuple[str, ...] = ()) -> Any:
    """What a validator receives: pulumi-policy's own deserialization (masked by the pack) and proxy."""
    wire = wire_properties(properties, secret_paths)
    return unknown_checking_proxy(pulumi_policy.policy.deserialize_properties(wire))


def _options(protect: bool = False) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def resource_args(
    resource: PlannedResource, properties: dict[str, Any] | None = None, protect: bool | None = None
) -> ResourceValidationArgs:
    props = engine_props(resource.properties if properties is None else properties, resource.secret_paths)
    options = _options(resource.protect if protect is None else protect)
    return ResourceValidationArgs(resource.type, props, resource.urn, resource.name, options, None)


def stack_args(plan: OfflinePlan) -> StackValidationArgs:
    resources = [
        PolicyResource(
            r.type,
            engine_props(r.properties, r.secret_paths),
            r.urn,
            r.name,
            _options(),
            None,
            None,
            [],
            {},
        )
        for r in plan.resources
    ]
    return StackValidationArgs(resources)


class Reporter:
    def __init__(self) -> None:
        self.violations: list[tuple[str, str]] = []
        self.policy = ""

    def __call__(self, message: str, urn: str | None = None) -> None:
        self.violations.append((self.policy, message))


def run_resource_policies(args: ResourceValidationArgs) -> list[tuple[str, str]]:
    reporter = Reporter()
    for policy in pack.build_policies():
        if isinstance(policy, ResourceValidationPolicy):
            reporter.policy = policy.name
            policy.validate(args, reporter)
    return reporter.violations


@pytest.fixture(scope="module")
def policies() -> dict[str, Any]:
    return {p.name: p for p in pack.build_policies()}


# --- the pack ---------------------------------------------------------------------------------------------


def test_one_pack_policy_per_muse_policy_with_severity_driven_enforcement(policies: dict[str, Any]) -> None:
    resource_policies = {n: p for n, p in policies.items() if isinstance(p, ResourceValidationPolicy)}
    assert set(resource_policies) == {p.id.lower() for p in POLICIES}
    for muse_policy in POLICIES:
        crossguard = resource_policies[muse_policy.id.lower()]
        expected = (
            EnforcementLevel.MANDATORY
            if muse_policy.severity in (Severity.CRITICAL, Severity.HIGH)
            else EnforcementLevel.ADVISORY
        )
        assert crossguard.enforcement_level == expected, muse_policy.id
        assert crossguard.severity.value == muse_policy.severity.value
        assert crossguard.remediation_steps == muse_policy.remediation
    stack = policies[pack.STACK_POLICY_NAME]
    assert isinstance(stack, StackValidationPolicy)
    assert stack.enforcement_level == EnforcementLevel.MANDATORY


def test_main_builds_the_pack_from_the_shared_rule_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """policy/__main__.py as the Pulumi CLI runs it (with the gRPC server replaced by a recorder)."""
    built: dict[str, Any] = {}

    class RecordingPack:
        def __init__(self, name: str, policies: list[Any], **kwargs: Any) -> None:
            built.update(name=name, policies=policies, **kwargs)

    monkeypatch.setattr(pulumi_policy, "PolicyPack", RecordingPack)
    runpy.run_path(str(PACK_DIR / "__main__.py"), run_name="__main__")
    assert built["name"] == "muse-governance"
    assert [p.name for p in built["policies"]] == [p.id.lower() for p in POLICIES] + ["muse-inventory-valid"]
    assert built["enforcement_level"] == EnforcementLevel.ADVISORY


def test_both_stacks_pass_every_policy(plans: dict[str, OfflinePlan], policies: dict[str, Any]) -> None:
    for stack, plan in plans.items():
        for resource in plan.resources:
            assert run_resource_policies(resource_args(resource)) == [], (stack, resource.urn)
        reporter = Reporter()
        policies[pack.STACK_POLICY_NAME].validate(stack_args(plan), reporter)
        assert reporter.violations == [], stack


def test_secrets_are_masked_before_any_check_sees_them(plans: dict[str, OfflinePlan]) -> None:
    provider = plans["dev"].one("pulumi:providers:kubernetes")
    assert provider.secret_paths == ("kubeconfig",)
    args = resource_args(provider)
    assert args.props["kubeconfig"] == "[secret]"
    resource = pack.to_resource(args.resource_type, args.urn, args.name, args.props)
    assert resource.secretPaths == ["kubeconfig"]
    assert SECRET_VALUE not in resource.model_dump_json()
    # Without the mask, pulumi-policy would hand the check the value itself.
    raw = secret_masking.unmasked_deserialize_properties(
        wire_properties(provider.properties, provider.secret_paths)
    )
    assert raw["kubeconfig"] == SECRET_VALUE


def test_unknown_values_read_as_absent() -> None:
    props = unknown_checking_proxy({"adminUserEnabled": False, "loginServer": UNKNOWN_STRING_VALUE})
    resource = pack.to_resource(
        "azure-native:containerregistry:Registry", "urn:pulumi:dev::muse::t::r", "r", props
    )
    assert resource.properties == {"adminUserEnabled": False, "loginServer": None}


def test_environment_comes_from_the_stack_in_the_urn() -> None:
    urn = "urn:pulumi:prod::muse::pulumi:pulumi:Stack$azure-native:keyvault:Vault::vault"
    assert pack.stack_of(urn) == "prod" and pack.project_of(urn) == "muse"


# --- a passing and a violating resource per policy ----------------------------------------------------------

REGISTRY = "azure-native:containerregistry:Registry"
VAULT = "azure-native:keyvault:Vault"
AKS = "azure-native:resources:Resource"  # the cluster, a generic ARM resource: settings under `properties`
GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
PROTECT = "@protect"  # not a property: the resource's Pulumi `protect` option
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CONTAINER = "spec.template.spec.containers.0"

# policy id -> (stack, resource type, [(path, value)] that breaks exactly that rule)
VIOLATIONS: dict[str, tuple[str, str, list[tuple[str, Any]]]] = {
    "MUSE-TAG-001": ("dev", REGISTRY, [("tags.owner", _DELETE)]),
    "MUSE-TAG-002": ("dev", REGISTRY, [("tags.env", "prod")]),
    "MUSE-ACR-001": ("dev", REGISTRY, [("adminUserEnabled", True)]),
    "MUSE-ACR-002": ("dev", REGISTRY, [("anonymousPullEnabled", True)]),
    "MUSE-KV-001": ("dev", VAULT, [("properties.enableRbacAuthorization", False)]),
    "MUSE-KV-002": ("dev", VAULT, [("properties.enableSoftDelete", False)]),
    "MUSE-KV-003": ("prod", VAULT, [("properties.enablePurgeProtection", False)]),
    "MUSE-AKS-001": ("dev", AKS, [("identity.type", "None")]),
    "MUSE-AKS-002": ("dev", AKS, [("properties.oidcIssuerProfile.enabled", False)]),
    "MUSE-AKS-003": ("dev", AKS, [("properties.securityProfile.workloadIdentity.enabled", False)]),
    "MUSE-AKS-004": ("dev", AKS, [("properties.networkProfile.networkPolicy", "none")]),
    "MUSE-AKS-005": ("dev", AKS, [("properties.disableLocalAccounts", False)]),
    "MUSE-AKS-006": ("dev", AKS, [("properties.aadProfile.enableAzureRBAC", False)]),
    "MUSE-AKS-007": (
        "dev",
        AKS,
        [
            (
                "properties.ingressProfile.webAppRouting.nginx.defaultIngressControllerType",
                "AnnotationControlled",
            )
        ],
    ),
    "MUSE-NET-001": ("dev", INGRESS, [("spec.ingressClassName", "webapprouting.kubernetes.azure.com")]),
    "MUSE-NET-002": ("prod", GATEWAY, [("spec.listeners.1.allowedRoutes.namespaces.from", "All")]),
    "MUSE-PROT-001": ("prod", "azure-native:keyvault:Vault", [(PROTECT, False)]),
    "MUSE-SEC-001": ("dev", "pulumi:providers:kubernetes", [("kubeconfig", "apiVersion: v1\nkind: Config")]),
    "MUSE-RBAC-001": ("dev", "azure-native:authorization:RoleAssignment", [("principalType", _DELETE)]),
    "MUSE-K8S-001": ("dev", DEPLOYMENT, [(f"{CONTAINER}.readinessProbe", _DELETE)]),
    "MUSE-K8S-002": ("dev", DEPLOYMENT, [("spec.strategy.rollingUpdate.maxUnavailable", 1)]),
    "MUSE-K8S-003": ("dev", DEPLOYMENT, [(f"{CONTAINER}.securityContext.runAsNonRoot", False)]),
    "MUSE-K8S-004": ("dev", DEPLOYMENT, [(f"{CONTAINER}.securityContext.readOnlyRootFilesystem", False)]),
    "MUSE-K8S-005": ("dev", DEPLOYMENT, [(f"{CONTAINER}.securityContext.allowPrivilegeEscalation", True)]),
}


# A resource of a type the stacks no longer have (the program serves through a Gateway, not an Ingress): the
# policy still guards against it coming back.
_STAND_INS = {
    INGRESS: PlannedResource(
        urn=f"urn:pulumi:dev::muse::{INGRESS}::other",
        type=INGRESS,
        name="other",
        parent=None,
        custom=True,
        properties={
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "other", "namespace": "muse-dev"},
            "spec": {"ingressClassName": "azure-alb-external"},
        },
    )
}


def test_every_policy_has_a_violation_case() -> None:
    assert set(VIOLATIONS) == {p.id for p in POLICIES}


@pytest.mark.parametrize("policy_id", sorted(VIOLATIONS))
def test_policy_passes_the_plan_resource_and_reports_the_broken_one(
    policy_id: str, plans: dict[str, OfflinePlan]
) -> None:
    stack, resource_type, changes = VIOLATIONS[policy_id]
    resource = (plans[stack].of_type(resource_type) or [_STAND_INS.get(resource_type)])[0]
    assert resource is not None, f"no {resource_type} in the {stack} plan and no stand-in"
    assert run_resource_policies(resource_args(resource)) == []

    broken = copy.deepcopy(resource.properties)
    protect = resource.protect
    for path, value in changes:
        if path == PROTECT:
            protect = value
        else:
            set_path(broken, path, value)
    # The kubeconfig case is plaintext on purpose: it is no longer marked secret.
    secret_paths = tuple(p for p in resource.secret_paths if p not in {path for path, _ in changes})
    args = ResourceValidationArgs(
        resource.type,
        engine_props(broken, secret_paths),
        resource.urn,
        resource.name,
        _options(protect),
        None,
    )
    violations = run_resource_policies(args)
    assert violations, policy_id
    assert {name for name, _ in violations} == {policy_id.lower()}, violations
    assert all(message.startswith(f"[{policy_id}] ") and "Fix: " in message for _, message in violations)


def test_a_check_that_crashes_fails_closed() -> None:
    (policy,) = [p for p in POLICIES if p.id == "MUSE-ACR-001"]

    def boom(resource: Any, inventory: Any) -> list[str]:
        raise KeyError("unexpected")

    broken = type(policy)(**{**policy.__dict__, "check": boom})
    validate = pack._validator(broken)
    reporter = Reporter()
    props = unknown_checking_proxy({"adminUserEnabled": False})
    validate(
        ResourceValidationArgs(REGISTRY, props, "urn:pulumi:dev::muse::t::r", "r", _options(), None), reporter
    )
    assert [m for _, m in reporter.violations] == [
        f"[MUSE-ACR-001] could not be evaluated (unexpected property shape). Fix: {policy.remediation}"
    ]


def test_stack_policy_reports_a_stack_muse_cannot_read() -> None:
    reporter = Reporter()
    bad = PolicyResource("", {}, "urn:pulumi:dev::muse::x::y", "y", _options(), None, None, [], {})
    pack._validate_stack(StackValidationArgs([bad]), reporter)
    assert len(reporter.violations) == 1
    assert "not a valid Muse inventory" in reporter.violations[0][1]
