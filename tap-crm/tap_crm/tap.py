"""Entry point of ``tap-crm``. The tap itself is issue #3; until it lands this says so plainly."""

from __future__ import annotations

import sys


def main() -> int:
    print(
        "tap-crm is not built yet (issue #3). The CRM sandbox it will read from is ready:"
        " run `crm-sandbox --help`.",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
