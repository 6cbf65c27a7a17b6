"""tap-baseline: HubSpot's CRM v3 objects as a plain singer-sdk tap, written the way the SDK's
cookiecutter template lays one out (a ``RESTStream`` per object, a bearer-token authenticator,
JSONPath records and paging, the SDK's default message writer and settings, no tuning).

It is the bench's reference point for the whole pipeline (bench/pipeline.py): what a typical
user's tap | target pair does with the same records. Each stream lists
``GET /crm/v3/objects/<type>?limit=100&after=...`` with every property the properties API
(``GET /crm/v3/properties/<type>``) names, follows ``paging.next.after`` and keeps ``updatedAt`` as
its replication key.

Run it from the project venv: ``python bench/baseline/tap_baseline.py --config config.json``
with ``{"access_token": "...", "api_url": "http://127.0.0.1:8701"}``.
"""

from __future__ import annotations

from typing import Any

import requests
from singer_sdk import RESTStream, Stream, Tap
from singer_sdk import typing as th
from singer_sdk.authenticators import BearerTokenAuthenticator

OBJECTS = ("companies", "contacts", "deals", "tickets")


class HubSpotObjectStream(RESTStream[str]):
    """One CRM object type, listed 100 records a page."""

    records_jsonpath = "$.results[*]"
    next_page_token_jsonpath = "$.paging.next.after"  # noqa: S105 - a JSONPath, not a secret
    primary_keys = ("id",)
    replication_key = "updatedAt"

    def __init__(self, tap: Tap, obj: str) -> None:
        self.obj = obj
        self._properties: list[str] | None = None
        super().__init__(tap, name=obj, path=f"/crm/v3/objects/{obj}")

    @property
    def url_base(self) -> str:
        return str(self.config.get("api_url") or "https://api.hubapi.com")

    @property
    def authenticator(self) -> BearerTokenAuthenticator:
        return BearerTokenAuthenticator(token=self.config["access_token"])

    @property
    def property_names(self) -> list[str]:
        """Every property of the object, from the properties API (read once)."""
        if self._properties is None:
            response = requests.get(
                f"{self.url_base}/crm/v3/properties/{self.obj}",
                headers={"Authorization": f"Bearer {self.config['access_token']}"},
                timeout=60,
            )
            response.raise_for_status()
            self._properties = sorted(p["name"] for p in response.json()["results"])
        return self._properties

    @property
    def schema(self) -> dict[str, Any]:
        if self._schema is None:
            # HubSpot returns every property value as a string (or null).
            props = [th.Property(name, th.StringType) for name in self.property_names]
            self._schema = th.PropertiesList(
                th.Property("id", th.StringType, required=True),
                th.Property("properties", th.ObjectType(*props)),
                th.Property("createdAt", th.DateTimeType),
                th.Property("updatedAt", th.DateTimeType),
                th.Property("archived", th.BooleanType),
                th.Property("archivedAt", th.DateTimeType),
            ).to_dict()
        return self._schema

    def get_url_params(self, context: Any, next_page_token: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": 100, "properties": ",".join(self.property_names)}
        if next_page_token:
            params["after"] = next_page_token
        return params


class TapBaseline(Tap):
    """HubSpot companies, contacts, deals and tickets."""

    name = "tap-baseline"
    config_jsonschema = th.PropertiesList(
        th.Property("access_token", th.StringType, required=True, secret=True),
        th.Property("api_url", th.StringType, default="https://api.hubapi.com"),
        th.Property("start_date", th.DateTimeType),
    ).to_dict()

    def discover_streams(self) -> list[Stream]:
        return [HubSpotObjectStream(self, obj) for obj in OBJECTS]


if __name__ == "__main__":
    TapBaseline.cli()
