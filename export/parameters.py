"""`infra/bicep/parameters.<stack>.json`: ARM deployment-parameters files, one per stack.

Each sets exactly the keys that `Pulumi.<stack>.yaml` sets (the Pulumi.yaml defaults are the Bicep
parameters' defaults), except the keys that are not Bicep parameters (`NOT_PARAMETERS`, e.g. Kubernetes-only
ones). Secrets are never in these files: `@secure()` parameters are passed by the deployer.

JSON has no comments, so the "generated" notice is the first key, `$comment`: the ARM template and
parameters schemas accept it (unknown top-level properties such as `$comment` are ignored by ARM; JSON
Schema reserves `$comment` for exactly this).
"""

from __future__ import annotations

import json
from typing import Any

from export.bicep import NOT_PARAMETERS
from offline.captured import StackPlan

SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#"


def parameter_values(plan: StackPlan) -> dict[str, Any]:
    return {k: v for k, v in plan.stack_config.items() if k not in NOT_PARAMETERS}


def render_parameters(plan: StackPlan, notice: str) -> str:
    document = {
        "$comment": notice,
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "parameters": {key: {"value": value} for key, value in parameter_values(plan).items()},
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
