"""Start MeltanoLabs ``meltano-tap-hubspot`` against the sandbox, run by its venv's Python
(``-I``: only the peer and the standard library are importable):

    python -I hubspot_meltano.py SANDBOX_URL STREAMS [tap-hubspot arguments ...]

Its streams' ``url_base`` properties and OAuth endpoint are ``https://api.hubapi.com...``
literals, so every URL ``requests`` prepares with that prefix is sent to SANDBOX_URL instead.
STREAMS (comma-separated) narrows the tap's stream list to what the bench selects: discovery
reads the property definitions of every object type the tap knows (line items, quotes, calls,
...), most of which the sandbox does not emulate. The selected stream's sync is the tap's own.
"""

import sys

import requests.models
from tap_hubspot.tap import TapHubspot

HOST = "https://api.hubapi.com"

if __name__ == "__main__":
    sandbox = sys.argv.pop(1).rstrip("/")
    keep = set(sys.argv.pop(1).split(","))
    prepare_url = requests.models.PreparedRequest.prepare_url

    def to_sandbox(self, url, params):
        if isinstance(url, str) and url.startswith(HOST):
            url = sandbox + url[len(HOST) :]
        prepare_url(self, url, params)

    requests.models.PreparedRequest.prepare_url = to_sandbox  # type: ignore[method-assign]
    discover = TapHubspot.discover_streams
    TapHubspot.discover_streams = lambda self: [s for s in discover(self) if s.name in keep]
    TapHubspot.cli()
