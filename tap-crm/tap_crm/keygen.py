"""``crm-pii-keygen``: print fresh PII keys in the format tap-crm's settings take.

The output goes to stdout only, for the user to store in a secrets manager or ``.env``; nothing
is written to disk or logged.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from crm_connectors.pii import new_key_settings


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
    for name, value in new_key_settings(args.key_id).items():
        sys.stdout.write(f"TAP_CRM_{name.upper()}={value}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
