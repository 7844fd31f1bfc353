"""Recording stand-ins for `pulumi`, `kubectl`, `az` and `kubelogin`, sharing one model of a stack and its
cluster (a JSON "world" file), for running scripts/ci/deploy.py, preview.py, deployed_commit.py and
tag-latest.sh for real.

    release_tools.py <tool> <args...>        (bin/pulumi etc. are two-line wrappers: exec ... pulumi "$@")

What each answers, and the documented behaviour it follows:

- `pulumi up`: runs the preview first (no `--skip-preview`), so a mandatory policy violation exits 1 with
  nothing changed and no history entry (pulumi/pulumi pkg/backend/apply.go PreviewThenPromptThenExecute).
  Exit codes: pkg/cmd/pulumi/cmd/exit_codes.go ExitCodeFor returns 1 for a failed update or preview (a bail)
  - it defines 4 (resource) and 5 (policy) but never returns them ("TODO: Wire policy, timeout, and
  resource-specific errors"). An update whose Deployment never becomes ready exits 1 *and records the new
  image in state* (pulumi-kubernetes provider/pkg/provider/provider.go, Update -> partialError: "Return
  live version of object so it can be checkpointed"); the cluster's pod template has the new image, but
  with the rolling update's maxUnavailable 0 the old ReplicaSet keeps serving (Kubernetes docs,
  Deployments, "Max Unavailable"). A scripted failure (`up_failures`) fails before any change (e.g. an
  Azure API error on another resource). Every update is recorded in the history with its `--message`
  (pkg/backend/diy/backend.go, UpdateInfo).
- `pulumi up --target <URN>`: the engine's targeting rule, replayed by tests/bootstrap/engine_targeting.py
  (pulumi/pulumi pkg/resource/deploy/step_generator.go generateSteps/validateSteps, cited there) on a model of
  the program (`program`: the Stack, the MuseWorkload component, the cluster's Kubernetes provider, the
  namespace and the Deployment, with their parents, provider and dependencies, plus the resources the new
  commit adds, `new_resources`) and the URNs in state (`state_urns`). An untargeted resource is left as
  state records it (new ones are skipped creates); a targeted step whose parent, provider or dependency is a
  skipped create fails the update with "untargeted create" (a bail: exit 1). An untargeted update applies
  the Deployment and then the new resources, one of which may fail (`error`); the engine stops at the first
  failed step (pkg/resource/deploy/deployment_executor.go: no --continue-on-error).
- `pulumi stack export --file`: `{"version": 3, "deployment": {"resources": [...]}}` with the Muse Deployment
  when the state has one (apitype.UntypedDeployment). `pulumi stack output [name] [--json]`,
  `pulumi stack history --json` (newest first, pkg/backend/diy/state.go getHistory; fields of
  pkg/cmd/pulumi/stack/stack_history.go updateInfoJSON), `pulumi config set`, `pulumi preview` (scripted
  output and exit code).
- `kubectl rollout status`: exit 0 with `deployment "muse" successfully rolled out`, or exit 1 with
  `error: deployment "muse" exceeded its progress deadline` when the new pods never become ready, or
  `error: timed out waiting for the condition` when they became ready and then fail (kubernetes/kubectl
  pkg/polymorphichelpers/rollout_status.go; Kubernetes docs, Deployments, "Failed Deployment": rollout status
  exits non-zero once the progress deadline is exceeded).
- `kubectl --kubeconfig <path>`: refused when the file does not exist ("error: stat <path>: no such file or
  directory", client-go clientcmd loader.go). `create -f - -o name` of a generateName Job prints
  `job.batch/<name>`; `get job.batch/<name>` answers succeeded; `delete job -l <k=v>` deletes by label.
- `az acr import --name <target> [--registry <source>] --source <image> --image <repo>:<tag> [--force]`, as
  Azure/azure-cli src/azure-cli/azure/cli/command_modules/acr/import.py resolves the source: `--registry`
  that is a resource id is passed to ARM as is (ImportSource(resource_id=...)); a name or login server in
  `--registry`, or a `<login server>/<image>` source without it, is looked up among the registries the caller
  can list (get_registry_from_name_or_login_server; world `listable`, login server -> resource id). Not found:
  with `--registry` the CLI fails (SOURCE_REGISTRY_NOT_FOUND), without it the source becomes a registry URI,
  which ARM pulls anonymously, refused by a private registry. A tag that exists needs `--force`;
  `az acr repository show --image <repo>:<tag> --query digest` prints the tag's digest; `az aks
  get-credentials --file` writes a kubeconfig; `az login` / `az account set` succeed.
- Project mode (a `--cwd` or working directory with Pulumi.yaml and program.json, see `project_up`): that
  commit's program and its stack file, the canary's candidate Deployment and HTTPRoute weights, `--target`,
  `preview --expect-no-changes` against the program's goal; every route and stack change is recorded in
  `events`. One tool at a time holds the world (a lock): a signal handler's `kubectl patch` runs while the
  interrupted `pulumi up` writes its last state. `az account get-access-token` prints a token.
- `kubelogin convert-kubeconfig`: succeeds; `kubelogin get-token` in workloadidentity mode takes the GitHub
  Actions branch when ACTIONS_ID_TOKEN_REQUEST_* are set (see `kubelogin`).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

WORLD = Path(os.environ.get("RELEASE_WORLD", "world.json"))
ENGINE = Path(__file__).resolve().parents[1] / "bootstrap" / "engine_targeting.py"


def engine() -> ModuleType:
    spec = importlib.util.spec_from_file_location("engine_targeting", ENGINE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def urns(stack: str) -> dict[str, str]:
    """The URNs the Muse program gives these resources (pulumi URN format: the parent's type chain, `$`)."""
    prefix = f"urn:pulumi:{stack}::muse::"
    return {
        "stack": f"{prefix}pulumi:pulumi:Stack::muse-{stack}",
        "workload": f"{prefix}muse:kubernetes:MuseWorkload::muse",
        "provider": f"{prefix}muse:azure:KubernetesCluster$pulumi:providers:kubernetes::aks",
        "namespace": f"{prefix}muse:kubernetes:MuseWorkload$kubernetes:core/v1:Namespace::muse",
        "deployment": f"{prefix}muse:kubernetes:MuseWorkload$kubernetes:apps/v1:Deployment::muse",
    }


def program(world: dict[str, Any]) -> list[dict[str, Any]]:
    """What the new commit's program registers, with parents, providers, dependencies (engine_targeting)."""
    u = urns(world["stack"])
    return [
        {"urn": u["stack"]},
        {"urn": u["workload"], "parent": u["stack"]},
        {"urn": u["provider"], "parent": u["stack"]},
        {"urn": u["namespace"], "parent": u["workload"], "provider": f"{u['provider']}::id-k8s"},
        {
            "urn": u["deployment"],
            "parent": u["workload"],
            "provider": f"{u['provider']}::id-k8s",
            "depends_on": [u["namespace"], *world.get("deployment_new_dependencies", [])],
        },
        *world.get("new_resources", []),
    ]


def state_urns(world: dict[str, Any]) -> set[str]:
    if "state_urns" in world:
        return set(world["state_urns"])
    base = urns(world["stack"])
    return {base["stack"], base["provider"]} | (
        {base["workload"], base["namespace"], base["deployment"]} if world.get("state_image") else set()
    )


_LOCK: Any = None  # the open lock file while this process holds the world (main, _slow_up)


def lock() -> None:
    """One tool at a time reads and writes the world: deploy.py's signal handler runs `kubectl patch`
    while the interrupted `pulumi up` writes its last state."""
    import fcntl

    global _LOCK
    _LOCK = WORLD.with_name(WORLD.name + ".lock").open("w")  # held across calls
    fcntl.flock(_LOCK, fcntl.LOCK_EX)


def unlock() -> None:
    global _LOCK
    if _LOCK is not None:
        _LOCK.close()  # closing the descriptor releases the flock
        _LOCK = None


def load() -> dict[str, Any]:
    return json.loads(WORLD.read_text(encoding="utf-8"))


def save(world: dict[str, Any]) -> None:
    fd, temp = tempfile.mkstemp(dir=WORLD.parent, prefix=".world.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(world, handle, indent=1)
    Path(temp).replace(WORLD)


def image_ref(world: dict[str, Any], tag: str) -> str:
    separator = "@" if tag.startswith("sha256:") else ":"
    return f"{world['login_server']}/muse{separator}{tag}"


def behaviour(world: dict[str, Any], tag: str | None) -> dict[str, Any]:
    defaults = {"ready": True, "healthz": 200, "policy_violation": False, "fails_after_ready": False}
    return {**defaults, **(world["images"].get(tag or "", {}))}


def flag(args: list[str], name: str, default: str | None = None) -> str | None:
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return default


def history_entry(world: dict[str, Any], message: str, result: str) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    return {
        "version": 0,
        "kind": "update",
        "startTime": now,
        "message": message,
        "environment": {"exec.kind": "cli", "git.head": world.get("git_head", "")},
        "config": {"muse:imageTag": {"value": world["config"].get("muse:imageTag"), "secret": False}},
        "result": result,
        "endTime": now,
        "resourceChanges": {"update": 1} if result == "succeeded" else {},
    }


def _slow_up(world: dict[str, Any], args: list[str], urn: str | None = None, kind: str = "") -> int | None:
    """`up_seconds`: the update runs that long, and SIGINT/SIGTERM cancel it the way Pulumi does
    (pulumi/pulumi pkg/backend/cancellation_scope.go: the first signal cancels - no new resource operation
    starts, the running one finishes and is checkpointed - a second one terminates). Here the running
    operation is the Deployment's update: it is left pending (state export's `pending_operations`, type
    "updating"), as an update killed mid-operation leaves it. None: the update was not slow and goes on."""
    seconds = float(world.get("up_seconds", 0))
    slow_at = world.get("slow_route_move_at")  # only the weight move to this weight is slow (project mode)
    if slow_at is not None:
        seconds = float(world.get("slow_route_move_seconds", 60)) if kind == f"route:{slow_at}" else 0.0
    if not seconds:
        return None
    import signal as signals

    got: list[str] = []
    signals.signal(signals.SIGINT, lambda n, f: got.append(signals.Signals(n).name))
    signals.signal(signals.SIGTERM, lambda n, f: got.append(signals.Signals(n).name))
    running = urn or urns(world["stack"])["deployment"]
    world["pending_operations"] = [
        {"resource": {"urn": running, "type": running.split("::")[-2].split("$")[-1]}, "type": "updating"}
    ]
    world["up_running"] = True
    save(world)
    unlock()  # other tools (the signal handler's kubectl patch) may act while this update runs
    end = time.monotonic() + seconds
    while time.monotonic() < end and not got:
        time.sleep(0.05)
    lock()
    fresh = load()
    fresh["calls"] = world["calls"]
    world.clear()
    world.update(fresh)
    world["up_running"] = False
    if got:
        world["up_signals"] = [*world.get("up_signals", []), *got]
        print(f"{got[0] if got[0] != 'SIGINT' else '^C'} received; cancelling.", flush=True)
        print("error: update canceled", file=sys.stderr)
        world["history"].insert(0, history_entry(world, flag(args, "--message", "") or "", "failed"))
        return 1
    world["pending_operations"] = []
    return None


def pulumi_up(world: dict[str, Any], args: list[str]) -> int:
    slow = _slow_up(world, args)
    if slow is not None:
        return slow
    world["up_calls"] = world.get("up_calls", 0) + 1
    if world.get("pending_operations"):
        # The engine goes on and warns (pkg/engine/lifecycletest TestUpdateShowsWarningWithPendingOperations).
        world["up_with_pending_operations"] = world.get("up_with_pending_operations", 0) + 1
        print(
            f"warning: Attempting to deploy or update resources with {len(world['pending_operations'])} "
            "pending operations from previous deployment."
        )
    world["up_args"] = [*world.get("up_args", []), args]
    message = flag(args, "--message", "") or ""
    scripted = world.get("up_failures", {}).get(str(world["up_calls"]))
    if scripted:
        print(f"error: {scripted['error']}", file=sys.stderr)
        world["history"].insert(0, history_entry(world, message, "failed"))
        return int(scripted["exit"])
    tag = world["config"].get("muse:imageTag")
    wanted = behaviour(world, tag)
    if wanted["policy_violation"] and "--skip-preview" not in args:
        print("Policies:\n    muse-policies@v1 (local: policy)\n        - [mandatory]  muse-image-digest")
        print("error: preview failed: 1 mandatory policy violation", file=sys.stderr)
        return 1
    targeting = engine()
    targets, _ = targeting._parse(args)
    existing = state_urns(world)
    created, _, errors = targeting.plan_update(program(world), existing, targets, False)
    if errors:
        print("\n".join(errors), file=sys.stderr)
        world["history"].insert(0, history_entry(world, message, "failed"))
        return 1
    deployment = urns(world["stack"])["deployment"]
    update_deployment = not targets or targeting.Targets(targets).contains(deployment)
    world["state_urns"] = sorted(existing)
    # Steps in dependency order (what the engine awaits); the first failed step ends the update.
    for resource in targeting.registration_order(program(world)):
        urn = resource["urn"]
        if urn == deployment and update_deployment:
            world["state_urns"] = sorted({*world["state_urns"], urn})
            world["state_image"] = tag
            world["spec_image"] = tag
            if not wanted["ready"]:
                namespace = world["namespace"]
                print(
                    "error: 1 error occurred:\n"
                    f'  * the Kubernetes API server reported that "{namespace}/muse" failed to fully '
                    'initialize or become live: Resource operation was cancelled for "muse"\n'
                    "    * Minimum number of live Pods was not attained\n"
                    "    * [Pod muse-new]: containers with unready status: [muse]",
                    file=sys.stderr,
                )
                world["history"].insert(0, history_entry(world, message, "failed"))
                return 1
            world["serving_image"] = tag
        elif urn in created:
            if resource.get("error"):
                print(f"error: {urn}: {resource['error']}", file=sys.stderr)
                world["history"].insert(0, history_entry(world, message, "failed"))
                return 1
            world["state_urns"] = sorted({*world["state_urns"], urn})
    world["history"].insert(0, history_entry(world, message, "succeeded"))
    print(f"Updating ({world['stack']}):\n    ~ kubernetes:apps/v1:Deployment muse updated")
    print("Resources:\n    ~ 1 updated")
    return 0


# --- project mode: a commit's program and stack file on disk, and the canary's objects ---------------------
#
# When the project directory (`--cwd`, else the working directory: "The program to run is loaded from the
# project in the current directory by default. Use the -C or --cwd flag to use a different directory",
# pulumi.com/docs/iac/cli/commands/pulumi_up) holds a Pulumi.yaml, the stand-in reads that commit's model of
# the program from program.json there (its commit, its canary plan, its probe path) and keeps the stack's
# config in that directory's stack settings file Pulumi.<stack>.yaml, as `pulumi config set` does
# (pulumi.com/docs/iac/concepts/projects/stack-settings-file: "Every Pulumi stack has a settings file named
# Pulumi.<stack-name>.yaml ... in the root of the project directory"; written here as JSON, which is YAML).
# So the previous commit's worktree (`--cwd`) runs ITS program with ITS committed config, as the real CLI.
#
# What the program declares (components/muse_workload: manifests.py backend_refs, __init__.py): the stable
# Deployment (muse:imageTag); with muse:canaryImageTag a candidate Deployment, awaited like the stable one;
# the HTTPRoute with the stable Service alone, or both with weights 100 - muse:canaryWeight and
# muse:canaryWeight. Steps run in dependency order and the first failed one ends the update (no
# --continue-on-error). `--target <URN>` updates only the targeted resources, every other one stays as
# state records it ("Restricts the operation to only the resources whose URNs match",
# pulumi.com/docs/iac/guides/basics/targeted-updates; rule: tests/bootstrap/engine_targeting.py).
# `pulumi preview --expect-no-changes` fails when the program's goal state differs from the stack's ("Return
# an error if any changes occur", pulumi_preview docs; the CLI prints "no changes were expected but changes
# were proposed", pkg/cmd/pulumi/operations/preview.go). The live route and the state's are one copy here
# (a `kubectl patch` is read back by the next `--refresh`).
# Everything the route and the stack go through is appended to `events`, in order, for the tests.


def project_dir(args: list[str]) -> Path | None:
    directory = Path(flag(args, "--cwd") or Path.cwd())
    # program.json: the model of that commit's program (a real checkout of this repository has none).
    modelled = (directory / "Pulumi.yaml").is_file() and (directory / "program.json").is_file()
    return directory if modelled else None


def project_config(world: dict[str, Any], project: Path) -> dict[str, str]:
    path = project / f"Pulumi.{world['stack']}.yaml"
    return dict(json.loads(path.read_text(encoding="utf-8")).get("config") or {}) if path.is_file() else {}


def set_project_config(world: dict[str, Any], project: Path, key: str, value: str) -> None:
    config = project_config(world, project)
    config[key] = value
    text = json.dumps({"config": config}, indent=2)
    (project / f"Pulumi.{world['stack']}.yaml").write_text(text + "\n", encoding="utf-8")


def canary_urns(stack: str) -> dict[str, str]:
    prefix = f"urn:pulumi:{stack}::muse::muse:kubernetes:MuseWorkload$"
    return {
        "candidate": f"{prefix}kubernetes:apps/v1:Deployment::muse-candidate",
        "route": f"{prefix}kubernetes:gateway.networking.k8s.io/v1:HTTPRoute::muse-httproute",
    }


def goal(world: dict[str, Any], project: Path) -> dict[str, Any]:
    """What this directory's program declares with its stack file's config."""
    program = json.loads((project / "program.json").read_text(encoding="utf-8"))
    config = project_config(world, project)
    candidate = (config.get("muse:canaryImageTag") or None) if program.get("canary") else None
    weight = int(config.get("muse:canaryWeight") or 0) if candidate else 0
    return {
        "program": program["name"],
        "probe": program.get("probe", "/readyz"),
        "canary": program.get("canary") or {},
        "stable": config.get("muse:imageTag"),
        "candidate": candidate,
        "route": {"muse": 100 - weight, "muse-candidate": weight} if candidate else {"muse": 100},
    }


def route_weights(world: dict[str, Any]) -> dict[str, int]:
    """The share of each backend in percent. Gateway API: a backend gets weight / (sum of the rule's weights);
    weight defaults to 1, so a lone backend without one gets everything (manifests.py backend_refs)."""
    refs = (world.get("route") or {}).get("backendRefs") or []
    if len(refs) == 1:
        return {refs[0]["name"]: 100}
    return {ref["name"]: int(ref.get("weight", 1)) for ref in refs}


def write_route(world: dict[str, Any], weights: dict[str, int], by: str) -> None:
    refs = [{"name": name, "weight": weight} for name, weight in weights.items()]
    world["route"] = {"backendRefs": refs if len(refs) > 1 else [{"name": refs[0]["name"]}]}
    world.setdefault("events", []).append({"what": "route", "weights": route_weights(world), "by": by})


def record_stack(world: dict[str, Any], by: str) -> None:
    world.setdefault("events", []).append(
        {
            "what": "stack",
            "program": world.get("program_commit"),
            "probe": world.get("probe"),
            "stable": world.get("state_image"),
            "candidate": world.get("candidate_image"),
            "route": route_weights(world),
            "by": by,
        }
    )


def check_job(
    world: dict[str, Any], image: str | None, generate: str, labels: dict[str, str]
) -> dict[str, Any]:
    """The shape of components/muse_workload's check and load Jobs, as far as deploy.py reads them."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"generateName": generate, "namespace": world["namespace"], "labels": labels},
        "spec": {
            "template": {"spec": {"containers": [{"name": "check", "image": image_ref(world, image or "")}]}}
        },
    }


def project_outputs(world: dict[str, Any], plan: dict[str, Any]) -> None:
    u = canary_urns(world["stack"])
    stable, candidate = world.get("state_image"), world.get("candidate_image")
    checks = {"muse": check_job(world, stable, "muse-check-", {})}
    if candidate:
        checks["muse-candidate"] = check_job(world, candidate, "muse-candidate-check-", {})
    load_job = check_job(world, candidate, "muse-load-", {"muse.load": "canary"}) if candidate else {}
    world["outputs"].update(
        {
            "museRouteUrn": u["route"],
            "museCanary": plan,
            "museEvaluateChecks": checks,
            "museCanaryLoad": load_job,
        }
    )


def project_resources(world: dict[str, Any], candidate: bool) -> list[dict[str, Any]]:
    u, c = urns(world["stack"]), canary_urns(world["stack"])
    resources = program(world)
    if candidate:
        resources.append(
            {"urn": c["candidate"], "parent": u["workload"], "provider": f"{u['provider']}::id-k8s",
             "depends_on": [u["namespace"]]}
        )  # fmt: skip
    resources.append(
        {"urn": c["route"], "parent": u["workload"], "provider": f"{u['provider']}::id-k8s",
         "depends_on": [u["deployment"], *([c["candidate"]] if candidate else [])]}
    )  # fmt: skip
    return resources


def not_ready(world: dict[str, Any], name: str) -> None:
    print(
        "error: 1 error occurred:\n"
        f'  * the Kubernetes API server reported that "{world["namespace"]}/{name}" failed to fully '
        f'initialize or become live: Resource operation was cancelled for "{name}"\n'
        "    * Minimum number of live Pods was not attained",
        file=sys.stderr,
    )


def project_up(world: dict[str, Any], args: list[str], project: Path) -> int:
    targets = [a for i, a in enumerate(args) if i and args[i - 1] == "--target"]
    want = goal(world, project)
    c, u = canary_urns(world["stack"]), urns(world["stack"])
    targeting = engine()
    slow = _slow_up(
        world, args, c["route"] if targets == [c["route"]] else None,
        f"route:{want['route'].get('muse-candidate', 0)}" if targets == [c["route"]] else "",
    )  # fmt: skip
    message = flag(args, "--message", "") or ""
    if slow is not None:
        if targets == [c["route"]]:  # the route's PATCH was in flight: it reached the API server
            write_route(world, want["route"], "pulumi up --target (cancelled)")
        return slow
    world["up_calls"] = world.get("up_calls", 0) + 1
    world["up_args"] = [*world.get("up_args", []), args]
    if world.get("pending_operations"):
        world["up_with_pending_operations"] = world.get("up_with_pending_operations", 0) + 1
    existing = state_urns(world) | ({c["candidate"]} if world.get("candidate_image") else set())
    existing |= {c["route"]} if world.get("route") else set()
    _, deleted, errors = targeting.plan_update(
        project_resources(world, bool(want["candidate"])), existing, targets, False
    )
    if errors:
        print("\n".join(errors), file=sys.stderr)
        world["history"].insert(0, history_entry(world, message, "failed"))
        return 1
    chosen = targeting.Targets(targets)

    def targeted(urn: str) -> bool:
        return not targets or chosen.contains(urn)

    def fail() -> int:
        world["state_urns"] = sorted(existing)
        record_stack(world, f"pulumi up (failed): {message}")
        world["history"].insert(0, history_entry(world, message, "failed"))
        return 1

    if targeted(u["deployment"]) and world.get("state_image") != want["stable"]:
        existing.add(u["deployment"])
        world["state_image"] = world["spec_image"] = want["stable"]
        if not behaviour(world, want["stable"])["ready"]:
            not_ready(world, "muse")
            return fail()
        world["serving_image"] = want["stable"]
    if want["candidate"] and targeted(c["candidate"]) and world.get("candidate_image") != want["candidate"]:
        existing.add(c["candidate"])
        world["candidate_image"] = want["candidate"]
        if not behaviour(world, want["candidate"])["ready"]:
            not_ready(world, "muse-candidate")
            return fail()
    if targeted(c["route"]) and route_weights(world) != want["route"]:
        write_route(world, want["route"], f"pulumi up{' --target' if targets else ''}")
    existing.add(c["route"])
    if c["candidate"] in deleted:
        world["candidate_image"] = None
        existing.discard(c["candidate"])
    if not targets:  # the whole program ran: its settings are what the stack records now
        world["program_commit"], world["probe"] = want["program"], want["probe"]
        project_outputs(world, want["canary"])
    world["state_urns"] = sorted(existing)
    world["config"]["muse:imageTag"] = want["stable"]  # what history_entry records
    record_stack(world, f"pulumi up{' --target' if targets else ''}: {message}")
    world["history"].insert(0, history_entry(world, message, "succeeded"))
    print(f"Updating ({world['stack']}):\nResources:\n    ~ updated")
    return 0


def project_changes(world: dict[str, Any], project: Path) -> list[str]:
    """What `pulumi preview` of this directory's program would change on the stack."""
    want = goal(world, project)
    have = {
        "program": world.get("program_commit"), "probe": world.get("probe"),
        "stable": world.get("state_image"), "candidate": world.get("candidate_image"),
        "route": route_weights(world),
    }  # fmt: skip
    changes = [f"~ {key}: {have[key]!r} => {want[key]!r}" for key in have if have[key] != want[key]]
    return changes + [f"~ {urn}: perpetual diff" for urn in world.get("perpetual_diff", [])]


def project_preview(world: dict[str, Any], args: list[str], project: Path) -> int:
    world["preview_args"] = [*world.get("preview_args", []), args]
    changes = project_changes(world, project)
    world.setdefault("events", []).append(
        {"what": "preview", "program": goal(world, project)["program"], "changes": len(changes)}
    )
    print("Previewing update\n" + "\n".join(changes or ["Resources:\n    42 unchanged"]))
    if changes and "--expect-no-changes" in args:
        print("error: no changes were expected but changes were proposed", file=sys.stderr)
        return 255
    return 0


def pulumi(world: dict[str, Any], args: list[str]) -> int:
    command = [a for a in args if not a.startswith("-")][:2]
    project = project_dir(args)
    if project is not None and args[:1] == ["up"]:
        return project_up(world, args, project)
    if project is not None and args[:1] == ["preview"]:
        return project_preview(world, args, project)
    if args[:1] == ["up"]:
        return pulumi_up(world, args)
    if args[:1] == ["preview"]:
        preview = world.get(
            "preview", {"exit": 0, "output": "Previewing update\nResources:\n    42 unchanged"}
        )
        world["preview_args"] = [*world.get("preview_args", []), args]
        if "--json" in args:
            # `pulumi preview --json` prints one PreviewDigest (pulumi/pulumi pkg/backend/display/json.go):
            # `steps` (each PreviewStep with `op` and `urn`), `changeSummary`, `diagnostics`.
            steps = preview.get("steps", [])
            summary: dict[str, int] = {}
            for step in steps:
                summary[step["op"]] = summary.get(step["op"], 0) + 1
            print(json.dumps({"steps": steps, "changeSummary": summary, "diagnostics": []}, indent=4))
            return int(preview["exit"])
        print(preview["output"])
        return int(preview["exit"])
    if args[:1] == ["refresh"]:
        # Reads the live state: clears pending updates and deletes (pulumi/pulumi pkg/engine/lifecycletest/
        # pulumi_test.go TestRefreshWithPendingOperations) and keeps pending creates unless
        # --clear-pending-creates drops them (pkg/cmd/pulumi/operations/refresh.go). A stack whose DIY lock
        # file is left fails first (pkg/backend/diy/lock.go checkForLock).
        if world.get("locked"):
            print(
                "error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to "
                "end or delete the lock file with `pulumi cancel`.",
                file=sys.stderr,
            )
            return 255
        keep = "--clear-pending-creates" not in args
        world["pending_operations"] = [
            op for op in world.get("pending_operations", []) if keep and op["type"] == "creating"
        ]
        print("Refreshing (dev):\nResources:\n    42 unchanged")
        return 0
    if command == ["config", "set"]:
        values = {flag(args, "--stack"), flag(args, "--cwd"), flag(args, "--color")}
        key, value = [a for a in args[2:] if not a.startswith("-") and a not in values][:2]
        if project is not None:
            set_project_config(world, project, key, value)
        else:
            world["config"][key] = value
        return 0
    if command == ["stack", "export"]:
        resources = []
        if world.get("state_image"):
            image = image_ref(world, world["state_image"])
            spec = {"template": {"spec": {"containers": [{"name": "muse", "image": image}]}}}
            resources.append(
                {
                    "urn": urns(world["stack"])["deployment"],
                    "type": "kubernetes:apps/v1:Deployment",
                    "inputs": {"spec": spec},
                    "outputs": {"spec": spec},
                }
            )
        state = {"version": 3, "deployment": {"manifest": {}, "resources": resources}}
        if world.get("pending_operations"):
            state["deployment"]["pending_operations"] = world["pending_operations"]
        Path(str(flag(args, "--file"))).write_text(json.dumps(state), encoding="utf-8")
        return 0
    if command[:1] == ["stack"] and "output" in args:
        outputs = world["outputs"]
        values = {flag(args, "--stack"), flag(args, "--color")}  # flag values, not output names
        names = [a for a in args[2:] if not a.startswith("-") and a not in values]
        if "--json" in args:
            print(json.dumps(outputs if not names else outputs.get(names[0])))
        elif names:
            if names[0] not in outputs:
                print(f"error: current stack does not have output property '{names[0]}'", file=sys.stderr)
                return 255
            print(outputs[names[0]])
        return 0
    if command[:1] == ["stack"] and "history" in args:
        size = int(flag(args, "--page-size", "10") or 10)
        history = world["history"]
        print(json.dumps(history[:size] if size > 0 else history))
        return 0
    print(f"release_tools: pulumi {' '.join(args)} is not modelled", file=sys.stderr)
    return 2


def evaluate_status(world: dict[str, Any], name: str) -> int:
    job = next(j for j in world.get("jobs_created", []) if j["name"] == name.removeprefix("job.batch/"))
    tag = re.split(r"[@:]", job["image"].rsplit("/", 1)[-1], maxsplit=1)[-1]
    tag = job["image"].split("@", 1)[1] if "@" in job["image"] else tag
    return int(behaviour(world, tag).get("evaluate", 200))


def kubectl(world: dict[str, Any], args: list[str]) -> int:
    if args[:1] == ["--kubeconfig"]:
        # An explicit kubeconfig that does not exist is an error before anything is asked (kubernetes/
        # client-go tools/clientcmd/loader.go, ClientConfigLoadingRules.Load: os.Stat of ExplicitPath,
        # IsNotExist -> the error itself), which kubectl prints as "error: stat <path>: no such file or
        # directory".
        if not Path(args[1]).is_file():
            print(f"error: stat {args[1]}: no such file or directory", file=sys.stderr)
            return 1
        world["kubeconfigs"] = [*world.get("kubeconfigs", []), args[1]]
        args = args[2:]
    if args[:4] == ["create", "-f", "-", "-o"]:
        # `create -f - -o name` of a Job with metadata.generateName: the API server appends 5 random
        # characters (apimachinery names.SimpleNameGenerator) and kubectl prints `job.batch/<name>`.
        job = json.loads(sys.stdin.read())
        name = f"{job['metadata']['generateName']}x{len(world.get('jobs', [])):04d}"
        image = job["spec"]["template"]["spec"]["containers"][0]["image"]
        labels = job["metadata"].get("labels", {})
        world["jobs"] = [*world.get("jobs", []), {"name": name, "labels": labels, "image": image}]
        world["jobs_created"] = [*world.get("jobs_created", []), {"name": name, "image": image}]
        print(f"job.batch/{name}")
        return 0
    if args[:1] == ["get"] and args[1].startswith("job.batch/"):
        # .status.succeeded,.status.failed: the check's one pod POSTs /api/v1/evaluate to the image it names
        # (backoffLimit 0: one failed pod fails the Job). `evaluate` per image, 200 unless the world says.
        print("1," if evaluate_status(world, args[1]) == 200 else ",1")
        return 0
    if args[:1] == ["logs"]:
        print(json.dumps({"status": evaluate_status(world, args[1])}))
        return 0
    if "patch" in args and "httproute" in args:
        # `-n <ns> patch httproute <name> --type=json -p <RFC 6902 patch>`: applied to the live route.
        # RFC 6902: a failed `test` fails the whole patch and nothing is applied (section 5); the API server
        # answers an error and kubectl exits 1.
        patch = json.loads(str(flag(args, "-p")))
        refs = copy.deepcopy(world["route"]["backendRefs"])
        for op in patch:
            index_text, _, field = op["path"].removeprefix("/spec/rules/0/backendRefs/").partition("/")
            index = int(index_text)
            if index >= len(refs):  # RFC 6902 §4.3/4.6: the target location MUST exist
                print("The request is invalid: the target location does not exist", file=sys.stderr)
                return 1
            if op["op"] == "test":
                if refs[index].get(field) != op["value"]:
                    print(f"Error from server: test of {op['path']} failed", file=sys.stderr)
                    return 1
                continue
            assert op["op"] == "replace" and field == "weight", op
            refs[index]["weight"] = op["value"]
        world["route"]["backendRefs"] = refs
        world.setdefault("events", []).append(
            {"what": "route", "weights": route_weights(world), "by": "kubectl patch"}
        )
        world["route_patches"] = [
            *world.get("route_patches", []),
            [flag(args, "-n"), args[args.index("httproute") + 1]],
        ]
        print("httproute.gateway.networking.k8s.io/muse patched")
        return 0
    if args[:2] == ["delete", "job"]:
        selector = str(flag(args, "-l"))
        key, _, value = selector.partition("=")
        kept = [j for j in world.get("jobs", []) if j["labels"].get(key) != value]
        for gone in [j for j in world.get("jobs", []) if j not in kept]:
            print(f'job.batch "{gone["name"]}" deleted')
        world["jobs"] = kept
        return 0
    if args[:2] == ["rollout", "status"]:
        spec = behaviour(world, world.get("spec_image"))
        if not spec["ready"]:
            print(
                'Waiting for deployment "muse" rollout to finish: 1 old replicas are pending termination...'
            )
            print('error: deployment "muse" exceeded its progress deadline', file=sys.stderr)
            return 1
        if spec["fails_after_ready"]:
            print('Waiting for deployment "muse" rollout to finish: 0 of 2 updated replicas are available...')
            print("error: timed out waiting for the condition", file=sys.stderr)
            return 1
        print('deployment "muse" successfully rolled out')
        return 0
    if args[:1] == ["get"] and args[1].startswith("deployment/"):
        print(image_ref(world, world["spec_image"]))
        return 0
    if args[:2] == ["get", "pods"]:
        print("NAME        READY   STATUS\nmuse-old    1/1     Running\nmuse-new    0/1     Running")
        return 0
    print(f"release_tools: kubectl {' '.join(args)} is not modelled", file=sys.stderr)
    return 2


# msrestazure.tools.is_valid_resource_id: /subscriptions/<id>/resourceGroups/<rg>/providers/<ns>/<type>/<name>
RESOURCE_ID = r"(?i)/subscriptions/[^/]+/resourceGroups/[^/]+/providers/[^/]+/[^/]+/[^/]+"


def az(world: dict[str, Any], args: list[str]) -> int:
    if args[:2] == ["aks", "get-credentials"]:
        Path(str(flag(args, "--file"))).write_text("apiVersion: v1\nkind: Config\n", encoding="utf-8")
        return 0
    if args[:1] == ["login"] or args[:2] == ["account", "set"]:
        return 0
    if args[:2] == ["account", "get-access-token"]:
        # `--query accessToken --output tsv` prints the bare token (Azure CLI, az account get-access-token).
        world["tokens"] = [*world.get("tokens", []), flag(args, "--resource")]
        print(f"token-for-{flag(args, '--resource')}")
        return 0
    if args[:2] == ["acr", "import"]:
        source = str(flag(args, "--source"))
        target = str(flag(args, "--image"))
        source_registry = flag(args, "--registry")
        listable: dict[str, str] = world.get("listable", {})
        if source_registry and re.fullmatch(RESOURCE_ID, str(source_registry)):
            source_id: str | None = str(source_registry)
        elif source_registry:
            source_id = listable.get(str(source_registry))
            if source_id is None:
                print("The source container registry can not be found.", file=sys.stderr)
                return 1
        else:
            server, source = source.split("/", 1)
            source_id = listable.get(server)
            if source_id is None:  # ImportSource(registry_uri=...): an anonymous pull from a private registry
                print(f"(InvalidParameters) unauthorized: {server}/{source}", file=sys.stderr)
                return 1
        if source_id.lower() != str(world["registry_id"]).lower():
            print(f"release_tools: import from {source_id} is not modelled", file=sys.stderr)
            return 2
        registry = world["registry"]
        if target in registry and "--force" not in args:
            print(f"(Conflict) Tag {target} already exists in target registry.", file=sys.stderr)
            return 1
        digest = source.split("@", 1)[1] if "@" in source else registry[source]
        registry[target] = digest
        imported = {"source_id": source_id, "source": source, "image": target}
        world["imports"] = [*world.get("imports", []), imported]
        return 0
    if args[:3] == ["acr", "repository", "show"]:
        print(world["registry"].get(str(flag(args, "--image")), ""))
        return 0
    print(f"release_tools: az {' '.join(args)} is not modelled", file=sys.stderr)
    return 2


def github_oidc_token(request_url: str, request_token: str) -> str:
    """What kubelogin's getGitHubToken does: GET ACTIONS_ID_TOKEN_REQUEST_URL with audience
    api://AzureADTokenExchange and `Authorization: bearer <ACTIONS_ID_TOKEN_REQUEST_TOKEN>`; answer
    `{"value": "<JWT>"}` (Azure/kubelogin v0.2.17 pkg/internal/token/githubactionscredential.go)."""
    import urllib.parse
    import urllib.request

    parts = urllib.parse.urlsplit(request_url)
    query = [*urllib.parse.parse_qsl(parts.query), ("audience", "api://AzureADTokenExchange")]
    url = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    request = urllib.request.Request(  # noqa: S310 - a loopback fake in tests
        url,
        headers={"Authorization": f"bearer {request_token}", "Accept": "application/json; api-version=2.0"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return str(json.loads(response.read())["value"])


def kubelogin(world: dict[str, Any], args: list[str]) -> int:
    """`convert-kubeconfig` succeeds. `get-token` in workloadidentity mode (`--login workloadidentity` or
    AAD_LOGIN_METHOD) picks its credential as Azure/kubelogin v0.2.17 pkg/internal/token/provider.go does:
    with ACTIONS_ID_TOKEN_REQUEST_TOKEN and ACTIONS_ID_TOKEN_REQUEST_URL both set, newGithubActionsCredential
    (a fresh GitHub OIDC token for every assertion, githubactionscredential.go); otherwise
    newWorkloadIdentityCredential (the AZURE_FEDERATED_TOKEN_FILE). The exchange with Entra ID is not
    modelled: the ExecCredential's token names the assertion's source."""
    if args[:1] == ["convert-kubeconfig"]:
        return 0
    if args[:1] != ["get-token"]:
        return 2
    login = flag(args, "--login") or os.environ.get("AAD_LOGIN_METHOD", "devicecode")
    if login != "workloadidentity":
        print(f"release_tools: kubelogin get-token --login {login} is not modelled", file=sys.stderr)
        return 2
    if not os.environ.get("AZURE_CLIENT_ID") or not os.environ.get("AZURE_TENANT_ID"):
        print(
            "client ID cannot be empty"
            if not os.environ.get("AZURE_CLIENT_ID")
            else "tenant ID cannot be empty",
            file=sys.stderr,
        )
        return 1
    request_token = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "")
    request_url = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL", "")
    if request_token and request_url:
        credential, assertion = "GithubActionsCredential", github_oidc_token(request_url, request_token)
    else:
        token_file = os.environ.get("AZURE_FEDERATED_TOKEN_FILE", "")
        if not token_file or not Path(token_file).is_file():
            print(f"failed to read federated token file {token_file!r}", file=sys.stderr)
            return 1
        credential, assertion = "WorkloadIdentityCredential", Path(token_file).read_text(encoding="utf-8")
    world["kubelogin_tokens"] = [*world.get("kubelogin_tokens", []), {"credential": credential}]
    status = {"token": f"access-token-for:{credential}:{assertion.strip()}"}
    print(
        json.dumps(
            {"kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1beta1", "status": status}
        )
    )
    return 0


def main(argv: list[str]) -> int:
    tool, args = argv[1], argv[2:]
    lock()
    try:
        world = load()
        world["calls"].append(" ".join([tool, *args]))
        handler = {"pulumi": pulumi, "kubectl": kubectl, "az": az, "kubelogin": kubelogin}[tool]
        code = handler(world, args)
        save(world)
    finally:
        unlock()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
