"""Does the running virtualenv hold exactly what a hash-locked export pins for this interpreter?

    .venv/bin/python scripts/venv_lock.py requirements-dev.txt    # exit 0 if so; else 1 and the differences

`make venv` runs it on every call and rebuilds the virtualenv when it fails: a package added by hand, or by
`pulumi install` (pulumi/pulumi sdk/python/toolchain/pip.go runs `pip install --upgrade pip setuptools wheel`
unhashed into the project's .venv), is not left in place silently. tests/test_lock.py uses the same functions.
"""

from __future__ import annotations

import ensurepip
import re
import sys
from importlib.metadata import distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# Installed by `make venv` besides the lock: the installer and this project (editable, no dependencies).
NOT_LOCKED = {"pip", "muse-on-azure"}


def locked_pins(text: str) -> dict[str, str]:
    """name -> version of every requirement of an export that applies to the running interpreter."""
    pins = {}
    for entry in re.split(r"\n(?=[A-Za-z0-9])", text):
        if not entry or entry.startswith("#"):
            continue
        requirement = Requirement(entry.split(" \\", 1)[0].split("\n", 1)[0])
        if requirement.marker is None or requirement.marker.evaluate():
            (spec,) = requirement.specifier
            if spec.operator != "==":
                raise ValueError(f"not an exact pin: {entry.splitlines()[0]}")
            pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def differences(locked: dict[str, str], installed: dict[str, str]) -> list[str]:
    """What the environment holds that the lock does not say, and what the lock says that it lacks."""
    found = []
    for name, version in sorted(installed.items()):
        if name in NOT_LOCKED:
            continue
        if name not in locked:
            found.append(f"{name} {version} is installed but not locked")
        elif locked[name] != version:
            found.append(f"{name} {version} is installed, the lock says {locked[name]}")
    found += [
        f"{name} {locked[name]} is locked but missing" for name in sorted(locked.keys() - installed.keys())
    ]
    return found


def installed_here() -> dict[str, str]:
    return {canonicalize_name(d.metadata["Name"]): d.version for d in distributions()}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    installed = installed_here()
    found = differences(locked_pins(Path(argv[0]).read_text()), installed)
    # pip is not in the lock: `python -m venv` installs the interpreter's bundled one (ensurepip), so any
    # other version was installed later, unhashed (`pulumi install` upgrades it).
    if installed.get("pip", ensurepip.version()) != ensurepip.version():
        found.append(f"pip {installed['pip']} is installed, the interpreter bundles {ensurepip.version()}")
    for line in found:
        print(f"venv_lock: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
