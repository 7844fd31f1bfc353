"""Module docstrings of the product and its tooling say what the module is and why in a few lines; the long
reasoning lives in docs/ and the docstring links it ("Why: docs/architecture/ci-cd.md#the-preview-script").
Tests may keep longer docstrings: they describe the model a test double follows."""

from __future__ import annotations

import ast
import re
import subprocess

import pytest

from stack.files import REPO_ROOT

CAP = 12  # lines of ast.get_docstring(module)

# "docs/<page>.md#<anchor>" in a docstring: the anchor must be a heading of that page.
DOC_LINK = re.compile(r"\b(docs/[\w./-]+\.md)#([\w-]+)")


def _product_modules() -> list[str]:
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "*.py"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    return sorted(
        name for name in files if name and not name.startswith("tests/") and (REPO_ROOT / name).is_file()
    )


def _docstring(source: str) -> str:
    return ast.get_docstring(ast.parse(source)) or ""


def over_cap(sources: dict[str, str]) -> dict[str, int]:
    """The modules whose docstring is longer than CAP lines, with their length."""
    lengths = {name: len(_docstring(source).splitlines()) for name, source in sources.items()}
    return {name: length for name, length in lengths.items() if length > CAP}


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of `markdown`: lower case, punctuation dropped, spaces to
    hyphens, a repeated heading numbered (-1, -2, ...). Headings inside code fences are not headings."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    prose = re.sub(r"^[ \t]*```.*?^[ \t]*```", "", markdown, flags=re.M | re.S)
    for heading in re.findall(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", prose, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def broken_doc_links(sources: dict[str, str], read_doc: object) -> list[str]:
    """Every `docs/<page>.md#<anchor>` in the docstrings that names no page, or no heading of it."""
    assert callable(read_doc)
    broken = []
    for name, source in sources.items():
        for page, anchor in DOC_LINK.findall(_docstring(source)):
            text = read_doc(page)
            if text is None or anchor not in github_anchors(text):
                broken.append(f"{name}: {page}#{anchor}")
    return broken


def _read_doc(page: str) -> str | None:
    path = REPO_ROOT / page
    return path.read_text() if path.is_file() else None


@pytest.fixture(scope="module")
def sources() -> dict[str, str]:
    return {name: (REPO_ROOT / name).read_text() for name in _product_modules()}


def test_module_docstrings_fit_the_cap(sources: dict[str, str]) -> None:
    assert over_cap(sources) == {}, (
        f"module docstrings over {CAP} lines: say what and why in a few lines and move the reasoning, with "
        "its sources, into the matching docs/ page, linked as 'Why: docs/<page>.md#<heading>'"
    )


def test_docstring_links_into_docs_resolve(sources: dict[str, str]) -> None:
    assert broken_doc_links(sources, _read_doc) == []


def _module_with_docstring(lines: int) -> str:
    body = "\n".join(f"line {number}" for number in range(2, lines + 1))
    return f'"""line 1\n{body}"""\n\nVALUE = 1\n'


def test_negative_control_a_thirteen_line_docstring_is_over_the_cap() -> None:
    sources = {"stack/long.py": _module_with_docstring(13), "stack/short.py": _module_with_docstring(12)}
    assert over_cap(sources) == {"stack/long.py": 13}


def test_negative_control_a_link_to_a_missing_heading_or_page_is_reported() -> None:
    doc = "# Title\n\n## The preview script\n\n```sh\n# not a heading\n```\n\n## The preview script\n"
    pages = {"docs/ci.md": doc}
    sources = {
        "a.py": '"""Why: docs/ci.md#the-preview-script and docs/ci.md#the-preview-script-1."""\n',
        "b.py": '"""Why: docs/ci.md#not-a-heading."""\n',
        "c.py": '"""Why: docs/gone.md#the-preview-script."""\n',
    }
    assert broken_doc_links(sources, pages.get) == [
        "b.py: docs/ci.md#not-a-heading",
        "c.py: docs/gone.md#the-preview-script",
    ]


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("## The cluster's API version", "the-clusters-api-version"),
        ("### Protect, not locks", "protect-not-locks"),
        ("## (e) A canary release", "e-a-canary-release"),
        ("### `stack/quota.py` notes", "stackquotapy-notes"),
    ],
)
def test_anchors_follow_githubs_rule(heading: str, anchor: str) -> None:
    assert anchor in github_anchors(heading + "\n")
