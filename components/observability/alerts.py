"""Muse's Azure Monitor alerts, declared once: the component creates them, the Bicep mapping gives each its
severity by `kind`, and `docs/architecture/observability.md`'s alert table is rendered from them.

Adding an alert = one entry in `LOG_ALERTS` or `METRIC_ALERTS` (and its runbook section,
docs/runbook.md "When an alert fires: <key>", which a test requires); `make export` regenerates the Bicep and
the docs. `tests/components/test_alerts.py` is the one test that pins the list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from components.observability import slo
from components.observability.queries import ARRIVAL_WINDOW_MINUTES, LOOKBACK_MINUTES, MuseQueries
from components.observability.recommended_rules import recommended_groups

# How loud an alert is: a failure of Muse (or of its public URL), or pressure on capacity. The environment
# decides the number for each kind (stack/args.py), the definition only the kind.
AlertKind = Literal["failure", "capacity"]
ALERT_KINDS: tuple[AlertKind, ...] = get_args(AlertKind)
RUNBOOK = "docs/runbook.md#when-an-alert-fires"


@dataclass(frozen=True)
class AlertSeverities:
    """Azure Monitor severities (0 Critical, 1 Error, 2 Warning, 3 Informational, 4 Verbose) per kind."""

    failure: int
    capacity: int

    def of(self, kind: AlertKind) -> int:
        return self.failure if kind == "failure" else self.capacity


@dataclass(frozen=True)
class LogAlert:
    """A log search alert on the workspace, every `ARRIVAL_WINDOW_MINUTES` over as many.

    key: the rule is `<alert_rule_prefix>-<key>`, the runbook section "When an alert fires: <key>".
    query: the `MuseQueries` property it counts rows of (the workbook shows the same query).
    looks_back: reads `LOOKBACK_MINUTES` of event time instead of the window (late rows, snapshot deltas).
    signal / runs / fires_when: the row of the documentation's alert table.
    """

    key: str
    title: str
    description: str
    query: Callable[[MuseQueries], str]
    looks_back: bool
    kind: AlertKind
    signal: str
    runs: str
    fires_when: str


@dataclass(frozen=True)
class MetricAlert:
    """A platform-metric alert on the cluster: average of `metric` per node above `threshold` percent."""

    key: str
    measure: str
    metric: str
    threshold: int
    kind: AlertKind

    @property
    def title(self) -> str:
        return f"Node {self.measure}"


@dataclass(frozen=True)
class ProbeAlert:
    """The availability test's alert (components/observability/availability.py), only with a probe."""

    key: str
    kind: AlertKind


_EVERY = f"every {ARRIVAL_WINDOW_MINUTES} min"
LOG_ALERTS: tuple[LogAlert, ...] = (
    LogAlert(
        key="muse-errors",
        title="Muse ERROR log lines",
        description="Muse logged ERROR/CRITICAL lines (e.g. an unhandled exception) in the last 5 minutes.",
        query=lambda queries: queries.error_lines_alert,
        looks_back=True,
        kind="failure",
        signal="log search, `ContainerLogV2`",
        runs=(
            f"{_EVERY}; lines that **arrived** in the last {ARRIVAL_WINDOW_MINUTES} min "
            f"(`ingestion_time()`), event time up to {LOOKBACK_MINUTES} min back"
        ),
        fires_when="any Muse line at `ERROR`/`CRITICAL` in the namespace",
    ),
    LogAlert(
        key="muse-restarts",
        title="Muse container restarts / CrashLoopBackOff",
        description="A Muse container restarted or is in CrashLoopBackOff.",
        query=lambda queries: queries.restarts,
        looks_back=True,
        kind="failure",
        signal="log search, `KubePodInventory`",
        runs=(
            f"{_EVERY} over {ARRIVAL_WINDOW_MINUTES} min ({LOOKBACK_MINUTES} min of snapshots, so a restart "
            "between two snapshots at the window edge is seen)"
        ),
        fires_when="a Muse container's restart count grew, or it is in `CrashLoopBackOff`",
    ),
    LogAlert(
        key="muse-pods-not-ready",
        title="Muse pods not ready",
        description="A Muse pod has not been Running (container running) for most of the last 5 minutes.",
        query=lambda queries: queries.pods_not_ready,
        looks_back=False,
        kind="failure",
        signal="log search, `KubePodInventory`",
        runs=f"{_EVERY} over {ARRIVAL_WINDOW_MINUTES} min",
        fires_when=(
            "a Muse pod was not `Running` (or its container not `running`) in ≥ 3 of the per-minute "
            "snapshots; a pod pending for seconds during a rollout does not fire"
        ),
    ),
)
METRIC_ALERTS: tuple[MetricAlert, ...] = (
    MetricAlert("node-cpu", "CPU", "node_cpu_usage_percentage", 80, "capacity"),
    MetricAlert("node-memory", "memory working set", "node_memory_working_set_percentage", 80, "capacity"),
)
# The public URL failing is a failure, not a capacity warning.
PROBE_ALERT = ProbeAlert("availability", "failure")

# Prometheus alert rules carry an urgency (components/observability/slo.py `Rule.severity`): a page is a
# failure, a ticket capacity-like.
URGENCY_KIND: Mapping[str, AlertKind] = {"page": "failure", "ticket": "capacity"}


def alert_kind(logical_name: str) -> AlertKind:
    """The kind of the log, metric or probe alert whose Pulumi logical name is `<component>-<key>`."""
    declared: tuple[LogAlert | MetricAlert | ProbeAlert, ...] = (*LOG_ALERTS, *METRIC_ALERTS, PROBE_ALERT)
    found = [a.kind for a in declared if logical_name.endswith(f"-{a.key}")]
    if len(found) != 1:
        raise KeyError(f"{logical_name}: not one alert of components/observability/alerts.py ({found})")
    return found[0]


def prometheus_alert_kinds() -> Mapping[str, AlertKind]:
    """Kind of every Prometheus alert rule by its name: the community alerts and the SLO burn alerts (their
    names do not depend on the SLO settings or the namespace)."""
    groups = (*recommended_groups(), slo.alert_rules(slo.SloSettings(), "muse", RUNBOOK))
    return {rule.alert: URGENCY_KIND[rule.severity] for group in groups for rule in group.rules if rule.alert}


def _minutes(duration: str) -> int:
    match = re.fullmatch(r"PT(\d+)M", duration)
    if match is None:
        raise ValueError(f"{duration}: not a whole number of minutes (PT<n>M)")
    return int(match.group(1))


def metric_runs(frequency: str, window: str) -> str:
    """`runs / looks at` of a metric alert in the documentation's table."""
    return f"every {_minutes(frequency)} min over {_minutes(window)} min, per node"
