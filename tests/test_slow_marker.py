"""tests/slow.py: the `slow` marker lands on exactly the listed tests, and a stale entry stops the run.

The unit tests hand slow.mark stand-ins for collected tests; the last ones run pytest itself (pytester) on a
small test file, so the guard is checked against what pytest really generates and selects."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pytest

from tests import slow


class CollectedTest:
    """What slow.mark reads of a collected pytest.Function: its node id, its module, add_marker (duck-typed:
    pytest.Function cannot be built outside a session)."""

    def __init__(self, nodeid: str, module: types.ModuleType) -> None:
        self.nodeid, self.module, self.markers = nodeid, module, []

    def add_marker(self, marker: Any) -> None:
        self.markers.append(marker.name)


def _module(*functions: str, **classes: type) -> types.ModuleType:
    module = types.ModuleType("collected")
    for name in functions:
        setattr(module, name, lambda: None)
    for name, cls in classes.items():
        setattr(module, name, cls)
    return module


class TestGroup:
    def test_method(self) -> None: ...


LISTED = {
    "tests/a/test_whole.py": "a file",
    "tests/a/test_some.py::test_slow": "a function, every parameter",
    "tests/a/test_some.py::test_cases[heavy]": "one case",
    "tests/a/test_some.py::TestGroup::test_method": "a method of a test class",
}


def test_marks_exactly_the_listed_files_functions_and_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slow, "SLOW", LISTED)
    some = _module("test_slow", "test_slower_name", "test_cases", TestGroup=TestGroup)
    items = [
        CollectedTest("tests/a/test_whole.py::test_x", _module("test_x")),
        CollectedTest("tests/a/test_some.py::test_slow[1]", some),
        CollectedTest("tests/a/test_some.py::test_slower_name", some),  # a prefix, not the listed name
        CollectedTest("tests/a/test_some.py::test_cases[heavy]", some),
        CollectedTest("tests/a/test_some.py::test_cases[light]", some),
        CollectedTest("tests/a/test_some.py::TestGroup::test_method", some),
    ]
    slow.mark(items, items)
    assert [item.markers for item in items] == [["slow"], ["slow"], [], ["slow"], [], ["slow"]]


def test_a_listed_test_that_no_longer_exists_stops_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slow, "SLOW", LISTED)
    renamed = _module("test_renamed", "test_cases", TestGroup=TestGroup)  # test_slow is gone from the file
    collected = [CollectedTest("tests/a/test_some.py::test_renamed", renamed)]
    with pytest.raises(pytest.UsageError, match=r"tests/a/test_some\.py::test_slow'\]"):
        slow.mark(collected, collected)


def test_a_listed_method_is_found_in_its_class_and_a_renamed_one_is_stale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(slow, "SLOW", LISTED)
    some = _module("test_slow", "test_cases", TestGroup=TestGroup)
    # Negative control: a check that looked the method up in the module, not in its class, would report it.
    assert slow.stale_entries([CollectedTest("tests/a/test_some.py::test_slow", some)]) == []

    class Renamed:
        def test_renamed_method(self) -> None: ...

    for changed in (
        _module("test_slow", "test_cases", TestGroup=Renamed),
        _module("test_slow", "test_cases"),
    ):
        collected = [CollectedTest("tests/a/test_some.py::test_slow", changed)]
        assert slow.stale_entries(collected) == ["tests/a/test_some.py::TestGroup::test_method"]


def test_a_listed_case_whose_id_changed_is_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slow, "SLOW", LISTED)
    some = _module("test_slow", "test_cases", TestGroup=TestGroup)

    def generated(*cases: str) -> list[CollectedTest]:
        return [CollectedTest(f"tests/a/test_some.py::{case}", some) for case in ("test_slow", *cases)]

    assert slow.stale_entries(generated("test_cases[heavy]", "test_cases[light]")) == []
    # The case was renamed: test_cases still exists, so only the id can tell, and [heavier] would otherwise
    # silently join the fast loop.
    assert slow.stale_entries(generated("test_cases[heavier]", "test_cases[light]")) == [
        "tests/a/test_some.py::test_cases[heavy]"
    ]
    # The function is no longer parametrized at all.
    assert slow.stale_entries(generated("test_cases")) == ["tests/a/test_some.py::test_cases[heavy]"]


def test_a_partial_run_of_a_file_is_not_mistaken_for_a_rename(monkeypatch: pytest.MonkeyPatch) -> None:
    # `pytest file::one_test` collects one test; the listed ones still exist in the module.
    monkeypatch.setattr(slow, "SLOW", LISTED)
    some = _module("test_slow", "test_cases", "test_fast", TestGroup=TestGroup)
    item = CollectedTest("tests/a/test_some.py::test_fast", some)
    # Only test_fast was generated as well: test_cases and the class's tests are not there to compare with.
    slow.mark([item], [item])
    assert item.markers == []


def test_every_entry_names_a_test_file_that_exists() -> None:
    root = Path(__file__).resolve().parents[1]
    assert [entry for entry in slow.SLOW if not (root / entry.split("::", 1)[0]).is_file()] == []


CASES_FILE = """
import pytest

@pytest.mark.parametrize("size", ["heavy", "light"])
def test_cases(size):
    pass

def test_fast():
    pass

class TestGroup:
    def test_method(self):
        pass
"""
REAL_LISTED = {
    "test_some.py::test_cases[heavy]": "one case",
    "test_some.py::TestGroup::test_method": "a method of a test class",
}


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess("-m", "not slow", *args, plugins=[slow.SlowMarker()])


def test_a_real_run_marks_the_listed_case_and_method(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slow, "SLOW", REAL_LISTED)
    pytester.makepyfile(test_some=CASES_FILE)
    result = _run(pytester, "-v")
    result.assert_outcomes(passed=2, deselected=2)
    result.stdout.fnmatch_lines(
        ["*test_some.py::test_cases?light? PASSED*", "*test_some.py::test_fast PASSED*"]
    )


def test_a_real_run_stops_on_a_renamed_case_but_not_on_a_narrowed_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slow, "SLOW", REAL_LISTED)
    pytester.makepyfile(test_some=CASES_FILE)
    # A node id, or --lf after a failure of another case, leaves [heavy] out of the run but not out of the
    # file: not stale.
    assert _run(pytester, "test_some.py::test_cases[light]").ret == pytest.ExitCode.OK
    assert _run(pytester, "test_some.py::test_fast").ret == pytest.ExitCode.OK
    pytester.makepyfile(test_some=CASES_FILE.replace("    pass", '    assert size != "light"', 1))
    assert _run(pytester).ret == pytest.ExitCode.TESTS_FAILED
    # pytest collects test_cases[light] alone of the file's functions (and the class, deselected afterwards).
    rerun = _run(pytester, "--lf")
    assert rerun.ret == pytest.ExitCode.TESTS_FAILED
    rerun.assert_outcomes(failed=1, deselected=1)
    # The case was renamed: the run stops and names the entry.
    pytester.makepyfile(test_some=CASES_FILE.replace('"heavy"', '"heavier"'))
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*tests/slow.py lists tests that do not exist*test_some.py::test_cases?heavy?*"]
    )
