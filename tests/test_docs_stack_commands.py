"""Every stack-level pulumi command in the shell blocks and inline code of README.md and docs/ names its
backend: through scripts/stack (or make preview|up|refresh), or with PULUMI_BACKEND_URL set on the line or
exported earlier in the block, and then the stack's own container (state-<stack>; `state` for the
bootstrap's `main`). `pulumi login` is per machine, so a bare `pulumi preview --stack prod` reaches whatever
container the person last logged in to (stack/naming.py StateBackendNames: one container per environment)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stack.files import REPO_ROOT

BACKEND = "PULUMI_BACKEND_URL"
EXPORTED = re.compile(rf"\bexport\s+{BACKEND}=")
UNSET = re.compile(rf"\bunset\s+{BACKEND}\b")
SHELL_BLOCK = re.compile(
    r"^(?P<indent>[ \t]*)```(?:bash|sh|shell|console)\n(?P<body>.*?)^(?P=indent)```", re.M | re.S
)
# Commands that read or write a stack (and so its backend); `login`, `version`, `plugin`, `policy` do not.
STACK_COMMAND = re.compile(
    r"(?:^|[\s;|&(`])pulumi\s+(up|update|preview|refresh|destroy|import|cancel|config|stack|state|watch)\b"
)
DOCS = sorted({REPO_ROOT / "README.md", *(REPO_ROOT / "docs").rglob("*.md")})
ANY_FENCE = re.compile(r"^[ \t]*```.*?^[ \t]*```", re.M | re.S)
INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
# Inline code is mostly a command's name in prose (`pulumi up`); it is a command to type when it addresses a
# stack's data: a stack flag, a config key, state surgery or an import file.
RUNNABLE_INLINE = re.compile(r"--stack\b|\s-s\s|\bmuse:|\bstate\s+unprotect\b|\bimport\s+--file\b")
CONTAINER = re.compile(rf"""{BACKEND}=["']?azblob://(?P<container>[^?"'\s/]+)""")
STACK_FLAG = re.compile(r"(?:--stack|\s-s)[ =](?P<stack>[\w.-]+)")


def _expected_container(stack: str) -> str:
    return "state" if stack == "main" else f"state-{stack}"


def unaddressed(markdown: str) -> list[str]:
    """The lines of `markdown` (its shell blocks, and its inline code that addresses a stack) that run a
    stack-level pulumi command naming no backend, or the container of another stack."""
    found = []
    blocks = [block.group("body") for block in SHELL_BLOCK.finditer(markdown)]
    prose = ANY_FENCE.sub("", markdown)
    spans = [span for span in INLINE_CODE.findall(prose) if RUNNABLE_INLINE.search(span)]
    for body in [*blocks, *spans]:
        container = ""
        for line in body.splitlines():
            code = re.split(r"(?:^|\s)#", line, maxsplit=1)[0]  # comments only describe
            if EXPORTED.search(code):
                named = CONTAINER.search(code)
                container = named["container"] if named else "?"
            if UNSET.search(code):
                container = ""
            for command in STACK_COMMAND.finditer(code):
                inline = CONTAINER.search(code[: command.start() + 1])
                given = inline.group("container") if inline else container
                if "PULUMI_BACKEND_URL=" in code[: command.start() + 1] and not given:
                    given = "?"  # a variable's value: not checkable here
                stack = STACK_FLAG.search(code[command.start() :])
                wrong = given not in ("", "?") and stack and given != _expected_container(stack["stack"])
                if not given or wrong:
                    found.append(line.strip())
    return found


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(REPO_ROOT)) for d in DOCS])
def test_every_stack_command_in_the_docs_names_its_backend(doc: Path) -> None:
    assert unaddressed(doc.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "line",
    [
        "pulumi preview --stack dev",
        'az aks get-credentials -g "$(pulumi stack output --stack prod resourceGroupName)"',
        "x=1; pulumi config set --stack prod muse:replicas 4",
        "MUSE_BOOTSTRAP_STAGE=vault pulumi up --stack prod",
    ],
)
def test_negative_control_a_bare_stack_command_is_caught(line: str) -> None:
    assert unaddressed(f"```bash\n{line}\n```\n") == [line]


@pytest.mark.parametrize(
    "line",
    [
        "PULUMI_BACKEND_URL='azblob://state?storage_account=x' pulumi up --stack prod",
        "PULUMI_BACKEND_URL=azblob://state-dev?storage_account=x pulumi destroy --stack prod",
        "export PULUMI_BACKEND_URL='azblob://state-prod?storage_account=x'; pulumi preview --stack dev",
    ],
)
def test_negative_control_another_stacks_container_is_caught(line: str) -> None:
    assert unaddressed(f"```bash\n{line}\n```\n") == [line]
    # The same command with its own container passes.
    right = re.sub(r"azblob://state(-\w+)?\?", "azblob://state-" + line.split()[-1] + "?", line)
    assert unaddressed(f"```bash\n{right}\n```\n") == []


def test_negative_control_inline_commands_count_when_they_address_a_stack() -> None:
    text = (
        "Then run `pulumi config set muse:imageTag <digest>` and `pulumi up --stack prod`; see `pulumi up`.\n"
    )
    assert unaddressed(text) == ["pulumi config set muse:imageTag <digest>", "pulumi up --stack prod"]
    assert unaddressed("Then run `scripts/stack prod config set muse:imageTag <digest>`.\n") == []


@pytest.mark.parametrize(
    "block",
    [
        "scripts/stack prod up --message x",
        "make up STACK=prod",
        'PULUMI_BACKEND_URL="azblob://state-prod?storage_account=$a" pulumi destroy --stack prod',
        'export PULUMI_BACKEND_URL="azblob://state-dev?storage_account=$a"\npulumi preview --stack dev',
        "pulumi login azblob://state?storage_account=x   # not a stack command",
        "# pulumi up --stack prod  (a comment)",
    ],
)
def test_negative_control_addressed_commands_pass(block: str) -> None:
    assert unaddressed(f"```bash\n{block}\n```\n") == []


def test_an_unset_backend_is_not_remembered() -> None:
    block = "export PULUMI_BACKEND_URL=x\nunset PULUMI_BACKEND_URL\npulumi up --stack dev"
    assert unaddressed(f"```bash\n{block}\n```\n") == ["pulumi up --stack dev"]
