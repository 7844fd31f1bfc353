"""docs/bootstrap.md, "Migrating an existing installation": the administrator's steps in an order that can
work, checked against the program (its URNs and its alias), with the defects a review found as negative
controls. No script runs these steps (they move production state once, by hand), so the doc is the artifact.

What the order must respect:
- the program refuses the former config key muse:deployPrincipalId (stack/config.py), so the rename comes
  before anything runs the program (the check preview);
- the check preview pins muse:imageTag the way CI does (scripts/ci/pin-deployed-image.sh), else it shows the
  image going back to the committed default;
- the build identity's AcrPush comes only from the dev stack (muse:imagePushPrincipalId, set by the bootstrap
  re-run) and the bootstrap's registry stage skips deployed stacks, so the administrator grants it (a targeted
  `pulumi up`) after the bootstrap re-run and before main.yml is enabled: main.yml's build pushes with it, and
  dev cannot deploy without an image;
- so does prod's deployer's Reader on the dev registry (muse:imageImportPrincipalId; the bootstrap no longer
  grants Reader on the dev group): the same targeted `pulumi up` creates it, for prod's `az acr import`;
- a `pulumi up` during the migration is targeted (`--target`, `--target-replace`: pulumi/pulumi
  pkg/cmd/pulumi/operations/up.go, "Shorthand for --target urn --replace urn"), never an untargeted
  `--replace`, which also applies every other pending change;
- every URN it names is one the program registers (type token and name), in that stack;
- a pulumi command run after the per-environment loop names its backend (PULUMI_BACKEND_URL=...): otherwise
  it resolves the stack against the backend scripts/bootstrap.sh logged into (pulumi login), not the
  environment's own container;
- the stack files go up as one pull request only after the bootstrap re-run and the build's grant (a PR's
  required preview needs the new preview identity and variables), and the token rotation comes before
  main.yml is enabled (a deploy's lock would stop it);
- prod's former image-push grant (the prod deployer's own AcrPush, under its former name) is destroyed by the
  administrator before main.yml is enabled: the delegation's delete branch refuses a CI identity's
  assignment (rbac/roles.py only_assigning), so prod's next deploy could not delete it.
"""

from __future__ import annotations

import re

import pytest

from stack.files import REPO_ROOT
from verify.access.model import stack_plans

DOC = REPO_ROOT / "docs" / "bootstrap.md"
IMAGE_PUSH = "muse:azure:ContainerRegistry$azure-native:authorization:RoleAssignment::image-push-acr-push"
IMAGE_IMPORT = (
    "muse:azure:ContainerRegistry$azure-native:authorization:RoleAssignment::image-import-acr-import-source"
)
GENERATED_TOKEN_TYPE = "random:index/randomPassword:RandomPassword"
TOKEN_STORE_TYPE = "azure-native:keyvault:Secret"


def migration_section(text: str) -> str:
    return text.split("## Migrating an existing installation", 1)[1].split("\n## ", 1)[0]


def _commands(section: str) -> list[str]:
    return [line.strip() for line in re.sub(r"\\\n\s*", " ", section).splitlines()]


def _first(lines: list[str], pattern: str) -> int:
    return next((i for i, line in enumerate(lines) if re.search(pattern, line)), -1)


def migration_problems(section: str, urns: dict[str, set[str]], alias: str) -> list[str]:
    lines = _commands(section)
    problems = []
    check = _first(lines, r"pulumi preview .*--expect-no-changes")
    rename = _first(lines, r"muse:deployPrincipalId:/\s*muse:imagePushPrincipalId:")
    pin = _first(lines, r"scripts/ci/pin-deployed-image\.sh")
    rotate = _first(lines, r"pulumi stack change-secrets-provider")
    if check < 0:
        problems.append("no check preview")
    if rename < 0 or rename > check:
        problems.append("the config rename does not come before the check preview")
    if pin < 0 or not rotate < pin < check:
        problems.append(
            "muse:imageTag is not pinned (pin-deployed-image.sh) between the re-keying and the check"
        )
    bootstrap = _first(lines, r"Re-run `scripts/bootstrap\.sh")
    grant = _first(lines, r"pulumi up --stack dev .*--target '[^']*" + re.escape(IMAGE_PUSH) + "'")
    enable = _first(lines, r"[Ee]nable `main\.yml` again")
    if grant < 0 or not bootstrap < grant < enable:
        problems.append(
            "the build identity's AcrPush is not granted between the bootstrap re-run and main.yml"
        )
    reader = _first(lines, r"pulumi up --stack dev .*--target '[^']*" + re.escape(IMAGE_IMPORT) + "'")
    if reader < 0 or not bootstrap < reader < enable:
        problems.append(
            "prod's deployer's Reader on the dev registry is not granted between the bootstrap re-run and "
            "main.yml"
        )
    rotation_at = _first(lines, r"pulumi up --stack prod .*--target-replace")
    if rotation_at < 0 or enable < 0 or not rotation_at < enable:
        problems.append("the token rotation does not come before main.yml is enabled")
    pull_request = _first(lines, r"Push step 6's branch as one")
    if pull_request < 0 or not grant < pull_request:
        problems.append("the stack files go up before the bootstrap re-run and the build's grant")
    loop_end = _first(lines, r"^Then:$")  # the steps after the per-environment loop
    for line in lines[loop_end + 1 :]:
        if re.match(r"(?:\w+=\S+ )*pulumi (?!login)", line) and "PULUMI_BACKEND_URL=" not in line:
            problems.append(f"a pulumi command without its backend: {line}")
    for line in lines:
        if re.search(r"\bpulumi up\b", line):
            if not re.search(r"--target(-replace)? ", line):
                problems.append(f"untargeted pulumi up: {line}")
            if re.search(r"--replace ", line):
                problems.append(f"--replace applies every pending change: {line}")
    rotation = next((line for line in lines if GENERATED_TOKEN_TYPE in line and "pulumi up" in line), "")
    if not re.search(r"--target-replace '[^']*" + re.escape(GENERATED_TOKEN_TYPE), rotation):
        problems.append("the API token is not replaced with --target-replace")
    if not re.search(r"--target '[^']*" + re.escape(TOKEN_STORE_TYPE), rotation):
        problems.append("the vault Secret holding the token is not targeted with it")
    former = f"urn:pulumi:prod::muse::{IMAGE_PUSH.rsplit('::', 1)[0]}::{alias}"
    removal = _first(lines, r"pulumi destroy --stack prod .*--target '" + re.escape(former) + "'")
    if removal < 0 or not removal < enable:
        problems.append(
            "prod's former image-push grant is not destroyed by the administrator before main.yml"
        )
    for urn in re.findall(r"urn:pulumi:[^'\s`]+", section):
        stack = urn.split("::", 1)[0].removeprefix("urn:pulumi:")
        if urn not in urns.get(stack, set()) and urn != former:
            problems.append(f"{urn} is not a URN the program registers in {stack}")
    if alias not in section:
        problems.append(f"the alias {alias} is not named")
    return problems


@pytest.fixture(scope="module")
def urns() -> dict[str, set[str]]:
    return {stack: {r.urn for r in plan.plan.resources} for stack, plan in stack_plans().items()}


@pytest.fixture(scope="module")
def alias() -> str:
    [name] = re.findall(
        r'^FORMER_IMAGE_PUSH_GRANT = "([^"]+)"', (REPO_ROOT / "__main__.py").read_text(), re.M
    )
    return name


def test_the_migration_steps_can_work(urns: dict[str, set[str]], alias: str) -> None:
    assert migration_problems(migration_section(DOC.read_text()), urns, alias) == []


def test_the_former_grant_is_an_alias_of_the_image_push_grant(alias: str) -> None:
    dev = stack_plans()["dev"].plan
    [push] = [r for r in dev.resources if r.urn.endswith(IMAGE_PUSH)]
    assert push.alias_names == (alias,)
    # The new name differs: without the alias the renamed config would delete and recreate the grant.
    assert push.name != alias


RENAME = (
    "sed -i 's/^  muse:deployPrincipalId:/  muse:imagePushPrincipalId:/' Pulumi.dev.yaml Pulumi.prod.yaml\n"
)
SECRET_TARGET = (
    " \\\n     --target 'urn:pulumi:prod::muse::muse:azure:SecretVault"
    "$azure-native:keyvault:Secret::muse-api-token'"
)
FORMER_ROTATION = [("--target-replace 'urn:pulumi:prod", "--replace 'urn:pulumi:prod"), (SECRET_TARGET, "")]


@pytest.mark.parametrize(
    ("edits", "problem"),
    [
        # The check before the rename (the order the review found).
        ([(RENAME, "")], "the config rename does not come before the check preview"),
        ([("  scripts/ci/pin-deployed-image.sh $env\n", "")], "muse:imageTag is not pinned"),
        # No administrator grant: nothing can push until dev deploys, and dev cannot deploy without an image.
        (
            [
                (
                    "pulumi up --stack dev \\\n     --target 'urn",
                    "pulumi preview --stack dev \\\n     --target 'urn",
                )
            ],
            "the build identity's AcrPush is not granted",
        ),
        # The grant step targets the image-push grant only: prod's import finds no Reader on dev's registry.
        (
            [
                (
                    " \\\n     --target 'urn:pulumi:dev::muse::muse:azure:ContainerRegistry"
                    "$azure-native:authorization:RoleAssignment::image-import-acr-import-source'",
                    "",
                )
            ],
            "prod's deployer's Reader on the dev registry is not granted",
        ),
        # The former rotation: an untargeted --replace of the token.
        (FORMER_ROTATION, "untargeted pulumi up"),
        (FORMER_ROTATION, "--replace applies every"),
        (FORMER_ROTATION, "the vault Secret holding the token is not targeted"),
        # prod's config key removed against whatever backend bootstrap.sh logged into.
        (
            [
                (
                    'PULUMI_BACKEND_URL="azblob://state-prod?storage_account=$account" pulumi config rm',
                    "pulumi config rm",
                )
            ],
            "a pulumi command without its backend",
        ),
        # The former order: rotation after main.yml is enabled again, the stack files pushed at step 6.
        (
            [
                ("then enable `main.yml` again.", ""),
                ("Rotate what the old identities", "Enable `main.yml` again. Rotate what the old identities"),
            ],
            "the token rotation does not come before main.yml is enabled",
        ),
        (
            [
                ("Push step 6's branch as one", "Push it as one"),
                ("on a branch (", "Push step 6's branch as one PR ("),
            ],
            "the stack files go up before",
        ),
        # The deployer left to delete its own former AcrPush: its delegation refuses it.
        (
            [(" pulumi destroy --stack prod", " pulumi preview --stack prod")],
            "prod's former image-push grant is not destroyed",
        ),
        # A URN with the wrong type token.
        (
            [("random:index/randomPassword:RandomPassword::", "random:index/randomString:RandomString::")],
            "not a URN",
        ),
    ],
)
def test_negative_controls_the_reviewed_defects_are_found(
    urns: dict[str, set[str]], alias: str, edits: list[tuple[str, str]], problem: str
) -> None:
    section = migration_section(DOC.read_text())
    for old, new in edits:
        assert old in section, old
        section = section.replace(old, new, 1)
    problems = migration_problems(section, urns, alias)
    assert any(problem in p for p in problems), problems
