"""Secrets are one list (muse/contract.py SECRETS; components/muse_workload/manifests.py follows it): a second
secret added there is generated, granted to the workload alone, mounted, required and read by the
service, documented in .env.example, forbidden to every CI identity, and listed in the generated docs, with no
other file touched but the pin below."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from components.muse_workload import manifests
from components.muse_workload.manifests import API_TOKEN, SECRETS, WorkloadSecret
from export.governance import sources
from muse import contract
from offline.captured import plan_stack
from stack.args import stack_workload_spec
from verify.access.matrix import render as render_matrix
from verify.access.model import Model, Prohibition, evaluate, prohibitions

SECOND = WorkloadSecret("muse-test-only-key", "MUSE_TEST_ONLY_KEY", "signing key")
# A name no real secret takes, so adding a real secret (say muse-signing-key) never collides with this test.
assert SECOND.name not in {s.name for s in contract.SECRETS}, "pick another test-only secret name"
READ_VALUE = "Microsoft.KeyVault/vaults/secrets/getSecret/action"


def _forbidden_readers(found: list[Prohibition], scope: str) -> set[str]:
    return {
        who for p in found if p.action == READ_VALUE and p.data and p.scope == scope for who in p.identities
    }


def test_the_list_holds_the_api_token_under_its_historic_names() -> None:
    # Pulumi names (the secret, its RandomPassword, `muse-workload-secrets-user`) are URNs: renaming one
    # would replace it in Azure.
    assert SECRETS[0] is API_TOKEN
    # The one place the list's content is pinned: every other test derives its expectations from SECRETS.
    assert [secret.name for secret in contract.SECRETS] == ["muse-api-token"]
    # The program's list is the service's, in order.
    assert [(s.name, s.env, s.what) for s in SECRETS] == [(s.name, s.env, s.what) for s in contract.SECRETS]
    assert (API_TOKEN.name, API_TOKEN.env, API_TOKEN.grant) == (
        "muse-api-token",
        "MUSE_API_TOKEN",
        "muse-workload",
    )
    assert SECOND.grant == "muse-workload-muse-test-only-key"


def test_every_listed_secret_is_forbidden_to_every_ci_identity_and_shown(
    model: Model, monkeypatch: pytest.MonkeyPatch
) -> None:
    github = {key for key, identity in model.identities.items() if identity.kind == "github"}
    monkeypatch.setattr(manifests, "SECRETS", (*SECRETS, SECOND))
    # The model's own default (what build() calls), not a list handed in: it must read SECRETS.
    found = prohibitions(model.stacks, model.identities)
    extended = replace(model, prohibitions=found)
    result = evaluate(extended)
    assert not result.violations
    matrix = render_matrix("notice", extended, result)
    for stack, facts in model.stacks.items():
        for secret in (*SECRETS, SECOND):
            assert _forbidden_readers(found, f"{facts.vault_id}/secrets/{secret.name}") == github
            for who in github:
                assert f"| `{who}` | read {stack}'s {secret.what} from the vault (`{READ_VALUE}`)" in matrix


def test_negative_control_the_old_single_name_misses_a_second_secret(model: Model) -> None:
    # What the model did before the list: one prohibition, on `muse-api-token` only.
    only_token = prohibitions(model.stacks, model.identities, (API_TOKEN,))
    vault = next(facts.vault_id for facts in model.stacks.values() if facts.vault_id)
    assert _forbidden_readers(only_token, f"{vault}/secrets/{API_TOKEN.name}")
    assert _forbidden_readers(only_token, f"{vault}/secrets/{SECOND.name}") == set()


def test_the_workload_mounts_and_reads_every_listed_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    extended = (*SECRETS, SECOND)
    monkeypatch.setattr(manifests, "SECRETS", extended)
    spec = stack_workload_spec("dev")
    provider = manifests.secret_provider_class(spec)["spec"]
    # The driver's `objects`: "array:" and a YAML list of YAML documents (one per Key Vault object).
    listed = yaml.safe_load(provider["parameters"]["objects"].removeprefix("array:"))
    objects = [yaml.safe_load(o)["objectName"] for o in listed]
    assert objects == [s.name for s in extended]
    assert [(s["secretName"], s["data"]) for s in provider["secretObjects"]] == [
        (s.name, [{"objectName": s.name, "key": manifests.SYNCED_SECRET_KEY}]) for s in extended
    ]
    [container] = manifests.deployment(spec)["spec"]["template"]["spec"]["containers"]
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert refs == {s.env: {"name": s.name, "key": manifests.SYNCED_SECRET_KEY} for s in extended}


@pytest.mark.slow  # a program run
def test_a_second_secret_reaches_vault_grant_pods_and_governance_doc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manifests, "SECRETS", (*SECRETS, SECOND))
    plan = plan_stack("dev")
    [created] = [
        r for r in plan.plan.of_type("azure-native:keyvault:Secret") if r.get("secretName") == SECOND.name
    ]
    workload = plan.plan.one("azure-native:managedidentity:UserAssignedIdentity", "muse-workload")
    readers = [
        r
        for r in plan.plan.of_type("azure-native:authorization:RoleAssignment")
        if str(r.get("scope")).endswith(f"/secrets/{SECOND.name}")
    ]
    assert [r.name for r in readers] == [f"{SECOND.grant}-secrets-user"]
    assert readers[0].get("principalId") == plan.outputs_of(workload)["principalId"]
    assert created.get("vaultName")
    [provider] = plan.plan.of_type("kubernetes:secrets-store.csi.x-k8s.io/v1:SecretProviderClass")
    assert f"objectName: {SECOND.name}\n" in provider.get("spec.parameters.objects")
    assert SECOND.name in [s["secretName"] for s in provider.get("spec.secretObjects")]
    [deployment] = [
        d for d in plan.plan.of_type("kubernetes:apps/v1:Deployment") if d.name == "muse-deployment"
    ]
    env = {e["name"]: e for e in deployment.get("spec.template.spec.containers.0.env")}
    assert env[SECOND.env]["valueFrom"]["secretKeyRef"] == {"name": SECOND.name, "key": "token"}

    monkeypatch.setattr(sources, "stack_plan", lambda stack: plan)
    doc = sources.render_stack_doc("dev", "notice", [])
    assert f"| `{SECOND.name}` | `{created.get('vaultName')}` | masked (Pulumi secret) | muse-workload" in doc
    assert f"reads `{SECOND.env}` from Secret `{SECOND.name}` key `token`" in doc


# A secret added to muse/contract.py's list, in a fresh interpreter (the list is read at import): the service
# requires it, the Deployment mounts it under the variable the service reads, .env.example documents it and
# is a configuration the service starts on.
ADDED = """
    import muse.contract as contract
    added = contract.Secret("muse-test-only-key", "MUSE_TEST_ONLY_KEY", "signing key", "Signs webhooks.")
    listed = contract.SECRETS
    contract.SECRETS = (*listed, added)
    from components.muse_workload import manifests
    from export import env_example
    from muse.config import REQUIRED_VARIABLES, SECRET_VARIABLES, load_settings
    from tests.deploy.test_service_contract import environment, rendered, variable_problems
    from tests.service.test_service_config import read_env_text

    assert {s.env for s in contract.SECRETS} == REQUIRED_VARIABLES & SECRET_VARIABLES == SECRET_VARIABLES
    assert [s.name for s in manifests.SECRETS] == [*(s.name for s in listed), "muse-test-only-key"]
    container, config = rendered("dev", manifests.DEPLOYMENT)
    assert variable_problems(container, config) == [], variable_problems(container, config)
    settings = load_settings(environment(container, config))
    assert settings.test_only_key.get_secret_value() and settings.api_token.get_secret_value()
    block = env_example.render()
    assert "MUSE_TEST_ONLY_KEY=" in block and "muse-test-only-key" in block and "Signs webhooks." in block
    load_settings(read_env_text(block))
"""


def _run_added(prelude: str = "") -> subprocess.CompletedProcess[str]:
    script = prelude + textwrap.dedent(ADDED)
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow  # a fresh interpreter importing the program
def test_a_secret_added_to_the_list_is_required_mounted_and_documented() -> None:
    run = _run_added()
    assert run.returncode == 0, run.stderr[-3000:]


@pytest.mark.slow  # fresh interpreters importing the program
@pytest.mark.parametrize("side", ["muse.config", "components.muse_workload.manifests"])
def test_negative_control_a_side_that_does_not_follow_the_list_fails(side: str) -> None:
    """The same script with one side's list taken before the secret joins it: a service that does not read
    the new secret, or a Deployment that does not mount it, fails the script."""
    run = _run_added(f"import {side}\n")
    assert run.returncode == 1 and "AssertionError" in run.stderr, run.stderr[-3000:]
