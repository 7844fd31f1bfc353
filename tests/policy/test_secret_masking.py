"""policy/secret_masking.py, the one module that patches pulumi-policy internals, against pulumi-policy.

These tests fail when the internals the patch relies on change shape (a new pulumi-policy version): the
analyzer must still look `deserialize_properties` up in `pulumi_policy.policy` at call time, the engine's
secret envelope must keep its signature, and the unpatched deserializer must still unwrap secrets (if it
stops doing so, the patch can go). The end-to-end test drives pulumi-policy's real gRPC analyzer servicer.
"""

from __future__ import annotations

import inspect
from typing import Any

import pulumi_policy
import pulumi_policy.policy
import pytest
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import proto
from pulumi_policy import EnforcementLevel, ResourceValidationArgs, ResourceValidationPolicy
from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY
from pulumi_policy.version import VERSION

from muse.governance.policies import SECRET_MARKER
from policy import secret_masking

SECRET_VALUE = "a-secret-value-no-check-may-see"  # pragma: allowlist secret


def envelope(value: Any) -> dict[str, Any]:
    return {SPECIAL_SIG_KEY: SPECIAL_SECRET_SIG, "value": value}


def test_installed_pulumi_policy_is_the_version_the_patch_was_checked_against() -> None:
    # A new version: re-read pulumi_policy/policy.py (Analyze, AnalyzeStack) and deserialize.py, then update
    # CHECKED_AGAINST and the pin in requirements-dev.txt together.
    assert VERSION == secret_masking.CHECKED_AGAINST


def test_no_public_pulumi_policy_api_masks_secrets() -> None:
    # The public names, as of the checked version. A new one may be the public way to keep secrets masked.
    assert set(pulumi_policy.__all__) == {
        "EnforcementLevel",
        "Policy",
        "PolicyComplianceFramework",
        "PolicyConfigSchema",
        "PolicyCustomTimeouts",
        "PolicyPack",
        "PolicyProviderResource",
        "PolicyResource",
        "PolicyResourceOptions",
        "ReportViolation",
        "ResourceRemediation",
        "ResourceValidation",
        "ResourceValidationArgs",
        "ResourceValidationPolicy",
        "Severity",
        "Secret",
        "StackValidation",
        "StackValidationArgs",
        "StackValidationPolicy",
    }


def test_the_engine_secret_envelope_has_pulumis_signature() -> None:
    # pulumi/pulumi sdk/go/common/resource/properties.go: SigKey and SecretSig.
    assert SPECIAL_SIG_KEY == "4dabf18193072939515e22adb298388d"
    assert SPECIAL_SECRET_SIG == "1b47061264138c4ac30d75fd1eb44270"


@pytest.mark.parametrize("method", ["Analyze", "AnalyzeStack"])
def test_the_analyzer_looks_the_deserializer_up_at_call_time(method: str) -> None:
    function = getattr(pulumi_policy.policy._PolicyAnalyzerServicer, method)
    assert function.__globals__ is vars(pulumi_policy.policy)
    assert "deserialize_properties" in function.__code__.co_names
    assert "json_format.MessageToDict(" in inspect.getsource(function)
    assert list(inspect.signature(secret_masking.unmasked_deserialize_properties).parameters) == [
        "props",
        "proxy_secrets",
    ]


def test_unpatched_pulumi_policy_still_hands_validators_the_secret_value() -> None:
    """The reason for the patch; when this fails, pulumi-policy masks by itself and the patch can go."""
    unmasked = secret_masking.unmasked_deserialize_properties({"kubeconfig": envelope(SECRET_VALUE)})
    assert unmasked["kubeconfig"] == SECRET_VALUE


def test_mask_replaces_every_secret_at_any_depth() -> None:
    wire = {"a": envelope("x"), "b": [{"c": envelope({"d": 1})}, "plain"], "e": {"f": "g"}}
    assert secret_masking.mask_engine_secrets(wire) == {
        "a": SECRET_MARKER,
        "b": [{"c": SECRET_MARKER}, "plain"],
        "e": {"f": "g"},
    }


def analyze_with_a_secret_input() -> list[dict[str, Any]]:
    """Run pulumi-policy's own gRPC servicer on an AnalyzeRequest with a secret input, as the engine sends
    it; returns what the validator saw."""
    seen: list[dict[str, Any]] = []

    def record(args: ResourceValidationArgs, report: Any) -> None:
        seen.append({"kubeconfig": args.props["kubeconfig"], "name": args.props["name"]})

    servicer = pulumi_policy.policy._PolicyAnalyzerServicer(
        "masking-test",
        "0.0.1",
        [ResourceValidationPolicy("record", "records what a validator sees", record)],
        EnforcementLevel.ADVISORY,
    )
    properties = struct_pb2.Struct()
    properties.update({"kubeconfig": envelope(SECRET_VALUE), "name": "cluster"})
    request = proto.AnalyzeRequest(
        type="pulumi:providers:kubernetes",
        properties=properties,
        urn="urn:pulumi:dev::muse::pulumi:providers:kubernetes::k8s",
        name="k8s",
    )
    assert SECRET_VALUE in json_format.MessageToJson(request)
    servicer.Analyze(request, None)
    return seen


def test_real_analyzer_servicer_gives_the_validator_the_marker() -> None:
    secret_masking.install_secret_masking()
    secret_masking.install_secret_masking()  # idempotent
    assert pulumi_policy.policy.deserialize_properties is secret_masking.masking_deserialize_properties
    assert analyze_with_a_secret_input() == [{"kubeconfig": SECRET_MARKER, "name": "cluster"}]


def test_real_analyzer_servicer_without_the_patch_leaks_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: the same request through the unpatched analyzer reaches the validator in clear."""
    monkeypatch.setattr(
        pulumi_policy.policy, "deserialize_properties", secret_masking.unmasked_deserialize_properties
    )
    assert analyze_with_a_secret_input() == [{"kubeconfig": SECRET_VALUE, "name": "cluster"}]
