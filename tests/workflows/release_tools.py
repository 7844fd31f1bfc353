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


def _slow_up(world: dict[str, Any], args: list[str]) -> int | None:
    """`up_seconds`: the update runs that long, and SIGINT/SIGTERM cancel it the way Pulumi does
    (pulumi/pulumi pkg/backend/cancellation_scope.go: the first signal cancels - no new resource operation
    starts, the running one finishes and is checkpointed - a second one terminates). Here the running
    operation is the Deployment's update: it is left pending (state export's `pending_operations`, type
    "updating"), as an update killed mid-operation leaves it. None: the update was not slow and goes on."""
    seconds = float(world.get("up_seconds", 0))
    if not seconds:
        return None
    import signal as signals

    got: list[str] = []
    signals.signal(signals.SIGINT, lambda n, f: got.append(signals.Signals(n).name))
    signals.signal(signals.SIGTERM, lambda n, f: got.append(signals.Signals(n).name))
    world["pending_operations"] = [
        {"resource": {"urn": urns(world["stack"])["deployment"], "type": "kubernetes:apps/v1:Deployment"},
         "type": "updating"}
    ]  # fmt: skip
    world["up_running"] = True
    save(world)
    end = time.monotonic() + seconds
    while time.monotonic() < end and not got:
        time.sleep(0.05)
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


def pulumi(world: dict[str, Any], args: list[str]) -> int:
    command = [a for a in args if not a.startswith("-")][:2]
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
        key, value = [a for a in args[2:] if not a.startswith("-") and a != flag(args, "--stack")][:2]
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
        world["jobs"] = [*world.get("jobs", []), {"name": name, "labels": job["metadata"].get("labels", {})}]
        print(f"job.batch/{name}")
        return 0
    if args[:1] == ["get"] and args[1].startswith("job.batch/"):
        print("1,")  # .status.succeeded,.status.failed of a Job whose one pod succeeded
        return 0
    if args[:1] == ["logs"]:
        print('{"status": 200}')
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
            if op["op"] == "test":
                if index >= len(refs) or refs[index].get(field) != op["value"]:
                    print(f"Error from server: test of {op['path']} failed", file=sys.stderr)
                    return 1
                continue
            assert op["op"] == "replace" and field == "weight", op
            refs[index]["weight"] = op["value"]
        world["route"]["backendRefs"] = refs
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
    world = load()
    world["calls"].append(" ".join([tool, *args]))
    handler = {"pulumi": pulumi, "kubectl": kubectl, "az": az, "kubelogin": kubelogin}[tool]
    code = handler(world, args)
    save(world)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
