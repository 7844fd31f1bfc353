"""`infra/bicep/main.bicep`, generated from the offline plans of every stack.

Every custom resource is either mapped (`export/resource_types.py`) or named in `NOT_IN_BICEP` with the
reason; its inputs become the ARM body with values bound to Bicep parameters, references and names; and the
result must be the same Bicep for every stack. Anything else stops the export, naming the path.
The steps: docs/bicep.md#how-a-resource-gets-into-the-bicep."""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import annotated_types

from export.api_versions import api_version, resource_api_version
from export.bicep_syntax import Expr, For, camel, interpolated, literal_strings, render, string
from export.mapping import DROP, Param, TypeMapping
from muse.resource_types import KEY_VAULT_SECRET, ROLE_ASSIGNMENT
from offline.captured import StackPlan
from offline.engine import PlannedResource
from offline.mocks import DEPLOYER_OBJECT_ID, SUBSCRIPTION_ID, TENANT_ID, generic_arm_type
from rbac.arm import KEY_VAULT_SECRETS, ROLE_DEFINITIONS
from rbac.roles import Role
from stack import naming
from stack.config import AZURE_REGIONS, StackConfig
from stack.tags import standard_tags
from verify import arm_types

# Custom resources that are not in the Bicep, by type-token prefix, with the reason (written into the header).
NOT_IN_BICEP: dict[str, str] = {
    "pulumi:providers:": "Pulumi providers are not Azure resources",
    "kubernetes:": (
        "Kubernetes objects (namespaces, workload, Gateway, ...) are not ARM resources; Pulumi deploys them "
        "into the cluster"
    ),
    "azuread:": (
        "Entra ID objects (applications, service principals, their federated credentials) live in Microsoft "
        "Graph, not in a resource group: a resource-group deployment cannot create them"
    ),
    "random:": "generated values; the Bicep takes them as @secure() parameters instead",
}

# Stack config keys that are not Bicep parameters, with the reason. Every other key must be used by the Bicep.
NOT_PARAMETERS: dict[str, str] = {
    "replicas": "Kubernetes Deployment only",
    "imageTag": "Kubernetes Deployment only",
    "maxReplicas": "Kubernetes HorizontalPodAutoscaler only",
    "rolloutTimeoutMinutes": "how long `pulumi up` awaits the Kubernetes Deployment",
    "canarySteps": "the release script's canary through the Kubernetes HTTPRoute",
    "canaryStepSeconds": "the release script's canary through the Kubernetes HTTPRoute",
    "canaryImageTag": "Kubernetes Deployment only (the canary's)",
    "canaryWeight": "Kubernetes HTTPRoute only",
    "ingressTlsCertificateIssuer": (
        "how the certificate gets into the Key Vault and renews: a data-plane operation "
        "(scripts/tls-certificate.sh), not an ARM resource"
    ),
    "githubRepository": "subject of the GitHub identity's federated credentials, which are Entra ID objects",
    "githubSubjectPrefixes": "subject prefixes of the GitHub identity's federated credentials (Entra ID)",
    "operatorsGroupObjectId": (
        "the people's Kubernetes roles, granted by scripts/bootstrap.sh on the environment's resource group, "
        "not by this program"
    ),
    "protectStatefulResources": (
        "Pulumi `protect` on the stateful resources, an engine option with no ARM counterpart "
        "(components/deletion_protection.py: why no CanNotDelete lock)"
    ),
    "alertWebhooks": (
        "webhook URLs carry their integration's token: the Bicep takes them as the @secure() object "
        "parameter alertWebhookUrls, never from a parameter file"
    ),
    **dict.fromkeys(
        (
            "sloAvailabilityPercent",
            "sloLatencyPercent",
            "sloLatencyThresholdMs",
            "sloWindowDays",
            "sloPageBurnRate",
            "sloTicketBurnRate",
        ),
        "written into the Prometheus rule expressions (components/observability/slo.py); the export "
        "refuses stacks whose rules differ, so a change of it shows up here",
    ),
}

# Stack outputs the Bicep has no counterpart for, with the reason (written above the Bicep outputs).
NOT_OUTPUTS: dict[str, str] = {
    "kubeconfig": "a secret; `az aks get-credentials` gives it",
    "museDeployment": "a Kubernetes Deployment",
    "museUrl": "the Kubernetes Gateway's address or ingressHost",
    "museGatewayAddress": "the Kubernetes Gateway's address",
    "gatewayTlsClientId": (
        "only with ingressHost; `az identity show -g <group> -n id-muse-<env>-<suffix>-gateway-tls` gives it"
    ),
    "museImage": "the Kubernetes Deployment's image (muse:imageTag, which CI sets to the pushed digest)",
    "userPoolNames": (
        "the Pulumi program's user pool generations (stack/deployed.py); `az aks nodepool list` gives them"
    ),
    "museCanary": "the release script's canary plan (muse:canarySteps, muse:canaryStepSeconds)",
    "museRouteUrn": "a Pulumi URN of the Kubernetes HTTPRoute",
    "museEvaluateChecks": "Kubernetes Jobs the release script runs",
    "museCanaryLoad": "the Kubernetes Job that loads the canary's candidate (empty without a candidate)",
}

# Child resources a role assignment may be scoped to without the program managing them (Azure does): the scope
# `<parent id>/<segment>/<name>` becomes an `existing` resource of this ARM type under the parent's symbol.
EXISTING_CHILDREN: dict[str, tuple[str, str]] = {
    # A Key Vault certificate's key and chain, read as the secret of the same name (SecretVault).
    "secrets": (KEY_VAULT_SECRETS, KEY_VAULT_SECRET),
}

_PLACEHOLDER = "\x00{}\x00"
_PLACEHOLDER_PART = re.compile("\x00([A-Za-z]+)\x00")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_ROLE_DEFINITION = re.compile(
    rf"^/subscriptions/{SUBSCRIPTION_ID}/providers/Microsoft\.Authorization/roleDefinitions/([0-9a-f-]{{36}})$"
)
_ARM_TOP_LEVEL_OUTPUTS = frozenset(
    {"id", "name", "type", "location", "tags", "sku", "identity", "zones", "kind"}
)


class ExportError(Exception):
    """The plans cannot be exported faithfully; the message says what to change."""


# -- parameters and variables -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BicepParam:
    name: str
    type: str
    description: str
    decorators: tuple[str, ...] = ()
    default: Any = None
    has_default: bool = False
    secure: bool = False

    def render(self) -> str:
        lines = [f"@description({string(self.description)})", *self.decorators]
        if self.secure:
            lines.insert(0, "@secure()")
        default = f" = {render(self.default)}" if self.has_default else ""
        lines.append(f"param {self.name} {self.type}{default}")
        return "\n".join(lines)


def _bicep_type(annotation: Any) -> str:
    if annotation is bool:
        return "bool"
    if annotation is int:
        return "int"
    if annotation is float:
        return "string"  # Bicep has no fractional number; only NOT_PARAMETERS keys are floats
    if typing.get_origin(annotation) is tuple:
        return "array"
    if annotation is str or typing.get_origin(annotation) is typing.Literal:
        return "string"
    raise ExportError(f"no Bicep type for config annotation {annotation!r}")


def config_params() -> dict[str, BicepParam]:
    """Every StackConfig field as a Bicep parameter: type, description, allowed values and bounds from the
    same definitions that validate the Pulumi config; defaults are Pulumi.yaml's."""
    params: dict[str, BicepParam] = {}
    for name, spec in StackConfig.model_fields.items():
        alias = spec.alias or name
        annotation = spec.annotation
        decorators: list[str] = []
        allowed: list[str] | None = None
        if typing.get_origin(annotation) is typing.Literal:
            allowed = list(typing.get_args(annotation))
        elif typing.get_origin(annotation) is tuple:
            item = typing.get_args(annotation)[0]
            if typing.get_origin(item) is typing.Literal:
                allowed = list(typing.get_args(item))  # for an array, @allowed applies to each item
        elif alias == "location":
            allowed = sorted(AZURE_REGIONS)
        if allowed:
            decorators.append("@allowed(" + render(allowed) + ")")
        for meta in spec.metadata:
            if isinstance(meta, annotated_types.Ge):
                decorators.append(f"@minValue({meta.ge})")
            elif isinstance(meta, annotated_types.Le):
                decorators.append(f"@maxValue({meta.le})")
            elif isinstance(meta, annotated_types.MinLen):
                decorators.append(f"@minLength({meta.min_length})")
            elif isinstance(meta, annotated_types.MaxLen):
                decorators.append(f"@maxLength({meta.max_length})")
        default = spec.get_default(call_default_factory=True) if not spec.is_required() else None
        params[alias] = BicepParam(
            name=alias,
            type=_bicep_type(annotation),
            description=spec.description or alias,
            decorators=tuple(decorators),
            default=list(default) if isinstance(default, tuple) else default,
            has_default=not spec.is_required(),
        )
    return params


def _placeholder_config() -> StackConfig:
    """A StackConfig whose every value is a placeholder naming its key (no validation), so that functions of
    the config (tags, names) can be written as Bicep expressions of the parameters."""
    values: dict[str, Any] = {
        name: _PLACEHOLDER.format(spec.alias or name) for name, spec in StackConfig.model_fields.items()
    }
    return StackConfig.model_construct(None, **values)


def _as_bicep(value: str) -> Any:
    """A string with config placeholders as a Bicep expression (bare when it is one placeholder)."""
    pieces = _PLACEHOLDER_PART.split(value)
    parts: list[str | Expr] = [Expr(p) if i % 2 else p for i, p in enumerate(pieces) if p]
    if not any(isinstance(p, Expr) for p in parts):
        return value
    return interpolated(parts)


def names_variable() -> dict[str, Any]:
    """stack/naming.py's rule, in Bicep: every name from `environment` and `nameSuffix`."""
    placeholder = _PLACEHOLDER.format
    names = naming.ResourceNames.for_stack(placeholder("environment"), placeholder("nameSuffix"))
    return {camel(k): _as_bicep(v) for k, v in vars(names).items()}


def tags_variable() -> dict[str, Any]:
    return {k: _as_bicep(v) for k, v in standard_tags(_placeholder_config()).items()}


def role_definitions_variable() -> dict[str, str]:
    return {camel(role.name): role.definition_id for role in Role}


# -- binding ----------------------------------------------------------------------------------------------


def _flatten(value: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _flatten(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [item for i, v in enumerate(value) for item in _flatten(v, f"{path}.{i}")]
    return [(path, value)]


def _distinctive(value: Any) -> bool:
    return isinstance(value, str) and (
        bool(_UUID.match(value)) or value.startswith(("/subscriptions/", "https://"))
    )


@dataclass
class StackBindings:
    """What a literal of one stack's plan stands for in Bicep."""

    stack: StackPlan
    ids: dict[str, str] = field(default_factory=dict)  # ARM id -> symbol
    computed: dict[str, str] = field(default_factory=dict)  # computed value -> `symbol.path`
    # (type token, Azure name) -> symbol
    azure_names: dict[tuple[str, str], str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # stack-specific name -> `names.x`
    resource_group_id: str = ""
    config_ids: dict[str, str] = field(default_factory=dict)  # a GUID from the config -> its parameter
    computed_any: dict[str, str] = field(default_factory=dict)  # any computed string -> `symbol.path`
    resource_group_name: str = ""

    @classmethod
    def build(
        cls,
        stack: StackPlan,
        symbols: Sequence[tuple[str, PlannedResource]],
        mappings: Mapping[str, TypeMapping],
    ) -> StackBindings:
        b = cls(stack=stack)
        candidates: list[tuple[int, int, str, str]] = []
        for order, (symbol, resource) in enumerate(symbols):
            outputs = stack.outputs_of(resource)
            b.ids[outputs["id"]] = symbol
            if "name" in outputs:
                b.azure_names[(resource.type, outputs["name"])] = symbol
            nested = mappings[resource.type].nested_properties
            inputs = dict(_flatten(resource.properties))
            for path, value in _flatten({k: v for k, v in outputs.items() if k not in ("id", "name")}):
                if not isinstance(value, str) or inputs.get(path) == value:
                    continue
                top = path.split(".")[0]
                arm_path = path if nested or top in _ARM_TOP_LEVEL_OUTPUTS else f"properties.{path}"
                b.computed_any.setdefault(value, f"{symbol}.{arm_path}")
                if not _distinctive(value):
                    continue
                candidates.append((path.count("."), order, value, f"{symbol}.{arm_path}"))
        for _, _, value, expr in sorted(candidates, reverse=True):
            b.computed[value] = expr  # the shallowest path of the first resource wins
        config = stack.config
        real = naming.ResourceNames.for_stack(config.environment, config.name_suffix)
        for k, template in names_variable().items():
            if isinstance(template, Expr):
                b.names.setdefault(getattr(real, _snake(k)), f"names.{k}")
        b.resource_group_name = real.resource_group
        for name, spec in StackConfig.model_fields.items():
            value = getattr(config, name)
            if isinstance(value, str) and _UUID.match(value):
                b.config_ids[value] = spec.alias or name
        b.resource_group_id = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{real.resource_group}"
        return b

    def literal(self, value: str) -> Any:
        """What a string of the plan is in Bicep: a reference, a name, or itself."""
        if value == self.resource_group_id:
            return Expr("resourceGroup().id")
        if value == TENANT_ID:
            return Expr("tenant().tenantId")
        if value == DEPLOYER_OBJECT_ID:
            return Expr("deployer().objectId")
        if value in self.ids:
            return Expr(f"{self.ids[value]}.id")
        if value in self.computed:
            return Expr(self.computed[value])
        role = _ROLE_DEFINITION.match(value)
        if role:
            return Expr(
                f"subscriptionResourceId('{ROLE_DEFINITIONS}', roleDefinitionIds.{_role_key(role.group(1))})"
            )
        if value in self.names:
            return Expr(self.names[value])
        if value in self.config_ids:
            return Expr(self.config_ids[value])
        # Inside a longer string (a query, a display name, a workbook's JSON): ids first, then names.
        embedded = {**self.names, **{i: f"{s}.id" for i, s in self.ids.items()}}
        pattern = "|".join(re.escape(v) for v in sorted(embedded, key=len, reverse=True))
        if pattern and re.search(pattern, value):
            parts: list[str | Expr] = []
            position = 0
            for match in re.finditer(pattern, value):
                if match.start() > position:
                    parts.append(value[position : match.start()])
                parts.append(Expr(embedded[match.group(0)]))
                position = match.end()
            if position < len(value):
                parts.append(value[position:])
            return interpolated(parts)
        return value

    def key(self, value: str) -> str | Expr:
        bound = self.literal(value)
        if isinstance(bound, Expr) and not bound.text.startswith("'"):
            return Expr(f"'${{{bound.text}}}'")
        return bound if isinstance(bound, Expr) else value


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", r"_\1", name).lower()


def _role_key(definition_id: str) -> str:
    for role in Role:
        if role.definition_id == definition_id:
            return camel(role.name)
    raise ExportError(f"role definition {definition_id} is not in rbac/roles.py")


def _auto(value: Any, b: StackBindings) -> Any:
    if isinstance(value, str):
        return b.literal(value)
    if isinstance(value, dict):
        return {b.key(k): _auto(v, b) for k, v in value.items()}
    if isinstance(value, list):
        return [_auto(v, b) for v in value]
    return value


def _set_path(body: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node: Any = body
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    elif value is DROP:
        node.pop(last, None)
    else:
        node[last] = value


_BOUND = object()


def _bind(body: dict[str, Any], bindings: Mapping[str, Any], b: StackBindings) -> dict[str, Any]:
    """Explicit bindings first (their values are written as given), then automatic ones on the rest."""
    marked = _copy(body)
    for path in bindings:
        _set_path(marked, path, _BOUND)
    bound = _auto_except_marked(marked, b)
    for path, value in bindings.items():
        _set_path(bound, path, DROP if value is DROP else _param_expr(value))
    return _sorted(bound)


_TOP_ORDER = (
    "name",
    "parent",
    "scope",
    "location",
    "kind",
    "tags",
    "sku",
    "identity",
    "zones",
    "properties",
    "dependsOn",
)


def _sorted(value: Any, top: bool = True) -> Any:
    """Keys in a fixed order: ARM's usual top-level order, then alphabetical below."""
    if isinstance(value, dict):

        def rank(k: Any) -> tuple[int, str]:
            text = str(k)
            return (_TOP_ORDER.index(text) if top and text in _TOP_ORDER else len(_TOP_ORDER), text)

        return {k: _sorted(value[k], False) for k in sorted(value, key=rank)}
    if isinstance(value, list):
        return [_sorted(v, False) for v in value]
    return value


def _param_expr(value: Any) -> Any:
    return Expr(value.name) if isinstance(value, Param) else value


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _auto_except_marked(value: Any, b: StackBindings) -> Any:
    if value is _BOUND:
        return value
    if isinstance(value, dict):
        return {b.key(k): _auto_except_marked(v, b) for k, v in value.items()}
    if isinstance(value, list):
        return [_auto_except_marked(v, b) for v in value]
    return _auto(value, b)


# -- resources ----------------------------------------------------------------------------------------------


@dataclass
class BicepResource:
    symbol: str
    type_token: str
    mapping: TypeMapping
    body: dict[str, Any]
    comments: tuple[str, ...] = ()
    condition: str | None = None
    api_version: str = ""
    existing: bool = False

    def render(self) -> str:
        version = self.api_version or api_version(self.type_token)
        head = [f"// {c}" for c in self.comments]
        condition = f"if ({self.condition}) " if self.condition else ""
        body = render(self.body)
        # checkov reads inline skips inside the resource's block.
        skips = "".join(f"\n  // checkov:skip={check}: {reason}" for check, reason in self.mapping.skips)
        body = "{" + skips + body[1:]
        existing = "existing " if self.existing else ""
        return "\n".join(
            [
                *head,
                f"resource {self.symbol} '{self.mapping.arm_type}@{version}' {existing}= {condition}{body}",
            ]
        )


def _unified(a: str, b: str, name_a: str, name_b: str) -> str:
    return "\n".join(difflib.unified_diff(a.splitlines(), b.splitlines(), name_a, name_b, lineterm="", n=1))


def _leaks(body: Any, config: StackConfig) -> list[str]:
    values = {}
    for name, spec in StackConfig.model_fields.items():
        alias = spec.alias or name
        raw = getattr(config, name)
        for v in raw if isinstance(raw, tuple) else (raw,):
            if isinstance(v, str) and len(v) >= 3 and alias not in NOT_PARAMETERS:
                values[v] = alias
    return [f"'{s}' (the value of {values[s]})" for s in literal_strings(body) if s in values]


def azure_resources(plan: StackPlan, mappings: Mapping[str, TypeMapping]) -> list[PlannedResource]:
    """The plan's resources that must be in the Bicep; raises for a type neither mapped nor excluded."""
    found = []
    for resource in plan.plan.resources:
        if not resource.custom:
            continue
        if resource.type in mappings:
            mapping = mappings[resource.type]
            if mapping.api_version_input and generic_arm_type(resource.properties) != mapping.arm_type:
                raise ExportError(
                    f"{resource.type} ({resource.name}) is a {generic_arm_type(resource.properties)}, but "
                    f"the generic resource's mapping is for {mapping.arm_type}: give each ARM type of "
                    "generic resources its own mapping"
                )
            found.append(resource)
            continue
        if any(resource.type.startswith(prefix) for prefix in NOT_IN_BICEP):
            continue
        raise ExportError(
            f"{resource.type} ({resource.name}) is in the plan of {plan.label} but has no Bicep mapping: "
            "add one to export/resource_types.py (or, if it is not an Azure resource, to NOT_IN_BICEP in "
            "export/bicep.py with the reason)"
        )
    return found


@dataclass
class Template:
    params: dict[str, BicepParam]
    extra_params: dict[str, Param]
    resources: list[BicepResource]
    outputs: dict[str, tuple[str, Expr]]
    omitted_outputs: dict[str, str]
    excluded: dict[str, list[str]]  # reason -> resource type tokens


def build_template(
    plans: Sequence[StackPlan],
    mappings: Mapping[str, TypeMapping],
    conditions: Mapping[str, str] | None = None,
) -> Template:
    """The Bicep of `plans`. `conditions`: logical key (export/resource_types.py CONDITIONS) -> the Bicep
    `if` of a resource only some plans have, when no optional string parameter it references says it
    (`_condition`); tests/export evaluate each condition with every stack's parameters against its plan."""
    conditions = conditions or {}
    if not plans:
        raise ExportError("no stacks to export")
    order = {t: i for i, t in enumerate(mappings)}
    per_stack = {
        p.label: {(r.type, _logical_key(r.name, p.config)): r for r in azure_resources(p, mappings)}
        for p in plans
    }
    keys = sorted(set().union(*per_stack.values()), key=lambda k: (order[k[0]], k[1]))
    symbols: dict[tuple[str, str], str] = {}
    for key in keys:
        mapping = mappings[key[0]]
        resource = next(per_stack[p.label][key] for p in plans if key in per_stack[p.label])
        symbol = mapping.symbol(key[1]) if mapping.symbol else camel(key[1])
        if symbol in symbols.values():
            raise ExportError(
                f"two resources get the Bicep symbol {symbol!r}; give one a `symbol` in its mapping"
            )
        symbols[key] = symbol
    bindings = {
        p.label: StackBindings.build(
            p, [(symbols[k], per_stack[p.label][k]) for k in keys if k in per_stack[p.label]], mappings
        )
        for p in plans
    }
    configs = {p.label: p.config for p in plans}
    urn_symbols = {
        p.label: {per_stack[p.label][k].urn: symbols[k] for k in keys if k in per_stack[p.label]}
        for p in plans
    }

    resources: list[BicepResource] = []
    extra_params: dict[str, Param] = {}
    existing: dict[str, BicepResource] = {}
    for key in keys:
        mapping = mappings[key[0]]
        rendered: dict[str, tuple[str, dict[str, Any]]] = {}
        versions: set[str] = set()
        uses_existing: set[str] = set()
        for plan in plans:
            if key not in per_stack[plan.label]:
                continue
            resource = per_stack[plan.label][key]
            b = bindings[plan.label]
            version = resource_api_version(resource.type, resource.properties)
            versions.add(version)
            # A generic resource always (nothing else types its body); a typed one whose type data is vendored
            # too: its ARM body is what the Bicep sends, converted by the mapping, not by the SDK.
            if mapping.api_version_input or arm_types.vendored_path(mapping.arm_type, version).is_file():
                _check_arm_body(mapping, resource, version, plan.label)
            explicit = mapping.bindings_for(resource)
            for value in explicit.values():
                if isinstance(value, Param):
                    extra_params[value.name] = value
                if isinstance(value, For):
                    extra_params.update({declared.name: declared for declared in value.declares})
            body = _bind(mapping.to_arm(resource), explicit, b)
            head: dict[str, Any] = {}
            if mapping.parent:
                parent_name = resource.properties[mapping.parent[0]]
                parent = b.azure_names.get((mapping.parent[1], parent_name))
                if parent is None:
                    raise ExportError(
                        f"{resource.urn}: no {mapping.parent[1]} named {parent_name!r} in the plan"
                    )
                head["parent"] = Expr(parent)
            if mapping.scope_input:
                scope = resource.properties[mapping.scope_input]
                child = _existing_child(scope, b, configs[plan.label])
                if scope in b.ids:
                    head["scope"] = Expr(b.ids[scope])
                elif child is not None:
                    existing.setdefault(child.symbol, child)
                    uses_existing.add(child.symbol)
                    head["scope"] = Expr(child.symbol)
                elif scope != b.resource_group_id:
                    raise ExportError(
                        f"{resource.urn}: scope {scope} is neither the resource group nor a resource here"
                    )
            if mapping.name_input:
                name = body.pop("name", None)
                name = name if name is not None else b.literal(resource.properties[mapping.name_input])
            else:
                name = mapping.fixed_name
            if key[0] == ROLE_ASSIGNMENT:
                name = _role_assignment_name(head.get("scope"), body)
            body = {"name": name, **head, **body}
            # Pulumi `dependsOn` (or an input that is no reference here) without a symbolic reference that
            # would order the deployment the same way (e.g. the cluster waits for its kubelet role grant).
            implied = referenced_identifiers(render(body))
            explicit_deps = sorted(
                {urn_symbols[plan.label][u] for u in resource.depends_on if u in urn_symbols[plan.label]}
                - implied
            )
            if explicit_deps:
                body["dependsOn"] = [Expr(d) for d in explicit_deps]
            constants = {literal for literal, _ in mapping.constant_literals}
            leaks = [
                leak for leak in _leaks(body, configs[plan.label]) if leak.split("'")[1] not in constants
            ]
            if leaks:
                raise ExportError(
                    f"{resource.urn}: literal {', '.join(leaks)} looks config-derived; bind it to the "
                    "parameter in export/resource_types.py"
                )
            rendered[plan.label] = (render(body), body)
        first_stack, (first_text, first_body) = next(iter(rendered.items()))
        for stack, (text, _) in rendered.items():
            if text != first_text:
                diff = _unified(first_text, text, first_stack, stack)
                raise ExportError(
                    f"{key[0]} {key[1]} differs between {first_stack} and {stack} where the Bicep has no "
                    f"parameter; bind these values in export/resource_types.py:\n{diff}"
                )
        if len(versions) != 1:
            raise ExportError(f"{key[0]} {key[1]} uses API versions {sorted(versions)} in different stacks")
        comments = (mapping.comment,) if mapping.comment else ()
        condition = None
        if len(rendered) < len(plans):
            condition = conditions.get(key[1]) or _condition(key, first_text, plans, set(rendered))
        for symbol in sorted(uses_existing):
            child = existing[symbol]
            if child not in resources:  # declared once, before its first user, under the user's condition
                child.condition = condition
                resources.append(child)
        resources.append(
            BicepResource(
                symbols[key], key[0], mapping, first_body, comments, condition, api_version=versions.pop()
            )
        )

    outputs, omitted = _outputs(plans, bindings)
    excluded: dict[str, list[str]] = {}
    for plan in plans:
        for r in plan.plan.resources:
            for prefix, reason in NOT_IN_BICEP.items():
                if r.custom and r.type.startswith(prefix) and r.type not in excluded.setdefault(reason, []):
                    excluded[reason].append(r.type)
    return Template(config_params(), extra_params, resources, outputs, omitted, excluded)


def _check_arm_body(mapping: TypeMapping, resource: PlannedResource, version: str, label: str) -> None:
    """A generic resource's body against its API version's ARM type data (verify/arm_types.py): what the
    typed SDK would have refused, this refuses."""
    name = resource.properties.get(mapping.name_input or "resourceName", mapping.fixed_name)
    body = {**({"name": name} if name is not None else {}), **mapping.to_arm(resource)}
    # Typed SDK resources pass values the SDK already accepted; a generic resource gets the strict check.
    problems = arm_types.validate(
        arm_types.load(mapping.arm_type, version), body, open_unions=not mapping.api_version_input
    )
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise ExportError(
            f"{resource.urn} in {label}: the body is not a {mapping.arm_type}@{version} "
            f"(verify/arm_types/):\n{listed}"
        )


def _existing_child(scope: str, b: StackBindings, config: StackConfig) -> BicepResource | None:
    """An `existing` resource for a scope `<id of a resource here>/<segment>/<name>` (EXISTING_CHILDREN):
    a child Azure manages, e.g. a Key Vault certificate's secret. Its name is the parameter whose value it
    is."""
    parent_id, _, rest = scope.rpartition("/")
    parent_id, _, segment = parent_id.rpartition("/")
    if parent_id not in b.ids or segment not in EXISTING_CHILDREN:
        return None
    arm_type, type_token = EXISTING_CHILDREN[segment]
    parent_symbol = b.ids[parent_id]
    aliases = [
        spec.alias or name
        for name, spec in StackConfig.model_fields.items()
        if getattr(config, name) == rest and (spec.alias or name) not in NOT_PARAMETERS
    ]
    if len(aliases) == 1:
        name: Any = Expr(aliases[0])
        symbol = parent_symbol + aliases[0][0].upper() + aliases[0][1:]
    else:
        name, symbol = rest, camel(f"{parent_symbol}-{rest}")
    mapping = TypeMapping(arm_type=arm_type, name_input=None)
    return BicepResource(
        symbol,
        type_token,
        mapping,
        {"name": name, "parent": Expr(parent_symbol)},
        comments=("Managed by Azure, not by this template: the scope of a role assignment below.",),
        existing=True,
    )


def _condition(key: tuple[str, str], text: str, plans: Sequence[StackPlan], present: set[str]) -> str:
    """The `if` of a resource only some plans have: a parameter defaulting to '' that is set exactly there."""
    for alias in sorted(referenced_identifiers(text)):
        spec = next((f for n, f in StackConfig.model_fields.items() if (f.alias or n) == alias), None)
        if spec is None or spec.is_required() or spec.get_default() != "":
            continue
        name = next(n for n, f in StackConfig.model_fields.items() if f is spec)
        if all((p.label in present) == bool(getattr(p.config, name)) for p in plans):
            return f"!empty({alias})"
    raise ExportError(
        f"{key[0]} {key[1]} is only in the plans of {', '.join(sorted(present))}: export/ derives a "
        "Bicep `if` "
        "only from an optional string parameter it references; extend export/bicep.py `_condition`"
    )


def _logical_key(name: str, config: StackConfig) -> str:
    """A Pulumi logical name with the stack's names in it (e.g. a namespace) made stack-independent."""
    real = naming.ResourceNames.for_stack(config.environment, config.name_suffix)
    candidates = [
        (getattr(real, _snake(field_name)), field_name)
        for field_name, template in names_variable().items()
        if isinstance(template, Expr)
    ]
    # The longest name first: `muse-prod-gateway` (the Gateway's namespace) contains `muse-prod`.
    for value, field_name in sorted(candidates, key=lambda c: -len(c[0])):
        if value in name:
            return name.replace(value, field_name)
    return name


def _role_assignment_name(scope: Any, body: Mapping[str, Any]) -> Expr:
    properties = body.get("properties", {})
    principal = properties.get("principalId")
    if isinstance(principal, Expr) and ".properties." in principal.text:
        principal_key = principal.text.split(".")[0] + ".id"  # a resource's id is known before it deploys
    elif isinstance(principal, Expr):
        principal_key = principal.text
    else:
        raise ExportError(f"role assignment principal {principal!r} is not a reference or parameter")
    role = properties.get("roleDefinitionId")
    scope_id = f"{scope.text}.id" if isinstance(scope, Expr) else "resourceGroup().id"
    return Expr(
        f"guid({scope_id}, {principal_key}, {role.text if isinstance(role, Expr) else string(str(role))})"
    )


def _output_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"


def _outputs(
    plans: Sequence[StackPlan], bindings: Mapping[str, StackBindings]
) -> tuple[dict[str, tuple[str, Expr]], dict[str, str]]:
    outputs: dict[str, tuple[str, Expr]] = {}
    omitted: dict[str, str] = {}
    reference = plans[0]
    for name in reference.plan.outputs:
        if name in NOT_OUTPUTS:
            omitted[name] = NOT_OUTPUTS[name]
            continue
        exprs = set()
        for plan in plans:
            value = plan.plan.outputs[name].value
            b = bindings[plan.label]
            if value == b.resource_group_name:
                expr: Any = Expr("resourceGroup().name")
            elif isinstance(value, str) and value in b.computed_any and not _distinctive(value):
                expr = Expr(b.computed_any[value])
            else:
                by_name = [s for (t, n), s in b.azure_names.items() if n == value]
                expr = (
                    Expr(f"{by_name[0]}.name")
                    if len(by_name) == 1
                    else b.literal(value)
                    if isinstance(value, str)
                    else value
                )
            exprs.add(render(expr))
        if len(exprs) != 1 or not isinstance(expr, Expr) or reference.plan.outputs[name].secret:
            raise ExportError(
                f"stack output {name} is not derivable from the Bicep's resources: teach export/bicep.py "
                "`_outputs`, or list it in NOT_OUTPUTS with the reason"
            )
        outputs[name] = (_output_type(reference.plan.outputs[name].value), expr)
    return outputs, omitted


_STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'")
_INTERPOLATION = re.compile(r"\$\{([^}]*)\}")
_IDENT = re.compile(r"(?<![.\w])([A-Za-z_]\w*)\b")


def referenced_identifiers(text: str) -> set[str]:
    """Identifiers a piece of Bicep refers to (outside string literals, except inside interpolations)."""
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    code = _STRING_LITERAL.sub(lambda m: " " + " ".join(_INTERPOLATION.findall(m.group(0))) + " ", text)
    lines = [
        re.sub(r"^\s*[\w']+:", " ", line) for line in code.splitlines() if not line.lstrip().startswith("//")
    ]
    return set(_IDENT.findall("\n".join(lines)))


def render_template(template: Template, header: Sequence[str]) -> str:
    variables = {
        "names": names_variable(),
        "tags": tags_variable(),
        "roleDefinitionIds": role_definitions_variable(),
    }
    var_text = [
        "// Azure names: the rule of stack/naming.py, from `environment` and `nameSuffix`.",
        f"var names = {render(variables['names'])}",
        "",
        "// The tags every taggable resource carries (stack/tags.py).",
        f"var tags = {render(variables['tags'])}",
        "",
        "// Built-in role definitions (rbac/roles.py); the same in every tenant.",
        f"var roleDefinitionIds = {render(variables['roleDefinitionIds'])}",
    ]
    resource_text = [r.render() for r in template.resources]
    output_text = [f"output {n} {t} = {e.text}" for n, (t, e) in template.outputs.items()]
    if template.omitted_outputs:
        omitted = "; ".join(f"{n} ({why})" for n, why in sorted(template.omitted_outputs.items()))
        output_text.insert(0, f"// The Pulumi stack outputs not here: {omitted}.")
    body = "\n".join([*var_text, *resource_text, *output_text])
    used = referenced_identifiers(body)
    unused = [alias for alias in template.params if alias not in used and alias not in NOT_PARAMETERS]
    if unused:
        raise ExportError(
            f"stack config key(s) {', '.join(unused)} are not used by any Bicep resource: bind them where "
            "the Pulumi program uses them (export/resource_types.py), or list them in NOT_PARAMETERS with "
            "the reason"
        )
    params = [p for alias, p in template.params.items() if alias not in NOT_PARAMETERS]
    extra = [
        BicepParam(
            name=p.name,
            type=p.type,
            description=p.description,
            default=None if p.required else p.default,
            has_default=not p.required,
            secure=p.secure,
        )
        for p in sorted(template.extra_params.values(), key=lambda p: p.name)
    ]
    declared = (
        {p.name for p in params}
        | {p.name for p in extra}
        | set(variables)
        | {r.symbol for r in template.resources}
    )
    collisions = sorted({s for r in template.resources for s in literal_strings(r.body) if s in declared})
    if collisions:
        raise ExportError(f"string literal(s) {collisions} equal a Bicep identifier; rename the symbol")
    sections = [
        *header,
        "",
        "targetScope = 'resourceGroup'",
        "",
        "// ---- Parameters: the stack config keys (Pulumi.yaml): descriptions, allowed values, defaults.",
        "",
        "\n\n".join(p.render() for p in params),
    ]
    if extra:
        sections += [
            "",
            "// ---- Parameters the stack config does not hold: secrets, ids of objects made outside ARM.",
            "",
            "\n\n".join(p.render() for p in extra),
        ]
    sections += [
        "",
        "// ---- Variables",
        "",
        "\n\n".join("\n".join(var_text).split("\n\n")),
        "",
        "// ---- Resources: one per Azure resource of the Pulumi program.",
        "",
        "\n\n".join(resource_text),
        "",
        "// ---- Outputs",
        "",
        "\n".join(output_text),
    ]
    text = "\n".join(sections) + "\n"
    return re.sub(r"\n{3,}", "\n\n", text)


__all__ = [
    "NOT_IN_BICEP",
    "NOT_OUTPUTS",
    "NOT_PARAMETERS",
    "BicepParam",
    "ExportError",
    "Template",
    "build_template",
    "config_params",
    "render_template",
]
