"""Entry point of ``target-health``. The target is issues #4 and #5; until then this says so."""

from __future__ import annotations

import sys


def main() -> int:
    print(
        "target-health is not built yet (issues #4 and #5). The CRM sandbox it will write to is"
        " ready: run `crm-sandbox --help`.",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
