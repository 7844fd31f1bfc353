"""The stack configuration: every `muse:*` key, read once, validated before any resource exists.

`Pulumi.yaml` declares the same keys (type, description, default) for the Pulumi CLI; a test keeps the two
in step. Validation collects *every* problem: per-key type and format errors, unknown keys (typos), and the
rules that span keys (node counts, names Azure would reject, prod minimums), and raises one `ConfigError`
that names each key and says what to set.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from components.muse_workload import canary_load
from rbac import github_subjects
from stack import environments, kubernetes_support, naming

PROJECT = "muse"

# Public Azure regions (`az account list-locations --query "[].name"`), so a typo such as `westeurop`
# fails here instead of twenty minutes into `pulumi up`.
AZURE_REGIONS = frozenset(
    [
        "australiacentral",
        "australiacentral2",
        "australiaeast",
        "australiasoutheast",
        "austriaeast",
        "belgiumcentral",
        "brazilsouth",
        "brazilsoutheast",
        "canadacentral",
        "canadaeast",
        "centralindia",
        "centralus",
        "chilecentral",
        "denmarkeast",
        "eastasia",
        "eastus",
        "eastus2",
        "francecentral",
        "francesouth",
        "germanynorth",
        "germanywestcentral",
        "indonesiacentral",
        "israelcentral",
        "italynorth",
        "japaneast",
        "japanwest",
        "koreacentral",
        "koreasouth",
        "malaysiawest",
        "mexicocentral",
        "newzealandnorth",
        "northcentralus",
        "northeurope",
        "norwayeast",
        "norwaywest",
        "polandcentral",
        "qatarcentral",
        "southafricanorth",
        "southafricawest",
        "southcentralus",
        "southeastasia",
        "southindia",
        "spaincentral",
        "swedencentral",
        "swedensouth",
        "switzerlandnorth",
        "switzerlandwest",
        "uaecentral",
        "uaenorth",
        "uksouth",
        "ukwest",
        "westcentralus",
        "westeurope",
        "westindia",
        "westus",
        "westus2",
        "westus3",
    ]
)

_VM_SIZE = re.compile(r"^Standard_[A-Z]{1,4}[0-9]+(-[0-9]+)?[a-z]*(_[A-Za-z0-9]+)*$")
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_CIDR = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(/(\d{1,2}))?$")
_IMAGE_TAG = re.compile(r"^(sha256:[0-9a-f]{64}|[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$")
_KUBERNETES_MINOR = re.compile(r"^1\.[0-9]{1,2}$")
# Planned maintenance (Microsoft.ContainerService/managedClusters/maintenanceConfigurations): `startTime`
# "Accepted values are from '00:00' to '23:59'", `utcOffset` "+/-HH:mm" (the API's descriptions); real offsets
# run from -12:00 to +14:00 in steps of 15 minutes.
_CLOCK_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
_UTC_OFFSET = re.compile(r"^([+-])([0-9]{2}):(00|15|30|45)$")

# The marked placeholder a committed stack file may carry for an Entra object id it cannot know (the
# operators' group of the organisation that deploys it): the Nil UUID, "all 128 bits set to zero" (RFC 9562
# section 5.9), which Entra never assigns. Config accepts it, so `make plan STACK=prod` works on a fresh
# clone; every real deploy of prod refuses it (scripts/ci/placeholders.py), before the approval.
PLACEHOLDER_OBJECT_ID = "00000000-0000-0000-0000-000000000000"

# Azure's VM size grammar (learn.microsoft.com/azure/virtual-machines/vm-naming-conventions):
# [Family] + [Sub-family]* + [# of vCPUs] + [Constrained vCPUs]* + [Additive Features] + [Accelerator Type]* +
# [Version], e.g. Standard_D4ds_v5, Standard_E8-4ds_v5, Standard_NC24ads_A100_v4. Family letters are upper
# case, the additive features (a, b, d, i, l, m, p, s, t, C, NP) follow the vCPU count.
_VM_SIZE_PARTS = re.compile(
    r"^Standard_(?P<family>[A-Z]{1,4})(?P<vcpus>[0-9]+)(-[0-9]+)?(?P<features>[a-zA-Z]*)"
    r"(_(?P<accelerator>[A-Z][A-Za-z0-9]*))?(_(?P<version>v[0-9]+))?(_Promo)?$"
)
# AKS system pools: "System node pools require a VM SKU of at least 4 vCPUs and 4 GB of memory" and "B series
# VMs aren't supported for system node pools" (MicrosoftDocs/azure-aks-docs articles/aks/use-system-pools.md,
# "System and user node pools", commit a75aabed22a97f8ef63ae6bb23b4bba92d1d7319). The name carries the vCPU
# count; memory and existence only Azure knows: scripts/stack_command.py and scripts/bootstrap.sh ask
# `az vm list-skus` for them.
SYSTEM_POOL_MIN_VCPUS = 4
BURSTABLE_FAMILY = "B"


def _region(value: str) -> str:
    if value not in AZURE_REGIONS:
        raise ValueError(f"'{value}' is not an Azure region name (e.g. westeurope, swedencentral)")
    return value


def _vm_size(value: str) -> str:
    if not (_VM_SIZE.match(value) and _VM_SIZE_PARTS.match(value)):
        raise ValueError(
            f"'{value}' is not an Azure VM size name: "
            "Standard_<family><vCPUs>[features][_accelerator][_v<n>], e.g. Standard_D4ds_v5 "
            "(learn.microsoft.com/azure/virtual-machines/vm-naming-conventions)"
        )
    return value


def vm_size_parts(size: str) -> tuple[str, int]:
    """(family, vCPUs) of a size name that passed `_vm_size`, e.g. ("D", 4) for Standard_D4ds_v5."""
    match = _VM_SIZE_PARTS.match(size)
    if match is None:
        raise ValueError(f"'{size}' is not an Azure VM size name")
    return match.group("family"), int(match.group("vcpus"))


def _guid(value: str) -> str:
    if not _GUID.match(value):
        raise ValueError(f"'{value}' is not a lowercase GUID (an Entra ID object id)")
    return value


def _optional_guid(value: str) -> str:
    return value and _guid(value)


def _cidr(value: str) -> str:
    match = _CIDR.match(value)
    octets_ok = match is not None and all(int(match.group(i)) <= 255 for i in range(1, 5))
    prefix_ok = match is not None and (match.group(6) is None or int(match.group(6)) <= 32)
    if not (octets_ok and prefix_ok):
        raise ValueError(f"'{value}' is not an IPv4 address or CIDR range (e.g. 203.0.113.0/24)")
    return value


_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def _hostname(value: str) -> str:
    if value and not _HOSTNAME.match(value):
        raise ValueError(f"'{value}' is not a lowercase DNS name (e.g. muse.example.com)")
    return value


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError(f"'{value}' is not an email address")
    return value


def _kubernetes_minor(value: str) -> str:
    if not _KUBERNETES_MINOR.match(value):
        raise ValueError(
            f"'{value}' is not a Kubernetes minor version such as 1.36: AKS runs the minor's latest patch, "
            "the auto-upgrade channel moves patches, and AKS cannot create a cluster on a removed patch"
        )
    return value


def _clock_time(value: str) -> str:
    if not _CLOCK_TIME.match(value):
        raise ValueError(f"'{value}' is not a time of day HH:MM from 00:00 to 23:59 (e.g. 22:00)")
    return value


def _utc_offset(value: str) -> str:
    match = _UTC_OFFSET.match(value)
    minutes = 0 if match is None else int(match.group(2)) * 60 + int(match.group(3))
    if match is None or (match.group(1) == "-" and minutes > 12 * 60) or minutes > 14 * 60:
        raise ValueError(
            f"'{value}' is not a UTC offset +HH:MM or -HH:MM from -12:00 to +14:00 (e.g. +01:00)"
        )
    return value


def _image_tag(value: str) -> str:
    if not _IMAGE_TAG.match(value):
        raise ValueError(f"'{value}' is neither an image tag nor a digest of the form sha256:<64 hex>")
    return value


# Standard availability test locations (learn.microsoft.com/azure/azure-monitor/app/availability, "Location
# population tags": the ids a web test's `locations[].Id` takes).
TEST_LOCATIONS = {
    "emea-nl-ams-azr": "West Europe",
    "emea-gb-db3-azr": "North Europe",
    "emea-fr-pra-edge": "France Central",
    "emea-ch-zrh-edge": "France South",
    "emea-se-sto-edge": "UK West",
    "emea-ru-msa-edge": "UK South",
    "emea-au-syd-edge": "Australia East",
    "us-va-ash-azr": "East US",
    "us-fl-mia-edge": "Central US",
    "us-il-ch1-azr": "North Central US",
    "us-tx-sn1-azr": "South Central US",
    "us-ca-sjc-azr": "West US",
    "apac-hk-hkn-azr": "East Asia",
    "apac-sg-sin-azr": "Southeast Asia",
    "apac-jp-kaw-edge": "Japan East",
    "latam-br-gru-edge": "Brazil South",
}
DEFAULT_TEST_LOCATIONS = (
    "emea-nl-ams-azr",
    "emea-gb-db3-azr",
    "emea-fr-pra-edge",
    "emea-se-sto-edge",
    "us-va-ash-azr",
)
MIN_TEST_LOCATIONS = 5  # Azure Monitor recommends at least five locations so one location's blip is noise


def _test_location(value: str) -> str:
    if value not in TEST_LOCATIONS:
        raise ValueError(f"'{value}' is not an availability test location id (e.g. emea-nl-ams-azr)")
    return value


_URL = re.compile(r"^https://(?P<userinfo>[^@/]+@)?(?P<host>[A-Za-z0-9.-]+)(:[0-9]{1,5})?(?P<rest>/[^\s]*)?$")
# A path segment this long of token characters is a credential (Teams, Slack and PagerDuty URLs carry one).
_TOKEN_SEGMENT = re.compile(r"[A-Za-z0-9_-]{20,}")


def _https_url(value: str) -> str:
    if not _URL.match(value):
        raise ValueError(f"'{value[:40]}...' is not an https:// URL")
    return value


def embeds_token(url: str) -> bool:
    """Whether a webhook URL carries a credential: user info, a query string, or a long opaque path
    segment."""
    match = _URL.match(url)
    if match is None:
        return False
    rest = match.group("rest") or ""
    return bool(match.group("userinfo")) or "?" in rest or bool(_TOKEN_SEGMENT.search(rest))


def _optional_image_tag(value: str) -> str:
    return _image_tag(value) if value else value


Region = Annotated[str, AfterValidator(_region)]
VmSize = Annotated[str, AfterValidator(_vm_size)]
ObjectId = Annotated[str, AfterValidator(_guid)]
IpRange = Annotated[str, AfterValidator(_cidr)]
Zone = Literal["1", "2", "3"]
NodeCount = Annotated[int, Field(ge=0, le=1000)]
DayOfWeek = Literal["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
ClockTime = Annotated[str, AfterValidator(_clock_time)]
# AKS: "use a maintenance window with a duration of four hours or more" when auto-upgrade uses it
# (learn.microsoft.com/azure/aks/planned-maintenance); the API allows 4-24 (`durationHours`).
WindowHours = Annotated[int, Field(ge=4, le=24)]


class StackConfig(BaseModel):
    """Typed view of one stack's `muse:*` config. Field aliases are the Pulumi config keys."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @property
    def production(self) -> bool:
        """The stack's declared tier is production (what every environment-dependent rule reads)."""
        return self.tier == PRODUCTION

    environment: Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{1,9}$")] = Field(
        alias="environment",
        description=(
            "Environment this stack deploys, one of stack/environments.txt (e.g. dev, prod); names and tags "
            "carry it. What rules apply is muse:tier, never this name."
        ),
    )
    tier: Literal["production", "development"] = Field(
        alias="tier",
        description=(
            "What the stack is: production (uptime SLA, zones, HTTPS, purge protection, protected state, "
            "approval before deploy) or development. Every environment-dependent rule reads this."
        ),
    )
    owner: Annotated[str, Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9@._ -]*$")] = (
        Field(alias="owner", description="Team accountable for the stack; becomes the `owner` tag.")
    )
    name_suffix: Annotated[str, Field(pattern=r"^[a-z0-9]{2,16}$")] = Field(
        alias="nameSuffix",
        description=(
            "Lowercase letters/digits that make the global names (registry, Key Vault) unique; "
            "Key Vault's 24-character limit caps it at 11 in prod."
        ),
    )
    location: Region = Field(default="westeurope", alias="location", description="Azure region.")
    kubernetes_version: Annotated[str, AfterValidator(_kubernetes_minor)] = Field(
        default="1.36",
        alias="kubernetesVersion",
        description=(
            "Kubernetes minor a new cluster is created with (e.g. 1.36); AKS must still support it. "
            "Afterwards the upgrade channel moves the cluster and the program leaves the version alone."
        ),
    )
    cluster_tier: Literal["Free", "Standard", "Premium"] = Field(
        default="Free",
        alias="clusterTier",
        description="AKS pricing tier; Standard gives the uptime SLA (use it in prod).",
    )
    upgrade_channel: Literal["patch", "stable", "rapid"] = Field(
        default="stable",
        alias="upgradeChannel",
        description=(
            "AKS auto-upgrade channel, which owns the cluster's version: stable (latest patch of minor N-1), "
            "rapid (of minor N) or patch (latest patch of the current minor; minors by `az aks upgrade`)."
        ),
    )
    maintenance_utc_offset: Annotated[str, AfterValidator(_utc_offset)] = Field(
        default="+00:00",
        alias="maintenanceUtcOffset",
        description="UTC offset (+HH:MM) of the maintenance windows' days and start times; a fixed offset.",
    )
    auto_upgrade_window_day: DayOfWeek = Field(
        default="Sunday",
        alias="autoUpgradeWindowDay",
        description="Weekday on which the auto-upgrade channel may start upgrading the cluster.",
    )
    auto_upgrade_window_start_time: ClockTime = Field(
        default="00:00",
        alias="autoUpgradeWindowStartTime",
        description="HH:MM (at maintenanceUtcOffset) the weekly cluster auto-upgrade window opens.",
    )
    auto_upgrade_window_duration_hours: WindowHours = Field(
        default=6,
        alias="autoUpgradeWindowDurationHours",
        description="Hours the cluster auto-upgrade window stays open (4-24).",
    )
    node_os_upgrade_window_day: DayOfWeek = Field(
        default="Saturday",
        alias="nodeOsUpgradeWindowDay",
        description="Weekday on which AKS may roll the weekly node image onto the nodes.",
    )
    node_os_upgrade_window_start_time: ClockTime = Field(
        default="00:00",
        alias="nodeOsUpgradeWindowStartTime",
        description="HH:MM (at maintenanceUtcOffset) the weekly node OS upgrade window opens.",
    )
    node_os_upgrade_window_duration_hours: WindowHours = Field(
        default=4,
        alias="nodeOsUpgradeWindowDurationHours",
        description="Hours the node OS upgrade window stays open (4-24).",
    )
    system_node_vm_size: VmSize = Field(
        default="Standard_D4ds_v5", alias="systemNodeVmSize", description="VM size of the system pool."
    )
    system_node_count: Annotated[int, Field(ge=1, le=100)] = Field(
        default=1, alias="systemNodeCount", description="Nodes in the system pool (critical add-ons only)."
    )
    user_node_vm_size: VmSize = Field(
        default="Standard_D2ds_v5", alias="userNodeVmSize", description="VM size of the Muse (user) pool."
    )
    user_node_count: NodeCount = Field(
        default=1,
        alias="userNodeCount",
        description="Initial node count of each user pool (one pool per zone with availabilityZones).",
    )
    user_node_min_count: NodeCount = Field(
        default=1,
        alias="userNodeMinCount",
        description="Autoscaler minimum of each user pool (one pool per zone with availabilityZones).",
    )
    user_node_max_count: NodeCount = Field(
        default=3,
        alias="userNodeMaxCount",
        description="Autoscaler maximum of each user pool (one pool per zone with availabilityZones).",
    )
    user_node_autoscale: bool = Field(
        default=False,
        alias="userNodeAutoscale",
        description="Let the cluster autoscaler size the user pools.",
    )
    availability_zones: tuple[Zone, ...] = Field(
        default=(),
        alias="availabilityZones",
        description='Zones of the system pool, and one user pool per zone, e.g. ["1","2","3"].',
    )
    registry_sku: Literal["Basic", "Standard", "Premium"] = Field(
        default="Basic",
        alias="registrySku",
        description="ACR SKU; Premium adds zone redundancy and retention policies.",
    )
    api_server_authorized_ip_ranges: tuple[IpRange, ...] = Field(
        default=(),
        alias="apiServerAuthorizedIpRanges",
        description="CIDRs allowed to reach the AKS API server; empty = any (Entra ID still required).",
    )
    cluster_admin_group_object_ids: tuple[ObjectId, ...] = Field(
        default=(),
        alias="clusterAdminGroupObjectIds",
        description="Entra ID groups that get cluster-admin through AKS-managed Entra integration.",
    )
    operators_group_object_id: Annotated[str, AfterValidator(_optional_guid)] = Field(
        default="",
        alias="operatorsGroupObjectId",
        description=(
            "Object id of the Entra ID group of the people who operate this stack by hand (docs/runbook.md); "
            "the bootstrap grants it the cluster's user credential and Kubernetes read/write. Required in "
            f"prod; {PLACEHOLDER_OBJECT_ID} marks a placeholder that real deploys refuse."
        ),
    )
    replicas: Annotated[int, Field(ge=1, le=50)] = Field(
        default=1, alias="replicas", description="Muse pod replicas (prod needs at least 2)."
    )
    ingress_host: Annotated[str, AfterValidator(_hostname)] = Field(
        default="",
        alias="ingressHost",
        description=(
            "DNS name Muse is served on over HTTPS (HTTP redirects to it); empty = plain HTTP on the "
            "Gateway's public IP (dev only)."
        ),
    )
    key_vault_purge_protection: bool = Field(
        default=False,
        alias="keyVaultPurgeProtection",
        description="Purge protection on the Key Vault (irreversible; a deleted vault's name stays taken).",
    )
    key_vault_retention_days: Annotated[int, Field(ge=7, le=90)] = Field(
        default=7,
        alias="keyVaultRetentionDays",
        description="Days a deleted Key Vault or secret stays recoverable (7-90).",
    )
    github_repository: Annotated[str, Field(pattern=r"^$|^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$")] = Field(
        default="",
        alias="githubRepository",
        description="owner/name of the GitHub repository whose workflows deploy this stack (OIDC subject).",
    )
    github_subject_prefixes: tuple[str, ...] = Field(
        default=(),
        alias="githubSubjectPrefixes",
        description=(
            "OIDC subject prefixes of githubRepository's tokens, as `gh api repos/OWNER/REPO/actions/oidc/"
            "customization/sub --jq .sub_claim_prefix` prints them (repo:OWNER@OWNER_ID/REPO@REPO_ID, or "
            "repo:OWNER/REPO for a legacy repository); a second one only while moving between formats."
        ),
    )
    image_push_principal_id: Annotated[str, AfterValidator(_optional_guid)] = Field(
        default="",
        alias="imagePushPrincipalId",
        description=(
            "Object id of the identity CI pushes images with (bootstrap output stackConfig, dev only: prod "
            "imports); gets AcrPush on this stack's registry."
        ),
    )
    image_import_principal_id: Annotated[str, AfterValidator(_optional_guid)] = Field(
        default="",
        alias="imageImportPrincipalId",
        description=(
            "Object id of the identity that imports this stack's images into another registry (bootstrap "
            "output stackConfig, dev only: prod's deployer); gets Reader on this stack's registry only."
        ),
    )
    log_retention_days: Annotated[int, Field(ge=30, le=730)] = Field(
        default=30, alias="logRetentionDays", description="Log Analytics retention in days (30-730)."
    )
    alert_emails: tuple[Annotated[str, AfterValidator(_email)], ...] = Field(
        default=(),
        alias="alertEmails",
        description=(
            "Email addresses the alert action group notifies; prod needs at least one alert receiver (an "
            "address under example.com is a placeholder that real deploys refuse)."
        ),
    )
    image_tag: Annotated[str, AfterValidator(_image_tag)] = Field(
        default="latest",
        alias="imageTag",
        description="Muse image tag or digest (sha256:...) to deploy; CI sets it to the pushed digest.",
    )
    max_replicas: Annotated[int, Field(ge=1, le=50)] = Field(
        default=3,
        alias="maxReplicas",
        description="Upper bound of the Muse HorizontalPodAutoscaler; its lower bound is `replicas`.",
    )
    canary_steps: tuple[Annotated[int, Field(ge=1, le=100)], ...] = Field(
        # Two steps: a first small share, then all; each also costs its weight move and last check
        # (canary_step_budget_seconds), and the deploy job's deadline must hold them (_canary).
        default=(10, 100),
        alias="canarySteps",
        description=(
            "Percent of the Gateway's traffic a release's candidate gets, step by step (at least two, "
            "strictly increasing, ending at 100); scripts/ci/canary.py gates each step on the candidate's "
            "live metrics."
        ),
    )
    canary_step_seconds: Annotated[int, Field(ge=60, le=1800)] = Field(
        default=240,
        alias="canaryStepSeconds",
        description=(
            "Seconds each canary step lasts before the next (at least 240: the longest the gate may take to "
            "stop a failing candidate; it checks every 30 s); all steps, each with 90 s for its weight move, "
            "30 s for its last check and 30 s for that check's queries, must fit the release's deadline with "
            "60 s to spare (two steps: at most 480 s)."
        ),
    )
    canary_image_tag: Annotated[str, AfterValidator(_optional_image_tag)] = Field(
        default="",
        alias="canaryImageTag",
        description=(
            "Image tag or digest on trial next to the stable one during a release; set and cleared by "
            "scripts/ci/deploy.py, empty = no canary."
        ),
    )
    canary_weight: Annotated[int, Field(ge=0, le=100)] = Field(
        default=0,
        alias="canaryWeight",
        description="Percent of the traffic the canary image gets (0-100); set by scripts/ci/deploy.py.",
    )
    rollout_timeout_minutes: Annotated[int, Field(ge=5, le=60)] = Field(
        default=10,
        alias="rolloutTimeoutMinutes",
        description=(
            "Minutes `pulumi up` waits for the Muse Deployment to become ready before failing (5-60; at "
            "least the Deployment's 5-minute progress deadline)."
        ),
    )
    ingress_tls_certificate: Annotated[str, Field(pattern=r"^$|^[A-Za-z0-9-]{1,127}$")] = Field(
        default="",
        alias="ingressTlsCertificate",
        description=(
            "Name of the certificate for ingressHost in the stack's Key Vault, which the Gateway serves "
            "(scripts/tls-certificate.sh puts it there); required with ingressHost."
        ),
    )
    ingress_tls_certificate_issuer: Annotated[str, Field(pattern=r"^$|^[A-Za-z0-9-]{1,127}$")] = Field(
        default="",
        alias="ingressTlsCertificateIssuer",
        description=(
            "Key Vault issuer of that certificate: Unknown = a CA's certificate imported (renewed by "
            "importing again), a DigiCert/GlobalSign issuer configured in the vault (Key Vault renews it), "
            "Self = self-signed (not in prod); required with ingressHost."
        ),
    )
    slo_availability_percent: Annotated[float, Field(gt=90, lt=100)] = Field(
        default=99.9,
        alias="sloAvailabilityPercent",
        description=(
            "Availability SLO: percent of requests answered without a 5xx over sloWindowDays (90-100)."
        ),
    )
    slo_latency_percent: Annotated[float, Field(gt=50, lt=100)] = Field(
        default=99.0,
        alias="sloLatencyPercent",
        description=(
            "Latency SLO: percent of requests answered within sloLatencyThresholdMs (95 = p95 under it)."
        ),
    )
    slo_latency_threshold_ms: Annotated[int, Field(ge=1, le=10000)] = Field(
        default=250,
        alias="sloLatencyThresholdMs",
        description="Latency SLO threshold in ms; a bucket bound of the service's latency histogram.",
    )
    slo_window_days: Annotated[int, Field(ge=7, le=31)] = Field(
        default=30, alias="sloWindowDays", description="SLO and error-budget window in days (7-31)."
    )
    slo_page_burn_rate: Annotated[float, Field(gt=1, le=1000)] = Field(
        default=14.4,
        alias="sloPageBurnRate",
        description=(
            "Burn rate (x budget) over 1 h and 5 min that pages (14.4 = 2 % of 30 days' budget in 1 h)."
        ),
    )
    slo_ticket_burn_rate: Annotated[float, Field(gt=1, le=1000)] = Field(
        default=6.0,
        alias="sloTicketBurnRate",
        description="Burn rate over 6 h and 30 min that opens a ticket (6 = 5 % of 30 days' budget in 6 h).",
    )
    alert_webhooks: tuple[Annotated[str, AfterValidator(_https_url)], ...] = Field(
        default=(),
        alias="alertWebhooks",
        description=(
            "HTTPS webhook URLs the action group calls (Teams/Slack/PagerDuty-compatible, common alert "
            "schema); set with --secret when a URL embeds a token."
        ),
    )
    availability_test: bool = Field(
        default=False,
        alias="availabilityTest",
        description=(
            "External standard availability test of https://<ingressHost>/readyz (prod must set true)."
        ),
    )
    availability_test_locations: tuple[Annotated[str, AfterValidator(_test_location)], ...] = Field(
        default=DEFAULT_TEST_LOCATIONS,
        alias="availabilityTestLocations",
        description="Availability test locations (Azure Monitor location ids, at least 5).",
    )
    maintenance_suppress_alerts: bool = Field(
        default=False,
        alias="maintenanceSuppressAlerts",
        description=(
            "Planned maintenance: an alert processing rule drops notifications while true (alerts still "
            "fire and are listed). Set for the maintenance, unset after."
        ),
    )
    protect_stateful_resources: bool = Field(
        default=False,
        alias="protectStatefulResources",
        description=(
            "Pulumi protect on the Key Vault, registry and Log Analytics workspace "
            "(prod must set true; docs/runbook.md says how to remove them on purpose)."
        ),
    )


# Keys whose Pulumi.yaml type is `array`: the Pulumi engine hands them to the program as JSON text.
_ARRAY_FIELDS = frozenset(
    name for name, field in StackConfig.model_fields.items() if get_origin(field.annotation) is tuple
)


@dataclass(frozen=True)
class Problem:
    key: str
    message: str

    def __str__(self) -> str:
        # A key of another namespace (a near miss of ours) is shown as it is written.
        key = self.key if ":" in self.key else f"{PROJECT}:{self.key}"
        return f"  - {key}: {self.message}"


class ConfigError(ValueError):
    """Every problem of one stack's config, in one message."""

    def __init__(self, stack: str, problems: list[Problem]) -> None:
        self.stack = stack
        self.problems = problems
        lines = "\n".join(str(p) for p in problems)
        super().__init__(
            f"Stack '{stack}' has {len(problems)} configuration problem(s); nothing was deployed:\n{lines}\n"
            f"Fix them with `pulumi config set --stack {stack} {PROJECT}:<key> <value>` "
            f"(or edit Pulumi.{stack}.yaml); every key is described in Pulumi.yaml."
        )


def _key_of(field_name: str) -> str:
    alias = StackConfig.model_fields[field_name].alias
    return alias if alias is not None else field_name


def _hint(field_name: str) -> str:
    description = StackConfig.model_fields[field_name].description or ""
    return f" ({description})" if description else ""


def _describe(error: Any) -> str:
    """Pydantic's message, with the offending value, in words a stack owner understands."""
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "literal_error":
        return f"got {error['input']!r}; {message[0].lower()}{message[1:]}"
    if error["type"] in {"value_error", "missing"}:
        return message
    return f"got {error['input']!r}; {message[0].lower()}{message[1:]}"


def _parse_field(field_name: str, raw: Any) -> Any:
    field = StackConfig.model_fields[field_name]
    if field_name in _ARRAY_FIELDS and isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f'must be a list, e.g. ["1", "2"] (got {raw!r})') from exc
        if not isinstance(raw, list):
            raise ValueError(f'must be a list, e.g. ["1", "2"] (got {raw!r})')
    annotation: Any = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    return TypeAdapter(annotation).validate_python(raw)


# Rules that span keys. Each names the keys it needs; it only runs when those parsed cleanly, so a broken
# key is reported once, by itself, and the other rules still run.
CrossRule = Callable[[Mapping[str, Any]], list[Problem]]


def _node_counts(c: Mapping[str, Any]) -> list[Problem]:
    lo, count, hi = c["user_node_min_count"], c["user_node_count"], c["user_node_max_count"]
    problems = []
    if lo > hi:
        problems.append(Problem("userNodeMinCount", f"{lo} is above userNodeMaxCount {hi}; set min <= max"))
    elif not lo <= count <= hi:
        problems.append(
            Problem("userNodeCount", f"{count} is outside userNodeMinCount..userNodeMaxCount ({lo}..{hi})")
        )
    if c["user_node_autoscale"] and lo < 1:
        problems.append(Problem("userNodeMinCount", "autoscaling needs a minimum of at least 1 node"))
    return problems


def _names(c: Mapping[str, Any]) -> list[Problem]:
    names = naming.ResourceNames.for_stack(c["environment"], c["name_suffix"])
    return [Problem("nameSuffix", problem) for problem in names.problems()]


def _claimed_suffix(c: Mapping[str, Any]) -> list[Problem]:
    """A fork keeps the committed stack files: their suffix names the upstream repository's resources."""
    problem = naming.suffix_claim_problem(c["name_suffix"], c["github_repository"])
    return [Problem("nameSuffix", problem)] if problem else []


PRODUCTION = environments.PRODUCTION  # one home: stack/environments.py


def is_production(c: Mapping[str, Any]) -> bool:
    """The one reading of what a stack is: its declared tier, never its environment's name."""
    return bool(c["tier"] == PRODUCTION)


def _listed_environment(c: Mapping[str, Any]) -> list[Problem]:
    from stack.environments import ENVIRONMENTS, LIST_PATH

    if c["environment"] in ENVIRONMENTS:
        return []
    return [
        Problem(
            "environment",
            f"{c['environment']!r} is not in stack/{LIST_PATH.name} ({', '.join(ENVIRONMENTS)}): add it "
            "there (the one list of environments), or set one of them",
        )
    ]


def _prod_replicas(c: Mapping[str, Any]) -> list[Problem]:
    if is_production(c) and c["replicas"] < 2:
        return [Problem("replicas", f"the production tier runs at least 2 replicas (got {c['replicas']})")]
    return []


def _autoscaler_bounds(c: Mapping[str, Any]) -> list[Problem]:
    # `replicas` is the HorizontalPodAutoscaler's minimum, so the maximum cannot be below it.
    if c["max_replicas"] < c["replicas"]:
        return [
            Problem(
                "maxReplicas",
                f"{c['max_replicas']} is below replicas {c['replicas']} (the autoscaler's minimum); "
                "set maxReplicas >= replicas",
            )
        ]
    return []


def _prod_tier(c: Mapping[str, Any]) -> list[Problem]:
    if is_production(c) and c["cluster_tier"] == "Free":
        return [Problem("clusterTier", "the production tier needs the uptime SLA: set Standard or Premium")]
    return []


def _prod_zones(c: Mapping[str, Any]) -> list[Problem]:
    if is_production(c) and len(c["availability_zones"]) < 2:
        return [Problem("availabilityZones", 'the production tier spreads across zones: set ["1","2","3"]')]
    return []


SELF_SIGNED_ISSUER = "Self"  # Key Vault's issuer name for a self-signed certificate


def _tls(c: Mapping[str, Any]) -> list[Problem]:
    """A host needs its certificate and the certificate's issuer; a certificate needs a host; prod serves
    HTTPS only, with a certificate clients trust."""
    host, certificate, issuer = (
        c["ingress_host"],
        c["ingress_tls_certificate"],
        c["ingress_tls_certificate_issuer"],
    )
    prod = is_production(c)
    problems = []
    if prod and not host:
        problems.append(
            Problem(
                "ingressHost",
                "the production tier serves HTTPS only: set the DNS name Muse is served on, e.g. "
                "muse.example.org",
            )
        )
    if (host or prod) and not certificate:
        problems.append(
            Problem(
                "ingressTlsCertificate",
                "an ingress host needs its certificate: set the name of the certificate in the stack's Key "
                "Vault (scripts/tls-certificate.sh imports or issues it), e.g. muse-tls",
            )
        )
    if (host or prod) and not issuer:
        problems.append(
            Problem(
                "ingressTlsCertificateIssuer",
                "say how the certificate gets into Key Vault and renews: Unknown (a CA's certificate you "
                "import), or the name of a DigiCert/GlobalSign issuer configured in the vault",
            )
        )
    if prod and issuer == SELF_SIGNED_ISSUER:
        problems.append(
            Problem(
                "ingressTlsCertificateIssuer",
                "the production tier needs a certificate clients trust, not Self (self-signed)",
            )
        )
    if not host and not prod and (certificate or issuer):
        problems.append(
            Problem(
                "ingressHost",
                "ingressTlsCertificate(Issuer) is set but no host: set ingressHost or remove them",
            )
        )
    return problems


def _prod_protection(c: Mapping[str, Any]) -> list[Problem]:
    if is_production(c) and not c["protect_stateful_resources"]:
        return [
            Problem(
                "protectStatefulResources",
                "the production tier's Key Vault, registry and logs must survive an accidental delete: "
                "set true",
            )
        ]
    return []


def _prod_purge_protection(c: Mapping[str, Any]) -> list[Problem]:
    if is_production(c) and not c["key_vault_purge_protection"]:
        return [
            Problem(
                "keyVaultPurgeProtection", "production-tier secrets must survive a malicious delete: set true"
            )
        ]
    return []


# Business hours prod's maintenance windows stay out of: Monday-Friday 08:00-18:00, read at the windows' own
# UTC offset (maintenanceUtcOffset is the team's time zone).
BUSINESS_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
BUSINESS_HOURS = (8, 18)
_WEEK_MINUTES = 7 * 24 * 60
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _weekly_minutes(day: str, start_time: str, hours: int) -> tuple[int, int]:
    """A weekly window as [start, end) minutes after Monday 00:00; `end` may pass the week's end."""
    start = _DAYS.index(day) * 24 * 60 + int(start_time[:2]) * 60 + int(start_time[3:])
    return start, start + hours * 60


def overlaps_business_hours(day: str, start_time: str, hours: int) -> bool:
    start, end = _weekly_minutes(day, start_time, hours)
    opens, closes = (h * 60 for h in BUSINESS_HOURS)
    for business_day in BUSINESS_DAYS:
        first, last = (
            _DAYS.index(business_day) * 24 * 60 + opens,
            _DAYS.index(business_day) * 24 * 60 + closes,
        )
        # A window running past Sunday midnight continues into the next Monday.
        for shift in (0, _WEEK_MINUTES):
            if start - shift < last and first < end - shift:
                return True
    return False


def _prod_window_outside_business_hours(window: str, key: str) -> CrossRule:
    """The prod rule for one window (`auto_upgrade` / `node_os_upgrade`), so a broken key of one window
    does not hide a problem of the other."""

    def rule(c: Mapping[str, Any]) -> list[Problem]:
        day, start, hours = (c[f"{window}_window_{part}"] for part in ("day", "start_time", "duration_hours"))
        if not is_production(c) or not overlaps_business_hours(day, start, hours):
            return []
        opens, closes = BUSINESS_HOURS
        return [
            Problem(
                f"{key}Day",
                f"the production tier upgrades outside business hours, but {day} {start} for {hours} h (at "
                f"{c['maintenance_utc_offset']}) overlaps Monday-Friday {opens:02d}:00-{closes:02d}:00; move "
                f"{key}Day / {key}StartTime / {key}DurationHours",
            )
        ]

    return rule


def _window_needs(window: str) -> frozenset[str]:
    parts = ("day", "start_time", "duration_hours")
    return frozenset({"tier", "maintenance_utc_offset", *(f"{window}_window_{p}" for p in parts)})


# What a release's canary may take (tests/stack/test_canary_config.py checks these against scripts/ci): the
# release must be decided 45 min after the deploy job's start (deploy.py: JOB_TIMEOUT_MINUTES 70 less
# AFTER_HARD_DEADLINE_MINUTES 5 and ABORT_MINUTES 20), of which release_canary.PROMOTION_SECONDS (12 min)
# are kept for the promotion, and CANARY_MARGIN_SECONDS for the job's earlier steps (checkout, venv, Pulumi,
# prod's provenance check, import and preview) and the candidate up: an estimate, not a measurement. Each
# step first moves the weight and may overrun by its last check's queries (CANARY_STEP_OVERHEAD_SECONDS:
# release_canary STEP_OVERHEAD_SECONDS, estimates stated there), then lasts its time, or until a check can
# see its own traffic at the longest ingestion lag the gate waits for if that is later, and one check more
# (canary_load.longest_step_seconds, with the gate's figures) - canary.py Plan.step_budget_seconds counts
# the same; the one end-to-end check before any traffic takes
# CANARY_FIRST_CHECK_SECONDS (release_canary.END_TO_END_SECONDS) once. A step is at least
# CANARY_DETECTION_SECONDS (Thresholds.detection_seconds: two scrapes, that lag, two checks), the longest a
# candidate failing from its first request serves before the abort: so it fails at most its share of one
# step's requests, whatever share of them fails.
CANARY_RELEASE_SECONDS = 45 * 60
CANARY_PROMOTION_SECONDS = 12 * 60
CANARY_MARGIN_SECONDS = 10 * 60
# What an accepted plan leaves unused: the figures above are estimates, and a plan that fills the budget
# exactly aborts a healthy release whenever the job's earlier steps run a little over theirs (review).
CANARY_HEADROOM_SECONDS = 60
CANARY_DETECTION_SECONDS = 240
CANARY_STEP_OVERHEAD_SECONDS = 120
CANARY_FIRST_CHECK_SECONDS = 60


def canary_step_budget_seconds(step_seconds: int) -> int:
    """What one canary step takes at most: its weight move and last queries, then as long as it can last."""
    return CANARY_STEP_OVERHEAD_SECONDS + canary_load.longest_step_seconds(step_seconds)


def _canary(c: Mapping[str, Any]) -> list[Problem]:
    """The stepper's plan must end with the candidate taking all the traffic, fit the release's deadline,
    and a weight needs an image."""
    problems = []
    steps = list(c["canary_steps"])
    if not steps or steps != sorted(set(steps)) or steps[-1] != 100:
        problems.append(
            Problem("canarySteps", f"{steps} must increase strictly and end at 100, e.g. [10, 50, 100]")
        )
    elif len(steps) < 2:
        problems.append(
            Problem(
                "canarySteps",
                f"{steps} sends all traffic to the candidate at once: a canary starts with a share below "
                "100, e.g. [10, 100]",
            )
        )
    budget = CANARY_RELEASE_SECONDS - CANARY_PROMOTION_SECONDS - CANARY_MARGIN_SECONDS
    step = c["canary_step_seconds"]
    if step < CANARY_DETECTION_SECONDS:
        problems.append(
            Problem(
                "canaryStepSeconds",
                f"{step} s is shorter than the {CANARY_DETECTION_SECONDS} s the gate may take to stop a "
                "candidate that fails from its first request (two scrapes, up to 120 s of ingestion lag, two "
                "checks): it would fail more than its share of one step's requests; use at least "
                f"{CANARY_DETECTION_SECONDS}",
            )
        )
    per_step = canary_step_budget_seconds(step)
    needed = CANARY_FIRST_CHECK_SECONDS + len(steps) * per_step
    if needed + CANARY_HEADROOM_SECONDS > budget:
        usable = budget - CANARY_HEADROOM_SECONDS - CANARY_FIRST_CHECK_SECONDS
        longest = usable // max(1, len(steps)) - (per_step - max(step, canary_load.SETTLE_SECONDS))
        fix = (
            f"use at most {longest} s per step, or fewer canarySteps (at least two)"
            if longest >= max(CANARY_DETECTION_SECONDS, canary_load.SETTLE_SECONDS)
            else f"use fewer canarySteps (at least two), each {CANARY_DETECTION_SECONDS} s"
        )
        longer = max(step, canary_load.SETTLE_SECONDS)
        problems.append(
            Problem(
                "canaryStepSeconds",
                f"{CANARY_FIRST_CHECK_SECONDS} s first check + {len(steps)} steps x {per_step} s "
                f"({CANARY_STEP_OVERHEAD_SECONDS} s weight move and queries + {longer} s, the longer of the "
                f"step and the {canary_load.SETTLE_SECONDS} s its data may take + "
                f"{canary_load.CHECK_SECONDS} s check) "
                f"= {needed} s does not fit the {budget} s the deploy job leaves the canary with "
                f"{CANARY_HEADROOM_SECONDS} s to spare ({CANARY_RELEASE_SECONDS // 60} min release deadline "
                f"less promotion and earlier steps, stack/config.py): {fix}",
            )
        )
    if c["canary_weight"] and not c["canary_image_tag"]:
        problems.append(
            Problem(
                "canaryWeight", f"{c['canary_weight']} without canaryImageTag; set it to 0 or set the image"
            )
        )
    return problems


def _distinct_image_identities(c: Mapping[str, Any]) -> list[Problem]:
    """The build pushes, another environment's deployer imports: one principal in both keys is a pasted value,
    and the deployer's delegation refuses Reader to the build (bootstrap delegation_condition), so `pulumi up`
    would fail with 403 halfway."""
    push, pull = c["image_push_principal_id"], c["image_import_principal_id"]
    if push and push == pull:
        return [
            Problem(
                "imageImportPrincipalId",
                f"{pull} is also imagePushPrincipalId; set the importing deployer's object id (bootstrap "
                "output stackConfig)",
            )
        ]
    return []


def _github_subject_prefixes(c: Mapping[str, Any]) -> list[Problem]:
    """Every prefix names githubRepository in one of GitHub's two formats (rbac/github_subjects.py)."""
    problems = github_subjects.prefix_problems(c["github_subject_prefixes"], c["github_repository"])
    if c["github_repository"] and not c["github_subject_prefixes"]:
        problems.append(
            "is empty, so the bootstrap has no subject to trust: set the prefix GitHub prints for "
            f"{c['github_repository']} (docs/github-setup.md, 'Subject format')"
        )
    return [Problem("githubSubjectPrefixes", problem) for problem in problems]


def alert_receivers(c: Mapping[str, Any]) -> int:
    """How many receivers the alert action group notifies, of every kind the config has (email addresses
    today); a receiver kind added later counts here, so the prod rule below holds for it unchanged."""
    kinds = [name for name in _RECEIVER_FIELDS if name in c]
    return sum(len(c[name]) for name in kinds)


# Every config field that lists alert receivers, one per kind (StackConfig field names).
_RECEIVER_FIELDS = ("alert_emails", "alert_webhooks")


def _prod_alert_receivers(c: Mapping[str, Any]) -> list[Problem]:
    if is_production(c) and alert_receivers(c) == 0:
        return [
            Problem(
                "alertEmails",
                "prod's alerts must reach someone: set at least one receiver, e.g. "
                "`pulumi config set --path 'muse:alertEmails[0]' <on-call address>`",
            )
        ]
    return []


def _prod_operators(c: Mapping[str, Any]) -> list[Problem]:
    if is_production(c) and not c["operators_group_object_id"]:
        return [
            Problem(
                "operatorsGroupObjectId",
                "prod needs the Entra ID group of the people who operate it (kubectl in docs/runbook.md): "
                "set its object id (az ad group show --group <name> --query id -o tsv)",
            )
        ]
    return []


def _system_pool_size(c: Mapping[str, Any]) -> list[Problem]:
    family, vcpus = vm_size_parts(c["system_node_vm_size"])
    if family.startswith(BURSTABLE_FAMILY) or vcpus < SYSTEM_POOL_MIN_VCPUS:
        return [
            Problem(
                "systemNodeVmSize",
                f"{c['system_node_vm_size']} cannot run the AKS system pool: it needs at least "
                f"{SYSTEM_POOL_MIN_VCPUS} vCPUs and 4 GiB and no B-series (burstable) size "
                "(learn.microsoft.com/azure/aks/use-system-pools); e.g. Standard_D4ds_v5",
            )
        ]
    return []


def _burn_rates(c: Mapping[str, Any]) -> list[Problem]:
    """An alert whose threshold (burn rate x error budget) is 100 % errors or more can never fire; a ticket
    that burns faster than the page is a misconfiguration (the SRE workbook's page is the fast burn)."""
    problems = []
    for key, burn in (
        ("sloPageBurnRate", c["slo_page_burn_rate"]),
        ("sloTicketBurnRate", c["slo_ticket_burn_rate"]),
    ):
        for objective_key, percent in (
            ("sloAvailabilityPercent", c["slo_availability_percent"]),
            ("sloLatencyPercent", c["slo_latency_percent"]),
        ):
            budget = 1 - percent / 100
            if burn * budget >= 1:
                problems.append(
                    Problem(
                        key,
                        f"{burn:g}x the {100 - percent:g} % budget of {objective_key} is "
                        f"{burn * budget * 100:.0f} % errors: the alert could never fire; lower the "
                        f"burn rate",
                    )
                )
    if c["slo_ticket_burn_rate"] >= c["slo_page_burn_rate"]:
        problems.append(
            Problem("sloTicketBurnRate", "must be below sloPageBurnRate (the page is the fast burn)")
        )
    return problems


def _availability_test(c: Mapping[str, Any]) -> list[Problem]:
    problems = []
    if is_production(c) and not c["availability_test"]:
        problems.append(Problem("availabilityTest", "the production tier is watched from outside: set true"))
    # In prod a missing ingressHost is named by the TLS rule already.
    if c["availability_test"] and not c["ingress_host"] and not is_production(c):
        problems.append(
            Problem("availabilityTest", "the test calls https://<ingressHost>: set ingressHost or set false")
        )
    locations = c["availability_test_locations"]
    if len(set(locations)) < MIN_TEST_LOCATIONS or len(set(locations)) != len(locations):
        problems.append(
            Problem(
                "availabilityTestLocations",
                f"needs at least {MIN_TEST_LOCATIONS} distinct locations (got {len(locations)}); one "
                "location's network blip must not look like an outage",
            )
        )
    return problems


CROSS_RULES: tuple[tuple[frozenset[str], CrossRule], ...] = (
    (frozenset({"github_repository", "github_subject_prefixes"}), _github_subject_prefixes),
    (
        frozenset({"user_node_min_count", "user_node_count", "user_node_max_count", "user_node_autoscale"}),
        _node_counts,
    ),
    (frozenset({"environment", "name_suffix"}), _names),
    (frozenset({"name_suffix", "github_repository"}), _claimed_suffix),
    (frozenset({"environment"}), _listed_environment),
    (frozenset({"tier", "replicas"}), _prod_replicas),
    (frozenset({"replicas", "max_replicas"}), _autoscaler_bounds),
    (frozenset({"tier", "cluster_tier"}), _prod_tier),
    (frozenset({"tier", "availability_zones"}), _prod_zones),
    (frozenset({"tier", "key_vault_purge_protection"}), _prod_purge_protection),
    (frozenset({"image_push_principal_id", "image_import_principal_id"}), _distinct_image_identities),
    (_window_needs("auto_upgrade"), _prod_window_outside_business_hours("auto_upgrade", "autoUpgradeWindow")),
    (
        _window_needs("node_os_upgrade"),
        _prod_window_outside_business_hours("node_os_upgrade", "nodeOsUpgradeWindow"),
    ),
    (
        frozenset({"tier", "ingress_host", "ingress_tls_certificate", "ingress_tls_certificate_issuer"}),
        _tls,
    ),
    (frozenset({"tier", "protect_stateful_resources"}), _prod_protection),
    (frozenset({"tier", *_RECEIVER_FIELDS}), _prod_alert_receivers),
    (frozenset({"tier", "operators_group_object_id"}), _prod_operators),
    (frozenset({"system_node_vm_size"}), _system_pool_size),
    (
        frozenset(
            {"slo_page_burn_rate", "slo_ticket_burn_rate", "slo_availability_percent", "slo_latency_percent"}
        ),
        _burn_rates,
    ),
    (
        frozenset({"tier", "availability_test", "ingress_host", "availability_test_locations"}),
        _availability_test,
    ),
    (frozenset({"canary_steps", "canary_step_seconds", "canary_image_tag", "canary_weight"}), _canary),
)


def _kubernetes_support(version: str, today: date) -> list[Problem]:
    """AKS must still create clusters on the minor: the stack may be (re)created at any time."""
    verdict = kubernetes_support.check(version, today)
    if verdict.status is kubernetes_support.Support.UNSUPPORTED:
        return [Problem("kubernetesVersion", verdict.message)]
    return []


def _advice(key: str, by_key: Mapping[str, str]) -> str:
    """ "did you mean <key>?" for a near miss (another case, a letter dropped or swapped), else how to fix."""
    same_letters = [k for k in by_key if k.lower() == key.lower()]
    close = same_letters or difflib.get_close_matches(key, list(by_key), n=1, cutoff=0.8)
    return f"did you mean {close[0]}?" if close else "remove it or declare it in Pulumi.yaml"


# Namespaces of the stack file that belong to others and are never ours: the providers' own settings.
def _foreign_near_misses(values: Mapping[str, Any], by_key: Mapping[str, str]) -> list[Problem]:
    """A key in another namespace that looks like ours (`mues:userNodeCount`, `Muse:replicas`): the engine
    hands it to nobody, so the setting would be silently lost. Provider namespaces (`azure-native:location`)
    are not near misses of `muse` and pass."""
    problems = []
    for key in sorted(values):
        namespace, _, name = key.partition(":")
        if not name or namespace == PROJECT:
            continue
        if difflib.get_close_matches(namespace.lower(), [PROJECT], n=1, cutoff=0.6):
            found = name if name in by_key else None
            guess = found or (difflib.get_close_matches(name, list(by_key), n=1, cutoff=0.8) or [name])[0]
            problems.append(
                Problem(
                    key,
                    f"is in namespace '{namespace}', which nothing reads; did you mean {PROJECT}:{guess}?",
                )
            )
    return problems


def unquoted_numbers(
    stack_file: Mapping[str, Any], written: Mapping[str, str] | None = None
) -> list[Problem]:
    """Keys of text whose stack-file value YAML read as a number. The Pulumi CLI hands the program the number
    re-printed, not the text written: an unquoted `1.30` arrives as "1.3" (pulumi/pulumi
    sdk/go/common/resource/config/object.go at 042b25538a47757434b4518559b5bf2b4c4ce9f8: UnmarshalYAML
    decodes into `any`, a float64, and MarshalString writes it back as JSON); only the stack file shows it.
    `written` (StackFiles.written) is the text as the person typed it, which the message quotes back."""
    problems = []
    by_key = {_key_of(name): name for name in StackConfig.model_fields}
    for key, value in sorted(stack_file.items()):
        name = by_key.get(key.removeprefix(f"{PROJECT}:"))
        if name is None or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if _pulumi_type(StackConfig.model_fields[name].annotation) == "string":
            text = (written or {}).get(key, repr(value))
            problems.append(
                Problem(
                    _key_of(name),
                    f"is the number {text} in the stack file, and YAML drops what a number does not keep "
                    f'(an unquoted 1.30 is read as 1.3): quote it: "{text}"',
                )
            )
    return problems


def _webhook_secrets(webhooks: tuple[str, ...], secret: bool) -> list[Problem]:
    """A webhook URL with a token is a credential: it must be `secure:` config, never plain text in the
    stack file (and so in git)."""
    leaking = [i for i, url in enumerate(webhooks) if embeds_token(url)]
    if leaking and not secret:
        return [
            Problem(
                "alertWebhooks",
                f"URL(s) {leaking} embed a token: set the key with `pulumi config set --secret "
                f"{PROJECT}:alertWebhooks '[...]'` so it is stored encrypted",
            )
        ]
    return []


def load_stack_config(
    stack: str,
    values: Mapping[str, Any],
    *,
    today: date | None = None,
    stack_file: Mapping[str, Any] | None = None,
    written: Mapping[str, str] | None = None,
    secret_keys: frozenset[str] = frozenset(),
    cluster_exists: bool = False,
) -> StackConfig:
    """Validate the `muse:*` config of `stack`. `values` maps keys (with or without `muse:`) to raw values.

    `today` is the date the Kubernetes version must be supported on (default: today in UTC; tests pin it).
    `stack_file` is the stack file's config as YAML typed it (StackFiles.stack_file_config), for the one
    mistake the engine's strings hide: a number where text was meant (`unquoted_numbers`).
    `secret_keys`: the keys (with or without `muse:`) the stack stores as `secure:` values.
    `cluster_exists`: the stack's cluster was created already (stack/deployed.py), so `kubernetesVersion`
    is not used (the channel owns the version) and a minor past support is no reason to refuse: refusing
    would block every deploy and the automatic rollback of a running cluster. Only creation is refused.
    Raises ConfigError listing every problem; returns a frozen StackConfig otherwise.
    """
    by_key = {_key_of(name): name for name in StackConfig.model_fields}
    ours = {key: value for key, value in values.items() if ":" not in key or key.startswith(f"{PROJECT}:")}
    raw = {key.removeprefix(f"{PROJECT}:"): value for key, value in ours.items()}
    problems: list[Problem] = [
        *_foreign_near_misses(values, by_key),
        *unquoted_numbers(stack_file or {}, written),
    ]
    parsed: dict[str, Any] = {}

    for key in sorted(set(raw) - set(by_key)):
        problems.append(Problem(key, f"unknown key; {_advice(key, by_key)}"))

    for name, field in StackConfig.model_fields.items():
        key = _key_of(name)
        if key not in raw:
            if field.is_required():
                problems.append(Problem(key, f"is required{_hint(name)}"))
            else:
                parsed[name] = field.get_default(call_default_factory=True)
            continue
        try:
            parsed[name] = _parse_field(name, raw[key])
        except ValidationError as exc:
            problems.extend(Problem(key, _describe(error)) for error in exc.errors())
        except ValueError as exc:
            problems.append(Problem(key, str(exc)))

    for needs, rule in CROSS_RULES:
        if needs <= parsed.keys():
            problems.extend(rule(parsed))
    if "alert_webhooks" in parsed:
        secret = {key.removeprefix(f"{PROJECT}:") for key in secret_keys}
        problems.extend(_webhook_secrets(parsed["alert_webhooks"], "alertWebhooks" in secret))
    if "kubernetes_version" in parsed and not cluster_exists:
        problems.extend(
            _kubernetes_support(parsed["kubernetes_version"], today or kubernetes_support.utc_today())
        )

    if problems:
        raise ConfigError(stack, problems)
    return StackConfig(**parsed)


def _pulumi_type(annotation: Any) -> str:
    if get_origin(annotation) is tuple:
        return "array"
    if annotation is bool:
        return "boolean"
    if annotation is int or (get_origin(annotation) is Annotated and get_args(annotation)[0] is int):
        return "integer"
    return "string"


def pulumi_schema() -> dict[str, dict[str, Any]]:
    """The `config:` block of Pulumi.yaml, derived from StackConfig (`python -m cli.config schema`
    prints it; a test keeps the committed file equal to it)."""
    schema: dict[str, dict[str, Any]] = {}
    for name, field in StackConfig.model_fields.items():
        entry: dict[str, Any] = {"type": _pulumi_type(field.annotation), "description": field.description}
        if entry["type"] == "array":
            entry["items"] = {"type": _pulumi_type(get_args(field.annotation)[0])}
        if not field.is_required():
            default = field.default
            # Pulumi config has no number type: a float is a string the program parses.
            entry["default"] = (
                list(default)
                if isinstance(default, tuple)
                else (f"{default:g}" if isinstance(default, float) else default)
            )
        schema[_key_of(name)] = entry
    return schema


def from_pulumi(*, cluster_exists: bool = False) -> StackConfig:
    """This stack's config as the Pulumi engine passes it to the program, checked on today's UTC date.

    The whole bag is read (not key by key) so that an unknown `muse:*` key, usually a typo, is reported
    instead of silently ignored (stack/pulumi_config.py says where the keys come from). A Kubernetes minor
    that AKS stops supporting within kubernetes_support.WARNING_DAYS is a warning, not an error: the stack
    still deploys, and the scheduled drift workflow has turned red. So does an existing cluster's minor past
    support (`cluster_exists`), with a louder warning: only creating a cluster on it is refused.
    """
    import pulumi

    from stack.files import read_stack
    from stack.pulumi_config import stack_config

    today = kubernetes_support.utc_today()
    stack = pulumi.get_stack()
    try:  # `pulumi up` runs in the project directory, beside Pulumi.<stack>.yaml
        files = read_stack(stack)
        stack_file, written = files.stack_file_config, files.written
    except FileNotFoundError:  # an Automation API inline program has no stack file
        stack_file, written = {}, {}
    values = stack_config()
    config = load_stack_config(
        stack,
        values,
        today=today,
        stack_file=stack_file,
        written=written,
        secret_keys=frozenset(k for k in values if pulumi.runtime.is_config_secret(k)),
        cluster_exists=cluster_exists,
    )
    verdict = kubernetes_support.check(config.kubernetes_version, today)
    if verdict.status is kubernetes_support.Support.ENDING:
        pulumi.log.warn(f"{PROJECT}:kubernetesVersion: {verdict.message}")
    elif verdict.status is kubernetes_support.Support.UNSUPPORTED:
        # Only reached for an existing cluster (creation was refused above): deploy and roll back, loudly.
        pulumi.log.warn(kubernetes_support.existing_cluster_warning(verdict))
    return config
