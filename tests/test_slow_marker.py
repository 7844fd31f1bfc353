"""tests/slow.py: the `slow` marker lands on exactly the listed tests, and a stale entry stops the run."""

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


def _module(*functions: str) -> types.ModuleType:
    module = types.ModuleType("collected")
    for name in functions:
        setattr(module, name, lambda: None)
    return module


LISTED = {
    "tests/a/test_whole.py": "a file",
    "tests/a/test_some.py::test_slow": "a function, every parameter",
    "tests/a/test_some.py::test_cases[heavy]": "one case",
}


def test_marks_exactly_the_listed_files_functions_and_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slow, "SLOW", LISTED)
    some = _module("test_slow", "test_slower_name", "test_cases")
    items = [
        CollectedTest("tests/a/test_whole.py::test_x", _module("test_x")),
        CollectedTest("tests/a/test_some.py::test_slow[1]", some),
        CollectedTest("tests/a/test_some.py::test_slower_name", some),  # a prefix, not the listed name
        CollectedTest("tests/a/test_some.py::test_cases[heavy]", some),
        CollectedTest("tests/a/test_some.py::test_cases[light]", some),
    ]
    slow.mark(items)
    assert [item.markers for item in items] == [["slow"], ["slow"], [], ["slow"], []]


def test_a_listed_test_that_no_longer_exists_stops_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slow, "SLOW", LISTED)
    renamed = _module("test_renamed", "test_cases")  # test_slow is gone from the file
    with pytest.raises(pytest.UsageError, match=r"tests/a/test_some\.py::test_slow"):
        slow.mark([CollectedTest("tests/a/test_some.py::test_renamed", renamed)])


def test_a_partial_run_of_a_file_is_not_mistaken_for_a_rename(monkeypatch: pytest.MonkeyPatch) -> None:
    # `pytest file::one_test` collects one test; the listed ones still exist in the module.
    monkeypatch.setattr(slow, "SLOW", LISTED)
    some = _module("test_slow", "test_cases", "test_fast")
    item = CollectedTest("tests/a/test_some.py::test_fast", some)
    slow.mark([item])
    assert item.markers == []


def test_every_entry_names_a_test_file_that_exists() -> None:
    root = Path(__file__).resolve().parents[1]
    assert [entry for entry in slow.SLOW if not (root / entry.split("::", 1)[0]).is_file()] == []
