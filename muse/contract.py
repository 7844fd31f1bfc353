"""The service's contract with whatever runs it: environment variable names, default ports, the paths it
serves and the metric names it exports. Each is spelled once, here: the service (muse/config.py,
muse/app.py) reads it, and so do the workload's manifests, the SLO rules and the release checks.

A leaf like muse/resource_types.py: it imports nothing, so the program may import it from the service
package (pyproject.toml [tool.importlinter] names each excused edge) without loading the service.
tests/deploy/test_service_contract.py ties both sides to it: every variable the Deployment sets is one the
service reads, every probe path a route the app serves, every metric the rules query one it exports.
"""

# Environment variables (muse/config.py Settings; docs/service.md, "Configuration").
ENV_PORT = "PORT"
ENV_HOST = "MUSE_HOST"
ENV_ENVIRONMENT = "MUSE_ENV"
ENV_LOG_LEVEL = "MUSE_LOG_LEVEL"
ENV_API_TOKEN = "MUSE_API_TOKEN"  # noqa: S105 - a variable's name, no secret
ENV_MAX_BODY_BYTES = "MUSE_MAX_BODY_BYTES"
ENV_DRAIN_SECONDS = "MUSE_DRAIN_SECONDS"
ENV_SHUTDOWN_TIMEOUT_SECONDS = "MUSE_SHUTDOWN_TIMEOUT_SECONDS"
ENV_KEEP_ALIVE_SECONDS = "MUSE_KEEP_ALIVE_SECONDS"
ENV_HEADER_TIMEOUT_SECONDS = "MUSE_HEADER_TIMEOUT_SECONDS"
ENV_BODY_TIMEOUT_SECONDS = "MUSE_BODY_TIMEOUT_SECONDS"
ENV_MEMORY_LIMIT_BYTES = "MUSE_MEMORY_LIMIT_BYTES"
ENV_EVALUATION_CONCURRENCY = "MUSE_EVALUATION_CONCURRENCY"
ENV_METRICS_PORT = "MUSE_METRICS_PORT"
ENV_GIT_REVISION = "MUSE_GIT_REVISION"
ENV_VERSION = "MUSE_VERSION"
ENV_GOVERNANCE_DIR = "MUSE_GOVERNANCE_DIR"


class Secret:
    """A secret the service reads from its environment. The program generates it into Key Vault, grants the
    workload alone to read it and mounts it (components/muse_workload/manifests.py); the service requires it
    (muse/config.py: one setting per secret, named like the variable without MUSE_, lower case); .env.example
    documents it (a block `make export` writes); the access model forbids it to every CI identity."""

    # A plain class, not a dataclass: this leaf imports nothing (tests/test_architecture.py).
    __slots__ = ("env", "name", "use", "what")

    def __init__(self, name: str, env: str, what: str, use: str) -> None:
        self.name = name  # the Key Vault secret, the mounted file and the synced Kubernetes Secret
        self.env = env  # the environment variable the service reads
        self.what = what  # how the generated docs and the access model call it
        self.use = use  # what the service does with it: .env.example's comment


API_TOKEN = Secret("muse-api-token", ENV_API_TOKEN, "API token", "Bearer token required on /api/*.")
# Every secret of the service: add one here; the program, the service, the access model and
# the generated docs follow (tests/access/test_workload_secrets.py pins the list). Code that reads the new
# secret also adds its one-line type stub in muse/config.py _Settings (a test keeps the stubs equal to this).
SECRETS: tuple[Secret, ...] = (API_TOKEN,)


def secret_environment(value: str) -> dict[str, str]:
    """Every secret set to `value`: how tests and benchmarks start the service, whatever the list holds."""
    return {secret.env: value for secret in SECRETS}


# Ports: the API and probes on DEFAULT_PORT, Prometheus metrics on their own (never routed by the Gateway).
DEFAULT_PORT = 8080
DEFAULT_METRICS_PORT = 9090

# Paths. Probes and the root answer without a token; everything under /api needs the bearer token.
ROOT_PATH = "/"
HEALTH_PATH = "/healthz"  # liveness: the event loop answers (200 while draining too)
READINESS_PATH = "/readyz"  # 503 while starting or draining
METRICS_PATH = "/metrics"  # on the metrics port only (muse/server.py)
POLICIES_PATH = "/api/v1/policies"
EVALUATE_PATH = "/api/v1/evaluate"
GOVERNANCE_PATH = "/api/v1/governance"

# Metrics (prometheus_client names; the exposition adds _total to a counter, _bucket/_sum/_count to a
# histogram: prometheus/client_python, prometheus_client/metrics.py Counter and Histogram).
REQUESTS_METRIC = "muse_http_requests"
REQUESTS_TOTAL = f"{REQUESTS_METRIC}_total"
DURATION_METRIC = "muse_http_request_duration_seconds"
DURATION_BUCKETS = f"{DURATION_METRIC}_bucket"
# A gauge always 1, labelled with the build; the release's access check counts it before the canary starts.
BUILD_INFO = "muse_build_info"
# Labels of both request metrics; VERSION_LABEL carries MUSE_VERSION, so a release is told from the last.
ROUTE_LABEL = "route"
METHOD_LABEL = "method"
STATUS_LABEL = "status"
VERSION_LABEL = "version"
