"""Stack config: valid stacks load; every kind of bad config fails before any resource, in one message."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stack.config import ConfigError, StackConfig, load_stack_config
from stack.environments import ENVIRONMENTS
from stack.files import read_stack
from tests.stack.refusal import assert_refused_before_any_resource

VALID_DEV = {"environment": "dev", "tier": "development", "owner": "platform-team", "nameSuffix": "ab12"}


def _load(**changes: Any) -> StackConfig:
    values = {**VALID_DEV, **changes}
    return load_stack_config("test", {k: v for k, v in values.items() if v is not None})


def test_minimal_config_takes_documented_defaults() -> None:
    config = _load()
    assert config.location == "westeurope"
    assert config.cluster_tier == "Free"
    assert config.availability_zones == ()
    assert config.replicas == 1


def test_config_is_frozen() -> None:
    config = _load()
    with pytest.raises(ValueError, match="frozen"):
        config.replicas = 5  # type: ignore[misc]


def test_values_arrive_as_engine_strings() -> None:
    # The Pulumi engine passes every value as text; arrays as JSON.
    config = _load(
        userNodeCount="2", userNodeMaxCount="4", userNodeAutoscale="true", availabilityZones='["1","2"]'
    )
    assert config.user_node_count == 2
    assert config.user_node_autoscale is True
    assert config.availability_zones == ("1", "2")


def test_keys_may_carry_the_project_namespace() -> None:
    config = load_stack_config("t", {f"muse:{k}": v for k, v in VALID_DEV.items()})
    assert config.name_suffix == "ab12"


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_committed_stack_files_are_valid(stack: str) -> None:
    files = read_stack(stack)
    config = load_stack_config(stack, files.config)
    assert config.environment == stack


def test_prod_is_sized_up_from_dev() -> None:
    dev = load_stack_config("dev", read_stack("dev").config)
    prod = load_stack_config("prod", read_stack("prod").config)
    assert prod.cluster_tier == "Standard" and dev.cluster_tier == "Free"
    assert prod.user_node_autoscale and not dev.user_node_autoscale
    assert set(prod.availability_zones) == {"1", "2", "3"} and dev.availability_zones == ()
    # user pool sizes are per pool: prod has one per zone, dev one regional pool.
    assert prod.user_node_count * len(prod.availability_zones) > dev.user_node_count
    assert prod.user_node_min_count * len(prod.availability_zones) >= 3
    assert prod.system_node_count >= 3
    assert prod.replicas >= 2


# (stack, overrides, key named in the message, words the message must contain)
BAD_CONFIGS: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "dev",
        {"muse:environment": "qa"},
        "environment",
        f"not in stack/environments.txt ({', '.join(ENVIRONMENTS)})",
    ),
    ("dev", {"muse:environment": "Prod-1"}, "environment", "pattern"),
    ("dev", {"muse:tier": "prod"}, "tier", "'production' or 'development'"),
    ("dev", {"muse:tier": None}, "tier", "is required"),
    ("dev", {"muse:owner": None}, "owner", "is required"),
    ("dev", {"muse:owner": "<script>"}, "owner", "pattern"),
    ("dev", {"muse:location": "westeurop"}, "location", "not an Azure region"),
    ("dev", {"muse:userNodeVmSize": "D4s_v5"}, "userNodeVmSize", "not an Azure VM size"),
    ("dev", {"muse:systemNodeVmSize": "standard_d4s_v5"}, "systemNodeVmSize", "not an Azure VM size"),
    ("dev", {"muse:userNodeCount": 7, "muse:userNodeMaxCount": 3}, "userNodeCount", "outside"),
    ("dev", {"muse:userNodeMinCount": 5, "muse:userNodeMaxCount": 2}, "userNodeMinCount", "above"),
    (
        "dev",
        {"muse:userNodeAutoscale": True, "muse:userNodeMinCount": 0, "muse:userNodeCount": 0},
        "userNodeMinCount",
        "at least 1",
    ),
    ("dev", {"muse:replicas": 0}, "replicas", "greater than or equal to 1"),
    ("prod", {"muse:replicas": 1}, "replicas", "at least 2"),
    ("prod", {"muse:clusterTier": "Free"}, "clusterTier", "uptime SLA"),
    ("prod", {"muse:availabilityZones": []}, "availabilityZones", "zones"),
    ("dev", {"muse:availabilityZones": ["1", "4"]}, "availabilityZones", "'1', '2' or '3'"),
    ("dev", {"muse:availabilityZones": "1,2"}, "availabilityZones", "must be a list"),
    (
        "prod",
        {"muse:nameSuffix": "abcdefghijkl"},
        "nameSuffix",
        "Key Vault name 'kv-muse-prod-abcdefghijkl' is 25 characters",
    ),
    ("dev", {"muse:nameSuffix": "AB-12"}, "nameSuffix", "pattern"),
    ("dev", {"muse:kubernetesVersion": "latest"}, "kubernetesVersion", "not a Kubernetes minor version"),
    ("dev", {"muse:registrySku": "Classic"}, "registrySku", "'Basic', 'Standard' or 'Premium'"),
    ("dev", {"muse:apiServerAuthorizedIpRanges": ["10.0.0.0/33"]}, "apiServerAuthorizedIpRanges", "CIDR"),
    ("dev", {"muse:clusterAdminGroupObjectIds": ["not-a-guid"]}, "clusterAdminGroupObjectIds", "GUID"),
    ("dev", {"muse:imageTag": "has spaces"}, "imageTag", "digest"),
    ("dev", {"muse:imageImportPrincipalId": "Prod-Deployer"}, "imageImportPrincipalId", "GUID"),
    (
        "dev",
        {
            "muse:imagePushPrincipalId": "11111111-2222-4333-8444-555555555555",
            "muse:imageImportPrincipalId": "11111111-2222-4333-8444-555555555555",
        },
        "imageImportPrincipalId",
        "also imagePushPrincipalId",
    ),
    ("dev", {"muse:userNodeCont": 2}, "userNodeCont", "unknown key"),
    ("prod", {"muse:keyVaultPurgeProtection": False}, "keyVaultPurgeProtection", "set true"),
    ("dev", {"muse:keyVaultRetentionDays": 3}, "keyVaultRetentionDays", "greater than or equal to 7"),
    ("dev", {"muse:alertEmails": ["ops-at-example"]}, "alertEmails", "not an email address"),
    ("dev", {"muse:ingressHost": "Muse.Example.com"}, "ingressHost", "not a lowercase DNS name"),
    ("dev", {"muse:githubRepository": "just-a-name"}, "githubRepository", "pattern"),
    ("dev", {"muse:usernodecount": 2}, "usernodecount", "did you mean userNodeCount"),
    # HTTPS in prod: a host, its Key Vault certificate and how that gets there are required, each named.
    ("prod", {"muse:ingressHost": None}, "ingressHost", "the production tier serves HTTPS only"),
    ("prod", {"muse:ingressTlsCertificate": None}, "ingressTlsCertificate", "needs its certificate"),
    ("prod", {"muse:ingressTlsCertificateIssuer": None}, "ingressTlsCertificateIssuer", "Unknown"),
    ("prod", {"muse:ingressTlsCertificateIssuer": "Self"}, "ingressTlsCertificateIssuer", "not Self"),
    ("dev", {"muse:ingressHost": "muse-dev.example.com"}, "ingressTlsCertificate", "needs its certificate"),
    ("dev", {"muse:ingressTlsCertificate": "muse-tls"}, "ingressHost", "no host"),
    ("dev", {"muse:ingressTlsCertificate": "a.b"}, "ingressTlsCertificate", "pattern"),
    ("prod", {"muse:protectStatefulResources": False}, "protectStatefulResources", "set true"),
    # People and alerts: prod names the operators' group and at least one alert receiver.
    ("prod", {"muse:operatorsGroupObjectId": None}, "operatorsGroupObjectId", "az ad group show"),
    ("prod", {"muse:operatorsGroupObjectId": "ops-team"}, "operatorsGroupObjectId", "GUID"),
    ("prod", {"muse:alertEmails": []}, "alertEmails", "prod's alerts must reach someone"),
    # Near misses: a dropped letter gets "did you mean"; a foreign namespace that looks like ours too.
    ("dev", {"muse:userNodeCont": 2}, "userNodeCont", "did you mean userNodeCount?"),
    # VM sizes: the size-name grammar, and AKS's system pool rules (no B-series, at least 4 vCPUs).
    ("dev", {"muse:userNodeVmSize": "Standard_d2ds_v5"}, "userNodeVmSize", "not an Azure VM size name"),
    ("dev", {"muse:systemNodeVmSize": "Standard_B2ms"}, "systemNodeVmSize", "no B-series"),
    ("dev", {"muse:systemNodeVmSize": "Standard_D1_v2"}, "systemNodeVmSize", "at least 4 vCPUs"),
    # The former 2-vCPU dev default: below use-system-pools.md's 4-vCPU minimum.
    ("dev", {"muse:systemNodeVmSize": "Standard_D2ds_v5"}, "systemNodeVmSize", "at least 4 vCPUs"),
    # Live signals: prod is probed from outside, from enough places; the probe needs a host.
    ("prod", {"muse:availabilityTest": False}, "availabilityTest", "watched from outside"),
    ("dev", {"muse:availabilityTest": True}, "availabilityTest", "set ingressHost"),
    (
        "prod",
        {"muse:availabilityTestLocations": ["emea-nl-ams-azr"] * 5},
        "availabilityTestLocations",
        "at least 5 distinct",
    ),
    ("dev", {"muse:availabilityTestLocations": ["westeurope"]}, "availabilityTestLocations", "location id"),
    # SLO: an alert that can never fire, a ticket faster than the page, a number that is none.
    ("dev", {"muse:sloLatencyPercent": "60"}, "sloPageBurnRate", "could never fire"),
    ("dev", {"muse:sloTicketBurnRate": "20"}, "sloTicketBurnRate", "below sloPageBurnRate"),
    ("dev", {"muse:sloAvailabilityPercent": "three nines"}, "sloAvailabilityPercent", "number"),
    ("dev", {"muse:sloAvailabilityPercent": "100"}, "sloAvailabilityPercent", "less than 100"),
    # Webhooks: https only; a URL with a token must be a secret (encrypted in the stack file).
    ("dev", {"muse:alertWebhooks": ["http://hooks.example.com/x"]}, "alertWebhooks", "https://"),
    (
        "dev",
        {"muse:alertWebhooks": ["https://hooks.example.com/services/T0/B0/abcdefghijklmnopqrstuvwx"]},
        "alertWebhooks",
        "--secret",
    ),
    ("dev", {"muse:alertWebhooks": ["https://hooks.example.com/x?code=abc"]}, "alertWebhooks", "--secret"),
]


@pytest.mark.parametrize(
    ("stack", "overrides", "key", "words"), BAD_CONFIGS, ids=[c[2] + "-" + c[0] for c in BAD_CONFIGS]
)
def test_bad_config_fails_before_any_resource(
    stack: str, overrides: dict[str, Any], key: str, words: str
) -> None:
    assert_refused_before_any_resource(stack, overrides, key, words)


def test_every_problem_is_listed_in_one_message() -> None:
    with pytest.raises(ConfigError) as raised:
        load_stack_config(
            "prod",
            {
                "environment": "prod",
                "tier": "production",
                "nameSuffix": "x",  # too short
                "location": "mars",
                "replicas": "1",  # prod minimum
                "clusterTier": "Free",  # prod minimum
                "userNodeCount": "9",  # outside default 1..3
                "typoKey": "1",
            },
        )
    keys = [p.key for p in raised.value.problems]
    assert sorted(keys) == sorted(
        [
            "typoKey",
            "owner",
            "nameSuffix",
            "location",
            "replicas",
            "clusterTier",
            "availabilityZones",
            "userNodeCount",
            "keyVaultPurgeProtection",
            "ingressHost",
            "ingressTlsCertificate",
            "ingressTlsCertificateIssuer",
            "protectStatefulResources",
            "alertEmails",
            "operatorsGroupObjectId",
            "availabilityTest",
        ]
    )
    assert str(raised.value).count("\n  - muse:") == len(keys)


def test_a_broken_key_does_not_hide_rules_on_other_keys() -> None:
    # replicas fails to parse, yet the prod tier rule (which does not need replicas) still reports.
    with pytest.raises(ConfigError) as raised:
        _load(
            environment="prod",
            tier="production",
            replicas="many",
            clusterTier="Free",
            availabilityZones='["1","2","3"]',
            keyVaultPurgeProtection="true",
            protectStatefulResources="true",
            ingressHost="muse.example.org",
            ingressTlsCertificate="muse-tls",
            ingressTlsCertificateIssuer="Unknown",
            operatorsGroupObjectId="3f2b6c1e-9a4d-4e8f-b7c2-1d5e6f7a8b9c",
            alertEmails='["oncall@contoso.com"]',
            availabilityTest="true",
        )
    assert {p.key for p in raised.value.problems} == {"replicas", "clusterTier"}


def test_prod_without_tls_names_every_key_to_set_in_one_message() -> None:
    with pytest.raises(ConfigError) as raised:
        load_stack_config(
            "prod",
            {
                key: value
                for key, value in read_stack("prod").config.items()
                if key.removeprefix("muse:")
                not in ("ingressHost", "ingressTlsCertificate", "ingressTlsCertificateIssuer")
            },
        )
    assert [p.key for p in raised.value.problems] == [
        "ingressHost",
        "ingressTlsCertificate",
        "ingressTlsCertificateIssuer",
    ]
    assert "nothing was deployed" in str(raised.value)


def test_dev_may_serve_http_on_an_ip_or_https_on_a_host() -> None:
    dev = dict(read_stack("dev").config)
    assert load_stack_config("dev", dev).ingress_host == ""
    with_tls = load_stack_config(
        "dev",
        {
            **dev,
            "muse:ingressHost": "muse-dev.example.org",
            "muse:ingressTlsCertificate": "muse-dev-tls",
            "muse:ingressTlsCertificateIssuer": "Self",  # a self-signed certificate is fine outside prod
        },
    )
    assert (with_tls.ingress_host, with_tls.ingress_tls_certificate) == (
        "muse-dev.example.org",
        "muse-dev-tls",
    )


def _problems(**changes: Any) -> dict[str, str]:
    values = {**VALID_DEV, **changes}
    try:
        load_stack_config("test", values)
    except ConfigError as error:
        return {p.key: p.message for p in error.problems}
    return {}


def test_a_key_in_a_namespace_that_looks_like_ours_is_reported_not_lost() -> None:
    problems = _problems(**{"mues:userNodeCount": "2", "Muse:replicas": "2"})
    assert "did you mean muse:userNodeCount?" in problems["mues:userNodeCount"]
    assert "did you mean muse:replicas?" in problems["Muse:replicas"]
    # ...and shown as written in the one message (not as muse:mues:...).
    with pytest.raises(ConfigError, match=r"\n  - mues:userNodeCount: is in namespace 'mues'"):
        load_stack_config("test", {**VALID_DEV, "mues:userNodeCount": "2"})


def test_negative_control_provider_namespaces_are_not_near_misses() -> None:
    # azure-native's own `location` is the provider's setting, not a typo of ours.
    assert _problems(**{"azure-native:location": "westeurope", "kubernetes:context": "x"}) == {}


def test_near_miss_advice_only_for_near_misses() -> None:
    assert _problems(userNodeCont="2")["userNodeCont"].endswith("did you mean userNodeCount?")
    # Negative control: a key like none of ours is told to go, not matched to something far away.
    assert _problems(colour="blue")["colour"].endswith("remove it or declare it in Pulumi.yaml")


@pytest.mark.parametrize(
    "size", ["Standard_D4ds_v5", "Standard_D8ds_v5", "Standard_E8-4ds_v5", "Standard_F4s_v2"]
)
def test_negative_control_system_pool_sizes_aks_takes(size: str) -> None:
    assert _problems(systemNodeVmSize=size) == {}


def test_negative_control_b_series_is_fine_for_a_user_pool() -> None:
    assert _problems(userNodeVmSize="Standard_B2ms") == {}


@pytest.mark.parametrize(
    "size", ["Standard_NC24ads_A100_v4", "Standard_D2ds_v5", "Standard_M416ms_v2", "Standard_DC2as_v5"]
)
def test_negative_control_the_size_grammar_takes_real_size_names(size: str) -> None:
    assert _problems(userNodeVmSize=size) == {}


def test_negative_control_prod_with_a_group_and_a_receiver_passes_the_people_rules() -> None:
    values = read_stack("prod").config
    config = load_stack_config(
        "prod",
        {
            **values,
            "muse:operatorsGroupObjectId": "3f2b6c1e-9a4d-4e8f-b7c2-1d5e6f7a8b9c",
            "muse:alertEmails": '["oncall@contoso.com"]',
        },
    )
    assert config.alert_emails == ("oncall@contoso.com",)


def test_every_receiver_kind_counts_for_the_prod_rule() -> None:
    # alert_receivers counts every kind: a webhook alone satisfies prod; neither kind fails it.
    from stack import config as config_module

    assert config_module.alert_receivers({"alert_emails": (), "alert_webhooks": ()}) == 0
    assert config_module.alert_receivers({"alert_emails": ("a@contoso.com",), "alert_webhooks": ()}) == 1
    assert config_module.alert_receivers({"alert_emails": (), "alert_webhooks": ("https://x",)}) == 1
    # Every StackConfig field that lists receivers is a kind the rule counts (a new kind cannot be missed).
    receiver_fields = {
        name
        for name in StackConfig.model_fields
        if name.startswith("alert_") and name.endswith(("_emails", "_webhooks"))
    }
    assert receiver_fields == set(config_module._RECEIVER_FIELDS)


def test_an_unquoted_version_is_told_to_be_quoted() -> None:
    # What the engine hands over for `muse:kubernetesVersion: 1.30` is "1.3"; the stack file shows the number.
    with pytest.raises(ConfigError) as raised:
        load_stack_config(
            "test", {**VALID_DEV, "kubernetesVersion": "1.3"}, stack_file={"muse:kubernetesVersion": 1.3}
        )
    told = [p.message for p in raised.value.problems if p.key == "kubernetesVersion"]
    assert any("quote it" in m and "1.30 is read as 1.3" in m for m in told), told


def test_negative_control_quoted_text_and_real_numbers_pass() -> None:
    stack_file = {"muse:kubernetesVersion": "1.30", "muse:replicas": 2, "muse:userNodeAutoscale": True}
    config = load_stack_config("test", {**VALID_DEV, "kubernetesVersion": "1.36"}, stack_file=stack_file)
    assert config.kubernetes_version == "1.36"


def test_the_stack_file_reader_keeps_the_number_for_the_check(tmp_path: Any) -> None:
    import shutil

    from stack.config import unquoted_numbers
    from stack.files import REPO_ROOT

    shutil.copy(REPO_ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "Pulumi.x.yaml").write_text("config:\n  muse:kubernetesVersion: 1.30\n  muse:owner: team\n")
    files = read_stack("x", tmp_path)
    assert files.config["muse:kubernetesVersion"] == "1.3"  # what the engine would pass too
    assert [p.key for p in unquoted_numbers(files.stack_file_config)] == ["kubernetesVersion"]
    # The message quotes what the person wrote, not the number YAML kept.
    [problem] = unquoted_numbers(files.stack_file_config, files.written)
    assert problem.message.endswith('quote it: "1.30"'), problem.message
    # Negative control: without the source text only the truncated number is left to print.
    [truncated] = unquoted_numbers(files.stack_file_config)
    assert 'quote it: "1.3"' in truncated.message


def test_a_webhook_with_a_token_is_accepted_as_a_secret_and_a_plain_one_without() -> None:
    dev = dict(read_stack("dev").config)
    slack = "https://hooks.example.com/services/T0/B0/abcdefghijklmnopqrstuvwx"
    as_secret = load_stack_config(
        "dev",
        {**dev, "muse:alertWebhooks": json.dumps([slack])},
        secret_keys=frozenset({"muse:alertWebhooks"}),
    )
    assert as_secret.alert_webhooks == (slack,)
    # A URL without a credential (e.g. an Entra-ID-secured endpoint) may stay plain text.
    plain = load_stack_config("dev", {**dev, "muse:alertWebhooks": '["https://oncall.example.com/alerts"]'})
    assert plain.alert_webhooks == ("https://oncall.example.com/alerts",)
    # The same token URL as plain text is refused (the negative control of the secret check).
    with pytest.raises(ConfigError, match="--secret"):
        load_stack_config("dev", {**dev, "muse:alertWebhooks": json.dumps([slack])})
