"""The inner loop stays free of idle waits that cost nothing to avoid: every test's loopback HTTP server is
started by tests/loopback.py, whose short poll interval lets shutdown() return at once (docs/benchmarks.md,
"Test loop")."""

from __future__ import annotations

import re

from stack.files import REPO_ROOT

TESTS = REPO_ROOT / "tests"
# A server run any other way than loopback.start: serve_forever with the default 0.5 s poll interval.
OWN_SERVE_FOREVER = re.compile(r"\.serve_forever\b(?![^\n]*poll_interval)")


def own_servers(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if OWN_SERVE_FOREVER.search(line)]


def test_every_test_server_is_started_by_loopback() -> None:
    found = {
        str(path.relative_to(REPO_ROOT)): lines
        for path in sorted(TESTS.rglob("*.py"))
        if path.name not in {"loopback.py", "test_test_loop.py"} and (lines := own_servers(path.read_text()))
    }
    assert found == {}, "start the server with tests/loopback.py start(server)"


def test_negative_control_a_server_on_the_default_interval_is_named() -> None:
    text = (
        "    threading.Thread(target=server.serve_forever, daemon=True).start()\n"
        "    thread = threading.Thread(target=httpd.serve_forever)\n"
        "    loopback.start(server)\n"
        '    threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.01}).start()\n'
    )
    assert own_servers(text) == [
        "threading.Thread(target=server.serve_forever, daemon=True).start()",
        "thread = threading.Thread(target=httpd.serve_forever)",
    ]
