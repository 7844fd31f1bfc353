"""The Pulumi engine's `pulumi up --target` rule on a stack, as a stand-in the bootstrap script test runs.

Modelled on pulumi/pulumi (read at commit 1b5949891b3cefcb9974752b24a5ecef0acc86c8):

- `pkg/resource/deploy/deployment.go`, `NewUrnTargets` / `UrnTargets.Contains`: a target containing `*` is a
  glob (`**` matches anything, `*` anything but `:`), anything else is a literal URN.
- `pkg/resource/deploy/deployment_executor.go`, `checkTargets`: every literal target must name a resource the
  program registers (or one in the old state), else "one or more targets could not be found in the stack".
- `pkg/resource/deploy/step_generator.go`, `generateSteps`: providers (`pulumi:providers:*`) and the root
  `pulumi:pulumi:Stack` are implicitly targeted; any other new resource that is not targeted becomes a
  "skipped create". `isTargetedForUpdate`: with `--target-dependents`, a resource whose provider, parent or
  dependency is targeted is targeted too (resources arrive in dependency order).
- `step_generator.go`, `validateSteps`: a targeted step whose provider or any dependency from
  `State.GetAllDependencies` (`pkg/resource/state.go`: the parent, `dependencies`, property dependencies,
  `deletedWith`, `replaceWith`) is a skipped create fails the update with "untargeted create"
  (`diag.GetResourceWillBeCreatedButWasNotSpecifiedInTargetList`).
- `step_generator.go`, `GenerateDeletes`: a resource in the old state that the program no longer registers is
  deleted; with `--target`, only if it is targeted.
- `pkg/display/json.go`, `PreviewDigest`: `pulumi preview --json` prints `{"steps": [{"op", "urn"}, ...],
  "changeSummary": {"<op>": n}}`; the ops used here are `create`, `same` and `delete`.
- Regression test `TestTargetUntargetedParent` (`pkg/engine/lifecycletest/target_test.go`): on a fresh stack,
  targeting only the child of a new component fails with "untargeted create"; once the parent exists in
  state, targeting the child alone works (the parent is a `same`).

The resources come from the offline plan of the real program (`offline.engine`): its `parent` (top-level
components are parented to the Stack, which the plan leaves out), `depends_on` (the SDK's `dependencies`,
which include every property dependency) and `provider`.

    python engine_targeting.py <resources.json> <existing-urns-file> up|preview <pulumi args...>

`up`: exit 0 and rewrite the existing-urns file (created URNs added, deleted ones removed), or exit 255 with
the engine's message. `preview --json`: print the preview digest; the state file is not touched.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT_STACK = "pulumi:pulumi:Stack"


def _urn_type(urn: str) -> str:
    return urn.split("::")[2].split("$")[-1]


def _implicitly_targeted(urn: str) -> bool:
    return _urn_type(urn).startswith("pulumi:providers:") or _urn_type(urn) == ROOT_STACK


def _matcher(glob: str) -> re.Pattern[str]:
    # UrnTargets.getMatcher: split on "**" (-> ".*"), then on "*" (-> "[^:]*"), quote the rest.
    segments = ["[^:]*".join(re.escape(part) for part in seg.split("*")) for seg in glob.split("**")]
    return re.compile("^" + ".*".join(segments) + "$")


class Targets:
    def __init__(self, targets: list[str]) -> None:
        self.literals = [t for t in targets if "*" not in t]
        self.globs = [_matcher(t) for t in targets if "*" in t]

    def constrained(self) -> bool:
        return bool(self.literals or self.globs)

    def contains(self, urn: str) -> bool:
        return urn in self.literals or any(g.match(urn) for g in self.globs)


def _dependencies(resource: dict[str, object]) -> list[str]:
    deps = [str(resource["parent"])] if resource.get("parent") else []
    deps += [str(d) for d in resource.get("depends_on") or []]  # type: ignore[union-attr]
    provider = resource.get("provider")
    if provider:
        # A provider reference is "<provider URN>::<provider ID>" (sdk/go/common/resource/plugin providers).
        deps.append(str(provider).rsplit("::", 1)[0])
    return deps


def registration_order(resources: list[dict[str, object]]) -> list[dict[str, object]]:
    """The engine sees a resource only after its parent and dependencies resolved: a topological order."""
    by_urn = {str(r["urn"]): r for r in resources}
    ordered: list[dict[str, object]] = []
    seen: set[str] = set()

    def visit(urn: str) -> None:
        if urn in seen or urn not in by_urn:
            return
        seen.add(urn)
        for dep in _dependencies(by_urn[urn]):
            visit(dep)
        ordered.append(by_urn[urn])

    for urn in by_urn:
        visit(urn)
    return ordered


def plan_update(
    resources: list[dict[str, object]], existing: set[str], targets: list[str], target_dependents: bool
) -> tuple[list[str], list[str], list[str]]:
    """(URNs created, URNs deleted, error lines) of `pulumi up` with these targets on a stack holding
    `existing`."""
    resources = registration_order(resources)
    wanted = Targets(targets)
    errors: list[str] = []
    registered = {str(r["urn"]) for r in resources}
    # deployment_executor.go checkTargets: literal targets must exist in the program or the old state.
    for literal in wanted.literals:
        if literal not in registered and literal not in existing:
            errors.append(f"error: Target {literal!r} could not be found in the stack")
    if errors:
        return [], [], [*errors, "error: one or more targets could not be found in the stack"]

    targets_actual = set(wanted.literals)
    skipped_creates: set[str] = set()
    created: list[str] = []
    for resource in resources:
        urn = str(resource["urn"])
        deps = _dependencies(resource)
        targeted = (
            not wanted.constrained()
            or _implicitly_targeted(urn)
            or wanted.contains(urn)
            or (target_dependents and any(d in targets_actual for d in deps))
        )
        if targeted:
            targets_actual.add(urn)
        if not targeted:
            if urn not in existing:
                skipped_creates.add(urn)
            continue  # an untargeted resource in state is a `same` with its old state's dependencies
        # validateSteps checks every step that is not itself a skipped create - a targeted update of a
        # resource in state as much as a create - against the skipped creates among its parent, provider and
        # dependencies (GetAllDependencies of the new state):
        # diag.GetResourceWillBeCreatedButWasNotSpecifiedInTargetList
        missing = [d for d in deps if d in skipped_creates]
        if missing:
            errors.append(
                f"error: Resource {urn!r} depends on {missing[0]!r} which was was not specified in "
                "--target list."
            )
            return [], [], [*errors, "error: untargeted create"]
        if urn not in existing:
            created.append(urn)
    # GenerateDeletes: whatever the old state holds and the program no longer registers goes, unless --target
    # constrains the update to other resources.
    deleted = sorted(urn for urn in existing - registered if not wanted.constrained() or wanted.contains(urn))
    return created, deleted, errors


def plan_targeted_update(
    resources: list[dict[str, object]], existing: set[str], targets: list[str], target_dependents: bool
) -> tuple[list[str], list[str]]:
    """(URNs created, error lines) of `pulumi up` with these targets on a stack holding `existing`."""
    created, _, errors = plan_update(resources, existing, targets, target_dependents)
    return created, errors


def preview_digest(resources: list[dict[str, object]], existing: set[str]) -> dict[str, object]:
    """`pulumi preview --json` of an untargeted update: create, same or delete per resource."""
    steps = [
        {"op": "same" if str(r["urn"]) in existing else "create", "urn": str(r["urn"])}
        for r in registration_order(resources)
    ]
    registered = {str(r["urn"]) for r in resources}
    steps += [{"op": "delete", "urn": urn} for urn in sorted(existing - registered)]
    summary: dict[str, int] = {}
    for step in steps:
        summary[step["op"]] = summary.get(step["op"], 0) + 1
    return {"steps": steps, "changeSummary": summary}


def _parse(argv: list[str]) -> tuple[list[str], bool]:
    targets: list[str] = []
    target_dependents = False
    args = iter(argv)
    for arg in args:
        if arg == "--target":
            targets.append(next(args))
        elif arg.startswith("--target="):
            targets.append(arg.split("=", 1)[1])
        elif arg == "--target-dependents":
            target_dependents = True
    return targets, target_dependents


def main(argv: list[str]) -> int:
    resources = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    state_file = Path(argv[2])
    existing = set(state_file.read_text(encoding="utf-8").split()) if state_file.exists() else set()
    command, args = argv[3], argv[4:]
    if command == "preview":
        if "--json" not in args:
            print("this stand-in only answers `pulumi preview --json`", file=sys.stderr)
            return 2
        print(json.dumps(preview_digest(resources, existing)))
        return 0
    targets, target_dependents = _parse(args)
    created, deleted, errors = plan_update(resources, existing, targets, target_dependents)
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 255
    after = (
        [urn for urn in state_file.read_text(encoding="utf-8").split() if urn not in deleted]
        if (state_file.exists())
        else []
    )
    state_file.write_text("".join(f"{urn}\n" for urn in [*after, *created]), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
