"""scripts/bootstrap.sh run for real against recording stand-ins for az, pulumi and gh.

The `pulumi up|preview --stack dev|prod` stand-in applies the Pulumi engine's real rules to the resources the
real program registers (tests/bootstrap/engine_targeting.py, which cites pulumi/pulumi's step_generator.go and
its regression test TestTargetUntargetedParent): a targeted first deploy that the engine would refuse fails
here too, and an update whose program registers less than the state holds deletes the rest."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from offline.engine import OfflinePlan, run_stack
from stack.config import load_stack_config
from stack.environments import ENVIRONMENTS, image_importer
from stack.files import REPO_ROOT, read_stack
from stack.naming import StateBackendNames
from stack.providers import RESOURCE_PROVIDERS
from stack.quota import REGIONAL_TOTAL, pools, vcpus_needed
from tests.github_model import Environment, Run

# Slow (the bootstrap script against stub CLIs): `make test-fast` leaves the module out.
pytestmark = pytest.mark.slow

SCRIPT = REPO_ROOT / "scripts" / "bootstrap.sh"
WORKFLOW_MAIN = REPO_ROOT / ".github" / "workflows" / "main.yml"
ENGINE = Path(__file__).with_name("engine_targeting.py")
STATE = StateBackendNames.for_bootstrap("m7k2")
ENV_STATE = {env: StateBackendNames.for_environment(env, "m7k2") for env in ENVIRONMENTS}

STUB = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$CALLS"
[ "$(basename "$0")" != pulumi ] || echo "$* | ${PULUMI_BACKEND_URL:-no backend}" >> "$CALLS.backend"
case "$(basename "$0") $*" in
  "az storage container "*|"az keyvault key "*)
    # A role the admin just granted itself is not effective at once (Azure RBAC: up to 10 minutes); until
    # then each data-plane call is refused as Azure refuses it (Storage: 403
    # AuthorizationPermissionMismatch; Key Vault: 403 ForbiddenByRbac). DENY_FIRST data-plane calls per
    # service are refused, then it works.
    denied="$CALLS.denied.$2"
    n="$(cat "$denied" 2>/dev/null || echo 0)"
    if [ "$n" -lt "${DENY_FIRST:-0}" ]; then
      echo $((n + 1)) > "$denied"
      echo "ERROR: (403) This request is not authorized to perform this operation using this permission." >&2
      exit 1
    fi ;;&
  "az account show"*) echo 11111111-2222-3333-4444-555555555555 ;;
  "az ad signed-in-user show"*) echo aaaaaaaa-0000-0000-0000-000000000001 ;;
  "az acr check-name"*|"az storage account check-name"*|"az keyvault check-name"*)
    case "${NAME_CHECK:-free}" in
      free) echo '{"message": null, "nameAvailable": true, "reason": null}' ;;
      taken) echo '{"message": "In use.", "nameAvailable": false, "reason": "AlreadyExists"}' ;;
      invalid) echo '{"message": "Not valid.", "nameAvailable": false, "reason": "Invalid"}' ;;
      failed) echo "ERROR: (AuthorizationFailed) no access" >&2; exit 1 ;;
    esac ;;
  "az vm list-skus"*) cat "$OUTPUTS/skus.json" ;;
  "az vm list-usage"*) cat "$OUTPUTS/usage.json" ;;
  "az "*" show "*|"az group show"*) [ "$EXISTING" = yes ] || exit 3 ;;
  "pulumi stack output --stack main --json "*) cat "$OUTPUTS/${@: -1}.json" ;;
  "pulumi stack output"*) echo "value-of-${@: -1}" ;;
  "gh api --paginate "*"/environments") cat "$OUTPUTS/github-environments.json" 2>/dev/null ;;
  "gh api repos/"*"/customization/sub")  # gh api: `gh: <message> (HTTP <status>)`, exit 1; not logged in: 4
    [ -z "${GH_HTTP_ERROR:-}" ] || { echo '{"message":"x"}'; echo "gh: $GH_HTTP_ERROR" >&2; exit 1; }
    cat "$OUTPUTS/github-oidc-sub.json" 2>/dev/null ||
      { echo "To get started with GitHub CLI, please run:  gh auth login" >&2; exit 4; } ;;
  "gh api orgs/"*"/customization/sub")
    cat "$OUTPUTS/github-org-oidc-sub.json" 2>/dev/null ||
      { echo '{"message":"Not Found"}'; echo "gh: Not Found (HTTP 404)" >&2; exit 1; } ;;
  "gh api --method PUT "*) { echo "$*"; cat; } >> "$CALLS.put" ;;
  "gh api repos/"*" --jq .visibility") echo "${VISIBILITY:-private}" ;;
  "gh api orgs/"*) echo "${ORG_PLAN:-}" ;;
  "pulumi up --stack main "*|"pulumi preview --stack main "*) ;;  # the bootstrap project itself
  "pulumi up --stack "*|"pulumi preview --stack "*)  # an environment of stack/environments.txt
    stack="$3"
    program="$stack"  # the program registers only its registry stage when bootstrap asks for it
    [ "${MUSE_BOOTSTRAP_STAGE:-}" = registry ] && program="$stack-registry"
    exec "$PYTHON" "$ENGINE" "$PLANS/$program.json" "$PLANS/$stack.state" "$@" ;;
esac
exit 0
"""

# `az vm list-skus --output json` as Azure answers it (ResourceSku: name, family, capabilities as name/value
# strings), and `az vm list-usage --output json` (Usage: currentValue, limit, name.value; `limit` of the
# family from $QUOTA): JSON, which stack/quota.py parses, not the one-value-per-line tsv of a flat list.
SKUS = [
    {
        "name": f"Standard_D{n}ds_v5",
        "family": "standardDDSv5Family",
        "resourceType": "virtualMachines",
        "capabilities": [{"name": "vCPUs", "value": str(n)}, {"name": "MemoryGB", "value": str(4 * n)}],
    }
    for n in (2, 4, 8)
]


def _enough() -> dict[str, int]:
    """A subscription's quota that covers every listed environment's pools with their surge (stack/quota.py),
    and never less than 100 vCPUs per family and 350 for the region: a new environment adds its need."""
    configs = [load_stack_config(e, read_stack(e).config) for e in ENVIRONMENTS]
    need, _ = vcpus_needed([pool for config in configs for pool in pools(config)], SKUS)
    return {
        "standardDDSv5Family": max(100, need["standardDDSv5Family"]),
        REGIONAL_TOTAL: max(350, need[REGIONAL_TOTAL]),
    }


ENOUGH = _enough()


def _usage(family_limit: int) -> list[dict[str, object]]:
    def usage(name: str, localized: str, limit: int) -> dict[str, object]:
        return {
            "currentValue": 0,
            "limit": limit,
            "name": {"localizedValue": localized, "value": name},
            "unit": "Count",
        }

    return [
        usage("standardDDSv5Family", "Standard DDSv5 Family vCPUs", family_limit),
        usage(REGIONAL_TOTAL, "Total Regional vCPUs", ENOUGH[REGIONAL_TOTAL]),
    ]


_REGISTRY_STAGES: dict[str, OfflinePlan] = {}
DEPLOY_PRINCIPAL = "00000000-0000-0000-0000-0000000000aa"
IMPORT_PRINCIPAL = "00000000-0000-0000-0000-0000000000bb"


def _registry_stage(stack: str) -> OfflinePlan:
    """The offline plan of the real program run as bootstrap runs it (MUSE_BOOTSTRAP_STAGE=registry)."""
    if stack not in _REGISTRY_STAGES:
        previous = os.environ.get("MUSE_BOOTSTRAP_STAGE")
        os.environ["MUSE_BOOTSTRAP_STAGE"] = "registry"
        try:
            # Step 3 of the script has set muse:imagePushPrincipalId (and, where a next environment imports
            # from this one, imageImportPrincipalId: that one's deployer) before step 4 runs.
            overrides = {"muse:imagePushPrincipalId": DEPLOY_PRINCIPAL}
            if image_importer(stack) is not None:
                overrides["muse:imageImportPrincipalId"] = IMPORT_PRINCIPAL
            _REGISTRY_STAGES[stack] = run_stack(stack, overrides=overrides)
        finally:
            if previous is None:
                del os.environ["MUSE_BOOTSTRAP_STAGE"]
            else:
                os.environ["MUSE_BOOTSTRAP_STAGE"] = previous
    return _REGISTRY_STAGES[stack]


def engine_urn(urn: str) -> str:
    """The URN the real engine gives: a resource parented to the root Stack gets no parent type in its URN
    (pulumi/pulumi step_generator.go generateURN, `parentIsRootStack`); the SDK's mock monitor keeps
    `pulumi:pulumi:Stack$` in front of top-level components' types."""
    return urn.replace("::pulumi:pulumi:Stack$", "::")


def _resources(plan: OfflinePlan) -> list[dict[str, object]]:
    return [
        {
            "urn": engine_urn(r.urn),
            "parent": engine_urn(r.parent) if r.parent else None,
            "depends_on": [engine_urn(d) for d in r.depends_on],
            "provider": r.provider,
        }
        for r in plan.resources
    ]


@pytest.fixture(scope="module")
def bootstrap_outputs() -> dict[str, object]:
    """What `pulumi stack output --json` of the bootstrap stack answers: its offline plan's outputs."""
    plan = run_stack("main", root=REPO_ROOT / "bootstrap")
    return {name: output.value for name, output in plan.outputs.items()}


def _run(
    tmp_path: Path,
    outputs: dict[str, object],
    *args: str,
    existing: bool = False,
    plans: dict[str, OfflinePlan] | None = None,
    script: Path = SCRIPT,
    extra_env: dict[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    plans_dir = tmp_path / "plans"
    plans_dir.mkdir(exist_ok=True)
    for stack, plan in (plans or {}).items():
        (plans_dir / f"{stack}.json").write_text(json.dumps(_resources(plan)))
        (plans_dir / f"{stack}-registry.json").write_text(json.dumps(_resources(_registry_stage(stack))))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("az", "pulumi", "gh"):
        stub = bin_dir / tool
        stub.write_text(STUB)
        stub.chmod(0o755)
    calls = tmp_path / "calls.log"
    calls.write_text("")
    answers = tmp_path / "outputs"
    answers.mkdir(exist_ok=True)
    for name, value in outputs.items():
        (answers / f"{name}.json").write_text(json.dumps(value))
    (answers / "skus.json").write_text(json.dumps(SKUS))
    family_limit = int((extra_env or {}).get("QUOTA", ENOUGH["standardDDSv5Family"]))
    (answers / "usage.json").write_text(json.dumps(_usage(family_limit)))
    env = {
        "OUTPUTS": str(answers),
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "CALLS": str(calls),
        "EXISTING": "yes" if existing else "no",
        "HOME": str(tmp_path),
        "PYTHON": sys.executable,
        "ENGINE": str(ENGINE),
        "PLANS": str(plans_dir),
        **(extra_env or {}),
    }
    result = subprocess.run(
        ["bash", str(script), *args], env=env, capture_output=True, text=True, check=False, cwd=REPO_ROOT
    )
    return result, calls.read_text().splitlines()


def _deployed_state(tmp_path: Path, plans: dict[str, OfflinePlan]) -> dict[str, list[str]]:
    """Both stacks as after their first full deploy: the state holds every resource of the full program."""
    (tmp_path / "plans").mkdir(exist_ok=True)
    state = {}
    for stack, plan in plans.items():
        urns = [engine_urn(r.urn) for r in plan.resources]
        (tmp_path / "plans" / f"{stack}.state").write_text("".join(f"{u}\n" for u in urns))
        state[stack] = urns
    return state


def _index(calls: list[str], prefix: str) -> int:
    return next(i for i, call in enumerate(calls) if call.startswith(prefix))


def test_fresh_subscription_gets_a_locked_down_state_backend_then_the_stacks(
    tmp_path: Path, plans: dict[str, OfflinePlan], bootstrap_outputs: dict[str, object]
) -> None:
    result, calls = _run(tmp_path, bootstrap_outputs, plans=plans)
    assert result.returncode == 0, result.stderr
    [account] = [c for c in calls if c.startswith("az storage account create")]
    for flag in (
        "--allow-shared-key-access false",
        "--allow-blob-public-access false",
        "--min-tls-version TLS1_2",
    ):
        assert flag in account
    assert f"--name {STATE.storage_account}" in account
    [vault] = [c for c in calls if c.startswith("az keyvault create")]
    assert "--enable-rbac-authorization true" in vault and "--enable-purge-protection true" in vault
    # One container and one key per environment, besides the bootstrap's own.
    for names in (STATE, *ENV_STATE.values()):
        assert any(
            c.startswith(f"az keyvault key create --vault-name {names.key_vault} --name {names.key} ")
            for c in calls
        )
        assert any(c.startswith(f"az storage container create --name {names.container} ") for c in calls)
    # Providers first: CI has no subscription-wide right to register one.
    registered = [c.split()[4] for c in calls if c.startswith("az provider register")]
    assert registered == list(RESOURCE_PROVIDERS)
    assert _index(calls, "az provider register") < _index(calls, "az storage account create")
    # Order: backend, then the bootstrap stack, then the environments. No `pulumi login` (per machine: it
    # would leave the CLI on the bootstrap's container); every pulumi command names its own backend.
    assert not [c for c in calls if c.startswith("pulumi login")]
    assert (
        _index(calls, "az keyvault key create")
        < _index(calls, "pulumi up --stack main")
        < _index(calls, "pulumi stack select dev")
    )
    backends = (tmp_path / "calls.log.backend").read_text().splitlines()
    for line in backends:
        stack = "main" if "--stack main" in line or line.startswith("stack select main") else None
        for env in ENV_STATE:
            if f"--stack {env}" in line or line.startswith(f"stack select {env}"):
                stack = env
        expected = STATE if stack == "main" else ENV_STATE.get(stack or "")
        assert expected is not None and line.endswith(f"| {expected.backend_url}"), line
    for env, names in ENV_STATE.items():
        assert f"pulumi stack select {env} --create --secrets-provider {names.secrets_provider}" in calls
    # Each environment's stack config from the bootstrap's output, in the list's order: the first one's
    # pusher, and on each with a next environment that one's importer.
    config: dict[str, dict[str, str]] = bootstrap_outputs["stackConfig"]  # type: ignore[assignment]
    assert [c for c in calls if c.startswith("pulumi config set")] == [
        f"pulumi config set --stack {env} {key} {value}"
        for env in ENVIRONMENTS
        for key, value in config[env].items()
    ]
    assert config[ENVIRONMENTS[0]]["muse:imagePushPrincipalId"]
    # Without --github, gh only reads the subject prefix (no answer here: the configured one is used).
    assert [c for c in calls if c.startswith("gh ")] == [
        "gh api repos/muse-platform/muse/actions/oidc/customization/sub"
    ]
    assert "could not ask GitHub" in result.stdout
    prod_deployer = bootstrap_outputs["githubVariables"]["environments"]["prod"]["AZURE_CLIENT_ID"]  # type: ignore[index]
    assert f"  prod  AZURE_CLIENT_ID={prod_deployer}" in result.stdout.splitlines()


def test_rerun_creates_nothing_that_exists(
    tmp_path: Path, plans: dict[str, OfflinePlan], bootstrap_outputs: dict[str, object]
) -> None:
    result, calls = _run(tmp_path, bootstrap_outputs, existing=True, plans=plans)
    assert result.returncode == 0, result.stderr
    creates = [
        c for c in calls if c.startswith("az ") and " create " in f"{c} " and "role assignment" not in c
    ]
    # Only the idempotent container creates remain (they report created: false when it exists).
    assert creates == [c for c in calls if c.startswith("az storage container create")]
    assert len(creates) == 1 + len(ENVIRONMENTS)  # the bootstrap's container and one per environment


def test_github_environments_and_variables_are_set_when_asked(
    tmp_path: Path, plans: dict[str, OfflinePlan], bootstrap_outputs: dict[str, object]
) -> None:
    result, calls = _run(tmp_path, bootstrap_outputs, "--github", plans=plans, extra_env={"ORG_PLAN": "team"})
    assert result.returncode == 0, result.stderr
    variables = bootstrap_outputs["githubVariables"]
    gh = [c for c in calls if c.startswith("gh variable set")]
    expected = [
        f"gh variable set {name} --repo muse-platform/muse --body {value}"
        for name, value in sorted(variables["repository"].items())  # type: ignore[index]
    ] + [
        f"gh variable set {name} --repo muse-platform/muse --env {environment} --body {value}"
        for environment, values in sorted(variables["environments"].items())  # type: ignore[index]
        for name, value in sorted(values.items())
    ]
    # A private repository of an organization whose plan (read by an owner) is Team cannot attest: recorded.
    expected.append("gh variable set ARTIFACT_ATTESTATIONS --repo muse-platform/muse --body unavailable")
    assert gh == expected
    created = [c.split()[4] for c in calls if c.startswith("gh api --method PUT")]
    environments = sorted(variables["environments"])  # type: ignore[index]
    assert created == [f"repos/muse-platform/muse/environments/{e}" for e in environments]


def test_first_deploy_creates_exactly_the_registry_stage_under_the_engine_rule(
    tmp_path: Path, plans: dict[str, OfflinePlan], bootstrap_outputs: dict[str, object]
) -> None:
    result, calls = _run(tmp_path, bootstrap_outputs, plans=plans)
    assert result.returncode == 0, result.stderr
    for stack, plan in plans.items():
        registry = plan.one("azure-native:containerregistry:Registry")
        component = engine_urn(registry.parent or "")
        stage = _registry_stage(stack)
        grants = {r.name: r for r in stage.of_type("azure-native:authorization:RoleAssignment")}
        # dev's registry also lets prod's deployer read it: prod's first import needs no dev deploy first.
        imported = image_importer(stack) is not None  # a next environment imports from this registry
        expected = {"image-push-acr-push"} | ({"image-import-acr-import-source"} if imported else set())
        assert set(grants) == expected
        assert f"pulumi up --stack {stack} --yes" in calls
        # What the engine created on the fresh stack: the registry, its component, the build identity's
        # AcrPush (the first main.yml build pushes with it) and on dev prod's Reader, nothing else.
        created = (tmp_path / "plans" / f"{stack}.state").read_text().split()
        assert sorted(created) == sorted(
            [component, registry.urn, *(engine_urn(g.urn) for g in grants.values())]
        ), created
        # The stage registers the registry exactly as the full program does (same URN and inputs): the first
        # full deploy keeps it.
        assert stage.one("azure-native:containerregistry:Registry") == registry
        assert set(stage.outputs) >= {"registryName", "registryLoginServer"}


def test_rerun_on_deployed_stacks_skips_the_registry_stage_and_deletes_nothing(
    tmp_path: Path, plans: dict[str, OfflinePlan], bootstrap_outputs: dict[str, object]
) -> None:
    before = _deployed_state(tmp_path, plans)
    result, calls = _run(tmp_path, bootstrap_outputs, existing=True, plans=plans)
    assert result.returncode == 0, result.stderr
    for stack, urns in before.items():
        after = (tmp_path / "plans" / f"{stack}.state").read_text().split()
        assert after == urns, f"{stack}: {len(urns) - len(after)} resource(s) deleted"
        assert f"pulumi preview --stack {stack} --json" in calls
        assert f"pulumi up --stack {stack} --yes" not in calls
        assert f"   {stack}: skipped, the stack is already deployed" in result.stdout


def test_registry_stage_without_the_guard_deletes_a_deployed_stack(
    tmp_path: Path, plans: dict[str, OfflinePlan], bootstrap_outputs: dict[str, object]
) -> None:
    """Negative control: step 4 without the guard, on deployed stacks, deletes everything but the registry."""
    original = SCRIPT.read_text(encoding="utf-8")
    start = original.index(
        'for env in "${environments[@]}"; do\n  PULUMI_BACKEND_URL="$(env_state "$env" backend_url)"  # each'
    )
    end = original.index('echo "== 5/5')
    unguarded = (
        'for env in "${environments[@]}"; do\n'
        '  MUSE_BOOTSTRAP_STAGE=registry pulumi up --stack "$env" --yes\n'
        "done\n\n"
    )
    copy = tmp_path / "scripts" / "bootstrap.sh"
    copy.parent.mkdir()
    copy.write_text(
        (original[:start] + unguarded + original[end:]).replace(
            'cd "$(dirname "$0")/.."', f'cd "{REPO_ROOT}"'
        )
    )
    before = _deployed_state(tmp_path, plans)
    result, _ = _run(tmp_path, bootstrap_outputs, existing=True, plans=plans, script=copy)
    assert result.returncode == 0, result.stderr
    for stack, urns in before.items():
        after = (tmp_path / "plans" / f"{stack}.state").read_text().split()
        # The registry, its component and its grants (AcrPush; on dev also prod's Reader for the import).
        assert len(after) == len(_registry_stage(stack).resources) < len(urns), after


def test_targeting_only_the_registry_fails_on_a_fresh_stack_as_the_engine_does(
    tmp_path: Path, plans: dict[str, OfflinePlan], bootstrap_outputs: dict[str, object]
) -> None:
    """Negative control: the previous step 4 (`--target <Registry URN>` alone) against the engine's rule."""
    original = SCRIPT.read_text(encoding="utf-8")
    start = original.index('echo "== 4/5')
    end = original.index('echo "== 5/5')
    old_step = (
        'echo "== 4/5 registries only"\n'
        'for env in "${environments[@]}"; do\n'
        '  pulumi up --stack "$env" --yes \\\n'
        '    --target "urn:pulumi:$env::muse::muse:azure:ContainerRegistry\\$azure-native:containerregistry:'
        'Registry::registry"\n'
        "done\n\n"
    )
    old_script = tmp_path / "scripts" / "bootstrap.sh"
    old_script.parent.mkdir()
    # The copy runs from the repository like the original (it cds to its parent directory).
    old_text = original[:start] + old_step + original[end:]
    old_text = old_text.replace('cd "$(dirname "$0")/.."', f'cd "{REPO_ROOT}"')
    old_script.write_text(old_text)
    result, _ = _run(tmp_path, bootstrap_outputs, plans=plans, script=old_script)
    assert result.returncode != 0
    assert "untargeted create" in result.stderr


def test_engine_stand_in_follows_the_engines_own_regression_test() -> None:
    """pulumi/pulumi pkg/engine/lifecycletest/target_test.go TestTargetUntargetedParent, replayed."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("engine_targeting", ENGINE)
    assert spec is not None and spec.loader is not None
    engine = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(engine)
    stack = "urn:pulumi:test::test::pulumi:pulumi:Stack::test"
    parent = "urn:pulumi:test::test::component::parent"
    child = "urn:pulumi:test::test::component$pkgA:m:typA::child"
    provider = "urn:pulumi:test::test::pulumi:providers:pkgA::default"
    resources = [
        {"urn": stack},
        {"urn": parent},
        {"urn": child, "parent": parent, "provider": f"{provider}::id-1"},
    ]
    # "target create": fresh stack, only the child targeted -> "untargeted create".
    created, errors = engine.plan_targeted_update(resources, set(), ["**child**"], False)
    assert created == [] and errors[-1] == "error: untargeted create"
    # "target update": with the parent already in state, targeting the child works.
    created, errors = engine.plan_targeted_update(resources, {stack, parent, child}, ["**child**"], False)
    assert errors == []
    # Targeting the parent as well creates both (what scripts/bootstrap.sh does).
    created, errors = engine.plan_targeted_update(resources, set(), [parent, child], False)
    assert errors == [] and created == [stack, parent, child]
    # --target-dependents adds dependents (children) of a target, never its parents.
    _, errors = engine.plan_targeted_update(resources, set(), [child], True)
    assert errors[-1] == "error: untargeted create"
    created, errors = engine.plan_targeted_update(resources, set(), [parent], True)
    assert errors == [] and created == [stack, parent, child]
    # deployment_executor.go checkTargets: a literal target the program never registers is an error.
    _, errors = engine.plan_targeted_update(resources, set(), [parent + "-typo"], False)
    assert errors[-1] == "error: one or more targets could not be found in the stack"


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is installed by make system-deps")
def test_script_is_shellcheck_clean() -> None:
    result = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


# GitHub as documented (https://docs.github.com/en/rest/deployments/environments): "Create or update an
# environment" sets the protection rules its body gives (a body without `reviewers` leaves none: a script that
# PUT only its branch policy removed UI-set reviewers, ministryofjustice/modernisation-platform issue 4516),
# and "List environments" answers `{"total_count", "environments": [{name, protection_rules: [...]}]}` with
# `required_reviewers` rules as `{type, prevent_self_review, reviewers: [{type, reviewer: {id, login}}]}`.
class FakeGitHubEnvironments:
    def __init__(self) -> None:
        self.environments: dict[str, dict[str, object]] = {}

    def put(self, name: str, body: dict[str, object]) -> None:
        rules: list[dict[str, object]] = []
        if body.get("reviewers"):
            reviewers = [
                {"type": r["type"], "reviewer": {"id": r["id"], "login": f"user{r['id']}"}}  # type: ignore[index]
                for r in body["reviewers"]  # type: ignore[attr-defined]
            ]
            rules.append(
                {
                    "type": "required_reviewers",
                    "prevent_self_review": bool(body.get("prevent_self_review", False)),
                    "reviewers": reviewers,
                }
            )
        if body.get("wait_timer"):
            rules.append({"type": "wait_timer", "wait_timer": body["wait_timer"]})
        if body.get("deployment_branch_policy"):
            rules.append({"type": "branch_policy"})
        # `can_admins_bypass` defaults to true (REST "Create or update an environment"; docs "Managing
        # environments for deployment": administrators may bypass the protection rules unless turned off).
        bypass = bool(body.get("can_admins_bypass", True))
        self.environments[name] = {"name": name, "protection_rules": rules, "can_admins_bypass": bypass}

    def list_pages(self) -> str:
        # Two pages back to back, as `gh api --paginate` prints them.
        names = sorted(self.environments)
        pages = [names[:1], names[1:]]
        return "".join(
            json.dumps({"total_count": len(names), "environments": [self.environments[n] for n in page]})
            for page in pages
        )

    def reviewers(self, name: str) -> list[object]:
        rules = self.environments[name]["protection_rules"]
        return [r for rule in rules if rule["type"] == "required_reviewers" for r in rule["reviewers"]]  # type: ignore[attr-defined,index]


def _puts(tmp_path: Path) -> dict[str, dict[str, object]]:
    lines = (tmp_path / "calls.log.put").read_text().splitlines()
    return {lines[i].split()[3].rsplit("/", 1)[1]: json.loads(lines[i + 1]) for i in range(0, len(lines), 2)}


def test_a_rerun_keeps_the_reviewers_a_person_set_on_prod(
    tmp_path: Path, plans: dict[str, OfflinePlan], bootstrap_outputs: dict[str, object]
) -> None:
    github = FakeGitHubEnvironments()
    for name in ("dev", "prod", "preview-dev", "preview-prod"):
        github.put(name, {"deployment_branch_policy": {"custom_branch_policies": True}})
    # Set in the UI after the first bootstrap, as docs/bootstrap.md asks.
    github.put(
        "prod",
        {
            "reviewers": [{"type": "User", "id": 42}, {"type": "Team", "id": 7}],
            "prevent_self_review": True,
            "wait_timer": 5,
            "deployment_branch_policy": {"custom_branch_policies": True},
        },
    )
    outputs = {**bootstrap_outputs}
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "github-environments.json").write_text(github.list_pages())
    # The stub's organisation plan is unreadable (a non-owner): the bootstrap then needs the answer given.
    attest = {"MUSE_ARTIFACT_ATTESTATIONS": "unavailable"}
    result, _ = _run(tmp_path, outputs, "--github", plans=plans, extra_env=attest)
    assert result.returncode == 0, result.stderr
    for name, body in _puts(tmp_path).items():
        github.put(name, body)
    assert [r["reviewer"]["id"] for r in github.reviewers("prod")] == [42, 7]  # type: ignore[index]
    assert github.environments["prod"]["protection_rules"][0]["prevent_self_review"] is True  # type: ignore[index]
    assert {"type": "wait_timer", "wait_timer": 5} in github.environments["prod"]["protection_rules"]  # type: ignore[operator]
    # Administrators can no longer deploy prod without an approval (tests/github_model.py, row 5); the other
    # environments have no reviewers to bypass.
    assert github.environments["prod"]["can_admins_bypass"] is False
    assert _puts(tmp_path)["prod"]["can_admins_bypass"] is False
    assert "can_admins_bypass" not in _puts(tmp_path)["dev"]
    protected = Environment(reviewers=("user42",), can_admins_bypass=False, prevent_self_review=True)
    assert not Run(protected).job_may_start(admin_bypass=True)
    # Environments without reviewers get no reviewer field at all (private repositories without Enterprise
    # refuse it: docs/github-setup.md).
    assert "reviewers" not in _puts(tmp_path)["dev"] and "wait_timer" not in _puts(tmp_path)["dev"]


def test_negative_control_the_former_put_drops_the_reviewers() -> None:
    github = FakeGitHubEnvironments()
    github.put("prod", {"reviewers": [{"type": "User", "id": 42}], "deployment_branch_policy": {}})
    # The former call: only the branch policy (-F deployment_branch_policy[...]).
    github.put(
        "prod", {"deployment_branch_policy": {"protected_branches": False, "custom_branch_policies": True}}
    )
    assert github.reviewers("prod") == []


@pytest.mark.parametrize(
    ("extra_env", "recorded"),
    [
        ({"VISIBILITY": "public"}, "enabled"),
        ({"VISIBILITY": "private", "ORG_PLAN": "enterprise"}, "enabled"),
        ({"VISIBILITY": "internal", "ORG_PLAN": "team"}, "unavailable"),
        ({"VISIBILITY": "public", "MUSE_ARTIFACT_ATTESTATIONS": "unavailable"}, "unavailable"),
    ],
)
def test_whether_the_repository_can_attest_is_recorded(
    tmp_path: Path,
    plans: dict[str, OfflinePlan],
    bootstrap_outputs: dict[str, object],
    extra_env: dict[str, str],
    recorded: str,
) -> None:
    """ARTIFACT_ATTESTATIONS, which main.yml's attestation and deploy-prod's verification read."""
    result, calls = _run(tmp_path, bootstrap_outputs, "--github", plans=plans, extra_env=extra_env)
    assert result.returncode == 0, result.stderr
    attest = [c for c in calls if c.startswith("gh variable set ARTIFACT_ATTESTATIONS")]
    assert attest == [f"gh variable set ARTIFACT_ATTESTATIONS --repo muse-platform/muse --body {recorded}"]


def test_negative_control_a_misspelt_attestation_mode_stops_the_bootstrap(
    tmp_path: Path, plans: dict[str, OfflinePlan], bootstrap_outputs: dict[str, object]
) -> None:
    extra_env = {"MUSE_ARTIFACT_ATTESTATIONS": "yes"}
    result, calls = _run(tmp_path, bootstrap_outputs, "--github", plans=plans, extra_env=extra_env)
    assert result.returncode == 2 and "must be 'enabled' or 'unavailable'" in result.stderr
    assert calls == []  # refused before anything in Azure or GitHub was touched


IMMUTABLE = {"use_default": True, "use_immutable_subject": True,
             "sub_claim_prefix": "repo:muse-platform@184467302/muse@1021473690"}  # fmt: skip


def test_github_s_prefix_is_checked_before_anything_is_created(
    tmp_path: Path, plans: dict[str, OfflinePlan], bootstrap_outputs: dict[str, object]
) -> None:
    """GitHub's answer (GET .../actions/oidc/customization/sub, the fields Azure/azure-dev's oidc.go decodes)
    agrees with the stack files: the bootstrap goes on."""
    result, calls = _run(tmp_path, {**bootstrap_outputs, "github-oidc-sub": IMMUTABLE}, plans=plans)
    assert result.returncode == 0, result.stderr
    assert f"GitHub issues {IMMUTABLE['sub_claim_prefix']}:<context>" in result.stdout
    assert _index(calls, "gh api repos/") < _index(calls, "az provider register")


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        # A legacy repository whose stack files say immutable: no job could sign in.
        ({"use_default": True, "sub_claim_prefix": "repo:muse-platform/muse"}, "does not list"),
        ({**IMMUTABLE, "use_default": False, "include_claim_keys": ["repo", "context", "workflow"]},
         "customised OIDC subject template"),
    ],
)  # fmt: skip
def test_a_prefix_github_does_not_issue_stops_the_bootstrap_before_any_change(
    tmp_path: Path,
    plans: dict[str, OfflinePlan],
    bootstrap_outputs: dict[str, object],
    answer: dict[str, object],
    message: str,
) -> None:
    result, calls = _run(tmp_path, {**bootstrap_outputs, "github-oidc-sub": answer}, plans=plans)
    assert result.returncode != 0 and message in result.stderr
    assert not [c for c in calls if c.startswith(("az ", "pulumi "))]


ORG_FOLLOWER = {"use_default": False, "sub_claim_prefix": IMMUTABLE["sub_claim_prefix"]}


@pytest.mark.parametrize(
    ("org_template", "refused"),
    [(None, False), (["repo", "context"], False), (["repository_owner_id", "context"], True)],
    ids=["org-404", "org-default-keys", "org-custom-keys"],
)
def test_an_organisation_template_is_read_and_a_custom_one_stops_the_bootstrap(
    tmp_path: Path,
    plans: dict[str, OfflinePlan],
    bootstrap_outputs: dict[str, object],
    org_template: list[str] | None,
    refused: bool,
) -> None:
    """The repository answers use_default false without keys: it follows GET /orgs/{org}/actions/oidc/
    customization/sub (docs.github.com/rest/actions/oidc; 404 when the organisation has no template)."""
    outputs = {**bootstrap_outputs, "github-oidc-sub": ORG_FOLLOWER}
    if org_template is not None:
        outputs["github-org-oidc-sub"] = {"include_claim_keys": org_template}
    result, calls = _run(tmp_path, outputs, plans=plans)
    assert "gh api orgs/muse-platform/actions/oidc/customization/sub" in calls
    if refused:
        assert result.returncode != 0 and "follows the organisation muse-platform" in result.stderr
        assert not [c for c in calls if c.startswith(("az ", "pulumi "))]
    else:
        assert result.returncode == 0, result.stderr
        assert f"GitHub issues {IMMUTABLE['sub_claim_prefix']}:<context>" in result.stdout


@pytest.mark.parametrize(
    "error", ["Not Found (HTTP 404)", "Resource not accessible by integration (HTTP 403)"]
)
def test_github_refusing_the_prefix_question_stops_the_bootstrap_unless_offline(
    tmp_path: Path, plans: dict[str, OfflinePlan], bootstrap_outputs: dict[str, object], error: str
) -> None:
    """An HTTP error is not "no GitHub access": the bootstrap stops (the configured prefix may be wrong)."""
    result, calls = _run(tmp_path, bootstrap_outputs, plans=plans, extra_env={"GH_HTTP_ERROR": error})
    assert result.returncode == 1 and "GitHub refused to say which OIDC subject prefix" in result.stderr
    assert not [c for c in calls if c.startswith(("az ", "pulumi "))]
    # The explicit offline flag uses the configured prefixes and says so.
    offline, _ = _run(
        tmp_path,
        bootstrap_outputs,
        plans=plans,
        extra_env={"GH_HTTP_ERROR": error, "MUSE_GITHUB_OFFLINE": "1"},
    )
    assert offline.returncode == 0, offline.stderr
    assert "could not ask GitHub (MUSE_GITHUB_OFFLINE=1)" in offline.stdout
    # Negative control: not logged in (gh's exit 4) is the no-access case, which goes on with the configured.
    logged_out, _ = _run(tmp_path, bootstrap_outputs, plans=plans)
    assert logged_out.returncode == 0 and "gh missing or not logged in" in logged_out.stdout


def test_negative_control_without_the_field_an_administrator_skips_the_prod_approval() -> None:
    github = FakeGitHubEnvironments()
    github.put("prod", {"reviewers": [{"type": "User", "id": 42}], "deployment_branch_policy": {}})
    assert github.environments["prod"]["can_admins_bypass"] is True
    assert Run(Environment(reviewers=("user42",))).job_may_start(admin_bypass=True)


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"NAME_CHECK": "taken"}, "name is taken elsewhere in Azure"),
        # Not "taken": a name Azure refuses for anyone, and a check that could not run, say so.
        ({"NAME_CHECK": "invalid"}, "Azure refuses the state storage account"),
        ({"NAME_CHECK": "failed"}, "could not check the state storage account"),
        ({"QUOTA": "10"}, "request a quota increase"),
    ],
    ids=["taken-name", "invalid-name", "failed-check", "short-quota"],
)
def test_preflight_stops_before_anything_is_created(
    tmp_path: Path, bootstrap_outputs: dict[str, object], env: dict[str, str], words: str
) -> None:
    result, calls = _run(tmp_path, bootstrap_outputs, extra_env=env)
    assert result.returncode == 1 and words in result.stderr, result.stderr
    assert not [c for c in calls if " create " in f"{c} " or c.startswith(("pulumi", "az provider register"))]


def test_the_committed_placeholder_group_gets_no_grant(
    tmp_path: Path, plans: dict[str, OfflinePlan], bootstrap_outputs: dict[str, object]
) -> None:
    # Negative control of the preflight (names free, quota enough for the pools) and of the grant: the
    # committed files name no real operators' group, so the run goes on and grants nobody a Kubernetes role.
    result, calls = _run(tmp_path, bootstrap_outputs, plans=plans)
    assert result.returncode == 0, result.stderr
    assert "prod: no operators' group" in result.stdout
    assert not [c for c in calls if "--assignee-principal-type Group" in c]


def test_unreadable_plan_stops_and_asks_instead_of_recording_unavailable(
    tmp_path: Path, plans: dict[str, OfflinePlan], bootstrap_outputs: dict[str, object]
) -> None:
    """GET /orgs/{org} shows `plan` to owners only (docs.github.com REST "Get an organization"): the stub's
    empty answer is what a non-owner's `--jq '.plan.name // ""'` prints. Bootstrap must ask, not guess."""
    result, calls = _run(tmp_path, bootstrap_outputs, "--github", plans=plans)
    assert result.returncode == 2, result.stdout
    assert "MUSE_ARTIFACT_ATTESTATIONS=enabled" in result.stderr
    assert not [c for c in calls if c.startswith("gh variable set ARTIFACT_ATTESTATIONS")]
    # The explicit answer is recorded as given, without reading the plan.
    result, calls = _run(
        tmp_path,
        bootstrap_outputs,
        "--github",
        plans=plans,
        extra_env={"MUSE_ARTIFACT_ATTESTATIONS": "enabled"},
    )
    assert result.returncode == 0, result.stderr
    assert "gh variable set ARTIFACT_ATTESTATIONS --repo muse-platform/muse --body enabled" in calls
    assert not [c for c in calls if c.startswith("gh api orgs/")]


def test_warns_while_no_checksum_is_committed_for_the_workflows_pulumi(
    tmp_path: Path, plans: dict[str, OfflinePlan], bootstrap_outputs: dict[str, object]
) -> None:
    """Every credentialed job stops at its Pulumi install without the CLI's line: bootstrap says so, and stops
    saying so once the line is there (negative control: a copy whose checksums file holds the line)."""
    version = re.search(r'^  PULUMI_VERSION: "([0-9.]+)"', WORKFLOW_MAIN.read_text(), re.M)
    assert version
    checksums = REPO_ROOT / "scripts" / "ci" / "pulumi-binaries.sha256"
    recorded = f"  pulumi-v{version[1]}-linux-x64.tar.gz" in checksums.read_text()
    result, _ = _run(tmp_path, bootstrap_outputs, plans=plans)
    assert result.returncode == 0, result.stderr
    assert ("make pulumi-checksums" in result.stdout) is not recorded
    filled = tmp_path / "pulumi-binaries.sha256"
    filled.write_text(f"{'0' * 64}  pulumi-v{version[1]}-linux-x64.tar.gz\n")
    copy = tmp_path / "scripts" / "bootstrap.sh"
    copy.parent.mkdir()
    copy.write_text(
        SCRIPT.read_text()
        .replace('cd "$(dirname "$0")/.."', f'cd "{REPO_ROOT}"')
        .replace(" scripts/ci/pulumi-binaries.sha256; then", f" {filled}; then")
    )
    result, _ = _run(tmp_path, bootstrap_outputs, plans=plans, script=copy)
    assert result.returncode == 0, result.stderr
    assert "make pulumi-checksums" not in result.stdout


# --- self-grants: used only once they work ------------------------------------------------------------------

FAST_POLL = {"MUSE_GRANT_POLL_SECONDS": "0"}


def test_each_self_grant_is_probed_until_it_works_then_used(
    tmp_path: Path, plans: dict[str, OfflinePlan], bootstrap_outputs: dict[str, object]
) -> None:
    result, calls = _run(tmp_path, bootstrap_outputs, plans=plans, extra_env={**FAST_POLL, "DENY_FIRST": "3"})
    assert result.returncode == 0, result.stderr
    for probe, what in (
        ("az storage container list", "Storage Blob Data Contributor"),
        ("az keyvault key list", "Key Vault Crypto Officer"),
    ):
        assert sum(c.startswith(probe) for c in calls) == 4  # three refusals, then the grant works
        assert result.stdout.count(f"{what} on ") == 4  # three retries with progress, one "effective"
        assert f"{what} on " in result.stdout and "of at most 600s" in result.stdout
    # The real data-plane calls come after their probe passed.
    last_storage_probe = max(i for i, c in enumerate(calls) if c.startswith("az storage container list"))
    assert _index(calls, "az storage container create") > last_storage_probe
    last_vault_probe = max(i for i, c in enumerate(calls) if c.startswith("az keyvault key list"))
    assert _index(calls, "az keyvault key show") > last_vault_probe


def test_a_grant_that_never_works_stops_within_the_bound_and_says_why(
    tmp_path: Path, plans: dict[str, OfflinePlan], bootstrap_outputs: dict[str, object]
) -> None:
    env = {**FAST_POLL, "DENY_FIRST": "1000", "MUSE_GRANT_WAIT_SECONDS": "0"}
    result, calls = _run(tmp_path, bootstrap_outputs, plans=plans, extra_env=env)
    assert result.returncode != 0
    assert (
        "Storage Blob Data Contributor on" in result.stderr and "re-run scripts/bootstrap.sh" in result.stderr
    )
    assert not any(c.startswith("az storage container create") for c in calls)


def test_negative_control_without_the_probe_the_first_data_plane_call_fails(
    tmp_path: Path, plans: dict[str, OfflinePlan], bootstrap_outputs: dict[str, object]
) -> None:
    original = SCRIPT.read_text()
    lines = original.splitlines(keepends=True)
    kept, skip = [], False
    for line in lines:  # drop each `wait_for_grant ...` call (two lines each), keep the function
        if line.startswith("wait_for_grant "):
            skip = line.rstrip().endswith("\\")
            continue
        if skip:
            skip = line.rstrip().endswith("\\")
            continue
        kept.append(line)
    copy = tmp_path / "scripts" / "bootstrap.sh"
    copy.parent.mkdir()
    copy.write_text("".join(kept).replace('cd "$(dirname "$0")/.."', f'cd "{REPO_ROOT}"'))
    assert "\nwait_for_grant " not in copy.read_text()
    result, _ = _run(
        tmp_path, bootstrap_outputs, plans=plans, script=copy, extra_env={**FAST_POLL, "DENY_FIRST": "1"}
    )
    assert result.returncode != 0
    assert "not authorized" in result.stderr
