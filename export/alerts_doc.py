"""The alert table of docs/architecture/observability.md, rendered from components/observability/alerts.py
with each tier's severities (stack/args.py), so a new alert shows up in the documentation by itself."""

from __future__ import annotations

from components.observability import METRIC_ALERT_FREQUENCY, METRIC_ALERT_WINDOW
from components.observability.alerts import LOG_ALERTS, METRIC_ALERTS, AlertKind, metric_runs
from stack.args import DEVELOPMENT_SEVERITIES, PRODUCTION_SEVERITIES

SECTION = "alerts"
PATH = "docs/architecture/observability.md"


def _severity(kind: AlertKind) -> str:
    return f"{DEVELOPMENT_SEVERITIES.of(kind)} / {PRODUCTION_SEVERITIES.of(kind)}"


def render() -> str:
    rows = [
        "| rule (`alert-muse-<env>-<suffix>-…`) | signal | runs / looks at | fires when "
        "| severity dev / prod |",
        "|---|---|---|---|---|",
    ]
    rows += [
        f"| `{a.key}` | {a.signal} | {a.runs} | {a.fires_when} | {_severity(a.kind)} |" for a in LOG_ALERTS
    ]
    runs = metric_runs(METRIC_ALERT_FREQUENCY, METRIC_ALERT_WINDOW)
    rows += [
        f"| `{a.key}` | metric, cluster | {runs} | average {a.measure} > {a.threshold} % "
        f"| {_severity(a.kind)} |"
        for a in METRIC_ALERTS
    ]
    return "\n".join(rows)
