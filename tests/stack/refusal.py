"""The one check that a stack config is refused before the program registers any resource."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from offline.engine import RecordingMonitor, run_stack
from offline.mocks import OfflineMocks


def assert_refused_before_any_resource(stack: str, overrides: dict[str, Any], key: str, words: str) -> None:
    """Running `stack` with `overrides` fails with one message whose line for `muse:<key>` says `words` and
    names the fix (`pulumi config set --stack <stack>`), and the engine recorded no resource before."""
    monitor = RecordingMonitor(OfflineMocks(stack))
    with pytest.raises(pulumi.RunError) as raised:
        run_stack(stack, overrides=overrides, monitor=monitor)
    message = str(raised.value)
    line = next((line for line in message.splitlines() if line.startswith(f"  - muse:{key}:")), None)
    assert line is not None, message
    assert words in line, message
    assert f"pulumi config set --stack {stack}" in message
    assert monitor.recorded == [], "a resource was registered before config validation failed"
