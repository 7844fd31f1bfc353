"""Secrets reach the pack's validators as Muse's `[secret]` marker, never as values.

pulumi-policy unwraps secret inputs before a validator sees them and has no public API to mask them, so this
module replaces `pulumi_policy.policy.deserialize_properties` with one that first masks the engine's secret
envelope. The one place that patches pulumi-policy (checked against 1.21.0;
tests/policy/test_secret_masking.py fails if its internals change).
Why: docs/governance.md#masking-secrets-in-the-policy-pack."""

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
