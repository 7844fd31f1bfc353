"""How one azure-native resource type becomes one Bicep resource: the per-type mapping.

A mapping says where the ARM body differs from the Pulumi inputs (which inputs are the name, the parent, the
scope; which stay top-level instead of going under `properties`) and which values come from parameters
(`bindings`: ARM path -> Bicep value). Everything else is copied from the plan, and the exporter proves it is
the same in every stack; references between resources and names are recognised automatically.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from offline.engine import PlannedResource

# ARM property names the azure-native SDK spells differently (a dot is not allowed in its names).
ARM_PROPERTY_NAMES = {"odataType": "odata.type"}


def _arm_names(value: Any) -> Any:
    if isinstance(value, dict):
        return {ARM_PROPERTY_NAMES.get(k, k): _arm_names(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_arm_names(v) for v in value]
    return value


DEFAULT_TOP_LEVEL = ("location", "tags", "sku", "identity", "zones", "kind", "extendedLocation")


@dataclass(frozen=True)
class TypeMapping:
    """
    arm_type: the ARM resource type (`Microsoft.ContainerRegistry/registries`).
    name_input: the Pulumi input holding the Azure name (`registryName`); None with `fixed_name`.
    parent: (input holding the parent's name, parent's type token) for child resources (`parent: cluster`).
    scope_input: the input holding the scope's resource id (extension resources such as role assignments).
    drop: further inputs that are not part of the ARM body (e.g. `resourceGroupName`, always dropped).
    top_level: inputs that stay beside `properties` in ARM.
    nested_properties: the SDK takes `properties` as one object already (Key Vault), instead of flattening.
    bindings: ARM path (dots; list items by index) -> Bicep value for values that come from parameters.
    symbol: the Bicep symbolic name from the Pulumi logical name (stack names in it replaced by the `names`
        key, e.g. `muse-workload-namespace-muse`); default: that name in camelCase.
    skips: checkov checks skipped on this resource, (check id, reason) -> `// checkov:skip=` lines.
    comment: a line of explanation written above the resource.
    shape: replaces the default Pulumi-inputs -> ARM-body conversion (after `drop`).
    api_version_input: for a generic `azure-native:resources:Resource`, the input that holds the API version
        (the SDK states none for it); its body is then checked against that version's ARM type data
        (verify/arm_types.py), since nothing in the SDK types it. Default None: the SDK's version.
    constant_literals: (literal, why) for literals of the body that equal some stack's config value by
        coincidence (e.g. the Gateway API channel `Standard` and the cluster tier `Standard`), so the
        "looks config-derived" check accepts them. Default ().
    """

    arm_type: str
    name_input: str | None
    fixed_name: str | None = None
    parent: tuple[str, str] | None = None
    scope_input: str | None = None
    drop: tuple[str, ...] = ()
    top_level: tuple[str, ...] = DEFAULT_TOP_LEVEL
    nested_properties: bool = False
    bindings: Mapping[str, Any] | Callable[[PlannedResource], Mapping[str, Any]] = field(default_factory=dict)
    symbol: Callable[[str], str] | None = None
    skips: tuple[tuple[str, str], ...] = ()
    comment: str | None = None
    shape: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    api_version_input: str | None = None
    constant_literals: tuple[tuple[str, str], ...] = ()

    def bindings_for(self, resource: PlannedResource) -> Mapping[str, Any]:
        return self.bindings(resource) if callable(self.bindings) else self.bindings

    def to_arm(self, resource: PlannedResource) -> dict[str, Any]:
        """The ARM body (without `name`) that the resource's Pulumi inputs stand for."""
        consumed = {"resourceGroupName", *self.drop}
        for named in (self.name_input, self.scope_input, self.parent[0] if self.parent else None):
            if named:
                consumed.add(named)
        inputs = _arm_names({k: v for k, v in resource.properties.items() if k not in consumed})
        if self.shape is not None:
            return self.shape(inputs)
        body: dict[str, Any] = {}
        properties: dict[str, Any] = {}
        for k, v in inputs.items():
            if k in self.top_level or (self.nested_properties and k == "properties"):
                body[k] = v
            else:
                properties[k] = v
        if self.nested_properties:
            body.setdefault("properties", {}).update(properties)
        elif properties:
            body["properties"] = properties
        identity = body.get("identity")
        if isinstance(identity, dict) and isinstance(identity.get("userAssignedIdentities"), list):
            # Pulumi takes a list of identity ids; ARM a map keyed by them.
            body["identity"] = {
                **identity,
                "userAssignedIdentities": {i: {} for i in identity["userAssignedIdentities"]},
            }
        return body


_REQUIRED: Any = object()


@dataclass(frozen=True)
class Param:
    """A Bicep parameter that is not a stack config key: a secret (`secure`, never in a parameter file) or a
    value only the deployer knows (e.g. the object id of an Entra ID principal created outside ARM)."""

    name: str
    type: str
    description: str
    secure: bool = False
    default: Any = _REQUIRED

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED


DROP: Any = object()  # a binding that removes the path from the ARM body
