"""Prod's first deploy in its documented order (docs/runbook.md, "Prod's first deploy"): bootstrap's registry
stage, then the Key Vault stage (MUSE_BOOTSTRAP_STAGE=vault, as the person who bootstraps), then the
certificate (scripts/tls-certificate.sh), then CI's full deploy. Each `pulumi up` is checked against the
engine's rules (tests/bootstrap/engine_targeting.py: pulumi/pulumi step_generator.go validateSteps and
GenerateDeletes) on the real program's offline plans."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

from offline.engine import OfflinePlan, run_stack
from stack.files import REPO_ROOT
from tests.bootstrap.test_bootstrap_script import DEPLOY_PRINCIPAL, _registry_stage, _resources, engine_urn

ENGINE = Path(__file__).with_name("engine_targeting.py")
VAULT_COMPONENT = "urn:pulumi:prod::muse::muse:azure:SecretVault::vault"
VAULT = "urn:pulumi:prod::muse::muse:azure:SecretVault$azure-native:keyvault:Vault::vault"
RUNBOOK = REPO_ROOT / "docs" / "runbook.md"


def _engine() -> ModuleType:
    spec = importlib.util.spec_from_file_location("engine_targeting", ENGINE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(stage: str | None) -> OfflinePlan:
    previous = os.environ.pop("MUSE_BOOTSTRAP_STAGE", None)
    if stage:
        os.environ["MUSE_BOOTSTRAP_STAGE"] = stage
    try:
        return run_stack("prod", overrides={"muse:imagePushPrincipalId": DEPLOY_PRINCIPAL})
    finally:
        os.environ.pop("MUSE_BOOTSTRAP_STAGE", None)
        if previous is not None:
            os.environ["MUSE_BOOTSTRAP_STAGE"] = previous


@pytest.fixture(scope="module")
def plans() -> dict[str, OfflinePlan]:
    return {"vault": _run("vault"), "full": _run(None)}


def _urns(plan: OfflinePlan) -> set[str]:
    return {engine_urn(r.urn) for r in plan.resources}


def test_the_vault_stage_creates_the_vault_on_the_registry_stage_and_deletes_nothing(
    plans: dict[str, OfflinePlan],
) -> None:
    after_bootstrap = {engine_urn(r.urn) for r in _registry_stage("prod").resources}
    created, deleted, errors = _engine().plan_update(_resources(plans["vault"]), after_bootstrap, [], False)
    assert (deleted, errors) == ([], [])
    assert {VAULT_COMPONENT, VAULT} <= set(created)
    assert not [u for u in created if "KubernetesCluster" in u or "MuseWorkload" in u]
    # Then CI's full deploy keeps all of it (same) and creates the rest, deleting nothing.
    created, deleted, errors = _engine().plan_update(
        _resources(plans["full"]), after_bootstrap | _urns(plans["vault"]), [], False
    )
    assert (deleted, errors) == ([], [])
    assert VAULT not in created and _urns(plans["vault"]).isdisjoint(created)


def test_negative_control_a_targeted_vault_up_is_refused_on_a_fresh_stack(
    plans: dict[str, OfflinePlan],
) -> None:
    # What an earlier version of the runbook said: `pulumi up --target` of the vault and its component. The
    # cluster's Kubernetes provider is implicitly targeted while its parent is not: "untargeted create".
    after_bootstrap = {engine_urn(r.urn) for r in _registry_stage("prod").resources}
    _, _, errors = _engine().plan_update(
        _resources(plans["full"]), after_bootstrap, [VAULT_COMPONENT, VAULT], False
    )
    assert errors and errors[-1] == "error: untargeted create"


def test_the_runbook_gives_the_order_and_the_stage() -> None:
    text = RUNBOOK.read_text()
    section = text[text.index("## Prod's first deploy") :]
    section = section[: section.index("\n## ", 3)]
    assert "MUSE_BOOTSTRAP_STAGE=vault scripts/stack prod up" in section  # prod's own state container
    order = ["**registry** stage", "**Key Vault stage**", "the **certificate**", "the **full deploy**"]
    positions = [section.index(step) for step in order]
    assert positions == sorted(positions), "vault -> certificate -> full deploy, in this order"
