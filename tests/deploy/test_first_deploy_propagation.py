"""A stack's first deploy waits out the Azure grants its pods need, which it made moments before.

A stand-in kubelet pulls the image the way the kubelet backs off (kubernetes.io/docs/concepts/containers/
images/, "ImagePullBackOff": the delay grows exponentially "up to a maximum of 300 seconds"; kubelet's
`backOffPeriod` 10 s and `MaxContainerBackOff` 300 s, pkg/kubelet/kubelet.go) from a stand-in registry that
refuses the kubelet identity until its new AcrPull assignment applies, which Azure RBAC documents can take up
to 10 minutes (learn.microsoft.com/azure/role-based-access-control/troubleshooting). The Key Vault grant the
CSI driver's mount needs behaves alike. `pulumi up` awaits the Deployment's creation for its create
customTimeout; the rollout itself then takes up to `rolloutTimeoutMinutes`.
"""

from __future__ import annotations

import pytest

from components.muse_workload import first_deploy_timeout_minutes
from offline.engine import OfflinePlan

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
BACK_OFF_START, BACK_OFF_MAX = 10, 300  # seconds
RBAC_PROPAGATION_SECONDS = 600


def pull_attempts(until: int) -> list[int]:
    """Seconds after the pod's start at which the kubelet tries to pull: 0, then back-offs doubling from
    10 s, capped at 300 s."""
    attempts, at, delay = [0], 0, BACK_OFF_START
    while at <= until:
        at += delay
        attempts.append(at)
        delay = min(delay * 2, BACK_OFF_MAX)
    return attempts


def first_pull(grant_applies_at: int) -> int:
    """When the stand-in registry first lets the kubelet pull: the first attempt after the grant applied."""
    return next(t for t in pull_attempts(grant_applies_at + BACK_OFF_MAX) if t >= grant_applies_at)


def _minutes(value: str) -> int:
    assert value.endswith("m"), value
    return int(value[:-1])


def ready_in_time(create_timeout_minutes: int, rollout_minutes: int) -> list[int]:
    """The grant propagation times (each second up to Azure's 10 minutes) for which the first deploy's
    Deployment is not ready before `pulumi up` gives up."""
    late = []
    for applies_at in range(RBAC_PROPAGATION_SECONDS + 1):
        ready = first_pull(applies_at) + rollout_minutes * 60
        if ready > create_timeout_minutes * 60:
            late.append(applies_at)
    return late


def test_the_first_deploy_waits_out_any_documented_propagation(plan: OfflinePlan) -> None:
    deployment = plan.one(DEPLOYMENT)
    create, update = (_minutes(deployment.custom_timeouts[k]) for k in ("create", "update"))
    assert ready_in_time(create, rollout_minutes=update) == []
    # Updates keep the rollout time: their grants exist long since, and a failed rollout is rolled back soon.
    assert update < create


@pytest.mark.parametrize("rollout", [5, 10, 60])
def test_the_budget_holds_for_every_allowed_rollout_timeout(rollout: int) -> None:
    assert ready_in_time(first_deploy_timeout_minutes(rollout), rollout) == []


def test_negative_control_the_rollout_time_alone_gives_up_before_the_grant_applies() -> None:
    # The defect: awaiting the first creation only as long as an update.
    late = ready_in_time(10, rollout_minutes=10)
    assert late and late[-1] == RBAC_PROPAGATION_SECONDS
    # And a budget without the longest back-off misses grants that apply just after an attempt.
    assert ready_in_time(10 + 10, rollout_minutes=10) != []
