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
        # 60 s + 2 x (120 s move and queries + 600 s + 30 s check) = 1560 s > the 1380 s the deploy job
        # leaves the canary less 60 s headroom.
        ({"muse:canaryStepSeconds": "600"}, "canaryStepSeconds", "use at most 480 s per step"),
        ({"muse:canarySteps": "[100]"}, "canarySteps", "a canary starts with a share below 100"),
        # shorter than the gate may take to stop a candidate failing from its first request
        ({"muse:canaryStepSeconds": "120"}, "canaryStepSeconds", "use at least 240"),
        ({"muse:canarySteps": "[10, 25, 50, 100]"}, "canaryStepSeconds", "use fewer canarySteps"),
        ({"muse:canarySteps": "[1, 5, 10, 25, 50, 75, 100]"}, "canaryStepSeconds", "fewer canarySteps"),
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
            "muse:canaryStepSeconds": "240",
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
    assert float(container["command"][6]) == 240 + canary_load.CHECK_SECONDS  # the configured step + a check


def test_the_canarys_budget_follows_the_release_tooling() -> None:
    """stack/config.py's budget is derived from deploy.py's deadlines and release_canary.py's promotion time,
    and its hold from the gate's (canary.Plan.longest_step_seconds); a change there must change it here."""
    import sys

    from stack import config
    from stack.files import REPO_ROOT

    sys.path.insert(0, str(REPO_ROOT / "scripts" / "ci"))
    import release_canary
    from canary import Plan
    from canary_gate import THRESHOLDS

    import deploy

    release = (deploy.JOB_TIMEOUT_MINUTES - deploy.AFTER_HARD_DEADLINE_MINUTES - deploy.ABORT_MINUTES) * 60
    assert release == config.CANARY_RELEASE_SECONDS
    assert config.CANARY_PROMOTION_SECONDS == release_canary.PROMOTION_SECONDS
    for step in (config.CANARY_DETECTION_SECONDS, 600):  # the budget's step length is the stepper's
        plan = Plan.of([100], step, THRESHOLDS.check_seconds, THRESHOLDS.settle_seconds)
        assert config.canary_step_budget_seconds(step) == config.CANARY_STEP_OVERHEAD_SECONDS + (
            plan.longest_step_seconds
        )
    assert THRESHOLDS.detection_seconds == config.CANARY_DETECTION_SECONDS
    assert config.CANARY_STEP_OVERHEAD_SECONDS == release_canary.STEP_OVERHEAD_SECONDS
    assert config.CANARY_FIRST_CHECK_SECONDS == release_canary.END_TO_END_SECONDS


def test_negative_control_the_longest_step_fits_and_one_second_more_does_not() -> None:
    from stack import config

    fits = {"canary_steps": (10, 100), "canary_step_seconds": 480, "canary_image_tag": "", "canary_weight": 0}
    assert config._canary(fits) == []
    [problem] = config._canary({**fits, "canary_step_seconds": 481})
    assert problem.key == "canaryStepSeconds" and "does not fit" in problem.message


def test_the_shortest_step_is_the_gates_detection_time_and_one_second_less_is_refused() -> None:
    from stack import config

    default = {"canary_steps": (10, 100), "canary_image_tag": "", "canary_weight": 0}
    assert config._canary({**default, "canary_step_seconds": config.CANARY_DETECTION_SECONDS}) == []
    [problem] = config._canary({**default, "canary_step_seconds": config.CANARY_DETECTION_SECONDS - 1})
    assert problem.key == "canaryStepSeconds" and "fails from its first request" in problem.message


def _healthy_canary(steps: tuple[int, ...], step_seconds: int, late: float = 0.0) -> tuple[bool, str]:
    """A healthy candidate through the real stepper (canary.run_canary) with the deadline the deploy job
    leaves it, every weight move and end-to-end check taking its full budgeted time, the job's earlier steps
    `late` s over their estimate: promoted or why not."""
    import sys

    from stack import config
    from stack.files import REPO_ROOT

    sys.path.insert(0, str(REPO_ROOT / "scripts" / "ci"))
    import release_canary
    from canary import Plan, run_canary
    from canary_gate import THRESHOLDS, Gate, Sample

    now = [0.0]

    class Ops:
        def set_weight(self, weight: int) -> None:
            now[0] += release_canary.WEIGHT_MOVE_SECONDS

        def end_to_end(self) -> tuple[bool, str]:
            now[0] += release_canary.END_TO_END_SECONDS
            return True, "200"

        def sample(self) -> Sample:
            return Sample(600, 0, 0.05, interval_end=now[0])  # the interval that ended now

    plan = Plan.of(
        steps, step_seconds, THRESHOLDS.check_seconds, THRESHOLDS.settle_seconds,
        release_canary.STEP_OVERHEAD_SECONDS,
    )  # fmt: skip
    budget = config.CANARY_RELEASE_SECONDS - config.CANARY_PROMOTION_SECONDS - config.CANARY_MARGIN_SECONDS
    outcome = run_canary(
        plan, Ops(), Gate(), clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s),
        deadline=budget - late, log=lambda _: None,
    )  # fmt: skip
    return outcome.promoted, outcome.reason


@pytest.mark.parametrize(("steps", "seconds"), [((10, 100), 240), ((10, 50, 100), 240), ((10, 100), 480)])
def test_every_plan_the_config_accepts_lets_a_healthy_canary_finish(
    steps: tuple[int, ...], seconds: int
) -> None:
    from stack import config

    accepted = {
        "canary_steps": steps,
        "canary_step_seconds": seconds,
        "canary_image_tag": "",
        "canary_weight": 0,
    }
    assert config._canary(accepted) == []
    assert _healthy_canary(steps, seconds) == (True, "every step held")


def test_negative_control_without_the_per_step_overhead_a_healthy_canary_runs_out_of_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rule counting each step's time and last check only (and the former 210 s shortest step) accepts
    [5, 10, 25, 50, 100] x 210 s (5 x 240 s = 1200 s), and a healthy release with its weight moves and first
    check then aborts for lack of time."""
    from stack import config

    monkeypatch.setattr(config, "CANARY_STEP_OVERHEAD_SECONDS", 0)
    monkeypatch.setattr(config, "CANARY_FIRST_CHECK_SECONDS", 0)
    monkeypatch.setattr(config, "CANARY_DETECTION_SECONDS", 210)
    former = {
        "canary_steps": (5, 10, 25, 50, 100),
        "canary_step_seconds": 210,
        "canary_image_tag": "",
        "canary_weight": 0,
    }
    assert config._canary(former) == []
    promoted, reason = _healthy_canary((5, 10, 25, 50, 100), 210)
    assert not promoted and "deadline leaves no time" in reason


def test_an_accepted_plan_survives_earlier_steps_running_a_little_over() -> None:
    """Every plan the config accepts leaves CANARY_HEADROOM_SECONDS: the longest two-step plan still promotes
    a healthy candidate when the job's earlier steps took 90 s more than their estimate. Negative control: the
    plan that filled the budget exactly (510 s, accepted before the headroom) aborts it."""
    from stack import config

    assert _healthy_canary((10, 100), 480, late=90) == (True, "every step held")
    promoted, reason = _healthy_canary((10, 100), 510, late=90)
    assert not promoted and "deadline leaves no time" in reason
    exact = {"canary_steps": (10, 100), "canary_image_tag": "", "canary_weight": 0}
    assert config._canary({**exact, "canary_step_seconds": 510})  # refused now
