"""Run a pulumi command against one stack's OWN state backend: the one way to address a stack by hand.

    make preview STACK=dev                 # = scripts/stack dev preview (scripts/stack runs this with .venv)
    scripts/stack prod config set muse:replicas 4
    scripts/stack bootstrap preview        # the bootstrap project (bootstrap/, stack main)
    scripts/stack --dry-run prod up        # prints each command with its backend, runs none

Sets PULUMI_BACKEND_URL for the one command (each stack has its own state container and secrets key), adds
`--stack` and `--refresh`, refuses a stack its backend does not have, and checks the registry has the image
before `up`. Why, with the Pulumi CLI code it relies on: docs/bootstrap.md#addressing-a-stack-by-hand."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from components.muse_workload.manifests import IMAGE_REPOSITORY
from stack.files import read_stack, stack_names
from stack.naming import ResourceNames, StateBackendNames

# The checkout this script is in (also a copy of it, as tests make), not the installed package's.
REPO_ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP = "bootstrap"  # the once-per-subscription project in bootstrap/; its one stack is `main`
BOOTSTRAP_STACK = "main"
REFRESHING = frozenset({"up", "update", "preview", "destroy"})  # `update` is pulumi's alias of `up`
STAGE_VARIABLE = "MUSE_BOOTSTRAP_STAGE"  # a bootstrap stage deploys no workload, so no image to check


@dataclass(frozen=True)
class Command:
    """One process the wrapper runs: argv, the variables it adds to the environment, the directory."""

    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = REPO_ROOT
    # A check: its failure stops the run with this message (formatted with the command's stderr).
    refusal: str = ""
    # A check that also fails when it prints nothing (a query whose answer is empty).
    needs_output: bool = False
    # A check that also fails when this says its stdout is not the answer wanted.
    accepts: Callable[[str], bool] | None = None

    def shell(self) -> str:
        where = "" if self.cwd == REPO_ROOT else f"(cd {self.cwd.relative_to(REPO_ROOT)} && "
        assignments = " ".join(f"{key}={shlex.quote(value)}" for key, value in sorted(self.env.items()))
        line = " ".join(shlex.quote(part) for part in self.argv)
        text = f"{assignments} {line}" if assignments else line
        return f"{where}{text})" if where else text


@dataclass(frozen=True)
class Target:
    """Which project, stack, state backend and secrets key a stack name means."""

    name: str  # what the person typed: dev, prod or bootstrap
    stack: str  # the Pulumi stack name
    cwd: Path
    backend: StateBackendNames
    environment: str | None  # None for the bootstrap project
    suffix: str


def target(name: str, root: Path = REPO_ROOT) -> Target:
    if name == BOOTSTRAP:
        # The bootstrap's backend takes the suffix from dev's stack file, as scripts/bootstrap.sh does.
        suffix = read_stack("dev", root).config["muse:nameSuffix"]
        return Target(
            name, BOOTSTRAP_STACK, root / BOOTSTRAP, StateBackendNames.for_bootstrap(suffix), None, suffix
        )
    if name not in stack_names(root):
        raise SystemExit(f"stack.py: no stack {name!r}; stacks: {', '.join([*stack_names(root), BOOTSTRAP])}")
    config = read_stack(name, root).config
    environment, suffix = config["muse:environment"], config["muse:nameSuffix"]
    return Target(
        name, name, root, StateBackendNames.for_environment(environment, suffix), environment, suffix
    )


def _has_flag(args: Sequence[str], *flags: str) -> bool:
    return any(arg == flag or arg.startswith(f"{flag}=") for arg in args for flag in flags)


def pulumi_args(where: Target, args: Sequence[str]) -> list[str]:
    """`args` with the stack, and the refresh or secrets provider the command needs (before any `--`)."""
    args = list(args)
    split = args.index("--") if "--" in args else len(args)
    head, tail = args[:split], args[split:]
    extra: list[str] = []
    if not _has_flag(head, "--stack", "-s"):
        extra += ["--stack", where.stack]
    verb = head[0] if head else ""
    if verb in REFRESHING and not _has_flag(head, "--refresh", "-r"):
        extra.append("--refresh")
    if creates_stack(head) and not _has_flag(head, "--secrets-provider"):
        extra += ["--secrets-provider", where.backend.secrets_provider]
    return [*head, *extra, *tail]


def image_reference(tag: str) -> str:
    """`muse:<tag>`, or `muse@sha256:<hex>` for a digest: what `az acr repository show --image` takes."""
    separator = "@" if tag.startswith("sha256:") else ":"
    return f"{IMAGE_REPOSITORY}{separator}{tag}"


def image_check(where: Target, root: Path = REPO_ROOT) -> Command:
    """The registry must hold the image the stack would deploy, or the rollout waits rolloutTimeoutMinutes
    and fails. `az acr repository show --name <registry> --image <repo>:<tag>|<repo>@<digest>` shows one
    image's attributes and exits non-zero when the registry, repository or tag does not exist (Azure/azure-cli
    src/azure-cli/azure/cli/command_modules/acr/repository.py, acr_repository_show; the error is a
    ResourceNotFoundError, azure/cli/core/azclierror.py). scripts/ci/tag-latest.sh uses the same command."""
    if where.environment is None:
        raise ValueError("the bootstrap project deploys no image")
    config = read_stack(where.name, root).config
    tag = config["muse:imageTag"]
    registry = ResourceNames.for_stack(where.environment, where.suffix).registry
    reference = image_reference(tag)
    image = f"{registry}.azurecr.io/{IMAGE_REPOSITORY}"
    if where.environment == "dev":
        how = (
            f"build and push it: az acr login --name {registry} && IMAGE={image} scripts/build-image.sh && "
            f"podman push --digestfile muse.digest {image}:$(git rev-parse HEAD), "
            f"then deploy its digest: scripts/stack {where.name} config set muse:imageTag "
            '"$(cat muse.digest)"'
        )
    else:
        how = (
            f"import the digest dev runs: az acr import --name {registry} --source "
            f"<dev registry>.azurecr.io/{IMAGE_REPOSITORY}@sha256:<digest> (docs/runbook.md, 'Prod's first "
            f"deploy'), then scripts/stack {where.name} config set muse:imageTag sha256:<digest>"
        )
    refusal = (
        f"stack {where.name}: registry {registry} has no image {reference} (muse:imageTag is {tag!r}), so "
        f"the rollout could only time out; nothing was deployed. {how}. az said: {{stderr}}"
    )
    argv = ("az", "acr", "repository", "show", "--name", registry, "--image", reference, "--output", "none")
    return Command(argv, refusal=refusal)


def placeholder_check(where: Target, root: Path = REPO_ROOT) -> Command:
    """scripts/ci/placeholders.py: a real deploy refuses a committed placeholder (prod's operators' group,
    alert receiver, example host), as CI's deploys do."""
    argv = (sys.executable, str(root / "scripts" / "ci" / "placeholders.py"), "--stack", where.name)
    return Command(argv, cwd=root, refusal="{stderr}")


def size_checks(where: Target, root: Path = REPO_ROOT) -> list[Command]:
    """Each pool's VM size must exist in the stack's region for this subscription, or AKS refuses the pool
    after the independent resources exist. `az vm list-skus --location <region> --resource-type
    virtualMachines --size <name>` lists the region's sizes matching the name, without the ones not available
    to the subscription unless `--all` is given (Azure/azure-cli src/azure-cli/azure/cli/command_modules/vm/
    _params.py, list-skus `--all`: "show all information including vm sizes not available under the current
    subscription"); the JMESPath query keeps the exact name, so an empty answer means "not here"."""
    config = read_stack(where.name, root).config
    location = config["muse:location"]
    checks = []
    keys_of: dict[str, list[str]] = {}
    for key in ("muse:systemNodeVmSize", "muse:userNodeVmSize"):
        keys_of.setdefault(config[key], []).append(key)
    for size, keys in keys_of.items():
        key = " and ".join(keys)
        argv = (
            "az", "vm", "list-skus", "--location", location, "--resource-type", "virtualMachines",
            "--size", size, "--query", f"[?name=='{size}'].name", "--output", "tsv",
        )  # fmt: skip
        refusal = (
            f"stack {where.name}: {key} {size} is not offered in {location} to this subscription, so AKS "
            "would refuse the pool after the other resources exist; nothing was deployed. Pick another size: "
            f"az vm list-skus --location {location} --resource-type virtualMachines --output table. "
            "{stderr}"
        )
        checks.append(Command(argv, refusal=refusal, needs_output=True))
    return checks


# Commands that create the stack, or that need no stack: no existence check before them.
NO_STACK_NEEDED = frozenset({"login", "logout", "whoami", "version", "about", "plugin", "help", "new"})


def creates_stack(args: Sequence[str]) -> bool:
    head = list(args[: args.index("--")] if "--" in args else args)
    return head[:2] == ["stack", "init"] or (
        head[:2] == ["stack", "select"] and _has_flag(head, "--create", "-c")
    )


def listed(stack: str) -> Callable[[str], bool]:
    """Whether `pulumi stack ls --json` names `stack`: a list of {"name": ...} (pulumi/pulumi
    pkg/cmd/pulumi/stack/stack_ls.go, stackSummaryJSON). A project-scoped DIY backend may name it
    `organization/<project>/<stack>` (pkg/backend/diy/backend.go, diyBackendReference.String), so the last
    part counts."""

    def accepts(stdout: str) -> bool:
        try:
            stacks = json.loads(stdout)
        except json.JSONDecodeError:
            return False
        return any(str(s.get("name", "")).rsplit("/", 1)[-1] == stack for s in stacks if isinstance(s, dict))

    return accepts


def existence_check(where: Target, env: dict[str, str]) -> Command:
    refusal = (
        f"stack {where.stack}: not in its backend {env['PULUMI_BACKEND_URL']}, so pulumi would offer to "
        "create it with a passphrase secrets manager instead of the stack's Key Vault key; nothing was run. "
        "Create it with the bootstrap (scripts/bootstrap.sh, step 3) or "
        f"`scripts/stack {where.name} stack init`, and edit Pulumi.{where.name}.yaml directly before then. "
        "{stderr}"
    )
    argv = ("pulumi", "stack", "ls", "--json")
    return Command(argv, env, where.cwd, refusal=refusal, accepts=listed(where.stack))


def plan(where: Target, args: Sequence[str], root: Path = REPO_ROOT) -> list[Command]:
    """Every command `scripts/stack <stack> <args>` runs, in order: the checks, then pulumi."""
    commands = []
    verb = args[0] if args else ""
    staged = bool(os.environ.get(STAGE_VARIABLE))
    if verb in {"up", "update"} and where.environment is not None:
        commands.append(placeholder_check(where, root))
    if verb in {"up", "update", "preview"} and where.environment is not None:
        commands.extend(size_checks(where, root))
    if verb in {"up", "update"} and where.environment is not None and not staged:
        commands.append(image_check(where, root))
    env = {"PULUMI_BACKEND_URL": where.backend.backend_url}
    if verb not in NO_STACK_NEEDED and args[:2] != ["stack", "ls"] and not creates_stack(args):
        commands.append(existence_check(where, env))
    commands.append(Command(("pulumi", *pulumi_args(where, args)), env, where.cwd))
    return commands


def run(commands: Sequence[Command], dry_run: bool) -> int:
    for command in commands:
        if dry_run:
            print(command.shell())
            continue
        print(f"+ {command.shell()}", file=sys.stderr, flush=True)
        environment = {**os.environ, **command.env}
        if command.refusal:
            done = subprocess.run(
                command.argv, env=environment, cwd=command.cwd, capture_output=True, text=True
            )
            rejected = command.accepts is not None and not command.accepts(done.stdout)
            if done.returncode != 0 or (command.needs_output and not done.stdout.strip()) or rejected:
                why = done.stderr.strip() or (f"exit {done.returncode}" if done.returncode else "")
                print(command.refusal.format(stderr=why).rstrip(), file=sys.stderr)
                return 65
            continue
        code = subprocess.run(command.argv, env=environment, cwd=command.cwd).returncode
        if code != 0:
            return code
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--dry-run", action="store_true", help="print each command with its backend, run none"
    )
    parser.add_argument("stack", help="dev, prod (a Pulumi.<stack>.yaml) or bootstrap")
    parser.add_argument(
        "pulumi", nargs=argparse.REMAINDER, help="the pulumi command, e.g. preview, up, stack output"
    )
    args = parser.parse_args(argv)
    if not args.pulumi:
        parser.error("name the pulumi command, e.g. preview")
    where = target(args.stack)
    if args.dry_run:
        print(
            f"# stack {where.stack}: backend {where.backend.backend_url}, "
            f"secrets {where.backend.secrets_provider}"
        )
    return run(plan(where, args.pulumi), args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
