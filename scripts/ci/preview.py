#!/usr/bin/env python3
"""Run `pulumi preview` for one stack and report it whether it succeeds or fails: the job summary always, and
the stack's pull-request comment (one per stack, edited in place) when asked.

    scripts/ci/preview.py --stack dev --policy-pack policy --comment-on-pr     # pull request
    scripts/ci/preview.py --stack prod --drift --cwd DIR --note FILE --report FILE  # drift.yml

`--change-set` / `--expect-change-set` bind the prod approval to what deploy-prod applies; `--drift` tells
drift (exit 7) from a preview that could not run. Standard library only. The other modes, why not
pulumi/actions, and pulumi's exit codes: docs/architecture/ci-cd.md#the-preview-script."""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from pr_comment import MARKER, GitHub, heading, upsert
from workflow_files import append

# The codes ExitCodeFor (exit_codes.go) does return besides 1, and what the output of a failure shows.
PULUMI_EXIT = {
    2: "configuration or validation error",
    3: "authentication or authorization error",
    6: "stack not found",
    8: "canceled",
}
PULUMI_FAILURES = (("mandatory policy violation", "a mandatory policy violation"),)
# A read of one of the workload's custom resources refused by the cluster: the Kubernetes API server's
# Forbidden message (k8s.io/apiserver pkg/endpoints/handlers/responsewriters/errors.go: `User %q cannot %s
# resource %q in API group %q ...`). The previews read them through a custom-resource reader whose ABAC
# condition names each (group, kind) (bootstrap/__main__.py, components/muse_workload/manifests.py
# CUSTOM_RESOURCES, which tests/workflows/test_preview_report.py keeps equal to these groups): a 403 there
# means the bootstrap that set the condition predates a kind the program now deploys.
CUSTOM_RESOURCE_GROUPS = ("gateway.networking.k8s.io", "secrets-store.csi.x-k8s.io")
FORBIDDEN_CUSTOM_RESOURCE = re.compile(
    r'cannot (?:get|list|watch) resource "[a-z.]+" in API group "(?:'
    + "|".join(re.escape(group) for group in CUSTOM_RESOURCE_GROUPS)
    + ')"'
)
BOOTSTRAP_OUTDATED = (
    "403 on a custom resource: the bootstrap is outdated; re-run scripts/bootstrap.sh as Owner "
    "(docs/runbook.md, Moving an existing stack)"
)
DRIFT_EXIT = 7
# GitHub refuses a longer comment body: 422 "Validation Failed", "body is too long (maximum is 65536
# characters)" (the REST API's answer to "Create an issue comment" / "Update an issue comment"; the docs list
# 422 for both). The whole body counts, so the output gets what the heading and the HTML around it leave.
COMMENT_CHARACTERS = 65_536
SUMMARY_BYTES = 900_000  # a step summary may hold 1 MiB (pulumi/actions keeps 1,000,000 bytes)


def project_name(cwd: Path) -> str:
    text = (cwd / "Pulumi.yaml").read_text(encoding="utf-8")
    match = re.search(r"^name:\s*['\"]?([\w.-]+)", text, re.MULTILINE)
    return match.group(1) if match else "project"


def run_preview(args: argparse.Namespace) -> tuple[int, str]:
    command = ["pulumi", "preview", "--stack", args.stack, "--diff", "--non-interactive", "--color", "never"]
    if args.drift:
        command += ["--refresh", "--expect-no-changes"]
    elif args.change_set:
        # The diff to approve refreshes as the change set below and deploy.py's `pulumi up --refresh` do.
        command += ["--refresh"]
    for pack in args.policy_pack:
        command += ["--policy-pack", pack]
    print(f"::group::{' '.join(command)}", flush=True)
    lines: list[str] = []
    with subprocess.Popen(
        command, cwd=args.cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as process:
        for line in process.stdout or ():
            print(line, end="", flush=True)
            lines.append(line)
    print("::endgroup::", flush=True)
    return process.returncode, "".join(lines)


def preview_json(args: argparse.Namespace) -> tuple[int, str, str]:
    """(exit code, stdout = the JSON preview digest, stderr) of `pulumi preview --refresh --json`.

    With --refresh, as deploy.py's `pulumi up --refresh` runs: the change set approved (preview-prod) and the
    one checked just before the update (deploy-prod) are computed against the refreshed state, the state the
    update itself starts from, so both sides of the digest comparison see the same refresh."""
    command = ["pulumi", "preview", "--stack", args.stack, "--refresh", "--json", "--non-interactive"]
    command += ["--color", "never"]
    for pack in args.policy_pack:
        command += ["--policy-pack", pack]
    print(f"::group::{' '.join(command)}", flush=True)
    result = subprocess.run(
        command, cwd=args.cwd, capture_output=True, text=True, errors="replace", check=False
    )  # fmt: skip
    print(result.stdout + result.stderr, flush=True)
    print("::endgroup::", flush=True)
    return result.returncode, result.stdout, result.stderr


# Ops that change nothing the program manages: `same`, and `refresh` (a refresh step that found nothing,
# pulumi/pulumi pkg/resource/deploy/step.go OpRefresh) or `read` of an existing resource.
UNCHANGED_OPS = frozenset({"same", "refresh", "read"})
_TOP_KEY = re.compile(r'^(?:\["((?:[^"\\]|\\.)*)"\]|([^.\[]+))')


def _top_key(path: str) -> str:
    """The top-level property of a detailedDiff path (`spec.template...`, `tags["a.b"]`, `["x"].y`)."""
    match = _TOP_KEY.match(path)
    if match is None:
        return path
    return json.loads(f'"{match.group(1)}"') if match.group(1) is not None else match.group(2)


def _bound_step(step: dict[str, Any]) -> dict[str, Any]:
    """One step's op, diff and replace reasons, every changed path with its kind, and the new inputs under
    each changed top-level property (all new inputs for a create or replacement without a detailed diff)."""
    op = str(step.get("op"))
    detailed = step.get("detailedDiff") or {}
    inputs = (step.get("newState") or {}).get("inputs") or {}
    reasons = sorted(str(r) for r in step.get("diffReasons") or [])
    changed = {*reasons, *(_top_key(path) for path in detailed)}
    return {
        "op": op,
        "diffReasons": reasons,
        "replaceReasons": sorted(str(r) for r in step.get("replaceReasons") or []),
        "detailedDiff": {path: str((diff or {}).get("kind")) for path, diff in sorted(detailed.items())},
        "new": {key: inputs.get(key) for key in sorted(changed)} if changed else inputs,
    }


def change_set_steps(preview: str) -> list[dict[str, Any]]:
    """What `pulumi preview --json` says would change, per URN, in a stable order.

    The document is a PreviewDigest (pulumi/pulumi pkg/display/json.go: `steps`, each a PreviewStep with
    `op`, `urn`, `diffReasons`, `replaceReasons`, `detailedDiff` (path -> {kind, inputDiff}) and `newState`
    (apitype.ResourceV3, its `inputs`)); pkg/backend/display/json.go ShowPreviewDigest (at 1b594989) appends
    one step per ResourcePreEvent that display.go shouldShow keeps, so one URN can have several: a
    replacement is `create-replacement`, `replace`, `delete-replaced` (or the delete first with
    deleteBeforeReplace) when the non-logical replacement steps are shown, and with `--refresh` a `refresh`
    step comes before the program's step. A refresh that found a difference is rewritten in place as the
    update (with a detailed diff) or delete that the refresh's ResourceOutputsEvent carries (its `seen` map
    tells it the URN's last pre-event was a refresh); such a step cannot be told from the program's own
    update in the document, so it is bound too: drift that moves between the approval and the deploy fails
    the check, the safe side. Every step of a URN is bound except those that change nothing (`same`,
    `refresh`, `read`), so a replacement's new values (on `create-replacement` and `replace`) are bound
    whatever step comes last. Secrets stay blinded (`[secret]`): a secret's new value is not bound, its path
    is."""
    per_urn: dict[str, list[dict[str, Any]]] = {}
    for step in json.loads(preview).get("steps") or []:
        if str(step.get("op")) in UNCHANGED_OPS:
            continue
        per_urn.setdefault(str(step.get("urn")), []).append(_bound_step(step))
    return [
        {"urn": urn, "steps": sorted(steps, key=lambda s: json.dumps(s, sort_keys=True))}
        for urn, steps in sorted(per_urn.items())
    ]


def change_set(preview: str) -> tuple[str, list[str]]:
    """(sha256:<hex>, one readable line per step: op, URN, changed paths) of a `pulumi preview --json`."""
    steps = change_set_steps(preview)
    canonical = json.dumps(steps, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    lines = [
        f"{s['op']} {urn['urn']}"
        + (f" [{', '.join(f'{p} ({k})' for p, k in s['detailedDiff'].items())}]" if s["detailedDiff"] else "")
        for urn in steps
        for s in urn["steps"]
    ]
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest(), lines


# What the approver must know the digest does not cover: `pulumi preview --json` blinds every secret
# (pkg/backend/display/json.go stateForJSONOutput: MassageSecrets(..., false) -> "[secret]").
SECRETS_NOTE = (
    "Secret values are blinded (`[secret]`) in the preview the change set is computed from: a changed "
    "secret's path is bound, its new value is not."
)


def change_set_report(args: argparse.Namespace) -> tuple[int, str]:
    """--change-set / --expect-change-set: (exit code, summary markdown)."""
    returncode, stdout, stderr = preview_json(args)
    if returncode != 0:
        text = trim_front(stdout + stderr, 20_000).replace("```", "'''")
        return (
            returncode or 1,
            f"### Change set of `{args.stack}`: FAILED (exit {returncode})\n\n```text\n{text}\n```\n",
        )
    try:
        digest, lines = change_set(stdout)
    except (ValueError, AttributeError) as error:
        return 1, f"### Change set of `{args.stack}`: unreadable `pulumi preview --json` output ({error})\n"
    listing = "\n".join(["```text", *(lines or ["(no changes)"]), "```", ""])
    if args.expect_change_set is None:
        append_output(f"change_set={digest}\n")
        return (
            0,
            f"Change set `{digest}` ({len(lines)} step(s); deploy-prod checks it again before `pulumi up`):"
            f"\n\n{listing}\n{SECRETS_NOTE}\n",
        )
    if digest == args.expect_change_set:
        return 0, f"### Change set of `{args.stack}`: matches the approved preview (`{digest}`)\n\n{listing}"
    return 1, "\n".join([
        f"### Change set of `{args.stack}`: DIFFERS from the approved preview: not deploying",
        "",
        f"Approved (preview-prod): `{args.expect_change_set}`; now: `{digest}`. What `pulumi up` would apply "
        "is not what the approver saw (another release, a manual change, new config or a changed property "
        "value since the preview). Start a new run of main.yml (Actions > main > Run workflow, or `gh "
        "workflow run main.yml --ref main -f commit=<this SHA>`; not a re-run, which reuses the approval) to "
        "preview and approve the current change set.",
        "",
        "Steps `pulumi up` would run now:",
        "",
        listing,
    ])  # fmt: skip


def append_output(text: str) -> None:
    if not append("GITHUB_OUTPUT", text):
        print(text, end="")


def outcome(returncode: int, drift: bool, output: str = "") -> str:
    if returncode == 0:
        return "no drift" if drift else "succeeded"
    if drift and returncode == DRIFT_EXIT:
        return "DRIFT: Azure differs from the code"
    found = next((why for text, why in PULUMI_FAILURES if text in output), "")
    if not found and FORBIDDEN_CUSTOM_RESOURCE.search(output):
        found = BOOTSTRAP_OUTDATED
    meaning = found or PULUMI_EXIT.get(returncode, "")
    return f"FAILED (exit {returncode}{': ' + meaning if meaning else ''})"


TRIMMED = "[... trimmed from the front ...]\n"


def trim_front(text: str, limit: int) -> str:
    """At most `limit` characters, keeping the end, where Pulumi prints the resource summary and the error
    (what pulumi/actions' always-include-summary does). The cut is at a line start, so no HTML entity of
    escaped text is split."""
    if len(text) <= limit:
        return text
    kept = text[-(limit - len(TRIMMED)) :]
    newline = kept.find("\n")
    return TRIMMED + (kept[newline + 1 :] if newline >= 0 else "")


def run_link() -> str:
    server, repository, run = (
        os.environ.get(k, "") for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    return f"{server}/{repository}/actions/runs/{run}" if server and repository and run else ""


def summary(args: argparse.Namespace, project: str, returncode: int, output: str, note: str) -> str:
    title = args.title or ("Drift check" if args.drift else "pulumi preview")
    lines = [f"### {title}: `{project}/{args.stack}` {outcome(returncode, args.drift, output)}", ""]
    if note:
        lines += [note.rstrip(), ""]
    if args.drift and returncode == DRIFT_EXIT:
        lines += [
            "The diff below is what `pulumi up` of the compared commit would change to make Azure match",
            "the code again (`pulumi preview --refresh --expect-no-changes --diff`). Nothing was changed:",
            "this check never writes state. To resolve, either put the code back in charge -",
            f"`pulumi up --stack {args.stack}` from a checkout of that commit reverts the manual change (so",
            "does the next `main` release, with main's code) - or keep the change: make it in the Pulumi",
            "program, open a pull request, let it deploy.",
            "",
        ]
    elif returncode != 0:
        lines += ["The output of the failed command (its full log is in the step above):", ""]
    body = trim_front(output, SUMMARY_BYTES).replace("```", "'''")
    lines += ["```diff", body.rstrip(), "```", ""]
    return "\n".join(lines)


def comment_body(args: argparse.Namespace, project: str, returncode: int, output: str) -> str:
    """The comment, at most COMMENT_CHARACTERS long. The output is escaped first and trimmed after: escaping
    lengthens it (`&` becomes 5 characters), so trimming first can still exceed GitHub's limit. Inside <pre>
    only `<`, `>` and `&` need escaping (HTML, "Escapable raw text"/text content), so quotes stay one
    character (html.escape quote=False)."""
    link = run_link()
    state = "Succeeded" if returncode == 0 else f"**{outcome(returncode, False, output)}**"
    commit = os.environ.get("GITHUB_SHA", "")[:12]
    where = f" at `{commit}`" if commit else ""
    log = f" ([run]({link}))" if link else ""
    opened = " open" if returncode != 0 else ""
    before = "\n".join(
        [
            heading(project, args.stack),
            "",
            f"{state}{where}{log}.",
            "",
            f"<details{opened}>",
            MARKER,
            "",
            "<pre>",
        ]
    )
    after = "\n".join(["</pre>", "</details>", ""])
    room = COMMENT_CHARACTERS - len(before) - len(after) - 2  # the two newlines around the output
    escaped = html.escape(output, quote=False).rstrip()
    return "\n".join([before, trim_front(escaped, room), after])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--cwd", type=Path, default=Path.cwd(), help="the Pulumi project directory")
    parser.add_argument("--policy-pack", action="append", default=[], help="passed to pulumi (repeatable)")
    parser.add_argument("--drift", action="store_true", help="--refresh --expect-no-changes, drift wording")
    parser.add_argument("--comment-on-pr", action="store_true", help="create or edit the PR comment")
    parser.add_argument("--title", default="", help="heading of the job summary")
    parser.add_argument("--note", type=Path, help="markdown to put under the summary heading")
    parser.add_argument(
        "--report", type=Path, help="also write the summary here (each step has its own summary file)"
    )
    parser.add_argument("--change-set", action="store_true", help="also write change_set=<digest> output")
    parser.add_argument(
        "--expect-change-set", help="only check the change set: fail unless it is this digest"
    )
    args = parser.parse_args(argv)
    if args.expect_change_set is not None:
        code, text = change_set_report(args)
        append("GITHUB_STEP_SUMMARY", text)
        if code != 0:
            print(f"::error title=Change set ({args.stack})::{text.splitlines()[0].removeprefix('### ')}")
        return code
    project = project_name(args.cwd)
    note = args.note.read_text(encoding="utf-8") if args.note and args.note.exists() else ""

    returncode, output = run_preview(args)
    text = summary(args, project, returncode, output, note)
    if args.report:
        args.report.write_text(text, encoding="utf-8")
    append("GITHUB_STEP_SUMMARY", text)
    if returncode != 0:
        print(f"::error title=pulumi preview ({args.stack})::{text.splitlines()[0].removeprefix('### ')}")
    elif args.change_set:
        code, text = change_set_report(args)
        append("GITHUB_STEP_SUMMARY", text)
        if code != 0:
            print(f"::error title=Change set ({args.stack})::{text.splitlines()[0].removeprefix('### ')}")
            return code

    if args.comment_on_pr:
        github = GitHub(
            os.environ.get("GITHUB_API_URL", "https://api.github.com"),
            os.environ.get("GITHUB_TOKEN", ""),
            os.environ.get("GITHUB_REPOSITORY", ""),
        )
        try:
            number = int(os.environ.get("PR_NUMBER", ""))
            action, comment_id = upsert(
                github, number, heading(project, args.stack), comment_body(args, project, returncode, output)
            )
        except (OSError, ValueError, KeyError) as error:
            print(f"::error title=PR comment ({args.stack})::could not write the preview comment: {error}")
            return returncode or 1
        print(f"PR comment {comment_id} {action}")
    return returncode


if __name__ == "__main__":
    sys.exit(main())
