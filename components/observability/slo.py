"""Muse's service level objectives as Prometheus rules: per-version signals, SLIs, error budget,
burn-rate alerts.

Pure data (no Pulumi): `components/observability/prometheus.py` turns the rules into Azure Monitor
`prometheusRuleGroups`; `rule_file` writes the same rules as a Prometheus rule file, which
tests/components/test_slo_rules.py runs through Prometheus's own `promtool test rules`. Two SLOs
(availability, latency) over `window_days` on the service's request metrics, with multi-window,
multi-burn-rate alerts (Google SRE workbook, ch. 5). Why: docs/architecture/observability.md#the-slo-rules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# The service's request metrics and their labels (muse/contract.py); VERSION_LABEL carries MUSE_VERSION.
from muse.contract import DURATION_BUCKETS, STATUS_LABEL, VERSION_LABEL
from muse.contract import REQUESTS_TOTAL as REQUESTS

SERVER_ERRORS = f'{STATUS_LABEL}=~"5.."'

# Names a release gate reads (per namespace and version, 5-minute rates).
VERSION_ERROR_RATIO = "muse_version:http_requests_5xx:ratio_rate5m"
VERSION_P95_SECONDS = "muse_version:http_request_duration_seconds:p95_5m"
VERSION_REQUEST_RATE = "muse_version:http_requests:rate5m"

# (long, short) windows of each alert, from the SRE workbook's table 5-8.
PAGE_WINDOWS = ("1h", "5m")
TICKET_WINDOWS = ("6h", "30m")
RULE_INTERVAL_MINUTES = 1


@dataclass(frozen=True)
class Objective:
    """One SLO. `slug` names its series (`muse:slo_<slug>_errors:ratio_rate<w>`)."""

    slug: str
    title: str
    percent: float
    bad_events: str  # PromQL of the rate of bad events over `[{w}]`, by namespace
    all_events: str  # PromQL of the rate of all events over `[{w}]`, by namespace

    @property
    def budget(self) -> float:
        """The error budget as a ratio (99.9 % -> 0.001)."""
        return round(1 - self.percent / 100, 10)

    def ratio(self, window: str) -> str:
        return f"muse:slo_{self.slug}_errors:ratio_rate{window}"

    @property
    def budget_remaining(self) -> str:
        return f"muse:slo_{self.slug}_error_budget:remaining_ratio"


@dataclass(frozen=True)
class Rule:
    """A recording rule (`record`) or an alerting rule (`alert`); `for_minutes` only for alerts."""

    expression: str
    record: str | None = None
    alert: str | None = None
    for_minutes: int = 0
    severity: str = ""  # "page" or "ticket" for alerts
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleGroup:
    name: str
    description: str
    rules: Sequence[Rule]


@dataclass(frozen=True, kw_only=True)
class SloSettings:
    """The SLO knobs (stack config `muse:slo*`, mapped in stack/args.py).

    availability_percent / latency_percent: objectives in percent (e.g. 99.9 and 99).
    latency_threshold_ms: a request slower than this is "slow"; must be a bucket boundary of the service's
        histogram (tests/components/test_slo_rules.py checks both stacks against muse/app.py).
    window_days: the SLO (and error budget) window.
    page_burn_rate / ticket_burn_rate: burn-rate multiples of the two alerts.
    """

    availability_percent: float = 99.9
    latency_percent: float = 99.0
    latency_threshold_ms: int = 250
    window_days: int = 30
    page_burn_rate: float = 14.4
    ticket_burn_rate: float = 6.0


def le_matcher(threshold_ms: int) -> str:
    """The `le` label matcher of a bucket boundary: Python's client writes 1.0 where Go writes 1, so both."""
    seconds = threshold_ms / 1000
    text = f"{seconds:g}"
    forms = {text, text + ".0"} if "." not in text and "e" not in text else {text}
    return "|".join(sorted(form.replace(".", "\\\\.") for form in forms))


def objectives(settings: SloSettings, namespace: str) -> tuple[Objective, Objective]:
    selector = f'namespace="{namespace}"'
    requests = f"sum by (namespace) (rate({REQUESTS}{{{selector}}}[{{w}}]))"
    errors = f"sum by (namespace) (rate({REQUESTS}{{{selector},{SERVER_ERRORS}}}[{{w}}]))"
    le = le_matcher(settings.latency_threshold_ms)
    fast = f'sum by (namespace) (rate({DURATION_BUCKETS}{{{selector},le=~"{le}"}}[{{w}}]))'
    total = f'sum by (namespace) (rate({DURATION_BUCKETS}{{{selector},le="+Inf"}}[{{w}}]))'
    return (
        Objective("availability", "Availability (non-5xx)", settings.availability_percent, errors, requests),
        Objective(
            "latency",
            f"Latency (within {settings.latency_threshold_ms} ms)",
            settings.latency_percent,
            f"({total} - {fast})",
            total,
        ),
    )


def _windows(settings: SloSettings) -> list[str]:
    return [*PAGE_WINDOWS, *TICKET_WINDOWS, f"{settings.window_days}d"]


def recording_rules(settings: SloSettings, namespace: str) -> RuleGroup:
    """Per-version signals for a release gate, and each SLO's error ratio over every alert window and the SLO
    window, and the error budget left."""
    selector = f'namespace="{namespace}"'
    by = f"namespace, {VERSION_LABEL}"
    rules: list[Rule] = [
        Rule(record=VERSION_REQUEST_RATE, expression=f"sum by ({by}) (rate({REQUESTS}{{{selector}}}[5m]))"),
        Rule(
            record=VERSION_ERROR_RATIO,
            expression=(
                f"sum by ({by}) (rate({REQUESTS}{{{selector},{SERVER_ERRORS}}}[5m])) / "
                f"sum by ({by}) (rate({REQUESTS}{{{selector}}}[5m]))"
            ),
        ),
        Rule(
            record=VERSION_P95_SECONDS,
            expression=(
                f"histogram_quantile(0.95, sum by ({by}, le) (rate({DURATION_BUCKETS}{{{selector}}}[5m])))"
            ),
        ),
    ]
    for objective in objectives(settings, namespace):
        for window in _windows(settings):
            bad = objective.bad_events.replace("{w}", window)
            every = objective.all_events.replace("{w}", window)
            rules.append(Rule(record=objective.ratio(window), expression=f"{bad} / {every}"))
        rules.append(
            Rule(
                record=objective.budget_remaining,
                expression=f"1 - {objective.ratio(f'{settings.window_days}d')} / {objective.budget}",
            )
        )
    return RuleGroup(
        name="muse-slo-records",
        description=f"Muse SLIs, per-version signals and error budget ({namespace}).",
        rules=rules,
    )


def burn_threshold(objective: Objective, burn_rate: float) -> float:
    """The error ratio at which `objective` burns its budget `burn_rate` times too fast."""
    return round(burn_rate * objective.budget, 10)


def alert_rules(settings: SloSettings, namespace: str, runbook: str) -> RuleGroup:
    """Page and ticket burn-rate alerts of each SLO (both windows must burn)."""
    rules: list[Rule] = []
    for objective in objectives(settings, namespace):
        for severity, burn, (long, short) in (
            ("page", settings.page_burn_rate, PAGE_WINDOWS),
            ("ticket", settings.ticket_burn_rate, TICKET_WINDOWS),
        ):
            threshold = burn_threshold(objective, burn)
            name = f"Muse{objective.slug.capitalize()}Burn{severity.capitalize()}"
            rules.append(
                Rule(
                    alert=name,
                    expression=(
                        f"{objective.ratio(long)} > {threshold:g} and {objective.ratio(short)} > "
                        f"{threshold:g}"
                    ),
                    severity=severity,
                    labels={"slo": objective.slug, "urgency": severity},
                    annotations={
                        "summary": (
                            f"{objective.title} SLO ({objective.percent:g} % over {settings.window_days} d) "
                            f"burning > {burn:g}x over {long} and {short} in {{{{ $labels.namespace }}}}"
                        ),
                        "runbook": f"{runbook}-slo-burn",
                    },
                )
            )
    return RuleGroup(
        name="muse-slo-alerts",
        description=f"Muse SLO burn-rate alerts ({namespace}): page 1h&5m, ticket 6h&30m.",
        rules=rules,
    )


def rule_file(groups: Sequence[RuleGroup]) -> dict[str, Any]:
    """The groups as a Prometheus rule file (what `promtool test rules` and `promtool check rules` read)."""

    def entry(rule: Rule) -> dict[str, Any]:
        if rule.record:
            out: dict[str, Any] = {"record": rule.record, "expr": rule.expression}
        else:
            out = {"alert": rule.alert, "expr": rule.expression}
            if rule.for_minutes:
                out["for"] = f"{rule.for_minutes}m"
            if rule.annotations:
                out["annotations"] = dict(rule.annotations)
        if rule.labels:
            out["labels"] = dict(rule.labels)
        return out

    return {
        "groups": [
            {
                "name": group.name,
                "interval": f"{RULE_INTERVAL_MINUTES}m",
                "rules": [entry(rule) for rule in group.rules],
            }
            for group in groups
        ]
    }
