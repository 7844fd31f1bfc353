"""Runs the real Pulumi program with no cloud account and no Pulumi CLI.

`engine.run_stack("dev")` executes `__main__.py` under `pulumi.runtime.Mocks` with the stack's config read
from `Pulumi.yaml` + `Pulumi.<stack>.yaml` exactly as the CLI would pass it, and returns an `OfflinePlan`:
every resource with its inputs, parent and options, and the stack outputs. `make plan` prints it; the tests,
the Bicep export and the governance inventory all use the same engine.
"""
