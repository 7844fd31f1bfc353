"""Which Kubernetes minor versions AKS still creates clusters on, on a given date.

The data is `stack/aks_kubernetes_versions.json`: AKS's release calendar and support rules as
MicrosoftDocs/azure-aks-docs had them (its `source` block names the files, commit and licence).
`check(version, today)` takes the date as an input; the scheduled drift workflow runs

    python -m cli.kubernetes_support --stack prod [--today YYYY-MM-DD]

which exits 1 from WARNING_DAYS before the stack's minor leaves support. The rules, quoted from the pages:
docs/architecture/azure.md#kubernetes-support-calendar."""

from __future__ import annotations

import calendar as month_calendar
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

DATA_PATH = Path(__file__).with_name("aks_kubernetes_versions.json")
SUPPORTED_VERSIONS_URL = "https://learn.microsoft.com/azure/aks/supported-kubernetes-versions"
# Days before the end of support at which config validation warns and the scheduled workflow turns red: two
# months leave time for a change through review, dev and the prod maintenance window.
WARNING_DAYS = 60
RUNBOOK = "docs/runbook.md#a-kubernetes-minor-leaves-aks-support"


def _month_after(year_month: str) -> date:
    year, month = (int(part) for part in year_month.split("-"))
    return date(year + month // 12, month % 12 + 1, 1)


def _last_day_of(year_month: str) -> date:
    year, month = (int(part) for part in year_month.split("-"))
    return date(year, month, month_calendar.monthrange(year, month)[1])


@dataclass(frozen=True)
class MinorVersion:
    """One row of the calendar: when AKS supports a Kubernetes minor version (standard support)."""

    minor: str  # "1.36"
    aks_ga: str  # as the page writes it: "Jun 2026"
    available_from: date  # first day of the month after the GA month
    end_of_life: str  # as the page writes it: "Jun 2027" or "Aug 22, 2025"
    last_supported_day: date  # the explicit day, else the last day of the month
    platform_support: str | None  # "Until 1.40 GA"
    lts_last_day: date | None  # end of long-term support, for clusters that enable it

    def creatable_on(self, day: date) -> bool:
        return self.available_from <= day <= self.last_supported_day

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> MinorVersion:
        explicit = row.get("end_of_life_date")
        return cls(
            minor=row["kubernetes_version"],
            aks_ga=row["aks_ga"],
            available_from=_month_after(row["aks_ga_ym"]),
            end_of_life=row["end_of_life"],
            last_supported_day=(
                date.fromisoformat(explicit) if explicit else _last_day_of(row["end_of_life_ym"])
            ),
            platform_support=row.get("platform_support"),
            lts_last_day=(_last_day_of(row["lts_end_of_life_ym"]) if row.get("lts_end_of_life_ym") else None),
        )


def _minor_key(minor: str) -> tuple[int, ...]:
    return tuple(int(part) for part in minor.split("."))


@dataclass(frozen=True)
class SupportCalendar:
    minors: tuple[MinorVersion, ...]  # oldest first
    snapshot_commit: str
    snapshot_date: date

    def get(self, minor: str) -> MinorVersion | None:
        return next((m for m in self.minors if m.minor == minor), None)

    def creatable_on(self, day: date) -> tuple[MinorVersion, ...]:
        return tuple(m for m in self.minors if m.creatable_on(day))


def load_calendar(path: Path = DATA_PATH) -> SupportCalendar:
    data = json.loads(path.read_text())
    minors = sorted(
        (MinorVersion.from_row(row) for row in data["by_minor_version"]), key=lambda m: _minor_key(m.minor)
    )
    return SupportCalendar(
        minors=tuple(minors),
        snapshot_commit=data["source"]["snapshot_commit"],
        snapshot_date=date.fromisoformat(data["source"]["snapshot_commit_date"][:10]),
    )


@cache
def aks_calendar() -> SupportCalendar:
    """The vendored calendar, read once per process."""
    return load_calendar()


def utc_today() -> date:
    """The date the program checks against: today in UTC, the same on a laptop and a runner."""
    return datetime.now(UTC).date()


def minor_of(version: str) -> str:
    """`1.36` -> `1.36`; `1.36.2` -> `1.36`."""
    return ".".join(version.split(".")[:2])


class Support(Enum):
    SUPPORTED = "supported"
    ENDING = "ending"  # supported, but its end of support is at most WARNING_DAYS away
    UNSUPPORTED = "unsupported"  # AKS does not create a cluster on it on that day


@dataclass(frozen=True)
class Verdict:
    minor: str
    today: date
    status: Support
    message: str
    last_supported_day: date | None = None

    @property
    def days_left(self) -> int | None:
        return None if self.last_supported_day is None else (self.last_supported_day - self.today).days


def _listing(minors: tuple[MinorVersion, ...]) -> str:
    return ", ".join(f"{m.minor} (until {m.last_supported_day.isoformat()})" for m in minors) or "none"


def check(
    version: str,
    today: date,
    *,
    warning_days: int = WARNING_DAYS,
    support_calendar: SupportCalendar | None = None,
) -> Verdict:
    """Whether AKS creates a cluster on `version`'s minor on `today`, and for how much longer."""
    table = support_calendar or aks_calendar()
    minor = minor_of(version)
    creatable = table.creatable_on(today)
    on_day = f"AKS creates clusters on {_listing(creatable)} on {today.isoformat()}"
    source = f"AKS release calendar as of {table.snapshot_date.isoformat()}, {SUPPORTED_VERSIONS_URL}"
    row = table.get(minor)
    if row is None:
        known = f"{table.minors[0].minor}-{table.minors[-1].minor}" if table.minors else "none"
        return Verdict(
            minor,
            today,
            Support.UNSUPPORTED,
            f"Kubernetes {minor} is not in the AKS release calendar this program carries (minors {known}; "
            f"{source}). {on_day}. A newer minor needs stack/aks_kubernetes_versions.json refreshed first "
            f"({RUNBOOK}).",
        )
    if today < row.available_from:
        return Verdict(
            minor,
            today,
            Support.UNSUPPORTED,
            f"Kubernetes {minor} is not generally available on AKS yet (AKS GA: {row.aks_ga}, counted from "
            f"{row.available_from.isoformat()} because regions receive it over up to 10 business days; "
            f"{source}). {on_day}.",
            row.last_supported_day,
        )
    if today > row.last_supported_day:
        lts = ""
        if row.lts_last_day is not None and today <= row.lts_last_day:
            lts = (
                f" Long-term support would keep it until {row.lts_last_day.isoformat()}, but only on the "
                "Premium tier with the AKSLongTermSupport plan, which this program does not set."
            )
        platform = f" ({row.platform_support})" if row.platform_support else ""
        return Verdict(
            minor,
            today,
            Support.UNSUPPORTED,
            f"AKS no longer creates clusters on Kubernetes {minor}: its standard support ended on "
            f"{row.last_supported_day.isoformat()} (End of life: {row.end_of_life}), and platform support"
            f"{platform} does not allow cluster creation ({source}).{lts} {on_day}.",
            row.last_supported_day,
        )
    left = (row.last_supported_day - today).days
    if left <= warning_days:
        newer = tuple(m for m in creatable if m.last_supported_day > row.last_supported_day)
        return Verdict(
            minor,
            today,
            Support.ENDING,
            f"AKS ends standard support of Kubernetes {minor} on {row.last_supported_day.isoformat()}, in "
            f"{left} day(s); from then on AKS cannot create a cluster on it ({source}). Set "
            f"kubernetesVersion to a newer minor: {_listing(newer)} ({RUNBOOK}).",
            row.last_supported_day,
        )
    return Verdict(
        minor,
        today,
        Support.SUPPORTED,
        f"Kubernetes {minor} is supported by AKS until {row.last_supported_day.isoformat()} ({left} days; "
        f"{source}).",
        row.last_supported_day,
    )


def existing_cluster_warning(verdict: Verdict) -> str:
    """The warning a deploy of an existing cluster on a minor AKS no longer creates prints: the deploy (and
    its rollback) go ahead, because the upgrade channel owns the version and the program never sends it
    (components/kubernetes_cluster.py), but the cluster needs a minor upgrade now."""
    return (
        f"UNSUPPORTED KUBERNETES MINOR on an existing cluster: {verdict.message} The deploy goes ahead (the "
        f"program does not change an existing cluster's version, and a rollback must never be blocked), but "
        f"upgrade the cluster to a supported minor now and set kubernetesVersion to it ({RUNBOOK}); the "
        f"scheduled drift check stays red until then."
    )


def _annotation(level: str, title: str, message: str) -> str:
    """A GitHub workflow command; `%`, CR and LF escaped as the runner requires."""
    escaped = message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return f"::{level} title={title}::{escaped}"
