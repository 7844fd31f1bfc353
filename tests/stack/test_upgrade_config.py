"""Stack config of upgrades: the channel, a minor (not a patch), and the two planned-maintenance windows.

Bad values fail before any resource is registered, each named in the one config message. The ranges are the
API's (Microsoft.ContainerService/managedClusters/maintenanceConfigurations: `durationHours` 4-24, `startTime`
"from '00:00' to '23:59'", `utcOffset` "+/-HH:mm"); prod's windows stay outside business hours.
"""

from __future__ import annotations

from typing import Any

import pytest

from stack.config import BUSINESS_HOURS, ConfigError, load_stack_config, overlaps_business_hours
from stack.files import read_stack
from tests.stack.refusal import assert_refused_before_any_resource

# (stack, overrides, key named in the message, words the message must contain)
BAD_UPGRADE_CONFIGS: list[tuple[str, dict[str, Any], str, str]] = [
    ("dev", {"muse:kubernetesVersion": "1.36.2"}, "kubernetesVersion", "not a Kubernetes minor version"),
    ("dev", {"muse:upgradeChannel": "none"}, "upgradeChannel", "'patch', 'stable' or 'rapid'"),
    ("dev", {"muse:upgradeChannel": "node-image"}, "upgradeChannel", "'patch', 'stable' or 'rapid'"),
    ("dev", {"muse:autoUpgradeWindowDay": "Funday"}, "autoUpgradeWindowDay", "'Monday'"),
    ("dev", {"muse:autoUpgradeWindowStartTime": "24:00"}, "autoUpgradeWindowStartTime", "00:00 to 23:59"),
    ("dev", {"muse:nodeOsUpgradeWindowStartTime": "9:00"}, "nodeOsUpgradeWindowStartTime", "HH:MM"),
    (
        "dev",
        {"muse:autoUpgradeWindowDurationHours": 3},
        "autoUpgradeWindowDurationHours",
        "greater than or equal to 4",
    ),
    (
        "dev",
        {"muse:nodeOsUpgradeWindowDurationHours": 25},
        "nodeOsUpgradeWindowDurationHours",
        "less than or equal to 24",
    ),
    ("dev", {"muse:maintenanceUtcOffset": "+1:00"}, "maintenanceUtcOffset", "not a UTC offset"),
    ("dev", {"muse:maintenanceUtcOffset": "+15:00"}, "maintenanceUtcOffset", "-12:00 to +14:00"),
    ("dev", {"muse:maintenanceUtcOffset": "-13:00"}, "maintenanceUtcOffset", "-12:00 to +14:00"),
    ("dev", {"muse:maintenanceUtcOffset": "+01:20"}, "maintenanceUtcOffset", "not a UTC offset"),
    (
        "prod",
        {"muse:autoUpgradeWindowDay": "Wednesday", "muse:autoUpgradeWindowStartTime": "10:00"},
        "autoUpgradeWindowDay",
        "outside business hours",
    ),
    (
        "prod",
        {
            "muse:nodeOsUpgradeWindowDay": "Sunday",
            "muse:nodeOsUpgradeWindowStartTime": "23:00",
            "muse:nodeOsUpgradeWindowDurationHours": 10,
        },
        "nodeOsUpgradeWindowDay",
        "Sunday 23:00 for 10 h (at +01:00) overlaps Monday-Friday 08:00-18:00",
    ),
]


@pytest.mark.parametrize(
    ("stack", "overrides", "key", "words"),
    BAD_UPGRADE_CONFIGS,
    ids=[f"{c[2]}-{c[0]}-{i}" for i, c in enumerate(BAD_UPGRADE_CONFIGS)],
)
def test_bad_upgrade_config_fails_before_any_resource(
    stack: str, overrides: dict[str, Any], key: str, words: str
) -> None:
    assert_refused_before_any_resource(stack, overrides, key, words)


def test_the_business_hours_rule_is_prod_only() -> None:
    # Negative control of the prod rule: dev may (and does) upgrade in working hours.
    values = read_stack("dev").config
    config = load_stack_config("dev", values)
    assert config.auto_upgrade_window_day == "Monday" and config.auto_upgrade_window_start_time == "09:00"
    assert overlaps_business_hours("Monday", "09:00", 4)


def test_every_window_problem_is_listed_with_the_others() -> None:
    with pytest.raises(ConfigError) as raised:
        load_stack_config(
            "prod",
            {
                **read_stack("prod").config,
                "muse:autoUpgradeWindowStartTime": "12:00",  # Tuesday noon: business hours
                "muse:nodeOsUpgradeWindowDurationHours": "2",  # below AKS's four hours
                "muse:replicas": "1",  # an unrelated prod rule
            },
        )
    assert [p.key for p in raised.value.problems] == [
        "nodeOsUpgradeWindowDurationHours",
        "replicas",
        "autoUpgradeWindowDay",
    ]


@pytest.mark.parametrize(
    ("day", "start", "hours", "overlaps"),
    [
        ("Friday", "17:00", 4, True),
        ("Friday", "18:00", 24, False),  # ends Saturday 18:00
        ("Monday", "04:00", 4, False),  # ends at 08:00, when business hours begin
        ("Monday", "04:00", 5, True),
        ("Sunday", "22:00", 10, False),  # runs into Monday, ends at 08:00
        ("Sunday", "22:00", 11, True),  # negative control of the wrap into next week's Monday
        ("Saturday", "08:00", 24, False),
        ("Tuesday", "22:00", 6, False),
    ],
)
def test_business_hours_overlap(day: str, start: str, hours: int, overlaps: bool) -> None:
    assert BUSINESS_HOURS == (8, 18)
    assert overlaps_business_hours(day, start, hours) is overlaps


def test_committed_windows_prod_at_night_and_not_at_the_same_time_as_dev() -> None:
    dev = load_stack_config("dev", read_stack("dev").config)
    prod = load_stack_config("prod", read_stack("prod").config)
    for window in ("auto_upgrade", "node_os_upgrade"):
        assert not overlaps_business_hours(
            getattr(prod, f"{window}_window_day"),
            getattr(prod, f"{window}_window_start_time"),
            getattr(prod, f"{window}_window_duration_hours"),
        )
    # AKS advises against one maintenance configuration for several clusters of a subscription (ARM
    # throttling; learn.microsoft.com/azure/aks/planned-maintenance FAQ): the environments are staggered.
    dev_windows = {(dev.auto_upgrade_window_day, dev.auto_upgrade_window_start_time)} | {
        (dev.node_os_upgrade_window_day, dev.node_os_upgrade_window_start_time)
    }
    prod_windows = {(prod.auto_upgrade_window_day, prod.auto_upgrade_window_start_time)} | {
        (prod.node_os_upgrade_window_day, prod.node_os_upgrade_window_start_time)
    }
    assert not dev_windows & prod_windows
    # The channels own the version (stack/config.py); dev runs a minor ahead of prod.
    assert (dev.upgrade_channel, prod.upgrade_channel) == ("rapid", "stable")
