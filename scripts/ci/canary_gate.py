"""The canary's gate: is the candidate's live traffic healthy, read from managed Prometheus.

    from canary_gate import Gate, THRESHOLDS, PrometheusSource

A check is bad when, in its scrape interval, the candidate (its `version` label) answered more than 1 % of
its requests with a 5xx (and at least 3 of them) or its p95 latency is above 500 ms; two bad checks in a row
abort, one at once when more than half of its requests failed. No traffic, or a query that failed every
retry, is no signal and never good; a 401/403 fails at once. The query is Azure Monitor's PromQL API with
the job's own OIDC token. Standard library only (the runner's python3).
Why: docs/architecture/ci-cd.md#the-canary-gate."""

from __future__ import annotations

import datetime
import email.utils
import json
import math
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

PROMETHEUS_RESOURCE = "https://prometheus.monitor.azure.com"
MONITORING_DATA_READER = "Monitoring Data Reader"  # rbac/roles.py (test_canary_gate ties them)
METRICS_READ = "Microsoft.Monitor/accounts/data/metrics/read"
REQUESTS = "muse_http_requests_total"
DURATION_BUCKETS = "muse_http_request_duration_seconds_bucket"
# The access check before anything changes (deploy.py metrics_access). Every query to the workspace must name
# one metric (a `__name__` matcher: learn.microsoft.com/azure/azure-monitor/metrics/prometheus-api-promql,
# "API limitations", "Query must be scoped to a metric"), so `vector(1)` would be refused whatever the
# caller's role; the service's build-info gauge (muse/app.py Metrics) answers whether or not it was scraped.
BUILD_INFO = "muse_build_info"
ACCESS_QUERY = f"count({BUILD_INFO})"
PROBE_ROUTES = "/healthz|/readyz"
_VERSION = re.compile(r"^[A-Za-z0-9_.:+-]{1,128}$")


@dataclass(frozen=True)
class Thresholds:
    """When a check is bad, and how many bad checks in a row abort."""

    max_error_ratio: float = 0.01  # 5xx / all requests of the candidate in the window
    # ... and at least this many 5xx: the load sends 2 requests/s, ~60 per 30 s check, so one 5xx alone is
    # 1.7 % and "> 1 %" would mean "any 5xx"; 3 of 60 (5 %) is a pattern, not one unlucky request.
    min_errors: int = 3
    # ... and a check is HEALTHY only with at least this many requests, enough for a candidate failing 10 %
    # of them to show `min_errors`: 2 requests, both 5xx, are not a pass (the load sends ~60 per interval;
    # fewer, without it, are no signal, and the step holds for one that has them).
    min_requests: int = 30
    max_p95_seconds: float = 0.5
    consecutive: int = 2
    # A check where MORE than this share of the requests failed (and at least `severe_min_errors`) aborts at
    # once: a candidate failing most requests fails them fastest, so it stops a check sooner (the lag model:
    # 188 s instead of 203 s failing all at 120 s of lag). Exactly half still needs a second check.
    severe_error_ratio: float = 0.5
    severe_min_errors: int = 10
    check_seconds: int = 30  # between checks, as between scrapes; a step lasts at least `consecutive` checks
    # When a request shows in a query: the add-on scrapes annotated pods every 30 s by default
    # (Azure/prometheus-collector otelcollector/configmaps/ama-metrics-settings-configmap.yaml,
    # default-targets-scrape-interval-settings `podannotations = "30s"`; the program's ConfigMap leaves that
    # section at its default), and the workspace makes a sample queryable some time after its scrape. No
    # Microsoft page gives that lag for managed Prometheus; the closest (learn.microsoft.com/azure/
    # azure-monitor/logs/data-ingestion-time) says the agent uploads "between 30 seconds and 2 minutes". The
    # gate reads whatever is newest, so a short lag costs nothing; a step waits for its data this long.
    scrape_seconds: int = 30
    max_ingestion_lag_seconds: int = 120

    @property
    def window_seconds(self) -> int:
        """Each count's range, evaluated at the judged interval's end: the last two samples of every series
        scraped by then (at different phases, up to a scrape apart), one missed scrape allowed."""
        return 3 * self.scrape_seconds

    @property
    def settle_seconds(self) -> int:
        """The longest after a weight move until a check can judge a scrape interval that began after it: the
        next scrape, the interval itself, the lag, the next check. A step without such a healthy check by then
        (and one check more) aborts "no data"."""
        return 2 * self.scrape_seconds + self.max_ingestion_lag_seconds + self.check_seconds

    @property
    def severe_detection_seconds(self) -> int:
        """The longest a candidate failing more than `severe_error_ratio` from its first request serves
        before the gate aborts, without the checks' own time: its first check, on the same timeline as a
        step's evidence (the interval of the move, too short to count, the next one, the lag, a check)."""
        return self.settle_seconds

    @property
    def detection_seconds(self) -> int:
        """The same for any failing candidate: `consecutive` checks. A step at least this long keeps the
        failed requests within its share of one step's traffic, whatever share fails: above half, one check
        (severe_detection_seconds) leaves a check's time for the queries and the abort's patch."""
        return self.severe_detection_seconds + (self.consecutive - 1) * self.check_seconds


THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class Sample:
    """The candidate's traffic over one window: requests and 5xx answers (counts), p95 (None: unknown)."""

    requests: float
    errors: float
    p95_seconds: float | None
    unavailable: str = ""  # why the check could not be read (no signal either way), "" when it was
    # When the judged scrape interval ended: its newest sample's timestamp (epoch seconds; None: unknown).
    interval_end: float | None = None

    @property
    def has_signal(self) -> bool:
        return self.requests >= 1 and not self.unavailable

    @property
    def error_ratio(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


def is_severe(sample: Sample, thresholds: Thresholds = THRESHOLDS) -> bool:
    """More than `severe_error_ratio` of the requests failed (at least `severe_min_errors`): abort at once."""
    return (
        sample.has_signal
        and sample.error_ratio > thresholds.severe_error_ratio
        and sample.errors >= thresholds.severe_min_errors
    )


def judge(sample: Sample, thresholds: Thresholds = THRESHOLDS) -> tuple[bool | None, list[str]]:
    """One check: (True: bad, False: healthy, None: no signal either way; what is wrong, or why no signal)."""
    if sample.unavailable:
        return None, [f"the metrics could not be read (no signal): {sample.unavailable}"]
    if not sample.has_signal:
        return None, ["no requests from the candidate in the window (no signal)"]
    found = []
    if is_severe(sample, thresholds):
        found.append(
            f"5xx {sample.error_ratio:.1%} of {sample.requests:.0f} requests "
            f"> {thresholds.severe_error_ratio:.0%} ({sample.errors:.0f} >= {thresholds.severe_min_errors})"
        )
    elif sample.error_ratio > thresholds.max_error_ratio and sample.errors >= thresholds.min_errors:
        found.append(
            f"5xx {sample.error_ratio:.1%} of {sample.requests:.0f} requests "
            f"> {thresholds.max_error_ratio:.0%} ({sample.errors:.0f} >= {thresholds.min_errors})"
        )
    if sample.p95_seconds is not None and sample.p95_seconds > thresholds.max_p95_seconds:
        found.append(f"p95 {sample.p95_seconds * 1000:.0f} ms > {thresholds.max_p95_seconds * 1000:.0f} ms")
    if found:
        return True, found
    if sample.requests < thresholds.min_requests:
        few = f"{sample.requests:.0f} requests, too few to judge (< {thresholds.min_requests}): no signal"
        return None, [few]
    return False, []


@dataclass
class Gate:
    """Feeds on one check after another; `abort` turns true at the `consecutive`-th bad check in a row.

    A no-signal check neither resets nor advances the count of bad ones: it is not evidence either way. A
    check that reads the same scrape interval as an earlier one (its `interval_end` no newer: a check sooner
    than a scrape after the previous one, e.g. at a step's end) is no new signal: one bad interval counts
    once."""

    thresholds: Thresholds = THRESHOLDS
    bad_in_a_row: int = 0
    history: list[tuple[Sample, list[str]]] = field(default_factory=list)
    judged_until: float | None = None  # the newest interval_end judged so far
    severe: bool = False  # a check with more than severe_error_ratio of its requests failed

    def observe(self, sample: Sample) -> list[str]:
        end = sample.interval_end
        if sample.has_signal and end is not None:
            if self.judged_until is not None and end <= self.judged_until:
                sample = replace(
                    sample, unavailable=f"the scrape interval ending at {end:.0f} was judged already"
                )
            else:
                self.judged_until = end
        bad, found = judge(sample, self.thresholds)
        self.history.append((sample, found))
        if bad is None:
            return found
        if bad:
            self.bad_in_a_row += 1
            self.severe = self.severe or is_severe(sample, self.thresholds)
        else:
            self.bad_in_a_row = 0
        return found

    @property
    def good_checks(self) -> int:
        """The healthy checks so far (a no-signal check, a repeat included, always says why: never empty)."""
        return sum(1 for _, found in self.history if not found)

    @property
    def abort(self) -> bool:
        return self.severe or self.bad_in_a_row >= self.thresholds.consecutive

    @property
    def verdict(self) -> str:
        """Why the gate aborts, in a few words (the stepper adds the step and the problems)."""
        if self.severe:
            return f"a check with more than {self.thresholds.severe_error_ratio:.0%} of its requests failing"
        return f"{self.thresholds.consecutive} bad checks in a row"

    def healthy_since(self, started: float) -> bool:
        """Whether the last check was healthy and judged a scrape interval that began at or after `started`
        (epoch seconds, the clock of the samples' timestamps): evidence of traffic sent after that moment,
        e.g. at a step's weight. Without the interval's time (no timestamp) it is no evidence."""
        if not self.history:
            return False
        sample, found = self.history[-1]
        end = sample.interval_end
        return (
            sample.has_signal
            and not found
            and end is not None
            and end - self.thresholds.scrape_seconds >= started
        )


def _label(version: str) -> str:
    if not _VERSION.match(version):
        raise ValueError(f"{version!r} is not an image tag or digest")
    return version


def queries(version: str, thresholds: Thresholds = THRESHOLDS) -> dict[str, str]:
    """The PromQL instant queries of one check, for the candidate's `version`: when the newest scrape
    interval the workspace has ended (`interval_end`, the newest sample in the 5-minute look-back), and its
    requests, 5xx answers and p95, evaluated AT that end (sample_from). `irate` is the per-second rate
    between the last two samples of each series in the range, times the scrape interval here: that
    interval's count (prometheus.io/docs/prometheus/latest/querying/functions/#irate). So a check reads the
    newest interval whatever the lag (a fixed `offset`, as before, found no data from a lag of 120 s), and
    checks a scrape apart judge consecutive intervals: two bad checks in a row are two bad intervals in a
    row, one bad interval counts once (the Gate, by `interval_end`). `irate` handles a counter reset (a
    restarted candidate pod: the newest sample is the interval's count); `idelta`, meant for gauges, gave a
    negative difference there, and clamped to 0 it hid the restarted pod's errors."""
    selector = f'version="{_label(version)}",route!~"{PROBE_ROUTES}"'
    window = f"[{thresholds.window_seconds}s]"

    def interval(metric: str, extra: str = "") -> str:
        return f"irate({metric}{{{selector}{extra}}}{window}) * {thresholds.scrape_seconds}"

    server_errors = ',status=~"5.."'
    return {
        # Which interval this check judged, so the Gate counts each once and the stepper knows whether it
        # began after the step's weight move: the newest sample's own timestamp (timestamp() of a bare
        # selector is the sample's, not the evaluation time: prometheus/prometheus promql/engine.go,
        # rangeEvalTimestampFunctionOverVectorSelector).
        "interval_end": f"max(timestamp({REQUESTS}{{{selector}}}))",
        "requests": f"sum({interval(REQUESTS)})",
        "errors": f"sum({interval(REQUESTS, server_errors)})",
        "p95": f"histogram_quantile(0.95, sum by (le) ({interval(DURATION_BUCKETS)}))",
    }


def scalar(answer: dict[str, object]) -> float | None:
    """The one number of an instant query's vector answer; None for an empty vector or NaN (no data)."""
    if answer.get("status") != "success":
        raise RuntimeError(f"Prometheus query failed: {str(answer.get('error') or answer)[:500]}")
    data = answer.get("data")
    result = data.get("result") if isinstance(data, dict) else None
    if not isinstance(result, list) or not result:
        return None
    value = float(result[0]["value"][1])
    return None if math.isnan(value) or math.isinf(value) else value


class Query(Protocol):
    """An instant query, evaluated now or `at` (epoch seconds): the HTTP API's `time` parameter."""

    def __call__(self, promql: str, at: float | None = None) -> dict[str, object]: ...


def sample_from(query: Query, version: str, thresholds: Thresholds = THRESHOLDS) -> Sample:
    """One check: first which interval is the newest (its end), then its counts evaluated AT that end, so all
    of them describe the same interval even when a scrape turns queryable between the queries (evaluated
    now, the counts could read a newer interval than the end names: one judged twice, the next skipped)."""
    q = queries(version, thresholds)
    try:
        return _sample(query, q)
    except QueryUnavailable as error:  # not bad, not good: the step holds, and aborts "no data" in the end
        return Sample(0.0, 0.0, None, unavailable=str(error))


def _sample(query: Query, q: dict[str, str]) -> Sample:
    end = scalar(query(q["interval_end"]))
    if end is None:  # no sample of the candidate in the look-back: no series, no requests
        return Sample(0.0, 0.0, None)
    return Sample(
        requests=scalar(query(q["requests"], at=end)) or 0.0,
        errors=scalar(query(q["errors"], at=end)) or 0.0,
        p95_seconds=scalar(query(q["p95"], at=end)),
        interval_end=end,
    )


def az_token(resource: str = PROMETHEUS_RESOURCE) -> str:
    """An Entra access token for `resource` from the az CLI's session (the job's OIDC sign-in)."""
    result = subprocess.run(
        ["az", "account", "get-access-token", "--resource", resource, "--query", "accessToken", "--output",
         "tsv"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    if result.returncode != 0 or not result.stdout.strip():
        raise RuntimeError(f"no token for {resource}: {result.stderr.strip()[-500:]}")
    return result.stdout.strip()


# Worth another try: throttling (429) and the server's own failures. Prometheus's HTTP API answers 503 when
# a query timed out or was aborted (prometheus.io/docs/prometheus/latest/querying/api/, "Format overview");
# 500/502/504 come from the managed endpoint or a proxy in front of it.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
# The statuses whose Retry-After says when to ask again: 429 Too Many Requests (RFC 6585 §4) and 503 Service
# Unavailable (RFC 9110 §15.6.4). Whether the managed endpoint sends one, and how long, only Azure shows.
RETRY_AFTER_STATUSES = frozenset({429, 503})


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """A Retry-After header as seconds from `now` (epoch seconds); None when absent or malformed (the backoff
    then applies). RFC 9110 §10.2.3: `Retry-After = HTTP-date / delay-seconds`, delay-seconds a non-negative
    decimal integer; an HTTP-date (§5.6.7: IMF-fixdate, or the obsolete RFC 850 and asctime forms, which a
    recipient must accept; always GMT) in the past means now."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit() and text.isascii():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # asctime carries no zone: HTTP-dates are GMT
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, when.timestamp() - now)


class QueryUnavailable(RuntimeError):
    """Every try of a query failed transiently: the check has no signal (neither good nor bad)."""


@dataclass
class PrometheusSource:
    """Instant queries against an Azure Monitor workspace's Prometheus query endpoint."""

    endpoint: str  # https://<workspace>.<region>.prometheus.monitor.azure.com
    token: Callable[[], str] = az_token
    timeout: float = 30.0
    tries: int = 3  # of one query, on a transient failure (TRANSIENT_STATUSES, no answer, no token)
    backoff_seconds: float = 2.0  # before the 2nd try; doubled before each next one
    sleep: Callable[[float], None] = time.sleep
    # Seconds left before the release's deadline (deploy.py: Supervisor.remaining); a Retry-After that would
    # wait past it is not waited for. None: no deadline (a run by hand, the tests of the gate alone).
    remaining: Callable[[], float] | None = None
    now: Callable[[], float] = time.time  # wall clock, for a Retry-After given as an HTTP-date

    def __post_init__(self) -> None:
        if not self.endpoint.startswith("https://"):
            raise ValueError(f"the Prometheus query endpoint must be https:// (got {self.endpoint!r})")

    def query(self, promql: str, at: float | None = None) -> dict[str, object]:
        """One instant query, tried again after a transient failure; QueryUnavailable when every try
        failed. A 401/403 is AccessDenied at once (never retried, never "no data"); any other 4xx (a
        malformed query: a bug here) is raised as it is."""
        failures, stopped = [], ""
        for attempt in range(1, self.tries + 1):
            asked: float | None = None  # the server's Retry-After, in seconds
            try:
                return self._query(promql, at)
            except AccessDenied:
                raise
            except urllib.error.HTTPError as error:
                if error.code not in TRANSIENT_STATUSES:
                    raise
                failures.append(f"HTTP {error.code}")
                if error.code in RETRY_AFTER_STATUSES:
                    header = error.headers.get("Retry-After") if error.headers else None
                    asked = retry_after_seconds(header, self.now())
            except (OSError, RuntimeError, subprocess.SubprocessError) as error:
                # No answer (URLError, a timeout, a reset) or no token (az_token, az-login-federated.sh).
                failures.append(f"{type(error).__name__}: {str(error)[:200]}")
            if attempt < self.tries:
                wait = self.backoff_seconds * 2 ** (attempt - 1) if asked is None else asked
                left = self.remaining() if self.remaining is not None else float("inf")
                if wait >= left:
                    # Waiting would outlast the release's deadline: no signal now, never a retry too early
                    # (the server said when it will answer) nor a wait the deadline then cuts short.
                    what = "Retry-After" if asked is not None else "backoff"
                    stopped = f"; not tried again: {what} {wait:.0f} s >= the {max(0.0, left):.0f} s left"
                    break
                self.sleep(wait)
        tried = len(failures)
        raise QueryUnavailable(
            f"{tried} {'try' if tried == 1 else 'tries'} failed: {'; '.join(failures)}{stopped}"
        )

    def _query(self, promql: str, at: float | None = None) -> dict[str, object]:
        # `time`: the evaluation timestamp, RFC 3339 or Unix seconds; without it, now
        # (prometheus.io/docs/prometheus/latest/querying/api/, "Instant queries").
        form = {"query": promql} | ({"time": f"{at:.3f}"} if at is not None else {})
        request = urllib.request.Request(  # noqa: S310 - https only, checked above
            self.endpoint.rstrip("/") + "/api/v1/query",
            data=urllib.parse.urlencode(form).encode(),
            headers={
                "Authorization": f"Bearer {self.token()}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                answer: dict[str, object] = json.loads(response.read())
        except urllib.error.HTTPError as error:
            if error.code in (401, 403):
                raise AccessDenied(error.code, error.read()[:500].decode("utf-8", "replace")) from None
            raise
        return answer


class AccessDenied(RuntimeError):
    """The workspace refused the query: never "no data", which would hold the step and abort as a silent
    candidate. The workspace answers 403 naming the data action (MicrosoftDocs/azure-docs
    articles/azure-monitor/containers/integrate-keda.md@2b6a9fac, "Azure Monitor workspace permissions")."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(
            f"the Azure Monitor workspace refused the canary gate's query (HTTP {status}: {body.strip()}). "
            f"The deploy identity needs {MONITORING_DATA_READER} ({METRICS_READ}) on the workspace: the "
            "bootstrap grants it on the environment's resource group (re-run scripts/bootstrap.sh after "
            "updating it; a new grant takes up to 10 minutes to apply). docs/runbook.md, Canary."
        )
        self.status = status
