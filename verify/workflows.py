"""The one reader of the GitHub Actions workflows (`.github/workflows/*.yml`): a typed model of what they say.

Used by the governance documents (export/governance/sources.py: what each job deploys and which gate protects
it), by the repository policy (scripts/workflow_policy.py) and by the workflow tests. Only what those need is
modelled; `raw` keeps each mapping as written for anything else. Key names follow GitHub's workflow syntax
(https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-syntax).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stack.files import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
PULUMI_ACTION = "pulumi/actions"
EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.DOTALL)
# The repository's scripts that run a Pulumi command themselves, and which: the workflows call them instead of
# pulumi/actions' `command:`, whose output, PR comment and summary exist only when the command succeeded
# (scripts/ci/preview.py says why). Their flags follow the Pulumi CLI's (`--stack`, `--policy-pack`), and
# tests/workflows/ runs each against a `pulumi` stand-in, so what the model reads here is what they run.
PULUMI_SCRIPTS = {"scripts/ci/deploy.py": "up", "scripts/ci/preview.py": "preview"}
# Where main.yml's prod jobs check out main's head (github.sha) to run its checks on an older released commit.
RELEASE_CHECKS_PATH = ".ci-tools"


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class Step:
    name: str | None
    id: str | None
    uses: str | None  # `owner/repo[/path]@ref`, `./local`, or `docker://image`
    inputs: dict[str, Any]  # `with:`
    run: str | None
    env: dict[str, Any]
    condition: str | None  # `if:`
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def parse(cls, raw: Any) -> Step:
        step = _mapping(raw)
        return cls(
            name=_text(step.get("name")),
            id=_text(step.get("id")),
            uses=step["uses"] if isinstance(step.get("uses"), str) else None,
            inputs=_mapping(step.get("with")),
            run=step["run"] if isinstance(step.get("run"), str) else None,
            env=_mapping(step.get("env")),
            condition=_text(step.get("if")),
            raw=step,
        )

    @property
    def action(self) -> str | None:
        """`owner/repo` (or `owner/repo/path`) of a `uses:` step, lower case, without the ref."""
        return self.uses.split("@", 1)[0].lower() if self.uses else None

    @property
    def script_call(self) -> tuple[str, ...] | None:
        """The arguments of the line of this `run:` that calls one of PULUMI_SCRIPTS (script first)."""
        for line in (self.run or "").replace("\\\n", " ").splitlines():
            try:
                words = shlex.split(line, comments=True)
            except ValueError:
                continue
            # `exec script ...`: the shell replaces itself, so the runner's signals reach the script.
            words = words[1:] if words[:1] == ["exec"] else words
            script = words[0].removeprefix("./").removeprefix(f"{RELEASE_CHECKS_PATH}/") if words else ""
            if script in PULUMI_SCRIPTS:
                return (script, *words[1:])
        return None

    def script_option(self, name: str) -> list[str]:
        """Every value of `--name value` / `--name=value` in the script call."""
        words = self.script_call or ()
        values = [w.split("=", 1)[1] for w in words if w.startswith(f"{name}=")]
        values += [words[i + 1] for i, w in enumerate(words[:-1]) if w == name]
        return values

    @property
    def pulumi_command(self) -> str | None:
        """The Pulumi command this step runs: pulumi/actions' `command:`, or that of a PULUMI_SCRIPTS call."""
        if self.action == PULUMI_ACTION:
            return str(self.inputs["command"]) if self.inputs.get("command") else None
        call = self.script_call
        return PULUMI_SCRIPTS[call[0]] if call else None

    @property
    def policy_packs(self) -> tuple[str, ...]:
        if self.action == PULUMI_ACTION:
            return tuple(str(self.inputs["policyPacks"]).split()) if self.inputs.get("policyPacks") else ()
        return tuple(self.script_option("--policy-pack"))

    @property
    def comments_on_pr(self) -> bool:
        if self.action == PULUMI_ACTION:
            return str(self.inputs.get("comment-on-pr")).lower() == "true"
        return self.script_call is not None and "--comment-on-pr" in self.script_call

    @property
    def stack_name(self) -> str | None:
        """The stack as written (`dev`, `${{ matrix.stack }}`, `"$STACK"` -> `$STACK`)."""
        if self.action == PULUMI_ACTION:
            return _text(self.inputs.get("stack-name"))
        stacks = self.script_option("--stack")
        return stacks[0] if stacks else None


@dataclass(frozen=True)
class Job:
    id: str
    name: str
    permissions: dict[str, Any] | str | None  # None: not set (inherits the workflow's)
    environment: str | None  # the GitHub environment's name (`environment: x` or `environment: {name: x}`)
    needs: tuple[str, ...]
    condition: str | None  # `if:`
    steps: tuple[Step, ...]
    strategy: dict[str, Any]
    matrix: dict[str, Any]  # strategy.matrix
    env: dict[str, Any]
    concurrency: dict[str, Any] | str | None
    timeout_minutes: Any
    outputs: dict[str, Any]
    uses: str | None  # a reusable workflow instead of steps
    raw: dict[str, Any] = field(repr=False)
    # The job as written, before the setup jobs' outputs were put in (`resolve_setup_outputs`); None when
    # the job reads none of them.
    written: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, job_id: str, raw: Any) -> Job:
        job = _mapping(raw)
        environment = job.get("environment")
        if isinstance(environment, Mapping):
            environment = environment.get("name")
        needs = job.get("needs") or ()
        strategy = _mapping(job.get("strategy"))
        permissions = job.get("permissions")
        concurrency = job.get("concurrency")
        return cls(
            id=job_id,
            name=str(job.get("name", job_id)),
            permissions=dict(permissions) if isinstance(permissions, Mapping) else _text(permissions),
            environment=_text(environment),
            needs=(needs,) if isinstance(needs, str) else tuple(str(n) for n in needs),
            condition=_text(job.get("if")),
            steps=tuple(Step.parse(s) for s in job.get("steps") or ()),
            strategy=strategy,
            matrix=_mapping(strategy.get("matrix")),
            env=_mapping(job.get("env")),
            concurrency=dict(concurrency) if isinstance(concurrency, Mapping) else _text(concurrency),
            timeout_minutes=job.get("timeout-minutes"),
            outputs=_mapping(job.get("outputs")),
            uses=_text(job.get("uses")),
            raw=job,
        )

    def uses_action(self, action: str) -> bool:
        return any(step.action == action for step in self.steps)

    def steps_of(self, action: str) -> list[Step]:
        return [step for step in self.steps if step.action == action]

    @property
    def pulumi_steps(self) -> list[Step]:
        """The steps that run a Pulumi command (pulumi/actions with `command:`, or a PULUMI_SCRIPTS call)."""
        return [s for s in self.steps if s.pulumi_command]

    @property
    def pulumi_commands(self) -> list[str]:
        """The Pulumi command of each such step (preview, up, ...)."""
        return [str(s.pulumi_command) for s in self.pulumi_steps]

    def run_scripts(self) -> Iterator[tuple[int, str]]:
        """(step index, script) of every `run:` step."""
        for index, step in enumerate(self.steps):
            if step.run is not None:
                yield index, step.run


@dataclass(frozen=True)
class Workflow:
    path: Path
    text: str
    name: str
    triggers: dict[str, Any]  # event -> its filter (None when the event has none)
    permissions: dict[str, Any] | str | None  # None: not set (GitHub's default token permissions)
    env: dict[str, Any]
    defaults: dict[str, Any]
    concurrency: dict[str, Any] | str | None
    jobs: dict[str, Job]
    raw: dict[str, Any] = field(repr=False)
    # job id -> its outputs, for the jobs whose outputs the model computes (ENVIRONMENTS_STEP).
    setup_outputs: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def file_name(self) -> str:
        return self.path.name


def _triggers(on: Any) -> dict[str, Any]:
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(str(t) for t in on)
    return dict(on or {})


# The access model, the workflow tests and the linters parse the same files again; pure-Python PyYAML is the
# cost, so each text's parse is kept and every caller gets its own copy (docs/benchmarks.md, "Test loop").
@functools.lru_cache(maxsize=128)
def _document(text: str) -> Any:
    return yaml.safe_load(text)


def parse(text: str, path: Path | str = "workflow.yml") -> Workflow:
    """Parse a workflow's text. PyYAML reads the key `on` as the boolean True (YAML 1.1); it is put back."""
    document = copy.deepcopy(_document(text)) or {}
    if not isinstance(document, dict):
        raise ValueError(f"{path}: a workflow is a mapping, not {type(document).__name__}")
    if True in document:
        document["on"] = document.pop(True)
    permissions = document.get("permissions")
    concurrency = document.get("concurrency")
    jobs = {
        str(job_id): Job.parse(str(job_id), job) for job_id, job in _mapping(document.get("jobs")).items()
    }
    outputs = {
        job_id: found
        for job_id, job in jobs.items()
        if (found := setup_outputs(job, repository_root(Path(path))))
    }
    return Workflow(
        path=Path(path),
        text=text,
        name=str(document.get("name", Path(path).stem)),
        triggers=_triggers(document.get("on")),
        permissions=dict(permissions) if isinstance(permissions, Mapping) else _text(permissions),
        env=_mapping(document.get("env")),
        defaults=_mapping(document.get("defaults")),
        concurrency=dict(concurrency) if isinstance(concurrency, Mapping) else _text(concurrency),
        jobs={job_id: resolve_setup_outputs(job, outputs) for job_id, job in jobs.items()},
        raw=document,
        setup_outputs=outputs,
    )


# The setup step of every workflow with per-environment jobs: it appends the environments of
# stack/environments.txt to $GITHUB_OUTPUT (cli/environments.py --github-output). Its outputs depend on the
# repository alone, so the model runs it (as the runner does: bash, the repository as working directory, the
# file GITHUB_OUTPUT names) and puts what it wrote where the jobs that need it read
# `needs.<job>.outputs.<name>` - a matrix, an env value - as GitHub does before it expands a matrix.
ENVIRONMENTS_STEP = 'python3 -m cli.environments --github-output >> "$GITHUB_OUTPUT"'
STEP_OUTPUT = re.compile(r"^\$\{\{\s*steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)\s*\}\}$")
NEEDS_OUTPUT = re.compile(r"\$\{\{\s*needs\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)\s*\}\}")
FROM_JSON_NEEDS = re.compile(
    r"^\$\{\{\s*fromJSON\(\s*needs\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)\s*\)\s*\}\}$"
)


def repository_root(path: Path) -> Path:
    """The repository a workflow file belongs to (`<root>/.github/workflows/<file>`), else this one."""
    parent = path.resolve().parent
    return parent.parents[1] if parent.name == "workflows" and parent.parent.name == ".github" else REPO_ROOT


@functools.lru_cache(maxsize=32)
def _step_outputs(script: str, root: Path) -> dict[str, str]:
    """What `script` appends to $GITHUB_OUTPUT, run in `root` (`name=value` lines; docs.github.com,
    "Workflow commands for GitHub Actions", setting an output parameter)."""
    with tempfile.TemporaryDirectory() as directory:
        output = Path(directory) / "output"
        output.touch()
        # python3 of this interpreter's environment (the runner's is on PATH there).
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        subprocess.run(
            ["bash", "-eo", "pipefail", "-c", script],
            cwd=root,
            env={**os.environ, "PATH": path, "GITHUB_OUTPUT": str(output)},
            check=True,
            timeout=60,
        )
        lines = output.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def setup_outputs(job: Job, root: Path) -> dict[str, str]:
    """The outputs of `job` that come from an ENVIRONMENTS_STEP step, computed by running it."""
    steps = {
        s.id: _step_outputs(s.run, root)
        for s in job.steps
        if s.id and (s.run or "").strip() == ENVIRONMENTS_STEP
    }
    found = {}
    for name, value in job.outputs.items():
        match = STEP_OUTPUT.match(str(value).strip())
        if match and match.group(2) in steps.get(match.group(1), {}):
            found[name] = steps[match.group(1)][match.group(2)]
    return found


def _with_needs(value: Any, outputs: Mapping[str, Mapping[str, str]]) -> Any:
    if isinstance(value, str):
        whole = FROM_JSON_NEEDS.match(value.strip())
        if whole and whole.group(2) in outputs.get(whole.group(1), {}):
            return json.loads(outputs[whole.group(1)][whole.group(2)])
        return NEEDS_OUTPUT.sub(lambda m: outputs.get(m.group(1), {}).get(m.group(2), m.group(0)), value)
    if isinstance(value, Mapping):
        return {k: _with_needs(v, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_needs(v, outputs) for v in value]
    return value


def resolve_setup_outputs(job: Job, outputs: Mapping[str, Mapping[str, str]]) -> Job:
    """`job` with the computed outputs of the jobs it `needs` in place of `needs.<job>.outputs.<name>` (the
    needs context holds a job's direct needs only: "Contexts reference", needs). A matrix written
    `${{ fromJSON(needs.<job>.outputs.<name>) }}` becomes the list ("Using a matrix for your jobs")."""
    known = {n: outputs[n] for n in job.needs if n in outputs}
    if not known:
        return job
    return dataclasses.replace(Job.parse(job.id, _with_needs(job.raw, known)), written=job.raw)


def load(path: Path | str) -> Workflow:
    path = Path(path)
    return parse(path.read_text(encoding="utf-8"), path)


def workflow_files(directory: Path = WORKFLOWS) -> list[Path]:
    return sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")])


# A job that calls a reusable workflow of this repository (`uses: ./.github/workflows/<file>`).
LOCAL_CALL = re.compile(r"^\./\.github/workflows/(?P<file>[^@]+\.ya?ml)$")
INPUT = re.compile(r"\$\{\{\s*inputs\.([A-Za-z0-9_-]+)\s*\}\}")


INPUT_IN_EXPRESSION = re.compile(r"\binputs\.([A-Za-z0-9_-]+)")
STATIC_CONDITION = re.compile(r"^\$\{\{\s*(?:(true|false)|'([^']*)'\s*(==|!=)\s*'([^']*)')\s*\}\}$")


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "'" + str(value).replace("'", "''") + "'"


def _with_inputs(value: Any, inputs: Mapping[str, Any]) -> Any:
    """`value` with each `${{ inputs.<name> }}` replaced by the caller's `with:` value (a whole-string
    reference keeps the value's type, as GitHub passes booleans and numbers), and `inputs.<name>` inside a
    larger expression by its literal (`'text'`, `true`)."""
    if isinstance(value, str):
        whole = INPUT.fullmatch(value.strip())
        if whole and whole.group(1) in inputs:
            return inputs[whole.group(1)]
        value = INPUT.sub(lambda m: str(inputs.get(m.group(1), m.group(0))), value)
        return EXPRESSION.sub(
            lambda e: INPUT_IN_EXPRESSION.sub(
                lambda m: _literal(inputs[m.group(1)]) if m.group(1) in inputs else m.group(0), e.group(0)
            ),
            value,
        )
    if isinstance(value, Mapping):
        return {k: _with_inputs(v, inputs) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_inputs(v, inputs) for v in value]
    return value


# The tokens of a GitHub expression (docs.github.com, "Evaluate expressions in workflows and actions"):
# string literals, operators, parentheses, and anything else as one opaque word (a context path, a number,
# a function call, which `_simplify` never evaluates).
TOKEN = re.compile(r"\s*('(?:[^']|'')*'|&&|\|\||==|!=|!|\(|\)|[^\s()!=&|']+(?:\([^()]*\))?)")
Node = tuple[Any, ...]


def _parse(text: str) -> Node | None:
    """An `if:` as a tree of ("lit", bool|str), ("word", text), ("not", n), ("cmp", op, a, b),
    ("and"|"or", [n...]); None when it uses anything else (the condition is then kept as written)."""
    tokens, position = [], 0
    text = text.strip()
    whole = re.fullmatch(r"\$\{\{(.*)\}\}", text, re.DOTALL)
    text = whole.group(1) if whole else text
    while position < len(text.rstrip()):
        match = TOKEN.match(text, position)
        if match is None:
            return None
        tokens.append(match.group(1))
        position = match.end()
    index = 0

    def peek() -> str | None:
        return tokens[index] if index < len(tokens) else None

    def take() -> str:
        nonlocal index
        index += 1
        return tokens[index - 1]

    def chain(kind: str, operator: str, operand: Any) -> Node:
        items = [operand()]
        while peek() == operator:
            take()
            items.append(operand())
        return items[0] if len(items) == 1 else (kind, items)

    def primary() -> Node:
        token = take()
        if token == "(":  # noqa: S105 (a parenthesis)
            node = chain("or", "||", lambda: chain("and", "&&", unary))
            if take() != ")":
                raise ValueError(text)
            return node
        if token.startswith("'"):
            return ("lit", token[1:-1].replace("''", "'"))
        if token in ("true", "false"):
            return ("lit", token == "true")  # noqa: S105 (an expression literal, not a password)
        if token in ("&&", "||", "==", "!=", ")", "!"):
            raise ValueError(text)
        return ("word", token)

    def comparison() -> Node:
        left = primary()
        if peek() in ("==", "!="):
            return ("cmp", take(), left, primary())
        return left

    def unary() -> Node:
        if peek() == "!":
            take()
            return ("not", unary())
        return comparison()

    try:
        node = chain("or", "||", lambda: chain("and", "&&", unary))
    except (ValueError, IndexError):
        return None
    return node if index == len(tokens) else None


def _simplify(node: Node, known: Mapping[str, str]) -> Node:
    """`node` with literal comparisons, `!` of a literal boolean and `&&`/`||` with a literal operand folded;
    a word in `known` (e.g. `needs.preview.result` of a called job left out) is that literal."""
    kind = node[0]
    if kind == "word":
        return ("lit", known[node[1]]) if node[1] in known else node
    if kind == "not":
        inner = _simplify(node[1], known)
        return ("lit", not inner[1]) if inner[0] == "lit" and isinstance(inner[1], bool) else ("not", inner)
    if kind == "cmp":
        left, right = _simplify(node[2], known), _simplify(node[3], known)
        if left[0] == "lit" and right[0] == "lit":
            return ("lit", (left[1] == right[1]) == (node[1] == "=="))
        return ("cmp", node[1], left, right)
    if kind in ("and", "or"):
        absorbing = kind == "or"  # true absorbs an `or`, false an `and`
        items = []
        for item in (_simplify(i, known) for i in node[1]):
            if item[0] == "lit" and isinstance(item[1], bool):
                if item[1] is absorbing:
                    return item
                continue
            items.append(item)
        if not items:
            return ("lit", not absorbing)
        return items[0] if len(items) == 1 else (kind, items)
    return node


def _render(node: Node, parent: str = "or") -> str:
    kind = node[0]
    if kind == "lit":
        return _literal(node[1])
    if kind == "word":
        return str(node[1])
    if kind == "not":
        inner = _render(node[1], "not")
        return f"!{inner}"
    if kind == "cmp":
        text = f"{_render(node[2], 'cmp')} {node[1]} {_render(node[3], 'cmp')}"
        return f"({text})" if parent == "not" else text
    text = (" && " if kind == "and" else " || ").join(_render(i, kind) for i in node[1])
    needs_parentheses = parent == "not" or (kind == "or" and parent in ("and", "cmp"))
    return f"({text})" if needs_parentheses else text


def fold_condition(condition: Any, known: Mapping[str, str] | None = None) -> bool | str | None:
    """An `if:` after what needs no run-time context is evaluated: True or False when nothing is left, else
    the rest as text (without `${{ }}`, which `if:` does not need); None for no condition. A condition this
    reader cannot parse is returned as written."""
    if condition is None or isinstance(condition, bool):
        return condition
    tree = _parse(str(condition))
    if tree is None:
        return str(condition)
    folded = _simplify(tree, known or {})
    if folded[0] == "lit" and isinstance(folded[1], bool):
        return bool(folded[1])
    return _render(folded)


def static_condition(condition: Any) -> bool | None:
    """The value of an `if:` that needs no run-time context (a boolean, `${{ true }}`, `${{ 'a' != '' }}`,
    `${{ !false && 'a' == 'a' }}`), else None."""
    folded = fold_condition(condition)
    return folded if isinstance(folded, bool) else None


# GITHUB_TOKEN permission levels, in order (docs.github.com, "Workflow syntax", permissions).
LEVELS = {"none": 0, "read": 1, "write": 2}


def _as_map(permissions: dict[str, Any] | str | None) -> dict[str, str] | None:
    """A permissions mapping as scope -> level; None for the string forms (`read-all`, `write-all`)."""
    return {str(k): str(v) for k, v in permissions.items()} if isinstance(permissions, dict) else None


def elevations(requested: dict[str, Any] | str | None, allowed: dict[str, Any] | str | None) -> list[str]:
    """Each scope where `requested` (a called job's or called workflow's permissions) exceeds `allowed` (the
    calling job's): GitHub refuses to start such a run ("Reusable workflows reference": the GITHUB_TOKEN
    permissions passed from the caller can only be downgraded, not elevated, by the called workflow; the run
    fails with "The nested job ... is requesting '<scope>: <level>', but is only allowed '<level>'")."""
    wanted, ceiling = _as_map(requested), _as_map(allowed)
    if wanted is None or ceiling is None:
        return [] if requested is None else ([] if requested == allowed else [f"{requested} > {allowed}"])
    return [
        f"{scope}: {level} (allowed: {ceiling.get(scope, 'none')})"
        for scope, level in wanted.items()
        if LEVELS.get(level, 2) > LEVELS.get(ceiling.get(scope, "none"), 0)
    ]


def _folded(raw: Any, known: Mapping[str, str]) -> Any:
    """A called job or step with its `if:` folded (`fold_condition`): gone when statically true."""
    if not isinstance(raw, Mapping) or "if" not in raw:
        return raw
    folded = fold_condition(raw["if"], known)
    if folded is True:
        return {k: v for k, v in raw.items() if k != "if"}
    return {**raw, "if": folded}


def called_job_id(caller: Job, called_id: str) -> str:
    """The model's id of a called workflow's job: `<caller job>.<called job>` (GitHub shows
    `<caller name> / <called name>`)."""
    return f"{caller.id}.{called_id}"


def expand_calls(workflow: Workflow, directory: Path) -> Workflow:
    """`workflow` with each job that calls a local reusable workflow replaced by the called workflow's jobs,
    as GitHub runs them (docs.github.com, "Reusing workflows"): the caller's `with:` values in place of
    `${{ inputs.* }}`, the caller's `needs` and `if` in front of the called jobs', the caller's
    permissions as the ceiling (a called job's own permissions can only narrow them), and the called jobs'
    ids prefixed with the caller's (`called_job_id`). Other jobs are kept as they are.

    Also as GitHub runs them: the called workflow's `env` applies to its jobs, the caller's does not
    ("Reusable workflows reference", Limitations); a called job's token is its own `permissions`, else the
    called workflow's, else what the call grants, and one that asks for more than the call grants makes GitHub
    refuse the run (ValueError here); `if:` conditions the inputs decide are folded (`fold_condition`), a job
    left out reporting `skipped` to the jobs that need it. A status function left in a called job's `if:`
    (e.g. `!cancelled()`) sees the called workflow's jobs only: the call starts only once the caller's
    `needs` succeeded."""
    jobs: dict[str, Job] = {}
    for job_id, job in workflow.jobs.items():
        match = LOCAL_CALL.match(job.uses or "")
        if match is None:
            jobs[job_id] = job
            continue
        called = load(directory / match.group("file"))
        defaults = {
            name: spec.get("default")
            for name, spec in _mapping(_mapping(called.triggers.get("workflow_call")).get("inputs")).items()
            if isinstance(spec, Mapping) and "default" in spec
        }
        inputs = {**defaults, **_mapping(job.raw.get("with"))}
        # A called job or step whose `if:` the inputs decide statically is left out when false (GitHub
        # skips it); a `needs` of a left-out job is dropped with it.
        skipped = {
            called_id
            for called_id, called_job in called.jobs.items()
            if static_condition(_with_inputs(called_job.raw.get("if"), inputs)) is False
        }
        # What a left-out job reports to the jobs that need it (GitHub: a job whose `if:` is false is
        # skipped; `needs.<job>.result` is then 'skipped').
        known = {f"needs.{s}.result": "skipped" for s in skipped}
        for called_id, called_job in called.jobs.items():
            if called_id in skipped:
                continue
            raw = _with_inputs(called_job.raw, inputs)
            raw["steps"] = [
                _folded(step, known)
                for step in raw.get("steps") or ()
                if not isinstance(step, Mapping) or static_condition(step.get("if")) is not False
            ]
            raw = _folded(raw, known)
            own_needs = raw.get("needs") or ()
            own_needs = [own_needs] if isinstance(own_needs, str) else list(own_needs)
            raw["needs"] = [*job.needs, *(called_job_id(job, n) for n in own_needs if n not in skipped)]
            if job.condition:
                raw["if"] = f"({job.condition}) && ({raw['if']})" if raw.get("if") else job.condition
            # The token a called job gets: its own `permissions:`, else the called workflow's, else what the
            # call grants (the calling job's, else the caller workflow's); never more than the call grants.
            ceiling = job.permissions if job.permissions is not None else workflow.permissions
            own = raw.get("permissions", called.permissions)
            too_much = elevations(own, ceiling)
            if too_much:
                raise ValueError(
                    f"{workflow.file_name} job {job.id}: {called.file_name} job {called_id} requests more "
                    f"than the call grants ({'; '.join(too_much)}); GitHub refuses to start the run"
                )
            if own is not None:
                raw["permissions"] = own
            elif ceiling is not None:
                raw["permissions"] = ceiling
            # The called workflow's own `env:` applies to its jobs, not the caller's.
            raw["env"] = {**_with_inputs(called.env, inputs), **_mapping(raw.get("env"))}
            expanded_id = called_job_id(job, called_id)
            jobs[expanded_id] = Job.parse(expanded_id, raw)
    # A `needs` of a calling job waits for every job of its call (GitHub: the caller job completes when the
    # called workflow does).
    expanded = {
        caller: [i for i in jobs if i.startswith(f"{caller}.")]
        for caller in workflow.jobs
        if caller not in jobs
    }
    if expanded:
        jobs = {
            job_id: dataclasses.replace(
                Job.parse(
                    job_id,
                    {**job.raw, "needs": [n for need in job.needs for n in expanded.get(need, [need])]},
                ),
                written=job.written,
            )
            for job_id, job in jobs.items()
        }
    return Workflow(
        path=workflow.path,
        text=workflow.text,
        name=workflow.name,
        triggers=workflow.triggers,
        permissions=workflow.permissions,
        env=workflow.env,
        defaults=workflow.defaults,
        concurrency=workflow.concurrency,
        jobs=jobs,
        raw=workflow.raw,
    )


def load_all(directory: Path = WORKFLOWS, *, expand: bool = True) -> list[Workflow]:
    """Every workflow of `directory`; with `expand`, local reusable-workflow calls replaced by the jobs they
    run (`expand_calls`), so what a job deploys and as whom reads the same as for a job written in place."""
    loaded = [load(path) for path in workflow_files(directory)]
    return [expand_calls(w, directory) for w in loaded] if expand else loaded
