"""The Azure REST API version each azure-native resource uses, read from the installed SDK.

The SDK states it in every resource's docstring ("Uses Azure REST API version 2025-09-01."); the Bicep uses
exactly that version, so the two deploy the same resource shape, and bumping the SDK re-exports the Bicep.
"""

from __future__ import annotations

import importlib
import inspect
import re
from functools import cache

from muse.resource_types import GENERIC_RESOURCE

_VERSION = re.compile(r"Uses Azure REST API version (\d{4}-\d{2}-\d{2}(?:-preview)?)\.")


@cache
def api_version(type_token: str) -> str:
    """`azure-native:containerregistry:Registry` -> `2023-01-01-preview` (from the SDK's docstring)."""
    package, module, name = type_token.split(":")
    if package != "azure-native":
        raise ValueError(f"{type_token} is not an azure-native resource")
    cls = getattr(importlib.import_module(f"pulumi_azure_native.{module}"), name)
    match = _VERSION.search(inspect.getsource(cls))
    if match is None:
        raise LookupError(f"the SDK does not state the REST API version of {type_token}")
    return match.group(1)


def resource_api_version(type_token: str, properties: dict[str, object]) -> str:
    """The REST API version a planned resource is deployed with: the SDK's for a typed resource, the
    `apiVersion` input for a generic `azure-native:resources:Resource` (whose own docstring names the
    Resources API it is read through, not the version of the resource it creates)."""
    if type_token == GENERIC_RESOURCE:
        return str(properties["apiVersion"])
    return api_version(type_token)
