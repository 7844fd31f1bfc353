"""`python -m cli.providers`: the resource providers a subscription must register (stack/providers.py), one
namespace a line, for scripts/bootstrap.sh."""

from __future__ import annotations

import sys

from stack.providers import RESOURCE_PROVIDERS


def main() -> int:
    print("\n".join(RESOURCE_PROVIDERS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
