"""Secrets reach the pack's validators as Muse's ``[secret]`` marker, never as values.

Why a patch: pulumi-policy unwraps every secret input into its plain value before a validator sees it
(``_PolicyAnalyzerServicer.Analyze`` and ``AnalyzeStack`` call ``deserialize_properties(...)`` without
``proxy_secrets``). Then every Pulumi secret would look like a plaintext secret to MUSE-SEC-001, and secret
values would reach policy code. pulumi-policy has no public API to keep or mask secrets during validation:
its public names (``pulumi_policy.__all__``) offer ``Secret`` only for remediation output, and
``ResourceValidationArgs`` carries no secret paths. So this module replaces the module-level name
``pulumi_policy.policy.deserialize_properties`` (which those methods look up at call time) with one that first
replaces each value in the engine's secret envelope (``{SPECIAL_SIG_KEY: SPECIAL_SECRET_SIG, "value": ...}``,
the signature from pulumi's sdk/go/common/resource/properties.go) with ``[secret]``, the marker the offline
engine writes.

This is the one place that patches pulumi-policy (muse_pack.py also catches its UnknownValueError, see
there). Checked against pulumi-policy 1.21.0 (the "policy" group of pyproject.toml);
tests/policy/test_secret_masking.py fails if the internals it relies on change shape.
"""

from __future__ import annotations

from typing import Any

import pulumi_policy.policy as pulumi_policy_analyzer
from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY

from muse.governance.policies import SECRET_MARKER

CHECKED_AGAINST = "1.21.0"
_MAX_DEPTH = 64

# pulumi-policy's own deserializer: called after masking, and by tests that show what it does unmasked.
unmasked_deserialize_properties = pulumi_policy_analyzer.deserialize_properties


def mask_engine_secrets(value: Any, depth: int = 0) -> Any:
    """The engine's wire form (protobuf Struct as a dict) with every secret replaced by ``[secret]``."""
    if depth > _MAX_DEPTH:
        return value
    if isinstance(value, dict):
        if value.get(SPECIAL_SIG_KEY) == SPECIAL_SECRET_SIG:
            return SECRET_MARKER
        return {k: mask_engine_secrets(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_engine_secrets(v, depth + 1) for v in value]
    return value


def masking_deserialize_properties(props: dict[str, Any], proxy_secrets: bool = False) -> Any:
    if proxy_secrets:  # the remediation path keeps secrets (wrapped); the Muse pack does not remediate
        return unmasked_deserialize_properties(props, proxy_secrets)
    return unmasked_deserialize_properties(mask_engine_secrets(props))


def install_secret_masking() -> None:
    """Route pulumi-policy's analyzer through the mask. Idempotent."""
    if pulumi_policy_analyzer.deserialize_properties is not masking_deserialize_properties:
        pulumi_policy_analyzer.deserialize_properties = masking_deserialize_properties
