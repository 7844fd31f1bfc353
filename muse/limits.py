"""How much one request may make Muse hold, derived from the container's memory limit.

Each of `evaluation_concurrency` evaluations gets an equal slot of what RESERVE_BYTES leaves: two thirds for
its input (INPUT_AMPLIFICATION per body byte), one third for its output (BYTES_PER_VIOLATION, OUTPUT_COPIES).
With the defaults (256 MiB, 2 evaluations) that is a 1 MiB body, 10,922 violations and an 8 MiB report. The
figures are measured (bench/hostile.py); what each covers: docs/service.md#memory-limits-per-request."""

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
