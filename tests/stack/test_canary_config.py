"""The canary's stack config (muse:canarySteps, canaryStepSeconds, canaryImageTag, canaryWeight): a plan the
stepper cannot finish, or a weight without an image, is refused before any resource; a candidate in the
config puts a second Deployment and Service in the plan and weights on the route."""

from __future__ import annotations

from typing import Any

import pytest

from components.muse_workload import canary_load
from offline.engine import run_stack
from tests.stack.refusal import assert_refused_before_any_resource

CANDIDATE = "sha256:" + "b" * 64


@pytest.mark.parametrize(
    ("overrides", "key", "words"),
    [
        ({"muse:canarySteps": "[10, 50]"}, "canarySteps", "end at 100"),
        ({"muse:canarySteps": "[50, 10, 100]"}, "canarySteps", "increase strictly"),
        ({"muse:canarySteps": "[0, 100]"}, "canarySteps", "greater than or equal to 1"),
        ({"muse:canaryStepSeconds": "30"}, "canaryStepSeconds", "greater than or equal to 60"),
        ({"muse:canaryWeight": "10"}, "canaryWeight", "without canaryImageTag"),
        ({"muse:canaryImageTag": "sha256:short"}, "canaryImageTag", "sha256:<64 hex>"),
    ],
)
def test_a_canary_the_stepper_cannot_run_is_refused(overrides: dict[str, Any], key: str, words: str) -> None:
    assert_refused_before_any_resource("dev", overrides, key, words)


@pytest.mark.slow  # a program run
def test_a_candidate_in_the_config_runs_next_to_the_stable_release() -> None:
    plan = run_stack(
        "prod",
        overrides={
            "muse:canaryImageTag": CANDIDATE,
            "muse:canaryWeight": "10",
            "muse:canaryStepSeconds": "300",
        },
    )
    deployments = {d.name: d for d in plan.of_type("kubernetes:apps/v1:Deployment")}
    assert set(deployments) == {"muse-deployment", "muse-candidatedeployment"}
    image = deployments["muse-candidatedeployment"].get("spec.template.spec.containers.0.image")
    assert image.endswith("/muse@" + CANDIDATE)
    [route] = [
        r
        for r in plan.of_type("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute")
        if r.name == "muse-httproute"
    ]
    weights = {b["name"]: b["weight"] for b in route.get("spec.rules.0.backendRefs")}
    assert weights == {"muse": 90, "muse-candidate": 10}
    # The route waits for both Deployments: a promotion moves traffic only once the stable rollout is ready.
    assert {deployments["muse-deployment"].urn, deployments["muse-candidatedeployment"].urn} <= set(
        route.depends_on
    )
    assert set(plan.outputs["museEvaluateChecks"].value) == {"muse", "muse-candidate"}
    # The candidate's load Job: its image and Service, the registry filled in, the step from config.
    load = plan.outputs["museCanaryLoad"].value
    container = load["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == image
    assert container["command"][3].startswith("http://muse-candidate.")
    assert float(container["command"][6]) == 300 + canary_load.HOLD_SECONDS  # the configured step, held
