"""The command catalogue recognises commands as shells and Python scripts run them, and nothing else."""

from __future__ import annotations

import pytest

from stack.files import REPO_ROOT
from verify.access.operations import code_lines, python_refreshing_previews, recognise, unrecognised


@pytest.mark.parametrize(
    ("line", "python", "expected"),
    [
        ('name="$(pulumi stack output registryName --stack dev)"', False, ["pulumi stack output"]),
        ('az acr import --name "$registry" --registry "$SOURCE_REGISTRY_ID" \\', False, ["az acr import"]),
        ('kubectl get "deployment/$deployment" --namespace "$namespace"', False, ["kubectl get deployment"]),
        ('["pulumi", "stack", "history", "--stack", stack, "--json"]', True, ["pulumi stack history"]),
        (
            'configured = run("pulumi config set", pulumi("config", "set", "--stack", stack))',
            True,
            ["pulumi config set"],
        ),
        ('attempt.steps.append(run("pulumi up", pulumi(*up)))', True, ["pulumi up"]),
        # Prose about a command is not the command (a negative control for each form).
        ('"The diff below is what `pulumi up` of the compared commit would change",', True, []),
        ('parser.add_argument("--policy-pack", help="passed to pulumi (repeatable)")', True, []),
    ],
)
def test_recognised_commands(line: str, python: bool, expected: list[str]) -> None:
    assert [c.key for c in recognise(line, python)] == expected
    assert not unrecognised(line, python)


def test_an_unknown_command_is_reported_in_either_language() -> None:
    assert unrecognised('az keyvault secret show --vault-name "$vault" --name token', python=False)
    assert unrecognised('subprocess.run(["az", "keyvault", "secret", "show"])', python=True)
    assert not unrecognised('return ["pulumi", *args, "--non-interactive"]', python=True)  # forwards only


def test_comments_docstrings_and_continuations() -> None:
    text = (
        '"""Usage:\n    pulumi up --stack dev\n"""\n'
        "# pulumi destroy\n"
        "az acr import --name r \\\n  --registry x\n"
    )
    assert [" ".join(line.split()) for line in code_lines(text)] == ["az acr import --name r --registry x"]


SCRIPT = """
def drift(args):
    command = ["pulumi", "preview", "--stack", args.stack, "--diff"]
    if args.drift:
        command += ["--refresh", "--expect-no-changes"]
    return command


def change_set(args):
    command = ["pulumi", "preview", "--stack", args.stack, "--json"]
    command.extend(["--color", "never"])
    return command


def help_text(parser):
    parser.add_argument("--drift", help="--refresh --expect-no-changes")
    title = "Drift" if parser else "pulumi preview"
"""


def test_a_preview_refreshes_only_when_its_own_command_carries_the_flag() -> None:
    # The command's own list and what its function adds to that name (ast), not a neighbouring string.
    refreshing = python_refreshing_previews(SCRIPT)
    assert refreshing == {'command = ["pulumi", "preview", "--stack", args.stack, "--diff"]'}
    previews = [line for line in code_lines(SCRIPT) if recognise(line, python=True)]
    # The title's "pulumi preview" is an expression, not a call's argument: no command.
    assert previews == [
        'command = ["pulumi", "preview", "--stack", args.stack, "--diff"]',
        'command = ["pulumi", "preview", "--stack", args.stack, "--json"]',
    ]


def test_negative_control_a_file_wide_flag_search_would_refresh_every_preview() -> None:
    # The former rule: `--refresh` anywhere in the file (here only in another function and a help text).
    file_wide = "--refresh" in "\n".join(code_lines(SCRIPT))
    assert file_wide
    assert 'command = ["pulumi", "preview", "--stack", args.stack, "--json"]' not in (
        python_refreshing_previews(SCRIPT)
    )


def test_the_change_set_previews_refresh_like_the_update() -> None:
    # preview-prod's digest and deploy-prod's check both come from preview_json; deploy.py's up refreshes.
    text = (REPO_ROOT / "scripts" / "ci" / "preview.py").read_text()
    json_preview = next(line for line in code_lines(text) if '"preview"' in line and '"--json"' in line)
    assert json_preview in python_refreshing_previews(text)
    assert '"--refresh"' in (REPO_ROOT / "scripts" / "ci" / "deploy.py").read_text()
