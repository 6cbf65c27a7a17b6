"""Start singer-io ``tap-hubspot`` against the sandbox, run by its venv's Python (``-I``: only
the peer and the standard library are importable):

    python -I hubspot_singer_io.py SANDBOX_URL STREAMS [tap-hubspot arguments ...]

The tap builds every URL from its module-level ``BASE_URL`` (``https://api.hubapi.com``); this
points it at SANDBOX_URL. STREAMS (comma-separated) narrows the tap's stream list to what the bench
selects: its discovery reads every stream's property definitions, including the legacy
companies v2 and deals v1 properties APIs, which the sandbox does not emulate (it emulates the
CRM v3 API). The sync of a selected stream runs the tap's own code unchanged.
"""

import sys

import tap_hubspot

if __name__ == "__main__":
    tap_hubspot.BASE_URL = sys.argv.pop(1).rstrip("/")
    keep = set(sys.argv.pop(1).split(","))
    tap_hubspot.STREAMS[:] = [s for s in tap_hubspot.STREAMS if s.tap_stream_id in keep]
    tap_hubspot.main()
