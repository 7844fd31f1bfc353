"""Which tests are `slow`: the ones `make test-fast` leaves out (`-m "not slow and not container"`).

`make test` (what CI runs) runs them all. A test is slow when it takes seconds rather than milliseconds on
the project's 2-core machine: it runs a whole external tool, a real process, the whole repository, or the
Pulumi program again beyond the dev and prod plans every session shares (tests/conftest.py). The list is kept
here, in one place with the reason for each group, rather than as decorators spread over the test files;
tests/conftest.py registers `SlowMarker`, which applies it at collection, and a listed test that no longer
exists is an error, so a rename cannot silently move a slow test into the fast loop. Measure with
`pytest --durations=30`.

An entry is a test file, a test function or method (all its parameters; `file::test` or
`file::Class::test`), or one parametrized case (`file::test[id]`). The guard checks each entry whose file was
collected: the function or method must exist in its module (the class resolved first, then the method), and a
case's id must be one pytest generated for that function. The ids are the ones pytest generates when it
collects the module, before `--lf`, `-k`, `--deselect` or a node id on the command line narrows the run, so
a partial run is not mistaken for a rename.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import pytest

SLOW: dict[str, str] = {
    # A whole external tool over the repository or the rendered artifacts (5-60 s each).
    "tests/export/test_bicep_static.py::test_checkov_bicep_checks_pass_with_no_parsing_errors": "checkov",
    "tests/deploy/test_deploy.py::test_checkov_kubernetes_checks_report_no_failure": "checkov",
    "tests/container/test_dockerfile_lint.py::test_checkov_dockerfile_checks_clean": "checkov",
    "tests/test_code_quality.py::test_python_code_is_clean[mypy]": "mypy over every package",
    "tests/security/test_no_secrets.py::test_detect_secrets_finds_nothing_that_is_not_allow_listed": (
        "detect-secrets over the repository"
    ),
    "tests/security/test_no_secrets.py::test_every_allow_list_entry_is_still_needed": (
        "detect-secrets over the repository"
    ),
    "tests/workflows/test_workflow_tools.py::test_actionlint_is_clean_on_the_workflows": "actionlint",
    "tests/workflows/test_ci_lock.py::test_every_locked_package_has_a_runner_wheel_whose_hash_is_locked": (
        "pip resolves the whole CI lock"
    ),
    "tests/workflows/test_ci_lock.py::test_negative_control_a_lock_without_a_wheel_hash_fails": (
        "pip resolves the whole CI lock"
    ),
    "tests/workflows/test_workflow_tools.py::test_actionlint_catches_a_broken_workflow": "actionlint",
    "tests/workflows/test_workflow_tools.py::test_zizmor_has_no_medium_or_high_finding": "zizmor",
    "tests/workflows/test_workflow_tools.py::test_zizmor_flags_each_defect_the_policy_no_longer_checks": (
        "zizmor, once per case"
    ),
    "tests/deploy/test_deploy.py::test_overlays_pass_kubernetes_validate_strict": "kubernetes-validate",
    "tests/deploy/test_deploy.py::test_base_files_pass_kubernetes_validate_strict": "kubernetes-validate",
    "tests/deploy/test_deploy.py::test_kubernetes_validate_strict_rejects_an_unknown_field": (
        "kubernetes-validate"
    ),
    "tests/test_architecture.py": "lint-imports over every package",
    # The whole repository: every generated artifact rendered, or plans of git worktrees.
    "tests/export/test_drift.py": "renders every generated artifact, some tests twice",
    "tests/governance/test_plan_diff.py::test_diff_between_two_commits_shows_the_known_changes": (
        "plans of two git worktrees"
    ),
    "tests/governance/test_plan_diff.py::test_working_tree_against_a_commit": "plans of a git worktree",
    "tests/governance/test_plan_diff.py::test_cli_prints_markdown_and_rejects_unknown_refs": (
        "plans of a git worktree"
    ),
    "tests/offline/test_engine.py::test_make_plan_runs_as_a_fresh_process": "make plan in a new interpreter",
    "tests/offline/test_engine.py::test_plan_json_is_a_muse_inventory": "the plan CLI end to end",
    # Real processes with real timing: servers started and stopped by signals, scripts run against stubs.
    "tests/service/test_service_process.py": "python -m muse serve, drains of 1-9 s",
    "tests/service/test_service_hostile.py::test_idle_and_slow_heads_are_closed_at_the_header_timeout": (
        "waits for the 1 s head deadline"
    ),
    "tests/service/test_service_hostile.py::test_header_timeout_negative_control_uvicorns_own_protocol": (
        "waits 4 s on an idle connection"
    ),
    "tests/service/test_service_hostile.py::test_a_body_not_sent_in_time_is_408_json": (
        "the 1 s body deadline"
    ),
    "tests/service/test_service_hostile.py::test_healthz_within_1_s_during_the_heaviest_evaluation": (
        "the heaviest accepted evaluation, probed"
    ),
    "tests/service/test_service_hostile.py::test_probe_negative_control_evaluation_on_the_loop": (
        "an 8,000-container evaluation on the loop, probed"
    ),
    "tests/service/test_service_hostile.py::test_violation_cap_negative_control_uncapped_evaluation": (
        "100,000 violations"
    ),
    "tests/bootstrap/test_bootstrap_script.py": "the bootstrap script against stub CLIs",
    "tests/governance/test_governance_cli.py::test_real_process_exit_codes_and_stdin": "the CLI as a process",
    "tests/workflows/test_ci_scripts.py": "the CI scripts with curl and stub CLIs, retries included",
    # The Pulumi program run again with other configuration (1.5-4 s each on 2 cores).
    "tests/program/test_identity_wiring.py::"
    "test_image_push_identity_gets_acr_push_on_its_registry_only_when_configured": "two more program runs",
    "tests/program/test_observability_stack.py::test_alert_emails_from_config_reach_the_action_group": (
        "a program run per stack"
    ),
    "tests/program/test_stacks.py::test_config_change_reaches_the_resource": "a program run per stack",
    "tests/program/test_stacks.py::test_plans_are_deterministic": "the program run again",
    "tests/components/test_observability.py::test_workbook_name_is_stable_and_per_stack": (
        "two program runs per stack"
    ),
    "tests/components/test_observability.py::test_action_group_is_valid_without_addresses": "a program run",
    "tests/components/test_observability.py::"
    "test_workspace_retention_follows_the_stack_and_shared_keys_are_off": "a program run per stack",
    "tests/export/test_export_rules.py::test_the_real_mappings_export": "plans and Bicep of both stacks",
    "tests/export/test_equivalence.py": "the Bicep evaluated against the plan of every stack variant",
    "tests/export/test_export_rules.py::"
    "test_a_resource_only_some_plans_have_gets_the_condition_of_its_optional_parameter": "more program runs",
    "tests/deploy/test_workload.py::test_rollout_timeout_follows_the_config": "a program run",
    "tests/deploy/test_workload.py::test_a_digest_image_tag_deploys_by_digest": "a program run per stack",
    # The permission model: the bootstrap and both stacks planned again with the bootstrap's stack config,
    # then evaluated once per grant removed (negative controls).
    "tests/access/test_access_model.py": "the bootstrap and stack plans again, one evaluation per grant",
}


def _listed(nodeid: str) -> bool:
    return any(nodeid == entry or nodeid.startswith((f"{entry}[", f"{entry}::")) for entry in SLOW)


class CollectedTest(Protocol):
    """What the guard reads of a collected test (pytest.Function): its node id and its module."""

    @property
    def nodeid(self) -> str: ...

    @property
    def module(self) -> Any: ...


def _resolve(module: object, names: str) -> bool:
    """Whether `Class::test` (or `test`) names an attribute path that exists in the module."""
    found: object = module
    for name in names.split("::"):
        found = getattr(found, name, None)
        if found is None:
            return False
    return True


def stale_entries(generated: Iterable[CollectedTest]) -> list[str]:
    """The entries that name a test the collected files no longer have. `generated` is every test pytest
    generated in the collected files, whatever the run then selects: an entry whose file is not among them is
    not checked (its file was not collected)."""
    modules: dict[str, object] = {}
    generated_ids: set[str] = set()
    for test in generated:
        modules[test.nodeid.split("::", 1)[0]] = test.module
        generated_ids.add(test.nodeid)
    stale = []
    for entry in SLOW:
        path, _, test = entry.partition("::")
        if not test or path not in modules:
            continue
        names, case, _ = test.partition("[")
        if not _resolve(modules[path], names):
            stale.append(entry)
            continue
        if case:
            # The function's tests as generated: itself when it is not parametrized, else one per case. Empty
            # when its class was not collected (a node id elsewhere in the file): nothing to compare with.
            function = f"{path}::{names}"
            of_function = {i for i in generated_ids if i == function or i.startswith(f"{function}[")}
            if of_function and entry not in of_function:
                stale.append(entry)
    return stale


def mark(items: Sequence[pytest.Item], generated: Iterable[CollectedTest]) -> None:
    """Mark the listed tests among `items` `slow`; fail when an entry names a test that `generated` (every
    test pytest generated in the collected files) shows no longer exists."""
    for item in items:
        if _listed(item.nodeid):
            item.add_marker(pytest.mark.slow)
    stale = stale_entries(generated)
    if stale:
        raise pytest.UsageError(f"tests/slow.py lists tests that do not exist (renamed?): {stale}")


class SlowMarker:
    """The pytest plugin that applies SLOW (tests/conftest.py registers it). It records each test pytest
    generates as it collects a module or class, before anything narrows the run: `--lf` drops tests from the
    collection itself (`LFPluginCollWrapper` in pytest-dev/pytest src/_pytest/cacheprovider.py filters the
    module's collect report), and a node id on the command line keeps only the named ones, so the items the
    run ends up with cannot tell a renamed case from one this run left out."""

    def __init__(self) -> None:
        self.generated: list[CollectedTest] = []

    @pytest.hookimpl(wrapper=True)
    def pytest_pycollect_makeitem(self, collector: pytest.Collector, name: str, obj: object) -> Any:
        made = yield
        for node in made if isinstance(made, list) else [made]:
            if isinstance(node, pytest.Function):
                self.generated.append(node)
        return made

    # First, so the marker is on before pytest's own hook deselects by `-m "not slow"`.
    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        mark(items, self.generated)
