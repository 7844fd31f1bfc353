"""The `pulumi preview --json` document built from engine events the way the CLI builds it, so the change-set
tests feed it the events the engine emits rather than hand-written documents (there is no Pulumi CLI here).

Sources, pulumi/pulumi at 1b5949891b3cefcb9974752b24a5ecef0acc86c8:
- pkg/backend/display/json.go `ShowPreviewDigest`: a ResourcePreEvent that `shouldShow` keeps is recorded in
  the `seen` map (the URN's last pre-event) and appended as a step (`getPreviewMetadataStep`); a
  ResourceOutputsEvent whose URN's last pre-event was a `refresh` and whose op is an update with a detailed
  diff, or a delete, replaces every step of that URN with a step made from the outputs event.
- pkg/backend/display/display.go `shouldShow`: `same` is hidden unless `--show-sames` (or protect changed);
  with `--json`, a replacement step that is not logical (`create-replacement`, `delete-replaced`: CreateStep
  and DeleteStep are logical only when not replacing, pkg/resource/deploy/step.go) is hidden unless
  `--show-replacement-steps`; `replace` (ReplaceStep.Logical is true) is shown.
- pkg/engine/update.go previewActions.OnResourceStepPost: the outputs event carries `step.Op()`, so within
  `pulumi preview --refresh` (the refresh step generated inline, step_generator.go) it says `refresh`; only a
  refresh operation (`isRefresh`, engine/refresh.go) reports the refresh's result op (RefreshStep.ResultOp).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# pkg/resource/deploy/step.go IsReplacementStep (the ops a replacement is made of).
REPLACEMENT_OPS = frozenset({
    "replace", "create-replacement", "delete-replaced", "read-replacement", "discard-replaced",
    "remove-pending-replace", "import-replacement",
})  # fmt: skip


@dataclass
class Meta:
    """engine.StepEventMetadata, the fields the digest reads."""

    op: str
    urn: str
    logical: bool = True
    new: dict[str, Any] | None = None
    old: dict[str, Any] | None = None
    diffs: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    detailed_diff: dict[str, str] | None = None  # path -> kind


def _resource(urn: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"urn": urn, "custom": True, "type": urn.split("::")[2].split("$")[-1], "inputs": inputs,
            "outputs": inputs}  # fmt: skip


def provider_of(urn: str) -> str:
    """The default provider of a resource URN's package (`azure-native`, `kubernetes`, ...)."""
    stack, project = urn.split("::")[0].removeprefix("urn:pulumi:"), urn.split("::")[1]
    package = urn.split("::")[2].split("$")[-1].split(":")[0]
    return f"urn:pulumi:{stack}::{project}::pulumi:providers:{package}::default::1"


def _step(m: Meta) -> dict[str, Any]:
    """getPreviewMetadataStep."""
    step: dict[str, Any] = {"op": m.op, "urn": m.urn, "provider": provider_of(m.urn), "diffReasons": m.diffs,
                            "replaceReasons": m.keys}  # fmt: skip
    if m.detailed_diff is not None:
        step["detailedDiff"] = {p: {"kind": k, "inputDiff": True} for p, k in m.detailed_diff.items()}
    if m.old is not None:
        step["oldState"] = _resource(m.urn, m.old)
    if m.new is not None:
        step["newState"] = _resource(m.urn, m.new)
    return step


def should_show(m: Meta, *, show_sames: bool = False, show_replacement_steps: bool = False) -> bool:
    if m.op == "same":
        return show_sames
    return show_replacement_steps or m.logical or m.op not in REPLACEMENT_OPS


def preview_digest(events: list[tuple[str, Meta]], **options: bool) -> dict[str, Any]:
    """ShowPreviewDigest over ("pre" | "outputs", metadata) events, in the order the engine emits them."""
    seen: dict[str, Meta] = {}
    steps: list[dict[str, Any]] = []
    for kind, m in events:
        if not should_show(m, **options):
            continue
        if kind == "pre":
            seen[m.urn] = m
            steps.append(_step(m))
        elif seen.get(m.urn, Meta("", "")).op == "refresh" and (
            (m.op == "update" and m.detailed_diff is not None) or m.op == "delete"
        ):
            steps = [_step(m) if s["urn"] == m.urn else s for s in steps]
    return {"steps": steps}


def replacement(urn: str, old: dict[str, Any], new: dict[str, Any], key: str) -> list[tuple[str, Meta]]:
    """The events of a create-before-delete replacement changing `key` (step_generator.go: the
    create-replacement and the logical replace step, the delete-replaced at the end of the deployment)."""
    diff = {key: "update-replace"}
    return [
        ("pre", Meta("create-replacement", urn, logical=False, old=old, new=new, diffs=[key], keys=[key],
                     detailed_diff=diff)),
        ("outputs", Meta("create-replacement", urn, logical=False, old=old, new=new, diffs=[key], keys=[key],
                         detailed_diff=diff)),
        ("pre", Meta("replace", urn, old=old, new=new, diffs=[key], keys=[key], detailed_diff=diff)),
        ("outputs", Meta("replace", urn, old=old, new=new, diffs=[key], keys=[key], detailed_diff=diff)),
        ("pre", Meta("delete-replaced", urn, logical=False, old=old)),
        ("outputs", Meta("delete-replaced", urn, logical=False, old=old)),
    ]  # fmt: skip
