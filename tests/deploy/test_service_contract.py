"""The workload and the release checks hold to the service's contract (muse/contract.py), checked against the
service itself, not against the contract module: the variables the Deployment sets are the ones muse/config.py
reads (and its values load), the probes and the checks' requests hit routes muse/app.py serves, and the
metrics and labels the SLO rules and the canary gate query are ones the service exports (its own registry).
Each check has a negative control: a synthetic defect of the kind it guards against."""

from __future__ import annotations

import ast
import copy
import re
import sys
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.routing import Match

from components.muse_workload import canary_load, evaluate_check, manifests
from components.observability import slo
from muse import contract
from muse.app import create_app
from muse.config import REQUIRED_VARIABLES, VARIABLES, ConfigError, load_settings
from stack.args import stack_workload_spec
from stack.environments import ENVIRONMENTS
from stack.files import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts" / "ci"))

import canary_gate

TOKEN = "test-token-service-contract-0123456789abcdef"
TRACKS = (manifests.DEPLOYMENT, manifests.CANDIDATE)
CASES = [(stack, track) for stack in ENVIRONMENTS for track in TRACKS]


def rendered(stack: str, track: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The Muse container of `stack`'s Deployment for `track`, and the data of the ConfigMap it reads."""
    spec = replace(stack_workload_spec(stack), candidate_image_tag="sha256:" + "c" * 64, candidate_weight=10)
    [container] = manifests.deployment(spec, track)["spec"]["template"]["spec"]["containers"]
    config_map = manifests.config_map(spec)
    assert container["envFrom"] == [{"configMapRef": {"name": config_map["metadata"]["name"]}}]
    return container, dict(config_map["data"])


# ------------------------------------------------------------------------------------------------------
# Environment variables


def variable_problems(container: dict[str, Any], config_data: dict[str, str]) -> list[str]:
    """Variables the container gets that the service never reads (a rename on either side: the service
    would silently run on its default), and variables the service requires that the container lacks."""
    given = set(config_data) | {entry["name"] for entry in container.get("env", [])}
    return [
        *(
            f"{name}: set by the Deployment, never read by muse/config.py"
            for name in sorted(given - VARIABLES)
        ),
        *(
            f"{name}: required by muse/config.py, not set by the Deployment"
            for name in sorted(REQUIRED_VARIABLES - given)
        ),
    ]


# Kubernetes resource quantities the manifests use (kubernetes.io/docs/reference/kubernetes-api/common-
# definitions/quantity/: binary suffixes are powers of 1024).
QUANTITY = re.compile(r"^(\d+)(Ki|Mi|Gi)?$")


def bytes_of(quantity: str) -> int:
    match = QUANTITY.match(quantity)
    assert match, quantity
    return int(match[1]) * 1024 ** {None: 0, "Ki": 1, "Mi": 2, "Gi": 3}[match[2]]


def environment(container: dict[str, Any], config_data: dict[str, str]) -> dict[str, str]:
    """What the pod's process sees: the ConfigMap, literal values, a token for a secret reference (the CSI
    driver's synced Secret) and the Downward API's limits.memory in bytes (divisor 1)."""
    env = dict(config_data)
    for entry in container["env"]:
        source = entry.get("valueFrom", {})
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        elif "secretKeyRef" in source:
            env[entry["name"]] = TOKEN
        elif source.get("resourceFieldRef", {}).get("resource") == "limits.memory":
            env[entry["name"]] = str(bytes_of(container["resources"]["limits"]["memory"]))
        else:
            raise AssertionError(f"unknown source of {entry['name']}: {source}")
    return env


@pytest.mark.parametrize(("stack", "track"), CASES)
def test_every_variable_the_deployment_sets_is_one_the_service_reads(stack: str, track: str) -> None:
    container, config_data = rendered(stack, track)
    assert variable_problems(container, config_data) == []
    # ... and what it sets loads: the service starts on these values, on the ports the pod declares.
    settings = load_settings(environment(container, config_data))
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert (settings.port, settings.metrics_port) == (ports["http"], ports[manifests.METRICS_PORT_NAME])
    assert settings.env == stack and settings.version != "unknown"
    assert settings.memory_limit_bytes == bytes_of(manifests.RESOURCES["limits"]["memory"])
    assert manifests.scrape_annotations()["prometheus.io/port"] == str(settings.metrics_port)


def test_a_renamed_or_unread_variable_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative controls: the log level renamed in the ConfigMap (the service would run at INFO), a secret
    added to SECRETS that muse/config.py does not read, the token left out, an invalid value."""
    container, config_data = rendered("prod", manifests.DEPLOYMENT)
    renamed = {("MUSE_LOGLEVEL" if k == contract.ENV_LOG_LEVEL else k): v for k, v in config_data.items()}
    assert variable_problems(container, renamed) == [
        "MUSE_LOGLEVEL: set by the Deployment, never read by muse/config.py"
    ]
    extra = manifests.WorkloadSecret("muse-db-password", "MUSE_DB_PASSWORD", "database password")
    monkeypatch.setattr(manifests, "SECRETS", (*manifests.SECRETS, extra))
    with_secret, _ = rendered("prod", manifests.DEPLOYMENT)
    assert variable_problems(with_secret, config_data) == [
        "MUSE_DB_PASSWORD: set by the Deployment, never read by muse/config.py"
    ]
    without_token = copy.deepcopy(container)
    without_token["env"] = [e for e in container["env"] if e["name"] != contract.ENV_API_TOKEN]
    assert variable_problems(without_token, config_data) == [
        "MUSE_API_TOKEN: required by muse/config.py, not set by the Deployment"
    ]
    with pytest.raises(ConfigError, match="MUSE_LOG_LEVEL"):
        load_settings(environment(container, {**config_data, contract.ENV_LOG_LEVEL: "LOUD"}))


# ------------------------------------------------------------------------------------------------------
# Paths


@pytest.fixture(scope="module")
def app() -> Starlette:
    return create_app(load_settings(contract.secret_environment(TOKEN)))


def served(app: Starlette, method: str, path: str) -> bool:
    """Whether a route of the app takes `method path` (Starlette's own matching: FULL = path and method)."""
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    return any(route.matches(scope)[0] == Match.FULL for route in app.routes)


def probe_paths(container: dict[str, Any]) -> set[str]:
    return {
        container[probe]["httpGet"]["path"] for probe in ("startupProbe", "readinessProbe", "livenessProbe")
    }


@pytest.mark.parametrize(("stack", "track"), CASES)
def test_every_probe_is_a_route_the_service_serves(app: Starlette, stack: str, track: str) -> None:
    container, _ = rendered(stack, track)
    probes = [container[p]["httpGet"] for p in ("startupProbe", "readinessProbe", "livenessProbe")]
    assert {probe["port"] for probe in probes} == {"http"}  # the API port, where the app serves them
    assert all(served(app, "GET", probe["path"]) for probe in probes), probes
    # The plain-HTTP Gateway route of a stack without a host forwards these GETs to the same app.
    assert all(served(app, "GET", path) for path in manifests.PLAIN_HTTP_PATHS)


def test_the_checks_requests_are_routes_the_service_serves(app: Starlette) -> None:
    check = evaluate_check.script()
    load = canary_load.script()
    assert re.findall(r'"(/api/[^"?]*)', check) and re.findall(r'"(/api/[^"?]*)', load)
    assert served(app, "POST", contract.EVALUATE_PATH) and served(app, "GET", contract.POLICIES_PATH)
    for path in re.findall(r'"(/api/[^"?]*)', check + load):
        assert served(app, "POST", path) or served(app, "GET", path), path
    # Negative control: a route the service does not have, or the right path with the wrong method.
    assert not served(app, "POST", "/api/v2/evaluate")
    assert not served(app, "GET", contract.EVALUATE_PATH)


def test_a_probe_on_a_path_the_service_lacks_is_caught(app: Starlette) -> None:
    container, _ = rendered("dev", manifests.DEPLOYMENT)
    broken = copy.deepcopy(container)
    broken["livenessProbe"]["httpGet"]["path"] = "/health"
    assert {path for path in probe_paths(broken) if not served(app, "GET", path)} == {"/health"}


# ------------------------------------------------------------------------------------------------------
# Metrics

# Labels the scrape adds to every series of a pod-annotation target (Azure Monitor managed Prometheus
# relabels pod metadata into namespace and pod, like Prometheus's kubernetes_sd pod role examples:
# Azure/prometheus-collector otelcollector/configmaps/ama-metrics-prometheus-config-configmap.yaml), and
# the histogram's `le`, which the exposition adds to each bucket.
TARGET_LABELS = {"namespace", "pod", "job", "instance"}
# PromQL's keywords, which read like names (prometheus.io/docs/prometheus/latest/querying/basics/,
# "Offset modifier"; .../operators/, "Vector matching").
PROMQL_WORDS = {
    *("by", "without", "and", "or", "unless", "on", "ignoring", "group_left", "group_right", "bool"),
    "offset",
}


def exported(app: Starlette) -> dict[str, set[str]]:
    """Sample name -> label names, from the service's own registry in the exposition format it serves."""
    text = generate_latest(app.state.metrics.registry).decode()
    samples: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, set()).update(sample.labels)
    return samples


def series_used(expressions: Iterable[str]) -> tuple[dict[str, set[str]], set[str]]:
    """Metric name -> label names its matchers use, and the grouping labels, over PromQL `expressions`."""
    used: dict[str, set[str]] = {}
    grouping: set[str] = set()
    for expression in expressions:
        text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expression)
        for name, matchers in re.findall(r"([A-Za-z_:][\w:]*)\s*\{([^}]*)\}", text):
            used.setdefault(name, set()).update(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers))
        text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
        for labels in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", text):
            grouping.update(label.strip() for label in labels.split(",") if label.strip())
        text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
        for name in re.findall(r"(?<![\w.:])([A-Za-z_:][\w:]*)(?![\w:]*\s*\()", text):
            if name not in PROMQL_WORDS:
                used.setdefault(name, set())
    return used, grouping


def metric_problems(
    expressions: Iterable[str], recorded: set[str], samples: dict[str, set[str]]
) -> list[str]:
    used, grouping = series_used(expressions)
    all_labels = set().union(*samples.values()) | TARGET_LABELS
    problems = [
        f"{name}: not exported by the service" for name in sorted(used.keys() - recorded - samples.keys())
    ]
    problems += [
        f"{name}{{{label}}}: not a label of the service's series"
        for name in sorted(used.keys() & samples.keys())
        for label in sorted(used[name] - samples[name] - TARGET_LABELS)
    ]
    problems += [f"by ({label}): no series has this label" for label in sorted(grouping - all_labels)]
    return problems


def slo_expressions() -> tuple[list[str], set[str]]:
    groups = [
        slo.recording_rules(slo.SloSettings(), "muse"),
        slo.alert_rules(slo.SloSettings(), "muse", "https://example.invalid/runbook"),
    ]
    rules = [rule for group in groups for rule in group.rules]
    return [rule.expression for rule in rules], {rule.record for rule in rules if rule.record}


def gate_expressions() -> list[str]:
    return [*canary_gate.queries("sha256:" + "a" * 64).values(), canary_gate.ACCESS_QUERY]


def test_the_rules_and_the_gate_query_metrics_the_service_exports(app: Starlette) -> None:
    samples = exported(app)
    expressions, recorded = slo_expressions()
    used, _ = series_used(expressions + gate_expressions())
    assert {contract.REQUESTS_TOTAL, contract.DURATION_BUCKETS} <= used.keys()  # the parse sees them
    assert metric_problems(expressions, recorded, samples) == []
    assert metric_problems(gate_expressions(), set(), samples) == []


def test_a_metric_or_label_the_service_lacks_is_caught(app: Starlette) -> None:
    """Negative controls: the counter without _total, a label the service does not set, a grouping label
    nothing has, and the service exporting the counter under another name."""
    samples = exported(app)
    expressions, recorded = slo_expressions()
    broken = [
        'sum by (namespace) (rate(muse_http_requests{namespace="muse"}[5m]))',
        'sum(increase(muse_http_requests_total{code=~"5.."}[60s]))',
        "sum by (release) (rate(muse_http_request_duration_seconds_bucket[5m]))",
    ]
    assert metric_problems(broken, recorded, samples) == [
        "muse_http_requests: not exported by the service",
        "muse_http_requests_total{code}: not a label of the service's series",
        "by (release): no series has this label",
    ]
    renamed = {k.replace("muse_http_requests_total", "muse_requests_total"): v for k, v in samples.items()}
    assert "muse_http_requests_total: not exported by the service" in metric_problems(
        expressions, recorded, renamed
    )


# ------------------------------------------------------------------------------------------------------
# scripts/ci runs on the runner with the standard library only, so it spells these facts itself; here each
# of its literals is tied to the service.

SCRIPTS = REPO_ROOT / "scripts" / "ci"
# A metric name, not a path segment such as components/muse_workload/ (which docstrings name).
METRIC_NAME = re.compile(r"(?<![/\w])muse_[a-z_]+\b(?![/.])")


def script_metric_names() -> dict[str, set[str]]:
    """file -> the `muse_*` metric names its string literals spell (Python) or its text (shell)."""
    found: dict[str, set[str]] = {}
    for path in sorted(SCRIPTS.glob("*.py")):
        strings = [
            node.value
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        ]
        names = {name for text in strings for name in METRIC_NAME.findall(text)}
        if names:
            found[path.name] = names
    return found


def ci_problems(
    app: Starlette, names: dict[str, set[str]], probe_routes: str, smoke_paths: set[str]
) -> list[str]:
    """What the CI scripts spell that the service does not have: metric names it does not export, a probe
    set for the gate other than the Deployment's probes, smoke-check paths it does not serve."""
    samples = exported(app)
    container, _ = rendered("prod", manifests.DEPLOYMENT)
    problems = [
        f"{file}: {name} is not exported by the service"
        for file, spelled in sorted(names.items())
        for name in sorted(spelled - samples.keys())
    ]
    if set(probe_routes.split("|")) != probe_paths(container):
        problems.append(f"canary_gate.PROBE_ROUTES {probe_routes!r}: not the Deployment's probe paths")
    problems += [
        f"smoke-check.sh: GET {p} is not served" for p in sorted(smoke_paths) if not served(app, "GET", p)
    ]
    return problems


def smoke_paths(text: str) -> set[str]:
    """The paths smoke-check.sh appends to its base URLs (`${url%/}/path`)."""
    return set(re.findall(r"%/\}(/[\w/.-]*)", text))


def test_the_ci_scripts_literals_are_the_services(app: Starlette) -> None:
    names = script_metric_names()
    # The gate's two series are the contract's (the one place the script's copies are tied to it).
    assert names["canary_gate.py"] == {
        contract.REQUESTS_TOTAL,
        contract.DURATION_BUCKETS,
        contract.BUILD_INFO,
    }
    smoke = smoke_paths((SCRIPTS / "smoke-check.sh").read_text())
    assert smoke
    assert ci_problems(app, names, canary_gate.PROBE_ROUTES, smoke) == []


def test_a_ci_literal_that_drifted_is_caught(app: Starlette) -> None:
    """Negative control: a metric misspelled in a string, the probe set missing a path, a smoke path the
    service does not serve."""
    names = {"canary_gate.py": {contract.REQUESTS_TOTAL, "muse_http_request_total"}}
    smoke = smoke_paths('url="${base_url%/}/health"')
    assert ci_problems(app, names, contract.HEALTH_PATH, smoke) == [
        "canary_gate.py: muse_http_request_total is not exported by the service",
        "canary_gate.PROBE_ROUTES '/healthz': not the Deployment's probe paths",
        "smoke-check.sh: GET /health is not served",
    ]
