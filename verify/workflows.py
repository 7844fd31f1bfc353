"""The one reader of the GitHub Actions workflows (`.github/workflows/*.yml`): a typed model of what they say.

Used by the governance documents (export/governance/sources.py: what each job deploys and which gate protects
it), by the repository policy (scripts/workflow_policy.py) and by the workflow tests. Only what those need is
modelled; `raw` keeps each mapping as written for anything else. Key names follow GitHub's workflow syntax
(https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-syntax).
"""

from __future__ import annotations

import re
import shlex
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

    @property
    def file_name(self) -> str:
        return self.path.name


def _triggers(on: Any) -> dict[str, Any]:
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(str(t) for t in on)
    return dict(on or {})


def parse(text: str, path: Path | str = "workflow.yml") -> Workflow:
    """Parse a workflow's text. PyYAML reads the key `on` as the boolean True (YAML 1.1); it is put back."""
    document = yaml.safe_load(text) or {}
    if not isinstance(document, dict):
        raise ValueError(f"{path}: a workflow is a mapping, not {type(document).__name__}")
    if True in document:
        document["on"] = document.pop(True)
    permissions = document.get("permissions")
    concurrency = document.get("concurrency")
    jobs = _mapping(document.get("jobs"))
    return Workflow(
        path=Path(path),
        text=text,
        name=str(document.get("name", Path(path).stem)),
        triggers=_triggers(document.get("on")),
        permissions=dict(permissions) if isinstance(permissions, Mapping) else _text(permissions),
        env=_mapping(document.get("env")),
        defaults=_mapping(document.get("defaults")),
        concurrency=dict(concurrency) if isinstance(concurrency, Mapping) else _text(concurrency),
        jobs={str(job_id): Job.parse(str(job_id), job) for job_id, job in jobs.items()},
        raw=document,
    )


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


def static_condition(condition: Any) -> bool | None:
    """The value of an `if:` that needs no run-time context (a boolean, `${{ true }}`, `${{ 'a' != '' }}`),
    else None."""
    if isinstance(condition, bool):
        return condition
    match = STATIC_CONDITION.match(str(condition).strip()) if condition is not None else None
    if match is None:
        return None
    if match.group(1):
        return match.group(1) == "true"
    equal = match.group(2) == match.group(4)
    return equal if match.group(3) == "==" else not equal


def _without_true_condition(raw: Any) -> Any:
    """A job or step whose `if:` is statically true runs unconditionally: the `if:` goes."""
    if isinstance(raw, Mapping) and "if" in raw and static_condition(raw["if"]) is True:
        return {k: v for k, v in raw.items() if k != "if"}
    return raw


def called_job_id(caller: Job, called_id: str) -> str:
    """The model's id of a called workflow's job: `<caller job>.<called job>` (GitHub shows
    `<caller name> / <called name>`)."""
    return f"{caller.id}.{called_id}"


def expand_calls(workflow: Workflow, directory: Path) -> Workflow:
    """`workflow` with each job that calls a local reusable workflow replaced by the called workflow's jobs,
    as GitHub runs them (docs.github.com, "Reusing workflows"): the caller's `with:` values in place of
    `${{ inputs.* }}`, the caller's `needs` and `if` in front of the called jobs', the caller's
    permissions as the ceiling (a called job's own permissions can only narrow them), and the called jobs'
    ids prefixed with the caller's (`called_job_id`). Other jobs are kept as they are."""
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
        for called_id, called_job in called.jobs.items():
            if called_id in skipped:
                continue
            raw = _with_inputs(called_job.raw, inputs)
            raw["steps"] = [
                _without_true_condition(step)
                for step in raw.get("steps") or ()
                if not isinstance(step, Mapping) or static_condition(step.get("if")) is not False
            ]
            raw = _without_true_condition(raw)
            own_needs = raw.get("needs") or ()
            own_needs = [own_needs] if isinstance(own_needs, str) else list(own_needs)
            raw["needs"] = [*job.needs, *(called_job_id(job, n) for n in own_needs if n not in skipped)]
            if job.condition:
                raw["if"] = f"({job.condition}) && ({raw['if']})" if raw.get("if") else job.condition
            if "permissions" not in raw and job.permissions is not None:
                raw["permissions"] = job.permissions
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
            job_id: Job.parse(
                job_id,
                {**job.raw, "needs": [n for need in job.needs for n in expanded.get(need, [need])]},
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
