"""Builds the Muse image with podman and runs it the way Kubernetes will run it:

- configuration from the environment only: ``--env-file .env.example``, nothing else;
- hardened like the Pod: read-only root filesystem without a writable /tmp, all capabilities dropped,
  no-new-privileges, published on a random loopback port only;
- ``/healthz`` and ``/readyz`` answer 200, the process runs as the image's numeric non-root uid;
- ``podman stop -t 30`` (SIGTERM) drains (readiness 503 while still live) and exits 0 well before the
  30 s after which podman would SIGKILL;
- a bad ``PORT`` exits non-zero at start with a message naming PORT.

Skips only when podman is not installed and cannot be installed (``scripts/ensure-system-packages.sh``).
Here the image is built FROM the local debootstrap base; on GitHub runners FROM the digest-pinned official
image (scripts/build-image.sh).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.environments import ENVIRONMENTS

pytestmark = pytest.mark.container

ROOT = Path(__file__).resolve().parents[2]
ENV_FILE = ROOT / ".env.example"
IMAGE_NAME = os.environ.get("MUSE_TEST_IMAGE", "localhost/muse")
EXPECTED_UID = 10001
HARDENING = ["--read-only", "--read-only-tmpfs=false", "--cap-drop=ALL", "--security-opt=no-new-privileges"]


def _run(
    args: list[str], timeout: float = 120, check: bool = True, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    if check and proc.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


@pytest.fixture(scope="module")
def podman() -> str:
    found = shutil.which("podman")
    if found is None:
        # `make test` installs it first (make system-deps); a bare `pytest` run tries the same installer.
        proc = subprocess.run(
            [str(ROOT / "scripts" / "ensure-system-packages.sh")],
            capture_output=True,
            text=True,
            timeout=1200,
        )
        found = shutil.which("podman")
        if found is None:
            pytest.skip(
                "podman is not installed and scripts/ensure-system-packages.sh could not install it "
                f"(exit {proc.returncode}): {(proc.stdout + proc.stderr).strip()[-500:]}"
            )
    return found


@pytest.fixture(scope="module")
def image(podman: str) -> str:
    """Builds the image (podman setup and the cached local base included) and returns its id."""
    env = {**os.environ, "IMAGE": IMAGE_NAME}
    proc = subprocess.run(
        [str(ROOT / "scripts" / "build-image.sh")],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=ROOT,
        env=env,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"image build failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    # The id, not the tag: a concurrent build elsewhere must not swap the image under this test.
    return _run([podman, "image", "inspect", "--format", "{{.Id}}", f"{IMAGE_NAME}:dev"]).stdout.strip()


def _env_file() -> str:
    if not ENV_FILE.exists():
        pytest.fail(".env.example is missing: the service's configuration template belongs at the repo root")
    return str(ENV_FILE)


def _get(base: tuple[str, int], path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    # The timeout only bounds a hung server: on a loaded machine a request through podman's port forwarding
    # can take seconds, and a timeout here would read as "not draining".
    conn = http.client.HTTPConnection(*base, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _published(podman: str, name: str) -> tuple[str, int]:
    out = _run([podman, "port", name, "8080/tcp"]).stdout.strip().splitlines()[0]
    host, _, port = out.rpartition(":")
    assert host == "127.0.0.1", f"published beyond loopback: {out}"
    return host, int(port)


# Polling returns as soon as the container is ready; the deadline only bounds a container that never gets
# there, with room for a machine whose cores are busy with other work.
def _wait_ready(podman: str, name: str, base: tuple[str, int], deadline_s: float = 120) -> None:
    deadline = time.monotonic() + deadline_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            status, _ = _get(base, "/readyz")
            if status == 200:
                return
            last = status
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    logs = _run([podman, "logs", name], check=False)
    pytest.fail(
        f"/readyz not 200 within {deadline_s} s (last: {last!r})\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}"
    )


@pytest.fixture
def container(podman: str, image: str) -> Iterator[tuple[str, tuple[str, int]]]:
    name = f"muse-test-{uuid.uuid4().hex[:12]}"
    _run(
        [
            podman,
            "run",
            "--detach",
            "--name",
            name,
            "--env-file",
            _env_file(),
            *HARDENING,
            "--publish",
            "127.0.0.1::8080",
            image,
        ]
    )
    try:
        base = _published(podman, name)
        _wait_ready(podman, name, base)
        yield name, base
    finally:
        subprocess.run([podman, "rm", "--force", "--time", "0", name], capture_output=True, timeout=60)


def test_image_metadata(podman: str, image: str) -> None:
    fmt = "{{json .Config}}"
    config = json.loads(_run([podman, "image", "inspect", "--format", fmt, image]).stdout)
    assert config["User"] == f"{EXPECTED_UID}:{EXPECTED_UID}"
    assert config["StopSignal"] == "SIGTERM"
    assert "8080/tcp" in config["ExposedPorts"]
    assert config["Cmd"] == ["python", "-m", "muse", "serve"]
    labels = config["Labels"]
    head = _run(["git", "rev-parse", "HEAD"]).stdout.strip()
    assert labels["org.opencontainers.image.revision"] in (head, f"{head}-dirty")
    assert labels["org.opencontainers.image.version"]
    assert labels["org.opencontainers.image.source"]
    env_names = {item.split("=", 1)[0] for item in config["Env"]}
    assert not {n for n in env_names if "TOKEN" in n or "SECRET" in n or "PASSWORD" in n}, env_names
    # Only the code and the governance reports ship: no tests, infra code, other docs, git metadata or env
    # files in /app.
    listing = _run(
        [
            podman,
            "run",
            "--rm",
            "--network",
            "none",
            image,
            "python",
            "-c",
            "import os; print(sorted(os.listdir('/app'))); print(os.path.exists('/opt/venv/bin/pip'));"
            "print(sorted(os.listdir('/app/docs'))); print(sorted(os.listdir('/app/docs/governance')))",
        ]
    ).stdout.split("\n")
    assert listing[0] == "['docs', 'muse']", listing
    assert listing[1] == "False", "pip must not ship in the runtime virtualenv"
    assert listing[2] == "['governance']", listing
    committed = sorted(
        p.name for p in (ROOT / "docs" / "governance").iterdir() if p.suffix in (".md", ".json")
    )
    assert listing[3] == str(committed), listing


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_governance_report_is_baked_in_from_the_committed_docs(podman: str, image: str, env: str) -> None:
    """What GET /api/v1/governance serves for MUSE_ENV=<env>: the committed report, byte for byte."""
    script = (
        "import hashlib, json; from muse.config import load_settings; "
        "from muse.governance.published import load_governance_report; "
        "r = load_governance_report(load_settings()); "
        "print(json.dumps({'sha': hashlib.sha256(r.markdown.encode()).hexdigest(), "
        "'passed': r.evaluation['summary']['passed']}))"
    )
    out = _run(
        [
            *(podman, "run", "--rm", "--network", "none", "--env-file", _env_file()),
            *("--env", f"MUSE_ENV={env}", *HARDENING, image, "python", "-c", script),
        ]
    ).stdout
    expected = hashlib.sha256((ROOT / "docs" / "governance" / f"{env}.md").read_bytes()).hexdigest()
    assert json.loads(out) == {"sha": expected, "passed": True}


def test_serves_as_non_root_and_drains_on_sigterm(
    podman: str, container: tuple[str, tuple[str, int]]
) -> None:
    name, base = container
    assert _get(base, "/healthz")[0] == 200
    assert _get(base, "/readyz")[0] == 200
    assert _get(base, "/api/v1/policies")[0] == 401, "the API must require the bearer token"
    assert _get(base, "/api/v1/governance")[0] == 401
    # .env.example runs as MUSE_ENV=local: no report for it, and the answer names the ones baked in.
    token = {"Authorization": "Bearer local-dev-token-change-me-0123456789"}
    status, body = _get(base, "/api/v1/governance", token)
    assert (status, json.loads(body)["detail"]) == (
        404,
        "no governance report for environment 'local' (MUSE_ENV); available: dev, prod",
    )

    status = _run([podman, "exec", name, "cat", "/proc/1/status"]).stdout
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    assert set(uids) == {str(EXPECTED_UID)}, f"PID 1 runs as uid {uids}"

    stopped: dict[str, object] = {}

    def stop() -> None:
        start = time.monotonic()
        stopped["proc"] = subprocess.run(
            [podman, "stop", "--time", "30", name], capture_output=True, text=True, timeout=60
        )
        stopped["seconds"] = time.monotonic() - start

    stopper = threading.Thread(target=stop)
    stopper.start()
    # While draining, the pod is still live but no longer ready (so Kubernetes stops routing to it). Polled
    # until seen or until `podman stop` is over (it may take seconds to deliver SIGTERM on a loaded machine),
    # or until the listener is gone after the drain period.
    saw_draining = False
    while stopper.is_alive() and not saw_draining:
        try:
            ready, _ = _get(base, "/readyz")
            live, _ = _get(base, "/healthz")
            saw_draining = ready == 503 and live == 200
        except OSError:
            break
        time.sleep(0.05)
    stopper.join(timeout=70)
    assert not stopper.is_alive()
    proc = stopped["proc"]
    assert isinstance(proc, subprocess.CompletedProcess) and proc.returncode == 0, proc
    state = json.loads(_run([podman, "inspect", "--format", "{{json .State}}", name]).stdout)
    logs = _run([podman, "logs", name])
    assert state["ExitCode"] == 0, f"exit {state['ExitCode']}\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}"
    assert not state.get("OOMKilled")
    # The drain is MUSE_DRAIN_SECONDS=5 (.env.example) and exit follows at once; 25 s leaves a loaded machine
    # 20 s for podman's own work and still tells a clean exit from podman's SIGKILL at 30 s.
    seconds = stopped["seconds"]
    assert isinstance(seconds, float) and seconds < 25, f"stop took {seconds:.1f} s: SIGKILLed or too slow"
    assert saw_draining, "/readyz never answered 503 (with /healthz 200) during the drain"
    # JSON logs, one object per line (Azure Monitor parses them).
    lines = [line for line in (logs.stdout + logs.stderr).splitlines() if line.strip()]
    assert lines
    for line in lines:
        record = json.loads(line)
        assert {"time", "level", "message"} <= set(record), record


@pytest.mark.parametrize("bad_port", ["notaport", "70000"])
def test_bad_port_exits_non_zero_naming_port(podman: str, image: str, bad_port: str) -> None:
    proc = _run(
        [
            podman,
            "run",
            "--rm",
            "--network",
            "none",
            "--env-file",
            _env_file(),
            "--env",
            f"PORT={bad_port}",
            *HARDENING,
            image,
        ],
        timeout=120,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "PORT" in output, output


def test_app_holds_exactly_what_the_build_context_model_copies(podman: str, image: str) -> None:
    """The real image's /app against tests/container/build_context.py (.dockerignore and the Dockerfile's
    COPYs), so the fast checks in test_image_contents.py reason about what the builder really does."""
    from tests.container.build_context import build_context, context_copies, copied_files

    context = build_context()
    expected = {
        target
        for copy in context_copies((ROOT / "Dockerfile").read_text())
        for target in copied_files(context, copy).values()
        if target.startswith("/app/")
    }
    script = (
        "import os\n"
        "for d, subdirs, files in os.walk('/app'):\n"
        "    subdirs[:] = [s for s in subdirs if s != '__pycache__']\n"
        "    print('\\n'.join(os.path.join(d, f) for f in files))\n"
    )
    listing = _run([podman, "run", "--rm", "--network", "none", image, "python", "-c", script]).stdout
    actual = {line for line in listing.splitlines() if line}
    assert actual == expected
    assert "/app/muse/app.py" in actual and not [p for p in actual if p.startswith("/app/export")]


# The heaviest evaluations the limits accept (muse/limits.py; bench/hostile.py measured them): the most
# violations (just under the cap, rendered as markdown) and the worst input amplification (a 1 MiB body of
# minimal resources). MUSE_EVALUATION_CONCURRENCY (2) of each run at once, more wait for a slot.
MEMORY_LIMIT = "256m"  # the workload's limit (components/muse_workload/manifests.py RESOURCES)


def _heavy_bodies() -> list[tuple[bytes, str]]:
    def doc(resources: list[dict[str, object]]) -> dict[str, object]:
        return {
            "schemaVersion": 1,
            "project": "p",
            "stack": "s",
            "environment": "dev",
            "resources": resources,
        }

    spec = {"spec": {"template": {"spec": {"containers": [{}] * 2180}}}}
    many = {"urn": "urn:d", "type": "kubernetes:apps/v1:Deployment", "name": "d", "properties": spec}
    minimal = json.dumps({"urn": "u", "type": "t", "name": ""}, separators=(",", ":"))
    head = json.dumps(doc([]), separators=(",", ":"))[:-3]
    count = ((1 << 20) - len(head) - 2) // (len(minimal) + 1)
    amplified = (head + "[" + ",".join([minimal] * count) + "]}").encode()
    return [(json.dumps(doc([many])).encode(), "text/markdown"), (amplified, "application/json")]


def _evaluate(base: tuple[str, int], token: str, body: bytes, accept: str) -> int:
    conn = http.client.HTTPConnection(*base, timeout=120)
    try:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": accept}
        conn.request("POST", "/api/v1/evaluate", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return 0  # the connection died with the process
    finally:
        conn.close()


def _run_under_the_memory_limit(
    podman: str, image: str, memory_limit_bytes: str, bodies: list[tuple[bytes, str]]
) -> tuple[list[int], bool]:
    """Statuses of ``bodies`` sent at once, twice each, to the image under the real limit, and whether the
    kernel OOM-killed it."""
    name = f"muse-test-{uuid.uuid4().hex[:12]}"
    # conmon, which podman starts in the caller's directory, writes an empty file named `oom` into its
    # working directory when the kernel OOM-kills the container (containers/conmon src/oom.c
    # write_oom_files @32816bd): start it in a scratch directory, not in the checkout.
    scratch = Path(tempfile.mkdtemp(prefix="muse-conmon-"))
    token = next(
        line.split("=", 1)[1]
        for line in ENV_FILE.read_text().splitlines()
        if line.startswith("MUSE_API_TOKEN=")
    )
    _run(
        [
            *(podman, "run", "--detach", "--name", name, "--env-file", _env_file(), *HARDENING),
            *("--memory", MEMORY_LIMIT, "--memory-swap", MEMORY_LIMIT),
            *(
                "--env",
                f"MUSE_MEMORY_LIMIT_BYTES={memory_limit_bytes}",
                "--publish",
                "127.0.0.1::8080",
                image,
            ),
        ],
        cwd=scratch,
    )
    try:
        base = _published(podman, name)
        _wait_ready(podman, name, base)
        statuses: list[int] = []
        threads = [
            threading.Thread(target=lambda b=body, a=accept: statuses.append(_evaluate(base, token, b, a)))
            for body, accept in bodies * 2
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        state = json.loads(_run([podman, "inspect", "--format", "{{json .State}}", name]).stdout)
        return statuses, bool(state.get("OOMKilled")) or state.get("ExitCode") == 137
    finally:
        subprocess.run([podman, "rm", "--force", "--time", "0", name], capture_output=True, timeout=60)
        shutil.rmtree(scratch, ignore_errors=True)


def test_the_heaviest_accepted_evaluations_run_under_the_real_memory_limit(podman: str, image: str) -> None:
    statuses, oom_killed = _run_under_the_memory_limit(podman, image, str(256 * 1024 * 1024), _heavy_bodies())
    assert not oom_killed
    assert sorted(statuses) == [200] * 4


def _combined_worst_body() -> bytes:
    """Both limits at once: a 1 MiB body (padded with minimal resources, the worst input amplification) whose
    107 Deployments of 20 empty containers make 10,807 violations (cap 10,922), each repeating a 305-character
    URN, for a 7.2 MB JSON report (cap 8 MiB); a 400-character URN is refused (422)."""
    deployments = [
        {
            "urn": f"urn:d{i:05d}" + "x" * 300,
            "type": "kubernetes:apps/v1:Deployment",
            "name": "d",
            "properties": {"spec": {"template": {"spec": {"containers": [{}] * 20}}}},
        }
        for i in range(107)
    ]
    doc = {"schemaVersion": 1, "project": "p", "stack": "s", "environment": "dev", "resources": deployments}
    head = json.dumps(doc, separators=(",", ":"))[:-2]
    minimal = json.dumps({"urn": "u", "type": "t", "name": ""}, separators=(",", ":"))
    count = ((1 << 20) - 64 - len(head) - 2) // (len(minimal) + 1)
    return (head + "," + ",".join([minimal] * count) + "]}").encode()


def test_the_worst_combined_case_twice_at_once_runs_under_the_real_memory_limit(
    podman: str, image: str
) -> None:
    # Two at once (_run_under_the_memory_limit sends each body twice): both evaluation slots at their
    # input AND output limits, the reports held until written.
    statuses, oom_killed = _run_under_the_memory_limit(
        podman, image, str(256 * 1024 * 1024), [(_combined_worst_body(), "application/json")]
    )
    assert not oom_killed
    assert statuses == [200, 200]


def test_memory_limit_negative_control_limits_derived_from_a_larger_memory(podman: str, image: str) -> None:
    # The caps computed for 4 GiB let 30,000 empty containers through (about 150,000 violations): under the
    # real 256 MiB that is what OOM-killed the former service.
    spec = {"spec": {"template": {"spec": {"containers": [{}] * 30_000}}}}
    resource = {"urn": "urn:d", "type": "kubernetes:apps/v1:Deployment", "name": "d", "properties": spec}
    doc = {"schemaVersion": 1, "project": "p", "stack": "s", "environment": "dev", "resources": [resource]}
    statuses, oom_killed = _run_under_the_memory_limit(
        podman, image, str(4096 * 1024 * 1024), [(json.dumps(doc).encode(), "application/json")]
    )
    assert oom_killed or 0 in statuses
