"""How much one request may make Muse hold, derived from the container's memory limit.

An evaluation's memory is its parsed input plus its violations (models, then the rendered body). Both are
bounded before they are allocated: the body by Content-Length and by counting streamed chunks, the output by
stopping the evaluation at the violation cap. The figures below are measured (bench/hostile.py, tracemalloc
and peak RSS; docs/benchmarks.md) and rounded up:

- RESERVE_BYTES: the process at rest (RSS ~42 MiB after /readyz) plus allocator slack and the buffers of
  the evaluations waiting for a slot (MAX_WAITING_EVALUATIONS x 64 KiB body high-water mark).
- Responses in flight: an evaluation keeps its slot until its report has been written to the socket (in
  RESPONSE_CHUNK_BYTES pieces, each waiting for the transport's buffer to drain, under the protocol's write
  deadline), so the rendered report is inside the slot's output third and at most one chunk plus the
  transport's 64 KiB high-water mark is buffered per connection.
- INPUT_AMPLIFICATION: peak bytes per body byte while decoding and validating; the worst shape measured is
  an inventory of minimal resources (47x; nested empty lists/objects 24x, strings 8x).
- BYTES_PER_VIOLATION: peak bytes per violation through evaluation, JSON and markdown rendering (2.2-2.7 KiB).
- OUTPUT_COPIES: the rendered report exists as a str and as its UTF-8 bytes; the violations repeat their
  resource's URN, type and name, so a long URN times many violations is bounded by bytes, not by count.

Each of ``evaluation_concurrency`` evaluations gets an equal slot of what the reserve leaves: two thirds for
its input, one third for its output. With the defaults (256 MiB, 2 evaluations) that is a 1 MiB body,
10,922 violations and an 8 MiB report, and two such evaluations at once stay under the limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from muse.config import MIB, Settings

RESERVE_BYTES = 64 * MIB
INPUT_AMPLIFICATION = 64
BYTES_PER_VIOLATION = 3 * 1024
OUTPUT_COPIES = 4
# Evaluations waiting for a slot: beyond this many, or after waiting ADMISSION_TIMEOUT_SECONDS, the answer is
# a JSON 503 with Retry-After (muse/app.py). A waiting request holds at most uvicorn's 64 KiB read buffer of
# its body (h11_impl.HIGH_WATER_LIMIT pauses reading), so the queue costs at most 16 x 64 KiB = 1 MiB.
# Connections themselves are not capped: uvicorn's limit_concurrency counts connections and answered probes
# with a plain-text 503 once that many sockets were open, so idle sockets restarted the pod (liveness).
MAX_WAITING_EVALUATIONS = 16
ADMISSION_TIMEOUT_SECONDS = 10
RESPONSE_CHUNK_BYTES = 64 * 1024
# h11's default; stated so the 400 detail and the docs name it (uvicorn Config h11_max_incomplete_event_size).
MAX_HEAD_BYTES = 16 * 1024


@dataclass(frozen=True)
class Limits:
    memory_limit_bytes: int
    evaluation_concurrency: int
    max_body_bytes: int
    max_violations: int
    max_output_bytes: int

    def describe(self) -> str:
        return f"{self.memory_limit_bytes // MIB} MiB memory limit, {self.evaluation_concurrency} at once"


def derive_limits(settings: Settings) -> Limits:
    """The body and violation caps for this memory limit; MUSE_MAX_BODY_BYTES can only lower the body cap.
    The settings' bounds (at least 96 MiB, at most 16 evaluations) keep the smallest slot at 2 MiB."""
    slot = (settings.memory_limit_bytes - RESERVE_BYTES) // settings.evaluation_concurrency
    body = min(settings.max_body_bytes, (slot * 2 // 3) // INPUT_AMPLIFICATION)
    violations = (slot // 3) // BYTES_PER_VIOLATION
    output = (slot // 3) // OUTPUT_COPIES
    return Limits(settings.memory_limit_bytes, settings.evaluation_concurrency, body, violations, output)
