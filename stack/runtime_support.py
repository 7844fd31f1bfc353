"""Whether the image's base - its Debian release and its CPython minor - still receives security fixes.

The base is the Dockerfile's first FROM, `python:<minor>-slim-<codename>@sha256:...` (the line Dependabot's
docker ecosystem updates). The end-of-support dates are in `stack/runtime_lifecycle.json`, each with its
sources (wiki.debian.org/DebianReleases, peps.python.org, endoflife.date). The rule is the one
stack/kubernetes_support.py applies to AKS: red from WARNING_DAYS before the end, so a move to the next
release goes through review, dev and prod in time. A base the data does not know (Dependabot moved the tag to
a new minor or release, or someone edited FROM) is red too: its end of support must be recorded first.

    python -m cli.runtime_support [--today YYYY-MM-DD] [--dockerfile PATH] [--data PATH]   # drift workflow

prints one line per component and a GitHub `::error` for each that is ending, ended or unknown (exit 1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from stack.files import REPO_ROOT
from stack.kubernetes_support import WARNING_DAYS, Support

DATA_PATH = Path(__file__).with_name("runtime_lifecycle.json")
DOCKERFILE = REPO_ROOT / "Dockerfile"
RUNBOOK = "docs/runbook.md#the-image-base-leaves-security-support"
# `FROM [registry/][library/]python:3.13-slim-trixie@sha256:<64 hex> AS base`, the Dockerfile's first stage.
BASE_FROM = re.compile(
    r"^FROM\s+(?P<image>(?:\S+/)?python:(?P<python>\d+\.\d+)-slim-(?P<codename>[a-z]+)"
    r"@sha256:(?P<digest>[0-9a-f]{64}))\s+AS\s+base\s*$",
    re.MULTILINE | re.IGNORECASE,
)


@dataclass(frozen=True)
class Base:
    image: str
    python: str  # "3.13"
    codename: str  # "trixie"
    digest: str


def read_base(dockerfile_text: str) -> Base:
    """The base named by the first FROM; ValueError unless it is `python:<minor>-slim-<codename>@sha256:`."""
    first = next((line for line in dockerfile_text.splitlines() if line.upper().startswith("FROM ")), None)
    match = BASE_FROM.match(first or "")
    if match is None:
        raise ValueError(
            f"the Dockerfile's first FROM is {first!r}; expected "
            "'FROM <registry>/python:<minor>-slim-<codename>@sha256:<digest> AS base'"
        )
    return Base(match["image"], match["python"], match["codename"].lower(), match["digest"])


@dataclass(frozen=True)
class Component:
    name: str  # "Debian trixie (13)" / "Python 3.13"
    last_day: date | None  # None: the data does not know it
    sources: tuple[str, ...]


def components(base: Base, data: dict[str, Any]) -> tuple[Component, Component]:
    debian = data["debian"].get(base.codename)
    python = data["python"].get(base.python)
    return (
        Component(
            f"Debian {base.codename}" + (f" ({debian['version']})" if debian else ""),
            date.fromisoformat(debian["security_support_ends"]) if debian else None,
            tuple(debian["sources"]) if debian else (),
        ),
        Component(
            f"Python {base.python}",
            date.fromisoformat(python["security_support_ends"]) if python else None,
            tuple(python["sources"]) if python else (),
        ),
    )


@dataclass(frozen=True)
class Verdict:
    component: Component
    status: Support
    message: str


def check(component: Component, today: date, *, warning_days: int = WARNING_DAYS) -> Verdict:
    if component.last_day is None:
        return Verdict(
            component,
            Support.UNSUPPORTED,
            f"{component.name} is not in stack/runtime_lifecycle.json: record its end of security support "
            f"(with sources) before building on it ({RUNBOOK}).",
        )
    left = (component.last_day - today).days
    source = "; ".join(component.sources)
    if left < 0:
        return Verdict(
            component,
            Support.UNSUPPORTED,
            f"{component.name} left security support on {component.last_day.isoformat()} ({source}). "
            f"Move the Dockerfile's base to a supported release ({RUNBOOK}).",
        )
    if left <= warning_days:
        return Verdict(
            component,
            Support.ENDING,
            f"{component.name} leaves security support on {component.last_day.isoformat()}, in {left} day(s) "
            f"({source}). Move the Dockerfile's base to a supported release ({RUNBOOK}).",
        )
    return Verdict(
        component,
        Support.SUPPORTED,
        f"{component.name} has security support until {component.last_day.isoformat()} ({left} days).",
    )
