"""What the bench's HubSpot peer taps need from the sandbox, as HubSpot answers it (over HTTP).

singer-io ``tap-hubspot`` lists the portal's custom object schemas on every discovery and sync
(``GET /crm/v3/schemas``) and stops when that call fails with anything but 403.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from crm_connectors.sandbox.app import Sandbox
from crm_connectors.sandbox.auth import DEFAULT_CREDENTIALS

TOKEN = DEFAULT_CREDENTIALS["hubspot"]["private_app_token"]


@pytest.fixture
def hs(make_sandbox: Any) -> Sandbox:
    return make_sandbox(vendors=("hubspot",), size=10)


@pytest.mark.parametrize("path", ["/crm/v3/schemas", "/crm-object-schemas/v3/schemas"])
def test_given_portal_without_custom_objects_when_listing_schemas_then_empty_results(
    hs: Sandbox, path: str
) -> None:
    # Given a sandbox portal (standard objects only) and its private app token
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=hs.urls["hubspot"], timeout=30) as c:
        # When the custom object schemas are listed, live and archived
        live = c.get(path, headers=headers)
        archived = c.get(path, headers=headers, params={"archived": "true"})
        # Then both are HubSpot's no-paging collection, empty
        assert live.status_code == 200, live.text
        assert live.json() == {"results": []}
        assert archived.status_code == 200, archived.text
        assert archived.json() == {"results": []}


def test_given_no_token_when_listing_schemas_then_401_invalid_authentication(
    hs: Sandbox,
) -> None:
    # Given no credentials
    with httpx.Client(base_url=hs.urls["hubspot"], timeout=30) as c:
        # When the schemas are listed
        resp = c.get("/crm/v3/schemas")
    # Then HubSpot's 401 envelope, as for any other CRM call
    assert resp.status_code == 401
    assert resp.json()["category"] == "INVALID_AUTHENTICATION"
