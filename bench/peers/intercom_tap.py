"""Start singer-io tap-intercom against the sandbox: ``python -I intercom_tap.py URL ARGS...``.

Run with the peer venv's Python (only the peer and the standard library are importable there).
The tap's client sets its base URL to https://api.intercom.io when it is built; this sets it to
``URL`` right after. ``ARGS`` are the tap's own (``--config``, ``--discover``, ``--catalog``, ...).
"""

import sys

import tap_intercom
from tap_intercom.client import IntercomClient

SANDBOX = sys.argv.pop(1).rstrip("/")
_init = IntercomClient.__init__


def _to_sandbox(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    self.base_url = SANDBOX


IntercomClient.__init__ = _to_sandbox

if __name__ == "__main__":
    tap_intercom.main()
