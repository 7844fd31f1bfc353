"""The SLO recording and burn-rate alert rules, run by Prometheus's own rule engine: `promtool test rules`
(Debian package `prometheus`, scripts/system-packages.txt) evaluates the exact PromQL that
components/observability/slo.py hands Azure Monitor, against synthetic series shaped like the service's
metrics (counter `muse_http_requests_total`, histogram buckets as prometheus_client writes them, `le="1.0"`).

Each alert has a burn that must fire and one that must not; and each test file is also run against a
deliberately broken rule set, which promtool must refuse (the negative control of the harness itself).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.observability import slo
from components.observability.slo import SloSettings
from muse.contract import secret_environment
from stack.args import slo_settings
from stack.config import load_stack_config
from stack.environments import ENVIRONMENTS
from stack.files import read_stack

NS = "muse-prod"
RUNBOOK = "docs/runbook.md#when-an-alert-fires"
SETTINGS = SloSettings()  # 99.9 % available, 99 % within 250 ms, 30 d, 14.4x / 6x


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: run `make setup` (Debian package prometheus)")
    return path


def _series(
    status: str, per_minute: int, minutes: int, version: str = "v2", start: int = 0
) -> dict[str, str]:
    labels = f'namespace="{NS}",version="{version}",route="/api/v1/evaluate",method="POST",status="{status}"'
    return {"series": f"muse_http_requests_total{{{labels}}}", "values": f"{start}+{per_minute}x{minutes}"}


def _bucket(le: str, per_minute: int, minutes: int, version: str = "v2") -> dict[str, str]:
    labels = f'namespace="{NS}",version="{version}",route="/api/v1/evaluate",method="POST",le="{le}"'
    return {
        "series": f"muse_http_request_duration_seconds_bucket{{{labels}}}",
        "values": f"0+{per_minute}x{minutes}",
    }


def _alert(settings: SloSettings, name: str) -> slo.Rule:
    [rule] = [r for r in slo.alert_rules(settings, NS, RUNBOOK).rules if r.alert == name]
    return rule


def _firing(settings: SloSettings, name: str) -> list[dict[str, Any]]:
    rule = _alert(settings, name)
    return [
        {
            "exp_labels": {"namespace": NS, **rule.labels},
            "exp_annotations": {
                k: v.replace("{{ $labels.namespace }}", NS) for k, v in rule.annotations.items()
            },
        }
    ]


def _tests(settings: SloSettings) -> list[dict[str, Any]]:
    return [
        {
            "name": "2 % errors for 2 h burns a 99.9 % budget 20x: page and ticket fire",
            "interval": "1m",
            "input_series": [_series("200", 98, 130), _series("500", 2, 130)],
            "alert_rule_test": [
                {
                    "eval_time": "70m",
                    "alertname": "MuseAvailabilityBurnPage",
                    "exp_alerts": _firing(settings, "MuseAvailabilityBurnPage"),
                },
                {
                    "eval_time": "70m",
                    "alertname": "MuseAvailabilityBurnTicket",
                    "exp_alerts": _firing(settings, "MuseAvailabilityBurnTicket"),
                },
            ],
        },
        {
            "name": "1 % errors (10x) is below the page threshold 14.4x but above the ticket's 6x",
            "interval": "1m",
            "input_series": [_series("200", 99, 130), _series("500", 1, 130)],
            "alert_rule_test": [
                {"eval_time": "70m", "alertname": "MuseAvailabilityBurnPage", "exp_alerts": []},
                {
                    "eval_time": "70m",
                    "alertname": "MuseAvailabilityBurnTicket",
                    "exp_alerts": _firing(settings, "MuseAvailabilityBurnTicket"),
                },
            ],
        },
        {
            "name": "a burn that stopped: the 1 h window still burns, the 5 min window is clean: no page",
            "interval": "1m",
            # 20 % errors for the first 20 minutes, none for the next 40.
            "input_series": [
                _series("200", 100, 60),
                {
                    "series": _series("500", 0, 0)["series"],
                    "values": "0+25x20 500+0x40",
                },
            ],
            "alert_rule_test": [
                {
                    "eval_time": "15m",
                    "alertname": "MuseAvailabilityBurnPage",
                    "exp_alerts": _firing(settings, "MuseAvailabilityBurnPage"),
                },
                {"eval_time": "60m", "alertname": "MuseAvailabilityBurnPage", "exp_alerts": []},
            ],
            "promql_expr_test": [
                # The long window alone would still page: 500 errors of 6500 requests in the last hour.
                {
                    "expr": "muse:slo_availability_errors:ratio_rate1h > 0.0144",
                    "eval_time": "60m",
                    "exp_samples": [
                        {
                            "labels": f'muse:slo_availability_errors:ratio_rate1h{{namespace="{NS}"}}',
                            "value": 500 / 6500,
                        }
                    ],
                },
            ],
        },
        {
            "name": "no traffic is not an outage: 0/0 is no sample, nothing fires",
            "interval": "1m",
            "input_series": [_series("200", 0, 130), _series("500", 0, 130)],
            "alert_rule_test": [
                {"eval_time": "70m", "alertname": name, "exp_alerts": []}
                for name in ("MuseAvailabilityBurnPage", "MuseAvailabilityBurnTicket")
            ],
        },
        {
            "name": "20 % of requests slower than 250 ms (buckets as prometheus_client writes them) pages",
            "interval": "1m",
            "input_series": [_bucket("0.25", 80, 130), _bucket("1.0", 95, 130), _bucket("+Inf", 100, 130)],
            "alert_rule_test": [
                {
                    "eval_time": "70m",
                    "alertname": "MuseLatencyBurnPage",
                    "exp_alerts": _firing(settings, "MuseLatencyBurnPage"),
                },
            ],
        },
        {
            "name": "5 % slow requests: ticket (6x of 1 % is 6 %: not yet), no page",
            "interval": "1m",
            "input_series": [_bucket("0.25", 95, 130), _bucket("+Inf", 100, 130)],
            "alert_rule_test": [
                {"eval_time": "70m", "alertname": "MuseLatencyBurnPage", "exp_alerts": []},
                {"eval_time": "70m", "alertname": "MuseLatencyBurnTicket", "exp_alerts": []},
            ],
        },
        {
            "name": (
                "per-version signals for a release gate: the new version's 5xx ratio and p95, the old one's"
            ),
            "interval": "1m",
            "input_series": [
                _series("200", 100, 30, version="v1"),
                _series("500", 0, 30, version="v1"),
                _series("200", 90, 30, version="v2"),
                _series("500", 10, 30, version="v2"),
                _bucket("0.1", 100, 30, version="v1"),
                _bucket("+Inf", 100, 30, version="v1"),
                _bucket("0.1", 0, 30, version="v2"),
                _bucket("0.25", 100, 30, version="v2"),
                _bucket("+Inf", 100, 30, version="v2"),
            ],
            "promql_expr_test": [
                {
                    "expr": slo.VERSION_ERROR_RATIO,
                    "eval_time": "20m",
                    "exp_samples": [
                        {"labels": f'{slo.VERSION_ERROR_RATIO}{{namespace="{NS}",version="v1"}}', "value": 0},
                        {
                            "labels": f'{slo.VERSION_ERROR_RATIO}{{namespace="{NS}",version="v2"}}',
                            "value": 0.1,
                        },
                    ],
                },
                {
                    # histogram_quantile interpolates inside the bucket: v1 all <= 0.1 s, v2 all in
                    # (0.1, 0.25].
                    "expr": slo.VERSION_P95_SECONDS,
                    "eval_time": "20m",
                    "exp_samples": [
                        {
                            "labels": f'{slo.VERSION_P95_SECONDS}{{namespace="{NS}",version="v1"}}',
                            "value": 0.095,
                        },
                        {
                            "labels": f'{slo.VERSION_P95_SECONDS}{{namespace="{NS}",version="v2"}}',
                            "value": 0.2425,
                        },
                    ],
                },
            ],
        },
    ]


def _run(
    tmp_path: Path, settings: SloSettings, tests: list[dict[str, Any]]
) -> subprocess.CompletedProcess[str]:
    groups = [slo.recording_rules(settings, NS), slo.alert_rules(settings, NS, RUNBOOK)]
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(slo.rule_file(groups), sort_keys=False))
    (tmp_path / "tests.yml").write_text(
        yaml.safe_dump(
            {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests}, sort_keys=False
        )
    )
    return subprocess.run(
        [_promtool(), "test", "rules", "tests.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow  # runs promtool
def test_promtool_accepts_the_rule_file(tmp_path: Path) -> None:
    groups = [slo.recording_rules(SETTINGS, NS), slo.alert_rules(SETTINGS, NS, RUNBOOK)]
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(slo.rule_file(groups), sort_keys=False))
    result = subprocess.run(
        [_promtool(), "check", "rules", "rules.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow  # runs promtool
def test_burns_fire_and_non_burns_do_not(tmp_path: Path) -> None:
    result = _run(tmp_path, SETTINGS, _tests(SETTINGS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.slow  # runs promtool
@pytest.mark.parametrize(
    ("defect", "broken"),
    [
        # A page threshold of 6x would page on the 10x burn that must only open a ticket.
        ("page at 6x", replace(SETTINGS, page_burn_rate=6.0)),
        # A latency threshold off the bucket boundaries matches no bucket: latency never pages.
        ("threshold between buckets", replace(SETTINGS, latency_threshold_ms=300)),
    ],
)
def test_promtool_refuses_broken_rules(tmp_path: Path, defect: str, broken: SloSettings) -> None:
    result = _run(tmp_path, broken, _tests(SETTINGS))
    assert result.returncode != 0, f"{defect}: promtool passed\n{result.stdout}"
    assert "FAILED" in result.stdout + result.stderr


@pytest.mark.slow  # runs promtool
def test_without_the_short_window_a_stopped_burn_would_still_page(tmp_path: Path) -> None:
    """The negative control of the short window: the same rules with the 5 min condition dropped fail the
    'burn that stopped' case."""
    tests = [t for t in _tests(SETTINGS) if t["name"].startswith("a burn that stopped")]
    alerts = slo.alert_rules(SETTINGS, NS, RUNBOOK)
    crippled = slo.RuleGroup(
        alerts.name,
        alerts.description,
        [replace(r, expression=r.expression.split(" and ")[0]) for r in alerts.rules],
    )
    (tmp_path / "rules.yml").write_text(
        yaml.safe_dump(slo.rule_file([slo.recording_rules(SETTINGS, NS), crippled]), sort_keys=False)
    )
    (tmp_path / "tests.yml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests})
    )
    result = subprocess.run(
        [_promtool(), "test", "rules", "tests.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0, result.stdout


def test_burn_thresholds_are_the_workbook_arithmetic() -> None:
    availability, latency = slo.objectives(SETTINGS, NS)
    # 14.4 = 2 % of a 30-day budget in 1 h: 0.02 * 30 * 24 / 1; 6 = 5 % in 6 h: 0.05 * 720 / 6.
    assert slo.burn_threshold(availability, 0.02 * 30 * 24) == pytest.approx(0.0144)
    assert slo.burn_threshold(availability, 0.05 * 30 * 24 / 6) == pytest.approx(0.006)
    assert slo.burn_threshold(latency, 14.4) == pytest.approx(0.144)


def _service_buckets() -> set[float]:
    """The `le` bounds the real service exposes (its /metrics text, parsed by prometheus_client)."""
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from muse.app import Metrics
    from muse.config import load_settings

    metrics = Metrics(
        load_settings({**secret_environment("offline-test-token-0123456789abcdef"), "MUSE_ENV": "dev"})
    )
    metrics.latency.labels("/x", "GET", "test").observe(0.01)
    text = generate_latest(metrics.registry).decode()
    return {
        float(sample.labels["le"])
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == slo.DURATION_BUCKETS and sample.labels["le"] != "+Inf"
    }


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_each_stacks_latency_threshold_is_a_bucket_of_the_service(stack: str) -> None:
    config = load_stack_config(stack, read_stack(stack).config)
    threshold = slo_settings(config).latency_threshold_ms / 1000
    buckets = _service_buckets()
    assert threshold in buckets, (threshold, sorted(buckets))
    # Negative control: a value between two bounds is not accepted by the same check.
    assert 0.3 not in buckets
