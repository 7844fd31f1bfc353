"""The files a GitHub Actions step writes to: $GITHUB_STEP_SUMMARY (markdown), $GITHUB_OUTPUT (name=value
lines). Standard library only (the runner's python3).

Both are appended to, never replaced: the runner creates them per step, and a step may write several times
(https://docs.github.com/actions/reference/workflows-and-actions/workflow-commands, "Environment files").
"""

from __future__ import annotations

import os
from pathlib import Path


def append(path_variable: str, text: str) -> bool:
    """Append `text` to the file the environment variable `path_variable` names; False when it is unset
    (outside Actions), so a caller may print instead."""
    path = os.environ.get(path_variable)
    if not path:
        return False
    with Path(path).open("a", encoding="utf-8") as handle:
        handle.write(text)
    return True
