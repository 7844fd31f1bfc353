"""The KQL behind Muse's log alerts and its workbook, defined once.

The queries read the Container Insights tables (`ContainerLogV2`, `KubePodInventory`, `Perf`), scoped to one
namespace (`MuseQueries.namespace`) and the Muse container, and read Muse's JSON log fields through a typed
conversion, so a field with the wrong type reads as empty. Alerts and the workbook call the same properties,
so a tile always shows what the alert counts; tests/components/test_observability_queries.py fails on a
renamed log field. Why: docs/architecture/observability.md#the-kql-queries."""

from __future__ import annotations

import re
from dataclasses import dataclass

# The container name of the Muse workload; the Kubernetes deployment must use the same name.
MUSE_CONTAINER = "muse"
# The logger of Muse's access lines (one per request, with route/method/status/duration_ms).
ACCESS_LOGGER = "muse.access"
# Python logging level names that mean "something failed" (logger.exception logs at ERROR).
ERROR_LEVELS = ("ERROR", "CRITICAL")
# Error lines are counted by arrival time (ingestion_time()) over this many minutes: the alert rule runs
# every ARRIVAL_WINDOW_MINUTES and looks back LOOKBACK_MINUTES of TimeGenerated, so a line that reaches the
# workspace late (ingestion latency is typically 30 s to 3 min) is still counted, exactly once.
ARRIVAL_WINDOW_MINUTES = 5
LOOKBACK_MINUTES = 10
# A pod counts as "not ready" when at least this many of its per-minute inventory snapshots in the window
# show it not Running (a pod that is Pending for a few seconds during a rolling update does not alert).
NOT_READY_MIN_SNAPSHOTS = 3

_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _field(name: str, kql_type: str) -> str:
    """A Muse log field as ContainerLogV2 exposes it: `LogMessage.<name>`, converted to `kql_type`."""
    return f"to{kql_type}(LogMessage.{name})"


# The Muse log fields the queries read (names and types are the contract in muse/logs.py and muse/app.py).
LEVEL = _field("level", "string")
LOGGER = _field("logger", "string")
MESSAGE = _field("message", "string")
REQUEST_ID = _field("request_id", "string")
ROUTE = _field("route", "string")
METHOD = _field("method", "string")
STATUS = _field("status", "int")
DURATION_MS = _field("duration_ms", "real")
EXCEPTION_TYPE = _field("exception_type", "string")


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f'"{value}"' for value in values)


@dataclass(frozen=True)
class MuseQueries:
    """The queries for Muse in one namespace. `namespace` and `container` are Kubernetes names (validated,
    so they can be embedded in KQL string literals as they are)."""

    namespace: str
    container: str = MUSE_CONTAINER

    def __post_init__(self) -> None:
        for what, value in (("namespace", self.namespace), ("container", self.container)):
            if not _K8S_NAME.match(value) or len(value) > 63:
                raise ValueError(f"{what} {value!r} is not a Kubernetes name (lowercase letters, digits, -)")

    # -- building blocks -------------------------------------------------------------------------------

    @property
    def muse_lines(self) -> str:
        """Every log line of the Muse container in this namespace."""
        return (
            "ContainerLogV2\n"
            f'| where PodNamespace == "{self.namespace}" and ContainerName == "{self.container}"'
        )

    @property
    def access_lines(self) -> str:
        """Muse's access lines: one per request (probes and scrapes log at DEBUG and are not shipped)."""
        return f'{self.muse_lines}\n| where {LOGGER} == "{ACCESS_LOGGER}"'

    @property
    def error_lines(self) -> str:
        """Muse's ERROR (and CRITICAL) lines, e.g. an unhandled exception with its traceback."""
        return f"{self.muse_lines}\n| where {LEVEL} in ({_quoted(ERROR_LEVELS)})"

    @property
    def _error_columns(self) -> str:
        return (
            f"| project TimeGenerated, PodName, Logger = {LOGGER}, Message = {MESSAGE},"
            f" ExceptionType = {EXCEPTION_TYPE}, Route = {ROUTE}, Method = {METHOD}, RequestId = {REQUEST_ID}"
        )

    @property
    def _muse_pods(self) -> str:
        return (
            "KubePodInventory\n"
            f'| where Namespace == "{self.namespace}" and ContainerName endswith "/{self.container}"'
        )

    # -- alerts (each also a workbook tile) --------------------------------------------------------------

    @property
    def error_lines_alert(self) -> str:
        """Alert: the error lines that *arrived* in the last ARRIVAL_WINDOW_MINUTES (one row per line)."""
        return (
            f"{self.error_lines}\n| where ingestion_time() > ago({ARRIVAL_WINDOW_MINUTES}m)\n"
            f"{self._error_columns}"
        )

    @property
    def restarts(self) -> str:
        """Alert and tile: Muse pods whose container restarted or is in CrashLoopBackOff (one row per pod)."""
        return (
            f"{self._muse_pods}\n"
            "| summarize Restarts = max(ContainerRestartCount) - min(ContainerRestartCount),"
            ' CrashLoopBackOff = countif(ContainerStatusReason == "CrashLoopBackOff"),'
            " LastReason = take_anyif(ContainerStatusReason, isnotempty(ContainerStatusReason))"
            " by PodName = Name\n"
            "| where Restarts > 0 or CrashLoopBackOff > 0"
        )

    @property
    def pods_not_ready(self) -> str:
        """Alert and tile: Muse pods not Running (or container not running) for most of the window."""
        return (
            f"{self._muse_pods}\n"
            '| extend NotReady = PodStatus != "Running" or ContainerStatus != "running"\n'
            "| summarize Snapshots = count(), NotReadySnapshots = countif(NotReady),"
            " Reasons = make_set_if(ContainerStatusReason, isnotempty(ContainerStatusReason), 5)"
            " by PodName = Name\n"
            f"| where NotReadySnapshots >= {NOT_READY_MIN_SNAPSHOTS}"
        )

    # -- workbook only ----------------------------------------------------------------------------------

    @property
    def recent_errors(self) -> str:
        """Tile: the latest error lines, newest first."""
        return f"{self.error_lines}\n{self._error_columns}\n| order by TimeGenerated desc\n| take 100"

    @property
    def request_rate(self) -> str:
        """Tile: requests per minute by route template."""
        return (
            f"{self.access_lines}\n| summarize Requests = count() by bin(TimeGenerated, 1m), Route = {ROUTE}"
        )

    @property
    def error_rate(self) -> str:
        """Tile: share of requests answered 5xx, per minute."""
        return (
            f"{self.access_lines}\n"
            f"| summarize Requests = count(), ServerErrors = countif({STATUS} >= 500)"
            " by bin(TimeGenerated, 1m)\n"
            "| extend ErrorRatePercent = round(100.0 * ServerErrors / Requests, 2)\n"
            "| project TimeGenerated, ErrorRatePercent, ServerErrors, Requests"
        )

    @property
    def latency_p95(self) -> str:
        """Tile: 95th percentile request duration (ms) by route template, per 5 minutes."""
        return (
            f"{self.access_lines}\n"
            f"| summarize P95Ms = percentile({DURATION_MS}, 95) by bin(TimeGenerated, 5m), Route = {ROUTE}"
        )

    def _pod_counter(self, counter: str, column: str, divisor: float) -> str:
        return (
            f"let musePods = {self._muse_pods}\n"
            '| project InstanceName = strcat(ClusterId, "/", ContainerName), PodName = Name\n'
            "| distinct InstanceName, PodName;\n"
            "Perf\n"
            f'| where ObjectName == "K8SContainer" and CounterName == "{counter}"\n'
            "| join kind=inner musePods on InstanceName\n"
            f"| summarize {column} = avg(CounterValue) / {divisor} by bin(TimeGenerated, 5m), PodName"
        )

    @property
    def pod_cpu(self) -> str:
        """Tile: CPU per Muse pod, in millicores."""
        return self._pod_counter("cpuUsageNanoCores", "CpuMillicores", 1_000_000.0)

    @property
    def pod_memory(self) -> str:
        """Tile: working-set memory per Muse pod, in MiB."""
        return self._pod_counter("memoryWorkingSetBytes", "MemoryMiB", 1_048_576.0)

    def all(self) -> dict[str, str]:
        """Every query by name (what the tests check field by field)."""
        return {
            "error_lines_alert": self.error_lines_alert,
            "restarts": self.restarts,
            "pods_not_ready": self.pods_not_ready,
            "recent_errors": self.recent_errors,
            "request_rate": self.request_rate,
            "error_rate": self.error_rate,
            "latency_p95": self.latency_p95,
            "pod_cpu": self.pod_cpu,
            "pod_memory": self.pod_memory,
        }
