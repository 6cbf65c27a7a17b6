"""``crm-pii-keygen``: print fresh PII keys in the format tap-crm's settings take.

The output goes to stdout only, for the user to store in a secrets manager or ``.env``; nothing
is written to disk or logged.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from crm_connectors.pii import new_key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="crm-pii-keygen",
        description="Print a new PII encryption key and HMAC key as environment assignments.",
    )
    parser.add_argument(
        "--key-id",
        default=dt.date.today().strftime("k%Y%m%d"),
        help="id of the new keys (default: k<today>); a rotation adds a key with a new id",
    )
    args = parser.parse_args(argv)
    kid = args.key_id
    sys.stdout.write(f"TAP_CRM_PII_KEYS={kid}:{new_key()}\n")
    sys.stdout.write(f"TAP_CRM_PII_HMAC_KEYS={kid}h:{new_key()}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
