"""The alert declarations (components/observability/alerts.py) and what follows them (the documentation's
alert table here, the Bicep severity by kind in tests/export/test_alert_severity.py). The first test is the
one place that pins which alerts exist; every other test derives its expectation from the lists, so adding
an alert changes the list and that test."""

from __future__ import annotations

import pytest

from components.observability.alerts import (
    LOG_ALERTS,
    METRIC_ALERTS,
    PROBE_ALERT,
    AlertSeverities,
    LogAlert,
    alert_kind,
)
from export import alerts_doc
from export.resource_types import SEVERITY
from stack.args import DEVELOPMENT_SEVERITIES, PRODUCTION_SEVERITIES


def test_these_are_the_alerts() -> None:
    # The one pin: adding, removing or re-classing an alert changes this test and no other.
    assert [(a.key, a.kind) for a in LOG_ALERTS] == [
        ("muse-errors", "failure"),
        ("muse-restarts", "failure"),
        ("muse-pods-not-ready", "failure"),
    ]
    assert [(a.key, a.kind, a.metric, a.threshold) for a in METRIC_ALERTS] == [
        ("node-cpu", "capacity", "node_cpu_usage_percentage", 80),
        ("node-memory", "capacity", "node_memory_working_set_percentage", 80),
    ]
    assert (PROBE_ALERT.key, PROBE_ALERT.kind) == ("availability", "failure")


def test_keys_are_unique_and_name_one_alert_each() -> None:
    keys = [a.key for a in (*LOG_ALERTS, *METRIC_ALERTS, PROBE_ALERT)]
    assert len(keys) == len(set(keys))
    for key in keys:
        assert alert_kind(f"observability-{key}") in ("failure", "capacity")
    # Negative control: a resource no declaration names stops the Bicep mapping instead of guessing.
    with pytest.raises(KeyError, match="not one alert"):
        alert_kind("observability-not-an-alert")


def test_severity_per_kind() -> None:
    severities = AlertSeverities(failure=1, capacity=2)
    assert (severities.of("failure"), severities.of("capacity")) == (1, 2)
    assert {kind: (c.if_true, c.if_false) for kind, c in SEVERITY.items()} == {
        kind: (PRODUCTION_SEVERITIES.of(kind), DEVELOPMENT_SEVERITIES.of(kind)) for kind in SEVERITY
    }


def test_the_documentation_table_has_a_row_per_alert(monkeypatch: pytest.MonkeyPatch) -> None:
    def rows() -> list[str]:
        return [line.split(" | ")[0].removeprefix("| ") for line in alerts_doc.render().splitlines()[2:]]

    assert rows() == [f"`{a.key}`" for a in (*LOG_ALERTS, *METRIC_ALERTS)]
    # Negative control: a new declaration is a new row, with its kind's severities.
    extra = LogAlert(
        "muse-extra", "t", "d", lambda q: q.restarts, False, "capacity", "log search", "runs", "fires"
    )
    monkeypatch.setattr(alerts_doc, "LOG_ALERTS", (*LOG_ALERTS, extra))
    assert "`muse-extra`" in rows()
    assert alerts_doc.render().splitlines()[2 + len(LOG_ALERTS)].endswith("| 3 / 2 |")
