"""Azure names for one stack, and the Azure naming rules they must satisfy.

Names follow the Cloud Adoption Framework abbreviations (`rg-`, `acr`, `aks-`, `kv-`, `id-`, `log-`, `ag-`,
`dcr-`) and are deterministic per stack: the same environment and suffix always give the same names, so
Pulumi never auto-names (random suffixes would make the Bicep export and the docs drift) and nothing is
renamed by accident. Registry and Key Vault names are global across Azure; `nameSuffix` makes them unique.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass

APP = "muse"

# Suffixes whose names exist in Azure, each with the repository (githubRepository) whose stacks own them.
# Registry, Key Vault and storage account names are global across Azure, so a fork that keeps the committed
# stack files would ask for the same names: config validation refuses a claimed suffix in another repository
# (stack/config.py) and offers derived_suffix instead. Renaming a deployed suffix replaces every resource, so
# the owner keeps its suffix explicitly. A repository renamed or transferred (new owner/name in
# muse:githubRepository) MUST update its entry here in the same change: otherwise validation refuses the
# owner's own suffix as another repository's, and the deployed names would be offered to the old name
# (tests/stack/test_name_suffix.py checks each stack file's suffix is claimed by its githubRepository;
# docs/github-setup.md "Moving between formats", docs/bootstrap.md).
CLAIMED_SUFFIXES: dict[str, str] = {"m7k2": "muse-platform/muse"}
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def derived_suffix(repository: str, length: int = 6) -> str:
    """A suffix of its own for `repository` (owner/name), the same on every machine and run, with no Azure
    call (so `make plan` works offline), like azd's `uniqueString`: a hash of what identifies the
    installation. A letter, then base-36 digits of SHA-256 of the lower-cased owner/name (GitHub compares
    owner/name without case). Six characters keep every name within Azure's limits (Key Vault: 24)."""
    digest = int.from_bytes(hashlib.sha256(repository.strip().lower().encode()).digest(), "big")
    head, digest = _BASE36[10 + digest % 26], digest // 26
    tail = ""
    for _ in range(length - 1):
        digest, digit = divmod(digest, 36)
        tail += _BASE36[digit]
    return head + tail


def suffix_claim_problem(suffix: str, repository: str) -> str:
    """Why `suffix` cannot be this repository's ("" when it can): it names another repository's resources."""
    owner = CLAIMED_SUFFIXES.get(suffix)
    if not owner or not repository or owner.lower() == repository.strip().lower():
        return ""
    return (
        f"'{suffix}' names the deployed resources of {owner}; registry, Key Vault and storage names are "
        f"global across Azure, so {repository} would collide with them. Set muse:nameSuffix to "
        f"'{derived_suffix(repository)}' (derived from {repository}) or another of your own, the same in "
        "every Pulumi.<env>.yaml; scripts/bootstrap.sh checks the names are free before creating anything"
    )


@dataclass(frozen=True)
class NameRule:
    """What Azure accepts for one kind of name."""

    what: str
    min_len: int
    max_len: int
    pattern: re.Pattern[str]
    charset: str


_MANAGED_IDENTITY = NameRule(
    "managed identity", 3, 128, re.compile(r"^[a-zA-Z0-9][-_a-zA-Z0-9]*$"), "letters, digits, - _"
)


def _kubernetes_dns_label(what: str) -> NameRule:
    """RFC 1123 label, as Kubernetes requires for namespaces and service accounts."""
    return NameRule(
        what, 1, 63, re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), "lowercase letters, digits, -"
    )


RULES: dict[str, NameRule] = {
    "resource_group": NameRule(
        "resource group", 1, 90, re.compile(r"^[-\w._()]*[-\w_()]$"), "letters, digits, - _ . ( )"
    ),
    "node_resource_group": NameRule(
        "AKS node resource group", 1, 80, re.compile(r"^[-\w._()]*[-\w_()]$"), "letters, digits, - _ . ( )"
    ),
    "registry": NameRule(
        "container registry", 5, 50, re.compile(r"^[a-zA-Z0-9]+$"), "letters and digits only"
    ),
    "cluster": NameRule(
        "AKS cluster", 1, 63, re.compile(r"^[a-zA-Z0-9]([-_a-zA-Z0-9]*[a-zA-Z0-9])?$"), "letters, digits, - _"
    ),
    "cluster_dns_prefix": NameRule(
        "AKS DNS prefix", 1, 54, re.compile(r"^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$"), "letters, digits, -"
    ),
    "key_vault": NameRule(
        "Key Vault",
        3,
        24,
        re.compile(r"^[a-zA-Z](?!.*--)[-a-zA-Z0-9]*[a-zA-Z0-9]$"),
        "letters, digits, single hyphens; starts with a letter",
    ),
    "log_analytics": NameRule(
        "Log Analytics workspace",
        4,
        63,
        re.compile(r"^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$"),
        "letters, digits, -",
    ),
    "control_plane_identity": _MANAGED_IDENTITY,
    "kubelet_identity": _MANAGED_IDENTITY,
    "namespace": _kubernetes_dns_label("Kubernetes namespace"),
    "service_account": _kubernetes_dns_label("Kubernetes service account"),
    "workload_identity": _MANAGED_IDENTITY,
    "gateway_namespace": _kubernetes_dns_label("Kubernetes namespace of the Gateway"),
    "gateway_tls_identity": _MANAGED_IDENTITY,
    "action_group": NameRule(
        "action group", 1, 260, re.compile(r"^[a-zA-Z0-9][-_.a-zA-Z0-9]*$"), "letters, digits, - _ ."
    ),
    # Shown as the sender of SMS/email notifications; Azure caps it at 12 characters.
    "action_group_short": NameRule(
        "action group short name", 1, 12, re.compile(r"^[a-zA-Z0-9][-_a-zA-Z0-9]*$"), "letters, digits, - _"
    ),
    "data_collection_rule": NameRule(
        "data collection rule", 3, 64, re.compile(r"^[a-zA-Z0-9][-_a-zA-Z0-9]*$"), "letters, digits, - _"
    ),
    "monitor_workspace": NameRule(
        "Azure Monitor workspace",
        4,
        44,
        re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*[a-zA-Z0-9]$"),
        "letters, digits, -",
    ),
    "app_insights": NameRule(
        "Application Insights component", 1, 255, re.compile(r"^[-\w._()]+$"), "letters, digits, - _ . ( )"
    ),
    # Alert rule names are `<alert_prefix>-<what>`; the prefix itself must leave room for `<what>`.
    "alert_prefix": NameRule(
        "alert rule name prefix", 1, 200, re.compile(r"^[a-zA-Z0-9][-_a-zA-Z0-9]*$"), "letters, digits, - _"
    ),
}


@dataclass(frozen=True)
class ResourceNames:
    """Every Azure name of one stack."""

    resource_group: str
    node_resource_group: str
    registry: str
    cluster: str
    cluster_dns_prefix: str
    key_vault: str
    log_analytics: str
    control_plane_identity: str
    kubelet_identity: str
    workload_identity: str
    namespace: str
    service_account: str
    gateway_namespace: str
    gateway_tls_identity: str
    action_group: str
    action_group_short: str
    data_collection_rule: str
    alert_prefix: str
    monitor_workspace: str
    app_insights: str

    @classmethod
    def for_stack(cls, environment: str, suffix: str) -> ResourceNames:
        stem = f"{APP}-{environment}-{suffix}"
        return cls(
            resource_group=f"rg-{stem}",
            node_resource_group=f"rg-{stem}-aks-nodes",
            registry=f"acr{APP}{environment}{suffix}",
            cluster=f"aks-{stem}",
            cluster_dns_prefix=stem,
            key_vault=f"kv-{stem}",
            log_analytics=f"log-{stem}",
            control_plane_identity=f"id-{stem}-aks-control-plane",
            kubelet_identity=f"id-{stem}-aks-kubelet",
            workload_identity=f"id-{stem}-workload",
            namespace=f"{APP}-{environment}",
            service_account=APP,
            gateway_namespace=f"{APP}-{environment}-gateway",
            gateway_tls_identity=f"id-{stem}-gateway-tls",
            action_group=f"ag-{stem}",
            action_group_short=f"{APP}-{environment}",
            data_collection_rule=f"dcr-{stem}-containers",
            alert_prefix=f"alert-{stem}",
            monitor_workspace=f"amw-{stem}",
            app_insights=f"appi-{stem}",
        )

    def problems(self) -> list[str]:
        """Each name Azure would reject, with the rule it breaks."""
        found = []
        for field, name in asdict(self).items():
            rule = RULES[field]
            if not rule.min_len <= len(name) <= rule.max_len:
                found.append(
                    f"{rule.what} name '{name}' is {len(name)} characters; Azure allows "
                    f"{rule.min_len}-{rule.max_len} (shorten nameSuffix)"
                )
            elif not rule.pattern.match(name):
                found.append(f"{rule.what} name '{name}' breaks Azure's rule: {rule.charset}")
        return found


@dataclass(frozen=True)
class StateBackendNames:
    """Where Pulumi keeps a stack's state and the key that encrypts its secrets (created once per subscription
    by step 1 of scripts/bootstrap.sh, before any stack can exist).

    One storage account and one Key Vault, but a container and a key per environment (`for_environment`), so a
    role on dev's container or key reaches nothing of prod's. The bootstrap stack keeps the original container
    `state` and key `pulumi-state` (`for_bootstrap`), which only administrators reach.
    """

    resource_group: str
    storage_account: str
    container: str
    key_vault: str
    key: str

    @classmethod
    def for_bootstrap(cls, suffix: str) -> StateBackendNames:
        return cls(
            resource_group=f"rg-{APP}-state-{suffix}",
            storage_account=f"st{APP}state{suffix}",
            container="state",
            key_vault=f"kv-{APP}state-{suffix}",
            key="pulumi-state",
        )

    @classmethod
    def for_environment(cls, environment: str, suffix: str) -> StateBackendNames:
        shared = cls.for_bootstrap(suffix)
        return cls(
            resource_group=shared.resource_group,
            storage_account=shared.storage_account,
            container=f"state-{environment}",
            key_vault=shared.key_vault,
            key=f"pulumi-state-{environment}",
        )

    @property
    def backend_url(self) -> str:
        return f"azblob://{self.container}?storage_account={self.storage_account}"

    @property
    def secrets_provider(self) -> str:
        return f"azurekeyvault://{self.key_vault}.vault.azure.net/keys/{self.key}"
