"""Every stack-level pulumi command in the shell blocks of README.md and docs/ names its backend: through
scripts/stack (or make preview|up|refresh), or with PULUMI_BACKEND_URL set on the line or exported earlier in
the block. `pulumi login` is per machine, so a bare `pulumi preview --stack prod` reaches whatever container
the person last logged in to (stack/naming.py StateBackendNames: one container per environment)."""

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


def unaddressed(markdown: str) -> list[str]:
    """The shell-block lines of `markdown` that run a stack-level pulumi command naming no backend."""
    found = []
    for block in SHELL_BLOCK.finditer(markdown):
        exported = False
        for line in block.group("body").splitlines():
            code = re.split(r"(?:^|\s)#", line, maxsplit=1)[0]  # comments only describe
            if EXPORTED.search(code):
                exported = True
            if UNSET.search(code):
                exported = False
            for command in STACK_COMMAND.finditer(code):
                inline = "PULUMI_BACKEND_URL=" in code[: command.start() + 1]
                if not (exported or inline):
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
