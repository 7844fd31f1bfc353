"""scripts/ci/reserved_host.py: a real deploy (scripts/ci/deploy.py) and the certificate script refuse a stack
whose ingress host is a reserved example name (RFC 2606), while the offline plan keeps working with it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from offline.engine import OfflinePlan
from stack.environments import ENVIRONMENTS
from stack.files import REPO_ROOT

CI = REPO_ROOT / "scripts" / "ci"
sys.path.insert(0, str(CI))
import reserved_host  # noqa: E402  (scripts/ci is not a package; deploy.py imports it the same way)


@pytest.mark.parametrize(
    "host",
    [
        "muse.example.com",
        "example.com",
        "MUSE.EXAMPLE.ORG.",
        "a.b.example.net",
        "muse.test",
        "muse.example",
        "x.invalid",
        "localhost",
        "muse.localhost",
    ],
)
def test_reserved_example_names_are_refused(host: str) -> None:
    assert reserved_host.reserved(host) is not None


@pytest.mark.parametrize(
    "host", ["muse.contoso.com", "example.co.uk", "myexample.com", "muse.examples.org", "test.muse.eu"]
)
def test_real_names_pass(host: str) -> None:
    # Negative control of the matcher: only the reserved names and their subdomains, not look-alikes.
    assert reserved_host.reserved(host) is None


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_the_line_reader_agrees_with_the_yaml_parser_on_the_stack_files(stack: str) -> None:
    config = yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    assert reserved_host.stack_ingress_host(stack, REPO_ROOT) == config.get("muse:ingressHost")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("  muse:ingressHost: muse.contoso.com", "muse.contoso.com"),
        ('  muse:ingressHost: "muse.contoso.com"  # the real one', "muse.contoso.com"),
        ("  muse:ingressHost: 'muse.example.com'", "muse.example.com"),
        ("  # muse:ingressHost: muse.example.com", None),
        ("    muse:ingressHost: nested.example.com", None),  # not a top-level config key
    ],
)
def test_the_line_reader_reads_the_forms_pulumi_and_people_write(
    tmp_path: Path, line: str, expected: str | None
) -> None:
    (tmp_path / "Pulumi.x.yaml").write_text(f"config:\n  muse:environment: prod\n{line}\n")
    assert reserved_host.stack_ingress_host("x", tmp_path) == expected


def test_the_committed_prod_placeholder_blocks_a_real_deploy_before_anything_runs(tmp_path: Path) -> None:
    # deploy.py exits 64 before its first command: no pulumi/kubectl on PATH is reached (PATH is empty).
    result = subprocess.run(
        [
            sys.executable,
            str(CI / "deploy.py"),
            "--stack",
            "prod",
            "--image-tag",
            "sha256:" + "a" * 64,
            "--commit",
            "c0ffee",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": str(tmp_path)},
        cwd=REPO_ROOT,
    )
    assert result.returncode == 64, result.stdout + result.stderr
    assert (
        "::error title=Placeholders (prod)::stack prod still carries 3 committed placeholder(s)"
        in result.stdout
    )
    for key in ("muse:ingressHost: muse.example.com", "muse:operatorsGroupObjectId", "muse:alertEmails"):
        assert key in result.stdout
    assert "RFC 2606" in result.stdout


def test_negative_control_dev_without_a_host_is_not_blocked() -> None:
    assert reserved_host.problem("dev", REPO_ROOT) is None
    assert reserved_host.problem("prod", REPO_ROOT) is not None


def test_the_offline_plan_still_takes_the_placeholder(plans: dict[str, OfflinePlan]) -> None:
    # `make plan STACK=prod` needs no real host: the check belongs to real deploys only.
    plan = plans["prod"]
    hosts = {
        h
        for r in plan.resources
        if r.type.startswith("kubernetes:gateway.networking.k8s.io/")
        for h in (r.properties.get("spec") or {}).get("hostnames") or []
    }
    assert "muse.example.com" in hosts
