"""`make plan` wall time per stack against the bare import of the SDKs the program uses.

    .venv/bin/python -m bench.plan_time [--runs 7]

Both are measured as fresh processes (what a person waits for), median of `--runs`. The goal is
plan <= 1.5x the import: everything beyond importing the SDKs (config validation, the program, the mock
engine, rendering) should cost less than half of the import itself.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Asks a real plan run which SDK modules it loaded, so the baseline imports exactly those and stays right as
# components are added.
LIST_MODULES = """
import contextlib, io, sys
from cli.plan import main
with contextlib.redirect_stdout(io.StringIO()):
    main(["--stack", "prod"])
roots = ("pulumi", "pulumi_azure_native", "pulumi_kubernetes", "pulumi_random", "pulumi_azuread",
         "yaml", "pydantic")
names = {m for m in sys.modules if m.split(".")[0] in roots}
print(" ".join(sorted(names)))
"""


def _median_seconds(command: list[str], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), min(samples)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    python = sys.executable
    listed = subprocess.run(
        [python, "-c", LIST_MODULES], cwd=ROOT, check=True, capture_output=True, text=True
    )
    modules = listed.stdout.split()
    # importlib, not `import a, b`: some lazily loaded SDK modules are not importable as plain statements.
    sdk_import = f"import importlib\nfor m in {modules!r}:\n    importlib.import_module(m)"
    print(f"baseline: importing the {len(modules)} SDK modules (any depth) that make plan STACK=prod loads")
    _median_seconds([python, "-c", sdk_import], 1)  # warm the file cache once
    imported, imported_min = _median_seconds([python, "-c", sdk_import], args.runs)
    print(f"SDK import only            median {imported:6.2f} s   min {imported_min:6.2f} s")
    worst = 0.0
    for stack in ("dev", "prod"):
        planned, planned_min = _median_seconds([python, "-m", "cli.plan", "--stack", stack], args.runs)
        ratio = planned / imported
        worst = max(worst, ratio)
        print(
            f"make plan STACK={stack:<5}    median {planned:6.2f} s   min {planned_min:6.2f} s"
            f"   {ratio:4.2f}x import"
        )
    print(f"worst ratio {worst:.2f}x (goal <= 1.50x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
