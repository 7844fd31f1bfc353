"""The command catalogue recognises commands as shells and Python scripts run them, and nothing else."""

from __future__ import annotations

import pytest

from export.access.operations import code_lines, recognise, unrecognised


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
