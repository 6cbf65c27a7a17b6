"""Start singer-io tap-salesforce against the sandbox: ``python -I salesforce_tap.py URL ARGS...``.

Run with the peer venv's Python (only the peer and the standard library are importable there).
The tap posts its OAuth refresh to a hard-coded login host (login.salesforce.com, or
test.salesforce.com with ``is_sandbox``); those requests go to ``URL`` instead. Every later call
uses the ``instance_url`` of the token response, which the sandbox already sets to itself.
``ARGS`` are the tap's own (``--config``, ``--discover``, ``--properties``, ``--state``).
"""

import sys

import tap_salesforce
from tap_salesforce.salesforce import Salesforce

LOGIN_HOSTS = ("https://login.salesforce.com/", "https://test.salesforce.com/")
SANDBOX = sys.argv.pop(1).rstrip("/") + "/"
_make_request = Salesforce._make_request


def _to_sandbox(self, http_method, url, *args, **kwargs):
    for host in LOGIN_HOSTS:
        if url.startswith(host):
            url = SANDBOX + url[len(host) :]
    return _make_request(self, http_method, url, *args, **kwargs)


Salesforce._make_request = _to_sandbox

if __name__ == "__main__":
    tap_salesforce.main()
