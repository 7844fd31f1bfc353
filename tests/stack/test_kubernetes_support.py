"""A Kubernetes minor AKS will still create: the vendored calendar, the rule on a pinned date, the config
rule, the program's warning and the CLI the scheduled drift workflow runs.

Dates are pinned (the check takes the date as an input), so these tests mean the same thing every day. The
expected dates are the page's own (learn.microsoft.com/azure/aks/supported-kubernetes-versions, as vendored):
1.34 "End of life: Nov 2026", 1.35 "Mar 2027", 1.36 "Jun 2027", 1.37 "Oct 2027", "AKS GA: Oct 2026".
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from typing import Any

import pulumi
import pytest

from cli.kubernetes_support import main
from offline.engine import RecordingMonitor, run_stack
from offline.mocks import OfflineMocks
from stack import kubernetes_support
from stack.config import ConfigError, StackConfig, load_stack_config
from stack.environments import ENVIRONMENTS
from stack.files import REPO_ROOT, read_stack
from stack.kubernetes_support import Support, check, load_calendar, minor_of

SHARED = REPO_ROOT.parent / "shared" / "aks" / "kubernetes-versions.json"
VALID_DEV = {"environment": "dev", "tier": "development", "owner": "platform-team", "nameSuffix": "ab12"}
# The day this rule was written: 1.34's standard support ended two days before.
WRITTEN_ON = date(2026, 12, 2)


# --- the vendored data --------------------------------------------------------------------------------------


def test_the_vendored_calendar_equals_the_shared_data() -> None:
    if not SHARED.exists():
        pytest.skip(f"{SHARED} is not here (GitHub's runners have no ../shared); the vendored copy is used")
    vendored = json.loads(kubernetes_support.DATA_PATH.read_text())
    shared = json.loads(SHARED.read_text())
    copied = [key for key in vendored if key != "vendored"]
    assert copied == ["source", "by_minor_version", "version_rules", "auto_upgrade_channels"]
    for key in copied:
        assert vendored[key] == shared[key], f"{key} differs from {SHARED}: copy it again"


def test_the_vendored_calendar_keeps_its_attribution() -> None:
    source = json.loads(kubernetes_support.DATA_PATH.read_text())["source"]
    assert source["repository"] == "https://github.com/MicrosoftDocs/azure-aks-docs"
    assert source["snapshot_commit"] == "fb060abe6a8fef960d4c487b543bf7b1e97808fe"
    assert "CC BY 4.0" in source["license"]["text"] and "Microsoft" in source["license"]["attribution"]


def test_the_sentences_the_rule_implements_still_say_so() -> None:
    # If Microsoft changes one of these, the rule in stack/kubernetes_support.py must be re-read against it.
    rules = json.loads(kubernetes_support.DATA_PATH.read_text())["version_rules"]
    assert "the last day of the specified month" in rules["eol_month_convention"]
    assert (
        rules["platform_support_table_cluster_creation"] == "| Cluster creation | Supported | Not supported |"
    )
    assert "creation of new clusters isn't possible" in rules["faq_create_cluster_in_platform_support"][1]
    assert "enable long-term support (LTS)" in rules["lts_requires_enable"]
    assert "up to 10 business days" in rules["regional_rollout"]


def test_explicit_end_of_life_days_and_month_ends_are_read_as_the_page_states() -> None:
    table = load_calendar()
    by_minor = {m.minor: m for m in table.minors}
    assert by_minor["1.30"].last_supported_day == date(2025, 8, 22)  # "Aug 22, 2025"
    assert by_minor["1.34"].last_supported_day == date(2026, 11, 30)  # "Nov 2026"
    assert by_minor["1.37"].available_from == date(2026, 11, 1)  # "AKS GA: Oct 2026"
    assert by_minor["1.34"].lts_last_day == date(2027, 11, 30)


def test_the_calendar_agrees_with_the_n_minus_2_window() -> None:
    # "AKS supports three GA minor versions": N, N-1, N-2; the oldest leaves "30 days later" than N's release,
    # so a fourth overlaps only for about a month. Checked on the first of every month from mid-2025
    # (1.29-1.31 appear only in the LTS table) to the snapshot: later dates need minors it does not list yet.
    table = load_calendar()
    for year in (2025, 2026):
        for month in range(1, 13):
            day = date(year, month, 1)
            if day < date(2025, 6, 1) or day > table.snapshot_date:
                continue
            minors = [m.minor for m in table.creatable_on(day)]
            keys = [int(m.split(".")[1]) for m in minors]
            assert keys == list(range(keys[0], keys[0] + len(keys))), (day, minors)  # consecutive minors
            assert 3 <= len(keys) <= 4, (day, minors)


# --- the rule on a date ------------------------------------------------------------------------------------


def test_1_34_is_no_longer_created_on_the_day_this_was_written() -> None:
    verdict = check("1.34", WRITTEN_ON)
    assert verdict.status is Support.UNSUPPORTED
    assert "standard support ended on 2026-11-30" in verdict.message
    assert "platform support (Until 1.38 GA) does not allow cluster creation" in verdict.message
    assert "1.35 (until 2027-03-31), 1.36 (until 2027-06-30), 1.37 (until 2027-10-31)" in verdict.message
    # LTS would cover it, but not as this program deploys.
    assert "until 2027-11-30" in verdict.message and "Premium tier" in verdict.message


def test_negative_control_1_34_on_its_last_day_is_still_created_but_ending() -> None:
    verdict = check("1.34", date(2026, 11, 30))
    assert verdict.status is Support.ENDING and verdict.days_left == 0


@pytest.mark.parametrize(
    ("today", "status", "days_left"),
    [
        (date(2027, 1, 29), Support.SUPPORTED, 61),
        (date(2027, 1, 30), Support.ENDING, 60),  # "within 60 days"
        (date(2027, 3, 31), Support.ENDING, 0),
        (date(2027, 4, 1), Support.UNSUPPORTED, -1),
    ],
)
def test_the_warning_starts_60_days_before_the_end_of_support(
    today: date, status: Support, days_left: int
) -> None:
    verdict = check("1.35", today)
    assert (verdict.status, verdict.days_left) == (status, days_left)


def test_an_ending_minor_names_the_newer_minors_to_move_to() -> None:
    verdict = check("1.35", date(2027, 2, 15))
    assert "on 2027-03-31, in 44 day(s)" in verdict.message
    assert "1.36 (until 2027-06-30), 1.37 (until 2027-10-31)" in verdict.message
    assert "1.35 (until" not in verdict.message


def test_a_minor_before_its_ga_month_is_over_is_not_created() -> None:
    assert check("1.37", date(2026, 10, 31)).status is Support.UNSUPPORTED
    assert "not generally available on AKS yet" in check("1.37", date(2026, 10, 31)).message
    assert check("1.37", date(2026, 11, 1)).status is Support.SUPPORTED


def test_an_explicit_end_of_life_day_counts_to_that_day() -> None:
    assert check("1.31", date(2025, 11, 1)).status is Support.ENDING
    assert check("1.31", date(2025, 11, 2)).status is Support.UNSUPPORTED


def test_a_minor_outside_the_calendar_is_refused_with_how_to_add_it() -> None:
    verdict = check("1.38", WRITTEN_ON)
    assert verdict.status is Support.UNSUPPORTED
    assert "not in the AKS release calendar" in verdict.message
    assert "stack/aks_kubernetes_versions.json" in verdict.message


def test_a_patch_version_is_judged_by_its_minor() -> None:
    assert minor_of("1.36.4") == "1.36" and minor_of("1.36") == "1.36"
    assert check("1.36.4", WRITTEN_ON).status is Support.SUPPORTED


def test_the_program_uses_todays_utc_date(real_utc_today: Callable[[], date]) -> None:
    from datetime import UTC, datetime

    assert real_utc_today() == datetime.now(UTC).date()  # the function tests/conftest.py pins for the others


# --- the config rule ---------------------------------------------------------------------------------------


def _load(today: date, **changes: Any) -> StackConfig:
    return load_stack_config("test", {**VALID_DEV, **changes}, today=today)


def test_the_default_version_is_created_today_and_not_ending() -> None:
    default = StackConfig.model_fields["kubernetes_version"].default
    assert check(default, WRITTEN_ON).status is Support.SUPPORTED
    assert _load(WRITTEN_ON).kubernetes_version == default


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_the_committed_stacks_name_a_minor_aks_creates(stack: str) -> None:
    config = load_stack_config(stack, read_stack(stack).config, today=WRITTEN_ON)
    assert check(config.kubernetes_version, WRITTEN_ON).status is Support.SUPPORTED


def test_an_unsupported_minor_is_one_problem_among_all_the_others() -> None:
    with pytest.raises(ConfigError) as raised:
        _load(WRITTEN_ON, kubernetesVersion="1.34", location="mars")
    problems = {p.key: p.message for p in raised.value.problems}
    assert set(problems) == {"kubernetesVersion", "location"}
    assert "ended on 2026-11-30" in problems["kubernetesVersion"]
    assert "1.35 (until 2027-03-31)" in problems["kubernetesVersion"]
    # Negative control: the same config a month earlier, when AKS still created 1.34.
    assert _load(date(2026, 11, 1), kubernetesVersion="1.34").kubernetes_version == "1.34"


def test_an_unsupported_minor_fails_the_program_before_any_resource() -> None:
    # 1.20 is outside the calendar on every date, so this holds whatever day the test runs.
    monitor = RecordingMonitor(OfflineMocks("prod"))
    with pytest.raises(pulumi.RunError) as raised:
        run_stack("prod", overrides={"muse:kubernetesVersion": "1.20"}, monitor=monitor)
    assert "  - muse:kubernetesVersion: Kubernetes 1.20 is not in the AKS release calendar" in str(
        raised.value
    )
    assert monitor.recorded == []


def test_the_program_warns_when_the_minor_leaves_support_within_60_days(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The program's date is utc_today(); pinned here to 45 days before 1.36 leaves support.
    warnings: list[str] = []
    monkeypatch.setattr(kubernetes_support, "utc_today", lambda: date(2027, 5, 16))
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *args, **kwargs: warnings.append(message))
    plan = run_stack("prod")
    assert plan.resources, "a warning does not stop the deployment"
    assert [w for w in warnings if "kubernetesVersion" in w] == [
        "muse:kubernetesVersion: " + check("1.36", date(2027, 5, 16)).message
    ]
    # Negative control: a day outside the window warns about nothing.
    warnings.clear()
    monkeypatch.setattr(kubernetes_support, "utc_today", lambda: WRITTEN_ON)
    run_stack("prod")
    assert not [w for w in warnings if "kubernetesVersion" in w]


# --- the CLI the scheduled drift workflow runs --------------------------------------------------------------


def test_cli_passes_while_the_minor_has_more_than_60_days(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stack", "prod", "--today", WRITTEN_ON.isoformat()]) == 0
    out = capsys.readouterr().out
    assert "stack prod: Kubernetes 1.36 is supported by AKS until 2027-06-30" in out
    assert "::error" not in out


def test_cli_turns_red_with_an_annotation_60_days_ahead(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stack", "prod", "--today", "2027-05-01"]) == 1
    out = capsys.readouterr().out
    assert out.startswith(
        "::error title=Kubernetes version (prod)::stack prod: AKS ends standard support of "
    )
    assert "Kubernetes 1.36 on 2027-06-30, in 60 day(s)" in out
    assert out.count("\n") == 1, "one workflow command, on one line"


def test_cli_turns_red_when_the_minor_is_already_unsupported(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stack", "dev", "--today", "2027-11-01"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("::error title=Kubernetes version (dev)::kubernetesVersion: AKS no longer creates")


def test_the_messages_link_a_runbook_section_that_exists() -> None:
    import re

    path, anchor = kubernetes_support.RUNBOOK.split("#")
    headings = re.findall(r"(?m)^#{2,4} (.+)$", (REPO_ROOT / path).read_text())
    # GitHub's anchor for a Markdown heading.
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-") for h in headings}
    assert anchor in anchors
    assert kubernetes_support.RUNBOOK in check("1.35", date(2027, 2, 15)).message


def test_annotations_escape_what_would_end_the_workflow_command() -> None:
    line = kubernetes_support._annotation("error", "t", "50% done\nnext line")
    assert line == "::error title=t::50%25 done%0Anext line"


def test_cli_runs_as_the_workflow_runs_it() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli.kubernetes_support", "--stack", "prod", "--today", "2027-05-01"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1 and result.stdout.startswith("::error title=Kubernetes version (prod)::")


# --- creation is refused, operation is not ------------------------------------------------------------------

# What an existing prod stack's last update exported (stack/deployed.py reads it before registering anything).
EXISTING_PROD = {
    "resourceGroupName": "rg-muse-prod-m7k2",
    "registryName": "acrmuseprodm7k2",
    "keyVaultName": "kv-muse-prod-m7k2",
    "clusterName": "aks-muse-prod-m7k2",
}
LIVE_SYSTEM_POOL = {"system": {"vmSize": "Standard_D4ds_v5", "count": 3}}


@pytest.mark.slow  # a program run
def test_an_existing_cluster_past_support_deploys_with_a_loud_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 2027-08-01: 1.36 left standard support on 2027-06-30, so AKS would not create a cluster on it, but
    # the running one (whose version the channel owns, never the program) still deploys and rolls back.
    warnings: list[str] = []
    monkeypatch.setattr(kubernetes_support, "utc_today", lambda: date(2027, 8, 1))
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *args, **kwargs: warnings.append(message))
    mocks = OfflineMocks("prod", deployed_outputs=EXISTING_PROD, live_agent_pools=LIVE_SYSTEM_POOL)
    plan = run_stack("prod", monitor=RecordingMonitor(mocks))
    assert plan.of_type("azure-native:resources:Resource"), "the deploy goes ahead"
    [loud] = [w for w in warnings if "UNSUPPORTED KUBERNETES MINOR" in w]
    assert "standard support ended on 2027-06-30" in loud and kubernetes_support.RUNBOOK in loud
    # The drift job's check of the same stack on the same day is red.
    assert main(["--stack", "prod", "--today", "2027-08-01"]) == 1


@pytest.mark.slow  # a program run
def test_negative_control_the_same_day_creating_the_cluster_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kubernetes_support, "utc_today", lambda: date(2027, 8, 1))
    # A stack that holds only its registry and vault (bootstrap stages) has no cluster yet: creation.
    partial = {k: v for k, v in EXISTING_PROD.items() if k != "clusterName"}
    monitor = RecordingMonitor(OfflineMocks("prod", deployed_outputs=partial))
    with pytest.raises(pulumi.RunError, match=r"AKS no longer creates clusters on Kubernetes 1\.36"):
        run_stack("prod", monitor=monitor)
    assert monitor.recorded == []


def test_load_stack_config_refuses_the_minor_only_for_creation() -> None:
    values = {**read_stack("prod").config, "muse:kubernetesVersion": "1.34"}
    with pytest.raises(ConfigError, match="kubernetesVersion"):
        load_stack_config("prod", values, today=date(2027, 1, 5))
    config = load_stack_config("prod", values, today=date(2027, 1, 5), cluster_exists=True)
    assert config.kubernetes_version == "1.34"
