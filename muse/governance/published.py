"""The governance report of the running stack, as `GET /api/v1/governance` serves it.

The image carries the committed docs/governance/ (Dockerfile COPY, .dockerignore allow-list): `<env>.md`, the
document `make export` generated with export/governance/document.py, and `<env>.inventory.json`, the
stack's inventory, which the service evaluates with the same policies for the JSON answer. `MUSE_ENV` picks
the stack; `MUSE_GOVERNANCE_DIR` overrides the directory. Loaded once at start: the files never change in a
running container.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from muse.config import Settings
from muse.governance.inventory import InventoryError, load_inventory
from muse.governance.policies import evaluate

# docs/governance next to the muse package: /app/docs/governance in the image, the checkout's docs otherwise.
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "docs" / "governance"
_NOTICE = re.compile(r"^<!--\s*(.*?)\s*-->$")


@dataclass(frozen=True)
class GovernanceReport:
    environment: str
    markdown: str
    evaluation: dict[str, Any] | None
    inventory_problem: str | None = None

    @property
    def generated(self) -> str:
        first = self.markdown.split("\n", 1)[0]
        match = _NOTICE.match(first)
        return match.group(1) if match else first

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "source": f"docs/governance/{self.environment}.md",
            "generated": self.generated,
            "evaluation": self.evaluation,
            "inventoryProblem": self.inventory_problem,
            "markdown": self.markdown,
        }


@dataclass(frozen=True)
class GovernanceUnavailable:
    status: int  # 404: no report for this environment; 503: no reports at all in this build
    error: str
    detail: str


def governance_dir(settings: Settings) -> Path:
    return Path(settings.governance_dir) if settings.governance_dir else DEFAULT_DIR


def load_governance_report(settings: Settings) -> GovernanceReport | GovernanceUnavailable:
    directory = governance_dir(settings)
    env = settings.env
    if not directory.is_dir():
        return GovernanceUnavailable(
            503,
            "governance_unavailable",
            f"no governance reports in this build: {directory} does not exist "
            "(the image copies docs/governance/; MUSE_GOVERNANCE_DIR overrides the path)",
        )
    available = sorted(p.name.removesuffix(".md") for p in directory.glob("*.md"))
    path = directory / f"{env}.md"
    if not path.is_file():
        if not available:
            return GovernanceUnavailable(
                503, "governance_unavailable", f"no governance reports in this build: {directory} is empty"
            )
        return GovernanceUnavailable(
            404,
            "not_found",
            f"no governance report for environment '{env}' (MUSE_ENV); available: {', '.join(available)}",
        )
    try:
        markdown = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return GovernanceUnavailable(503, "governance_unavailable", f"cannot read {path.name}: {exc}")
    evaluation: dict[str, Any] | None = None
    problem: str | None = None
    inventory_path = directory / f"{env}.inventory.json"
    if inventory_path.is_file():
        try:
            evaluation = evaluate(load_inventory(inventory_path)).to_json()
        except InventoryError as exc:
            problem = str(exc).replace(str(directory) + "/", "")
    else:
        problem = f"{inventory_path.name} is not in this build"
    return GovernanceReport(
        environment=env, markdown=markdown, evaluation=evaluation, inventory_problem=problem
    )
