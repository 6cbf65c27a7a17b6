"""HubSpot CRM v3 emulator: objects, batch, search, properties, associations (v3 + v4), owners,
OAuth, rate limits and HubSpot's error envelope.

Contract sources: ../API.md §1 (cited as [API.md §1.4] and so on), HubSpot's public docs
and the models of the official ``hubspot-api-client``. FIDELITY.md lists what is and is not
emulated.
"""

from __future__ import annotations

import base64
import math
import re
import threading
import urllib.parse
import uuid
from collections.abc import Iterable
from typing import Any, ClassVar

import orjson

from crm_connectors.sandbox.auth import Principal
from crm_connectors.sandbox.http import (
    ApiError,
    Request,
    Response,
    Route,
    VendorApp,
    empty_response,
    json_response,
    route,
)
from crm_connectors.sandbox.ratelimit import FixedWindow, RollingWindow
from crm_connectors.sandbox.store import ARCHIVED, LIVE, MERGED

from .model import (
    ASSOCIABLE,
    ASSOCIATION_TYPE_IDS,
    DEFAULT_PROPERTIES,
    ID_WIDTH,
    MESSAGE_NAME,
    OBJECT_TYPE_IDS,
    READ_ONLY_OBJECTS,
    SINGULAR,
    TYPE_ID_OBJECTS,
    TYPE_ID_PAIRS,
    VENDOR,
    association_name,
    builtin_groups,
    builtin_properties,
    date_of_ms,
    default_pipelines,
    id_counter,
    iso_ms,
    modified_property,
    parse_time_ms,
    pipeline,
    prop,
    record_id,
)
from .seed import ARCHIVED_INDEX

Row = tuple[int, str, int, int, int, str]  # seq, id, created_ms, updated_ms, state, data

#: Objects with pipelines, and their (pipeline, stage) properties [API.md §1.13].
_PIPELINE_PROPERTIES = {
    "deals": ("pipeline", "dealstage"),
    "tickets": ("hs_pipeline", "hs_pipeline_stage"),
}
HUB_ID = 24_681_357
KB_LINK = "https://developers.hubspot.com/docs/api/overview"
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,99}\Z")
_PROPERTY_TYPES = ("bool", "date", "datetime", "enumeration", "number", "phone_number", "string")
_FIELD_TYPES = (
    "booleancheckbox", "calculation_equation", "checkbox", "date", "file", "html", "number",
    "phonenumber", "radio", "select", "text", "textarea",
)  # fmt: skip
_OPERATORS = (
    "EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY",
    "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN",
)  # fmt: skip
_TIME_COLUMN = re.compile(r"(?<![\w\"$.+])(updated_ms|created_ms)\b")
_QUERY_PROPS = {
    "companies": ("name", "domain", "phone", "website"),
    "contacts": ("firstname", "lastname", "email", "phone", "company"),
    "deals": ("dealname",),
    "tickets": ("subject", "content"),
    "feedback_submissions": ("hs_content",),
    "tasks": ("hs_task_subject", "hs_task_body"),
}


def _validation(message: str, **extra: Any) -> ApiError:
    return ApiError(400, "VALIDATION_ERROR", message, **extra)


def _to_str(value: Any) -> str | None:
    """HubSpot accepts JSON numbers and booleans as property values and stores strings."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (int, str)):
        return str(value)
    return orjson.dumps(value).decode()


class HubSpotEmulator(VendorApp):
    vendor = VENDOR
    DEFAULT_OPTIONS: ClassVar[dict[str, Any]] = {
        "rate_limits": True,
        # Private apps on Professional/Enterprise: 190 requests per rolling 10 s [API.md §1.8].
        "burst_limit": 190,
        "burst_interval_ms": 10_000,
        # Public OAuth apps: 110 per 10 s per account [API.md §1.8].
        "oauth_burst_limit": 110,
        # Daily: 1,000,000 (Enterprise) for private apps; OAuth apps have no daily limit
        # [API.md §1.8].
        "daily_limit": 1_000_000,
        # Search: 5 requests/s per token, its own budget [API.md §1.4].
        "search_per_second": 5,
        # List limit: default 10, max 100 [API.md §1.3]; "reject" -> 400, "clamp" -> serve 100.
        "list_default_limit": 10,
        "list_max_limit": 100,
        "list_limit_policy": "reject",
        "search_max_limit": 200,
        "search_result_cap": 10_000,
        # 2024-08-26 changelog: 5 groups, 10 filters per group, 25 filters in total [API.md §1.4].
        "search_max_groups": 5,
        "search_max_filters_per_group": 10,
        "search_max_filters": 25,
        # Newly written records show up in search after this delay (real HubSpot: seconds).
        "search_index_lag_ms": 0,
        "batch_max_inputs": 100,
        "batch_history_max_inputs": 50,
        "access_token_ttl": 1800,
        "associations_page_size": 500,
        # Scopes the sandbox's tokens lack, e.g. ["crm.schemas.companies.write"]: a call that
        # needs one gets 403 MISSING_SCOPES naming it (the real envelope, see _require_scope).
        "missing_scopes": [],
    }

    def __init__(self, ctx: Any) -> None:
        self._meta_lock = threading.RLock()
        self._closed_stages: dict[str, tuple[bool, bool]] = {}  # deal stage -> (closed, won)
        self._props_cache: dict[str, dict[str, dict[str, Any]]] | None = None
        self._plan_cache: dict[Any, Any] = {}
        super().__init__(ctx)
        with self.store.write() as conn:
            conn.execute(ARCHIVED_INDEX)
            # Search by modification time: keyset paging, and counts that read the index only.
            conn.execute(
                "CREATE INDEX IF NOT EXISTS hubspot_modified ON records"
                " (object, updated_ms, id, state) WHERE vendor = 'hubspot'"
            )

    def configure(self, options: dict[str, Any]) -> None:
        self.options = options
        interval = float(options["burst_interval_ms"]) / 1000
        self._burst = RollingWindow(int(options["burst_limit"]), interval)
        self._oauth_burst = RollingWindow(int(options["oauth_burst_limit"]), interval)
        self._daily = FixedWindow(int(options["daily_limit"]), 86_400)
        self._search = RollingWindow(int(options["search_per_second"]), 1.0)

    # -- errors ----------------------------------------------------------------------------------

    def render_error(self, req: Request, err: ApiError) -> Response:
        body: dict[str, Any] = {"status": "error", "message": err.message}
        if err.code == "RATE_LIMIT":
            # 429 body: {status, message, errorType, correlationId, policyName, requestId}
            # [API.md §1.8]
            body["errorType"] = "RATE_LIMIT"
            body["correlationId"] = str(uuid.uuid4())
            body["policyName"] = err.extra.get("policyName", "TEN_SECONDLY_ROLLING")
            body["requestId"] = str(uuid.uuid4())
            return json_response(body, err.status)
        body["correlationId"] = str(uuid.uuid4())
        if err.code:
            body["category"] = err.code
        for key in ("subCategory", "errors", "context", "links"):
            if key in err.extra:
                body[key] = err.extra[key]
        return json_response(body, err.status)

    def auth_error(self, req: Request, reason: str) -> ApiError:
        if reason == "expired":
            # Expired OAuth token: 401 EXPIRED_AUTHENTICATION [HubSpot OAuth docs].
            minutes = 0
            token = req.bearer()
            if token:
                row = (
                    self.store.conn()
                    .execute("SELECT expires_at FROM tokens WHERE token = ?", (token,))
                    .fetchone()
                )
                if row and row[0] is not None:
                    minutes = max(0, int((self.ctx.clock.time() - float(row[0])) // 60))
            return ApiError(
                401,
                "EXPIRED_AUTHENTICATION",
                f"The OAuth token used to make this call expired {minutes} minute(s) ago.",
            )
        if reason == "missing":
            message = (
                "Authentication credentials not found. This API supports OAuth 2.0"
                " authentication and you can find more details at"
                " https://developers.hubspot.com/docs/methods/auth/oauth-overview"
            )
        else:
            message = (
                "Authentication credentials not found or invalid. This API supports OAuth 2.0"
                " authentication and you can find more details at"
                " https://developers.hubspot.com/docs/methods/auth/oauth-overview"
            )
        return ApiError(401, "INVALID_AUTHENTICATION", message)

    def throttle_error(self, req: Request, retry_after: float | None) -> ApiError:
        headers = []
        if retry_after is not None:
            headers.append(("Retry-After", str(max(1, math.ceil(retry_after)))))
        return self._rate_error("TEN_SECONDLY_ROLLING", headers)

    def _rate_error(self, policy: str, headers: Iterable[tuple[str, str]] = ()) -> ApiError:
        return ApiError(
            429,
            "RATE_LIMIT",
            f"You have reached your {policy.lower()} limit.",
            headers=headers,
            policyName=policy,
        )

    def server_error(self, req: Request, status: int) -> ApiError:
        messages = {
            500: "internal error",
            502: "Bad Gateway",
            503: "Service Unavailable",
            504: "Gateway Timeout",
        }
        return ApiError(status, "", messages.get(status, "internal error"))

    def malformed_json_error(self, req: Request, detail: str) -> ApiError:
        # HubSpot: "Invalid input JSON on line 1, column 2: Unexpected character ..."
        where = re.search(r"line (\d+) column (\d+)", detail)
        line, column = where.groups() if where else ("1", "1")
        reason = detail.split(": line")[0]
        return _validation(f"Invalid input JSON on line {line}, column {column}: {reason}")

    def not_found_error(self, req: Request) -> ApiError:
        return ApiError(404, "", f"HTTP 404 Not Found: {req.path}")

    def method_not_allowed_error(self, req: Request, allowed: list[str]) -> ApiError:
        return ApiError(405, "", f"HTTP 405 Method Not Allowed: {req.method} {req.path}")

    # -- rate limits -----------------------------------------------------------------------------

    def admit(
        self, req: Request, route: Route, principal: Principal | None
    ) -> list[tuple[str, str]]:
        if principal is None:
            return []
        if not self.options.get("rate_limits", True):
            # Limits off: nothing is enforced, so no limit is advertised either. Real HubSpot
            # always enforces and sends the headers [API.md §1.8]; headers counting down to 0 on a
            # server that never throttles would only make a header-driven client wait for
            # nothing (tap-crm's pacer stops pacing the window when none come).
            return []
        now = self.ctx.clock.time()
        if "search" in route.tags:
            # Search has its own per-token budget and no standard headers [API.md §1.4].
            decision = self._search.take(principal.token, now)
            if not decision.allowed:
                raise self._rate_error("SECONDLY")
            return []
        oauth = principal.kind == "access"
        window = self._oauth_burst if oauth else self._burst
        burst = window.take(principal.token, now)
        headers = [
            ("X-HubSpot-RateLimit-Max", str(burst.limit)),
            ("X-HubSpot-RateLimit-Remaining", str(burst.remaining)),
            ("X-HubSpot-RateLimit-Interval-Milliseconds", str(self.options["burst_interval_ms"])),
        ]
        # Legacy secondly headers: still sent, not enforced [API.md §1.8].
        secondly = max(1, math.ceil(burst.limit * 1000 / int(self.options["burst_interval_ms"])))
        headers.append(("X-HubSpot-RateLimit-Secondly", str(secondly)))
        headers.append(
            ("X-HubSpot-RateLimit-Secondly-Remaining", str(min(secondly, burst.remaining)))
        )
        if not burst.allowed:
            raise self._rate_error("TEN_SECONDLY_ROLLING", headers)
        if not oauth:
            # Daily headers are not sent for OAuth apps [API.md §1.8]; the daily budget is per
            # account.
            daily = self._daily.take("portal", now)
            headers.append(("X-HubSpot-RateLimit-Daily", str(daily.limit)))
            headers.append(("X-HubSpot-RateLimit-Daily-Remaining", str(daily.remaining)))
            if not daily.allowed:
                raise self._rate_error("DAILY", headers)
        return headers

    # -- OAuth -----------------------------------------------------------------------------------

    @route("POST", "/oauth/v1/token", auth=False)
    def oauth_token(self, req: Request) -> Response:
        form = {
            k: v[0] for k, v in urllib.parse.parse_qs(req.body.decode("utf-8", "replace")).items()
        }
        cid = str(uuid.uuid4())
        if form.get("grant_type") not in ("refresh_token",):
            return json_response(
                {
                    "status": "BAD_GRANT_TYPE",
                    "message": "unsupported grant type",
                    "correlationId": cid,
                },
                400,
            )
        creds = self.ctx.tokens.credentials.get(VENDOR, {})
        if form.get("client_id") != creds.get("client_id"):
            return json_response(
                {"status": "BAD_CLIENT_ID", "message": "missing or unknown client id",
                 "correlationId": cid},
                400,
            )  # fmt: skip
        if not self.ctx.tokens.client_ok(VENDOR, form.get("client_id"), form.get("client_secret")):
            return json_response(
                {"status": "BAD_CLIENT_SECRET", "message": "missing or invalid client secret",
                 "correlationId": cid},
                400,
            )  # fmt: skip
        refresh = form.get("refresh_token")
        if not self.ctx.tokens.refresh_ok(VENDOR, refresh):
            return json_response(
                {"status": "BAD_REFRESH_TOKEN", "message": "missing or invalid refresh token",
                 "correlationId": cid},
                400,
            )  # fmt: skip
        token, lifetime = self.ctx.tokens.issue_access(
            VENDOR, float(self.options["access_token_ttl"]), hub_id=HUB_ID
        )
        return json_response(
            {
                "token_type": "bearer",
                "refresh_token": refresh,
                "access_token": token,
                "expires_in": int(lifetime),
            }
        )

    @route("GET", "/oauth/v1/access-tokens/{token}", auth=False)
    def oauth_token_info(self, req: Request, token: str) -> Response:
        row = (
            self.store.conn()
            .execute(
                "SELECT expires_at FROM tokens WHERE token = ? AND vendor = ? AND kind = 'access'",
                (token, VENDOR),
            )
            .fetchone()
        )
        if row is None or (row[0] is not None and float(row[0]) <= self.ctx.clock.time()):
            raise ApiError(404, "OBJECT_NOT_FOUND", "Access token not found or expired")
        return json_response(
            {
                "token": token,
                "user": "sandbox-admin@sandbox-vendor.example",
                "hub_domain": "sandbox.example.com",
                "scopes": [s for s in ("oauth", "crm.objects.companies.read",
                           "crm.objects.companies.write", "crm.objects.contacts.read",
                           "crm.objects.contacts.write", "crm.objects.deals.read",
                           "crm.objects.deals.write", "tickets", "crm.schemas.companies.write")
                           if s not in (self.options.get("missing_scopes") or ())],
                "hub_id": HUB_ID,
                "app_id": 1_234_567,
                "expires_in": max(0, int(float(row[0]) - self.ctx.clock.time())),
                "user_id": 9_000_001,
                "token_type": "access",
            }
        )  # fmt: skip

    # -- helpers: object types and properties -----------------------------------------------------

    def _object(self, name: str) -> str:
        if name in OBJECT_TYPE_IDS:
            return name
        if name in TYPE_ID_OBJECTS:
            return TYPE_ID_OBJECTS[name]
        plural = {one: many for many, one in SINGULAR.items()}
        if name.lower() in plural:
            return plural[name.lower()]
        raise _validation(f"Unable to infer object type from: {name}")

    def _writable(self, obj: str) -> None:
        if obj in READ_ONLY_OBJECTS:
            raise ApiError(
                405,
                "",
                f"HTTP 405 Method Not Allowed: {obj} is read-only",
                headers=[("Allow", "GET")],
            )
        # Record writes need the object's write scope (tickets: the legacy "tickets" scope).
        self._require_scope("tickets" if obj == "tickets" else f"crm.objects.{obj}.write")

    def _require_scope(self, scope: str) -> None:
        """403 MISSING_SCOPES when the ``missing_scopes`` option withholds ``scope``; the body is
        HubSpot's: the scopes in ``errors[].context.requiredGranularScopes``."""
        if scope not in (self.options.get("missing_scopes") or ()):
            return
        raise ApiError(
            403,
            "MISSING_SCOPES",
            "This app hasn't been granted all required scopes to make this call. Read more"
            " about required scopes here: https://developers.hubspot.com/scopes.",
            errors=[
                {
                    "message": "One or more of the following scopes are required.",
                    "context": {"requiredGranularScopes": [scope]},
                }
            ],
            links={"scopes": "https://developers.hubspot.com/scopes"},
        )

    def _properties(self) -> dict[str, dict[str, dict[str, Any]]]:
        with self._meta_lock:
            if self._props_cache is None:
                out = {
                    obj: {p["name"]: p for p in props}
                    for obj, props in builtin_properties().items()
                }
                # a realistic portal's longer standard list, then the portal's own properties
                for name in ("standard_properties", "custom_properties"):
                    for obj, defs in (self.store.get_meta(VENDOR, name, {}) or {}).items():
                        out.setdefault(obj, {}).update(defs)
                # The pipeline and stage properties' options are the portal's pipelines.
                for obj, (pipe, stage) in _PIPELINE_PROPERTIES.items():
                    pipes = self._pipelines(obj)
                    out[obj][pipe] = self._with_options(
                        out[obj][pipe], [(p["id"], p["label"]) for p in pipes]
                    )
                    out[obj][stage] = self._with_options(
                        out[obj][stage], [(s["id"], s["label"]) for p in pipes for s in p["stages"]]
                    )
                self._props_cache = out
                self._closed_stages = {
                    s["id"]: (
                        s["metadata"].get("isClosed") == "true",
                        s["metadata"].get("probability") == "1.0",
                    )
                    for p in self._pipelines("deals")
                    for s in p["stages"]
                }
            return self._props_cache

    def _pipelines(self, obj: str) -> list[dict[str, Any]]:
        """The portal's pipelines of ``obj`` (deals, tickets): the defaults, then those made
        through the API, in display order."""
        made = (self.store.get_meta(VENDOR, "pipelines", {}) or {}).get(obj, [])
        return sorted([*default_pipelines()[obj], *made], key=lambda p: p["displayOrder"])

    @staticmethod
    def _with_options(d: dict[str, Any], options: list[tuple[str, str]]) -> dict[str, Any]:
        return {
            **d,
            "options": [
                {"label": label, "value": value, "displayOrder": i, "hidden": False}
                for i, (value, label) in enumerate(options)
            ],
        }

    def _defs(self, obj: str, *, archived: bool = False) -> dict[str, dict[str, Any]]:
        return {
            n: d
            for n, d in self._properties().get(obj, {}).items()
            if d.get("archived") == archived
        }

    # -- helpers: records -------------------------------------------------------------------------

    def _row(self, obj: str, rid: str) -> Row | None:
        row = (
            self.store.conn()
            .execute(
                "SELECT seq, id, created_ms, updated_ms, state, data FROM records"
                " WHERE vendor = ? AND object = ? AND id = ?",
                (VENDOR, obj, rid),
            )
            .fetchone()
        )
        return row

    def _find_by_property(self, obj: str, name: str, value: str, state: int = LIVE) -> Row | None:
        if name not in self._defs(obj):
            return None
        path = f'$.properties."{name}"'
        if name == "email":
            sql = "lower(json_extract(data, ?)) = lower(?)"
        else:
            sql = "json_extract(data, ?) = ?"
        row = (
            self.store.conn()
            .execute(
                "SELECT seq, id, created_ms, updated_ms, state, data FROM records"
                f" WHERE vendor = ? AND object = ? AND state = ? AND {sql} ORDER BY id LIMIT 1",
                (VENDOR, obj, state, path, value),
            )
            .fetchone()
        )
        return row

    def _resolve(
        self, obj: str, rid: str, *, archived: bool = False, id_property: str | None = None
    ) -> Row | None:
        """The record a client addresses: by id (following merges) or by a property value."""
        want = ARCHIVED if archived else LIVE
        if id_property and id_property != "hs_object_id":
            return self._find_by_property(obj, id_property, rid, want)
        row = self._row(obj, rid)
        hops = 0
        # Merged-away ids resolve to the surviving record on GET [API.md §1.6].
        while row is not None and row[4] == MERGED and hops < 10 and not archived:
            target = orjson.loads(row[5]).get("mergedInto")
            row = self._row(obj, str(target)) if target else None
            hops += 1
        if row is None or row[4] != want:
            return None
        return row

    def _render_plan(self, obj: str, names: Iterable[str] | None) -> list[tuple[str, int]]:
        """``[(property, source)]`` in output (sorted) order; source 0: stored value, 1: the id,
        2: created, 3: modified. Cached per object and property list until properties change."""
        key = (obj, None if names is None else tuple(names))
        plans = self._plan_cache
        plan = plans.get(key)
        if plan is not None and plans.get("props") is self._props_cache:
            return plan
        props = self._properties()
        defs = props.get(obj, {})
        computed = {"hs_object_id": 1, "createdate": 2, modified_property(obj): 3}
        wanted = list(DEFAULT_PROPERTIES[obj]) if names is None else list(names)
        sources = {name: 0 for name in wanted if name in defs and name not in computed}
        sources.update(computed)  # the defaults always come back [API.md §1.2]
        plan = sorted(sources.items())
        if plans.get("props") is not props or len(plans) > 256:
            plans.clear()
            plans["props"] = props
        plans[key] = plan
        return plan

    def _render(
        self,
        obj: str,
        row: Row,
        names: Iterable[str] | None,
        *,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        _seq, rid, created_ms, updated_ms, state, raw = row
        data = orjson.loads(raw)
        stored: dict[str, Any] = data.get("properties", {})
        created, updated = iso_ms(created_ms), iso_ms(updated_ms)
        values = (None, rid, created, updated)
        props = {
            name: stored.get(name) if source == 0 else values[source]
            for name, source in self._render_plan(obj, names)
        }
        if obj == "deals" and ("hs_is_closed" in props or "hs_is_closed_won" in props):
            self._properties()  # (re)builds the stage map with the property cache
            closed, won = self._closed_stages.get(str(stored.get("dealstage")), (False, False))
            for name, value in (("hs_is_closed", closed), ("hs_is_closed_won", won)):
                if name in props:
                    props[name] = "true" if value else "false"
        out: dict[str, Any] = {
            "id": rid,
            "properties": props,
            "createdAt": created,
            "updatedAt": updated,
            "archived": state == ARCHIVED,
        }
        if state == ARCHIVED:
            out["archivedAt"] = data.get("archivedAt") or updated
        if extra:
            out.update(extra)
        return out

    @staticmethod
    def _names(req: Request, key: str = "properties") -> list[str] | None:
        values = req.query.get(key)
        if not values:
            return None
        return [p.strip() for v in values for p in v.split(",") if p.strip()]

    def _associations_of(
        self, obj: str, ids: list[str], targets: list[str]
    ) -> dict[str, dict[str, list[str]]]:
        """``{from_id: {to_object: [to_ids]}}`` for live targets."""
        out: dict[str, dict[str, list[str]]] = {}
        if not ids or not targets:
            return out
        marks = ",".join("?" * len(ids))
        tmarks = ",".join("?" * len(targets))
        rows = self.store.conn().execute(
            "SELECT a.from_id, a.to_type, a.to_id FROM associations a JOIN records r"
            " ON r.vendor = a.vendor AND r.object = a.to_type AND r.id = a.to_id AND r.state = 0"
            f" WHERE a.vendor = ? AND a.from_type = ? AND a.from_id IN ({marks})"
            f" AND a.to_type IN ({tmarks}) ORDER BY a.to_id",
            (VENDOR, obj, *ids, *targets),
        )
        seen: set[tuple[str, str, str]] = set()
        for row in rows:  # one row per association kind: keep each target once
            if row not in seen:
                seen.add(row)
                from_id, to_type, to_id = row
                out.setdefault(from_id, {}).setdefault(to_type, []).append(to_id)
        return out

    def _with_associations(
        self, obj: str, results: list[dict[str, Any]], req: Request
    ) -> list[dict[str, Any]]:
        names = self._names(req, "associations")
        if not names:
            return results
        targets = []
        for n in names:
            try:
                t = self._object(n)
            except ApiError:
                continue  # unknown association types are ignored [spec: list query params]
            if t in ASSOCIABLE and t not in targets:
                targets.append(t)
        assoc = self._associations_of(obj, [r["id"] for r in results], targets)
        kinds = {t: association_name(obj, t) for t in targets}
        for r in results:
            found = assoc.get(r["id"])
            if found:
                r["associations"] = {
                    t: {"results": [{"id": i, "type": kinds[t]} for i in ids]}
                    for t, ids in found.items()
                }
        return results

    # -- property values -------------------------------------------------------------------------

    def _clean(
        self, obj: str, props: Any, *, allow_read_only: Iterable[str] = ()
    ) -> dict[str, str | None]:
        """Validate and normalise written property values; 400 with HubSpot's message if not."""
        if props is None:
            props = {}
        if not isinstance(props, dict):
            raise _validation("Invalid input JSON: properties must be an object")
        defs = self._defs(obj)
        out: dict[str, str | None] = {}
        errors: list[dict[str, Any]] = []
        owner_ids = (
            {str(o.get("id")) for o in self._owners()} if "hubspot_owner_id" in props else set()
        )

        def bad(name: str, code: str, message: str) -> None:
            errors.append(
                {"isValid": False, "message": message, "error": code, "name": name,
                 "localizedErrorMessage": message}
            )  # fmt: skip

        for name, raw in props.items():
            d = defs.get(name)
            if d is None:
                bad(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
                continue
            if d["modificationMetadata"]["readOnlyValue"] and name not in allow_read_only:
                bad(
                    name,
                    "READ_ONLY_VALUE",
                    f'"{name}" is a read only property; its value cannot be set.',
                )
                continue
            value = _to_str(raw)
            if value is None or value == "":
                out[name] = None
                continue
            kind = d["type"]
            if kind == "number":
                try:
                    float(value)
                except ValueError:
                    bad(name, "INVALID_FLOAT", f"{value} was not a valid number.")
                    continue
            elif kind == "bool":
                if value.lower() not in ("true", "false"):
                    bad(name, "INVALID_BOOLEAN", f"{value} was not a valid boolean.")
                    continue
                value = value.lower()
            elif kind in ("datetime", "date"):
                ms = parse_time_ms(value)
                if ms is None:
                    bad(name, "INVALID_DATE", f"{value} was not a valid date.")
                    continue
                if kind == "date":
                    if ms % 86_400_000:
                        bad(name, "INVALID_DATE",
                            f"{value} is at {iso_ms(ms)} which is not midnight!")  # fmt: skip
                        continue
                    value = date_of_ms(ms)
                else:
                    value = iso_ms(ms)
            elif name == "hubspot_owner_id" and owner_ids and value not in owner_ids:
                bad(name, "INVALID_OWNER_ID", f"{value} is not a valid owner id")
                continue
            elif kind == "enumeration" and d["options"]:
                allowed = {o["value"] for o in d["options"]}
                for part in value.split(";"):
                    if part not in allowed:
                        bad(name, "INVALID_OPTION",
                            f"{part} was not one of the allowed options: "
                            f"[{', '.join(sorted(allowed))}]")  # fmt: skip
                        break
                else:
                    out[name] = value
                continue
            out[name] = value
        if errors:
            raise _validation(
                "Property values were not valid: " + orjson.dumps(errors).decode(),
                errors=[
                    {
                        "message": e["message"],
                        "code": e["error"],
                        "context": {"propertyName": [e["name"]]},
                    }
                    for e in errors
                ],
            )
        return out

    def _unique_conflict(self, obj: str, values: dict[str, str | None], own_id: str | None) -> None:
        defs = self._defs(obj)
        for name, value in values.items():
            if value is None:
                continue
            unique = defs[name].get("hasUniqueValue") or (obj == "contacts" and name == "email")
            if not unique:
                continue
            row = self._find_by_property(obj, name, value)
            if row is not None and row[1] != own_id:
                if obj == "contacts" and name == "email":
                    msg = f"Contact already exists. Existing ID: {row[1]}"
                else:
                    msg = (
                        f"A {MESSAGE_NAME[obj].lower()} with the unique value {name}={value}"
                        f" already exists. Existing ID: {row[1]}"
                    )
                raise ApiError(409, "CONFLICT", msg)

    def _new_ids(self, obj: str, count: int) -> list[str]:
        return [record_id(obj, k) for k in self.store.next_ids(id_counter(obj), count)]

    def _insert(self, conn: Any, obj: str, rid: str, props: dict[str, str | None], now: int) -> Row:
        created = now
        stored = {k: v for k, v in props.items() if v is not None}
        if "createdate" in stored:
            created = parse_time_ms(str(stored.pop("createdate"))) or now
        data = orjson.dumps({"properties": stored}).decode()
        cur = conn.execute(
            "INSERT INTO records (vendor, object, id, created_ms, updated_ms, state, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq",
            (VENDOR, obj, rid, created, now, LIVE, data),
        )
        seq = int(cur.fetchone()[0])
        return (seq, rid, created, now, LIVE, data)

    def _update(self, conn: Any, obj: str, row: Row, props: dict[str, str | None], now: int) -> Row:
        seq, rid, created, _updated, state, raw = row
        data = orjson.loads(raw)
        stored = data.setdefault("properties", {})
        for k, v in props.items():
            if k == "createdate" and v is not None:
                created = parse_time_ms(v) or created
            elif v is None:
                stored.pop(k, None)
            else:
                stored[k] = v
        text = orjson.dumps(data).decode()
        conn.execute(
            "UPDATE records SET data = ?, updated_ms = ?, created_ms = ? WHERE seq = ?",
            (text, now, created, seq),
        )
        return (seq, rid, created, now, state, text)

    def _link(self, conn: Any, a_obj: str, a_id: str, b_obj: str, b_id: str) -> None:
        conn.executemany(
            "INSERT OR IGNORE INTO associations (vendor, from_type, from_id, to_type, to_id, kind)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                (VENDOR, a_obj, a_id, b_obj, b_id, str(ASSOCIATION_TYPE_IDS[(a_obj, b_obj)])),
                (VENDOR, b_obj, b_id, a_obj, a_id, str(ASSOCIATION_TYPE_IDS[(b_obj, a_obj)])),
            ],
        )

    def _create_associations(self, obj: str, specs: Any) -> list[tuple[str, str]]:
        """Validate ``associations`` of a create input; returns ``[(to_object, to_id)]``."""
        if not specs:
            return []
        if not isinstance(specs, list):
            raise _validation("Invalid input JSON: associations must be an array")
        out = []
        for spec in specs:
            to_id = str(((spec or {}).get("to") or {}).get("id", ""))
            types = (spec or {}).get("types") or []
            if not to_id or not types:
                raise _validation("Association input requires 'to.id' and 'types'")
            for t in types:
                type_id = int(t.get("associationTypeId", -1))
                pair = TYPE_ID_PAIRS.get(type_id)
                if pair is None or pair[0] != obj:
                    raise _validation(
                        f"{type_id} is not a valid association type id from {obj}",
                        subCategory="crm.associations.INVALID_ASSOCIATION_TYPE",
                    )
                if self._resolve(pair[1], to_id) is None:
                    raise _validation(
                        f"One or more associations are invalid: {pair[1]} {to_id} does not exist",
                        subCategory="crm.associations.INVALID_OBJECT_IDS",
                    )
                out.append((pair[1], to_id))
        return out

    def _required_on_create(self, obj: str, props: dict[str, str | None]) -> None:
        # Tasks need hs_timestamp (the due date) [HubSpot engagements: tasks docs].
        if obj == "tasks" and not props.get("hs_timestamp"):
            raise _validation(
                "Property values were not valid: hs_timestamp is required for tasks",
                errors=[{"message": "hs_timestamp is required", "code": "REQUIRED_PROPERTY"}],
            )

    def _list_limit(self, req: Request, default: int, maximum: int) -> int:
        raw = req.arg("limit")
        if raw is None or raw == "":
            return default
        try:
            limit = int(raw)
        except ValueError:
            raise _validation(f"Unable to parse limit: {raw}") from None
        if limit < 1:
            raise _validation(f"limit must be at least 1, got {limit}")
        if limit > maximum:
            if self.options.get("list_limit_policy") == "clamp":
                return maximum
            raise _validation(f"limit must be less than or equal to {maximum}, got {limit}")
        return limit

    def _link_base(self, req: Request) -> str:
        host = req.header("Host") or "api.hubapi.com"
        return f"http://{host}"

    @staticmethod
    def _archived_arg(req: Request) -> bool:
        return (req.arg("archived") or "false").lower() == "true"

    def _batch_envelope(
        self, results: list[dict[str, Any]], errors: list[dict[str, Any]], started: int
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": iso_ms(started),
            "completedAt": iso_ms(self.now_ms()),
        }
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
        return body

    def _inputs(self, body: dict[str, Any], *, limit_key: str = "batch_max_inputs") -> list[Any]:
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise _validation("Invalid input JSON: 'inputs' is required and must be an array")
        maximum = int(self.options[limit_key])
        # Batch endpoints take at most 100 inputs [API.md §1.5].
        if len(inputs) > maximum:
            raise _validation(
                f"Too many inputs: {len(inputs)}. The maximum number of inputs supported in a"
                f" batch request is {maximum}.",
                context={"maxInputs": [str(maximum)]},
            )
        for item in inputs:
            if not isinstance(item, dict):
                raise _validation("Invalid input JSON: each input must be an object")
        return inputs

    # -- objects: basic -------------------------------------------------------------------------

    @route("GET", "/crm/v3/objects/{t}")
    def list_objects(self, req: Request, t: str) -> Response:
        obj = self._object(t)
        limit = self._list_limit(
            req, int(self.options["list_default_limit"]), int(self.options["list_max_limit"])
        )
        after = req.arg("after")
        start = ""
        if after:
            try:
                start = str(int(base64.urlsafe_b64decode(after.encode() + b"==").decode())).zfill(
                    ID_WIDTH
                )
            except (ValueError, UnicodeDecodeError):
                raise _validation(f"Invalid paging cursor: {after}") from None
        # Literal state and vendor so SQLite can use the partial index of archived records.
        archived = self._archived_arg(req)
        state_sql = "state = 1" if archived else "state = 0"
        hint = " INDEXED BY hubspot_archived" if archived else ""
        rows = (
            self.store.conn()
            .execute(
                f"SELECT seq, id, created_ms, updated_ms, state, data FROM records{hint}"
                f" WHERE vendor = 'hubspot' AND object = ? AND id >= ? AND {state_sql}"
                " ORDER BY id LIMIT ?",
                (obj, start, limit + 1),
            )
            .fetchall()
        )
        names = self._names(req)
        results = [self._render(obj, r, names) for r in rows[:limit]]
        body: dict[str, Any] = {"results": self._with_associations(obj, results, req)}
        if len(rows) > limit:
            # The cursor is opaque (base64 of the next id); no paging key on the last page
            # [API.md §1.3].
            token = base64.urlsafe_b64encode(str(int(rows[limit][1])).encode()).decode().rstrip("=")
            body["paging"] = {
                "next": {
                    "after": token,
                    "link": f"{self._link_base(req)}/crm/v3/objects/{t}?after={token}",
                }
            }
        return json_response(body)

    @route("GET", "/crm/v3/objects/{t}/{rid}")
    def get_object(self, req: Request, t: str, rid: str) -> Response:
        obj = self._object(t)
        row = self._resolve(
            obj, rid, archived=self._archived_arg(req), id_property=req.arg("idProperty")
        )
        if row is None:
            raise self._object_not_found(rid)
        result = self._render(obj, row, self._names(req))
        return json_response(self._with_associations(obj, [result], req)[0])

    @staticmethod
    def _object_not_found(rid: str) -> ApiError:
        # Seen in the wild: {"message":"Object not found.  objectId are usually numeric.",
        # "context":{"id":[...]},"category":"OBJECT_NOT_FOUND"} [hubspot-api-nodejs #669].
        return ApiError(
            404,
            "OBJECT_NOT_FOUND",
            "Object not found.  objectId are usually numeric.",
            context={"id": [rid]},
        )

    @route("POST", "/crm/v3/objects/{t}")
    def create_object(self, req: Request, t: str) -> Response:
        obj = self._object(t)
        self._writable(obj)
        body = req.json_object()
        props = self._clean(obj, body.get("properties"))
        self._required_on_create(obj, props)
        links = self._create_associations(obj, body.get("associations"))
        now = self.now_ms()
        with self.store.write() as conn:
            self._unique_conflict(obj, props, None)
            rid = self._new_ids(obj, 1)[0]
            row = self._insert(conn, obj, rid, props, now)
            for to_obj, to_id in links:
                self._link(conn, obj, rid, to_obj, to_id)
        return json_response(self._render(obj, row, list(props)), 201)

    @route("PATCH", "/crm/v3/objects/{t}/{rid}")
    def update_object(self, req: Request, t: str, rid: str) -> Response:
        obj = self._object(t)
        self._writable(obj)
        body = req.json_object()
        props = self._clean(obj, body.get("properties"))
        with self.store.write() as conn:
            row = self._resolve(obj, rid, id_property=req.arg("idProperty"))
            if row is None:
                raise self._object_not_found(rid)
            self._unique_conflict(obj, props, row[1])
            row = self._update(conn, obj, row, props, self.now_ms())
        return json_response(self._render(obj, row, list(props)))

    @route("DELETE", "/crm/v3/objects/{t}/{rid}")
    def archive_object(self, req: Request, t: str, rid: str) -> Response:
        obj = self._object(t)
        self._writable(obj)
        with self.store.write() as conn:
            self._archive(conn, obj, rid, self.now_ms())
        return empty_response(204)

    def _archive(self, conn: Any, obj: str, rid: str, now: int) -> bool:
        row = self._row(obj, rid)
        if row is None or row[4] != LIVE:
            return False
        data = orjson.loads(row[5])
        data["archivedAt"] = iso_ms(now)
        conn.execute(
            "UPDATE records SET state = ?, updated_ms = ?, data = ? WHERE seq = ?",
            (ARCHIVED, now, orjson.dumps(data).decode(), row[0]),
        )
        return True

    @route("POST", "/crm/v3/objects/{t}/merge")
    def merge_objects(self, req: Request, t: str) -> Response:
        obj = self._object(t)
        self._writable(obj)
        body = req.json_object()
        primary_id = str(body.get("primaryObjectId") or "")
        other_id = str(body.get("objectIdToMerge") or "")
        if not primary_id or not other_id:
            raise _validation("primaryObjectId and objectIdToMerge are required")
        if primary_id == other_id:
            raise _validation("Cannot merge an object with itself")
        with self.store.write() as conn:
            primary = self._row(obj, primary_id)
            other = self._row(obj, other_id)
            if primary is None or primary[4] != LIVE:
                raise self._object_not_found(primary_id)
            if other is None or other[4] != LIVE:
                raise self._object_not_found(other_id)
            now = self.now_ms()
            p_props = orjson.loads(primary[5]).get("properties", {})
            o_data = orjson.loads(other[5])
            fill: dict[str, str | None] = {
                k: v
                for k, v in o_data.get("properties", {}).items()
                if p_props.get(k) in (None, "")
            }
            merged_ids = [x for x in (p_props.get("hs_merged_object_ids") or "").split(";") if x]
            fill["hs_merged_object_ids"] = ";".join([*merged_ids, other_id])
            row = self._update(conn, obj, primary, fill, now)
            o_data["mergedInto"] = primary_id
            conn.execute(
                "UPDATE records SET state = ?, updated_ms = ?, data = ? WHERE seq = ?",
                (MERGED, now, orjson.dumps(o_data).decode(), other[0]),
            )
            links = conn.execute(
                "SELECT to_type, to_id FROM associations WHERE vendor = ? AND from_type = ?"
                " AND from_id = ?",
                (VENDOR, obj, other_id),
            ).fetchall()
            for to_type, to_id in links:
                if (obj, to_type) in ASSOCIATION_TYPE_IDS:
                    self._link(conn, obj, primary_id, to_type, to_id)
        return json_response(self._render(obj, row, None))

    # -- objects: batch ---------------------------------------------------------------------------

    @route("POST", "/crm/v3/objects/{t}/batch/{op}")
    def batch(self, req: Request, t: str, op: str) -> Response:
        obj = self._object(t)
        handlers = {
            "read": self._batch_read,
            "create": self._batch_create,
            "update": self._batch_update,
            "upsert": self._batch_upsert,
            "archive": self._batch_archive,
        }
        handler = handlers.get(op)
        if handler is None:
            raise self.not_found_error(req)
        if op != "read":
            self._writable(obj)
        return handler(req, obj, req.json_object())

    def _batch_read(self, req: Request, obj: str, body: dict[str, Any]) -> Response:
        started = self.now_ms()
        history = body.get("propertiesWithHistory") or []
        inputs = self._inputs(
            body, limit_key="batch_history_max_inputs" if history else "batch_max_inputs"
        )
        names = body.get("properties")
        if names is not None and not isinstance(names, list):
            raise _validation("Invalid input JSON: properties must be an array")
        id_property = body.get("idProperty")
        archived = self._archived_arg(req)
        results, missing = [], []
        seen: set[str] = set()
        for item in inputs:
            rid = str(item.get("id", ""))
            row = self._resolve(obj, rid, archived=archived, id_property=id_property)
            if row is None:
                missing.append(rid)
            elif row[1] not in seen:
                seen.add(row[1])
                results.append(self._render(obj, row, names if names else None))
        errors = []
        if missing:
            errors.append(
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": f"Could not get some {MESSAGE_NAME[obj]} objects, they may be"
                    " deleted or not exist. Check that ids are valid.",
                    "context": {"ids": missing},
                    "errors": [],
                    "links": {},
                }
            )
        return json_response(self._batch_envelope(results, errors, started), 207 if errors else 200)

    def _batch_create(self, req: Request, obj: str, body: dict[str, Any]) -> Response:
        started = self.now_ms()
        inputs = self._inputs(body)
        prepared = []
        for item in inputs:
            props = self._clean(obj, item.get("properties"))
            self._required_on_create(obj, props)
            links = self._create_associations(obj, item.get("associations"))
            prepared.append((props, links, item.get("objectWriteTraceId")))
        self._no_duplicate_unique(obj, [p for p, _, _ in prepared])
        now = self.now_ms()
        results = []
        with self.store.write() as conn:
            for props, _links, _trace in prepared:
                self._unique_conflict(obj, props, None)
            ids = self._new_ids(obj, len(prepared)) if prepared else []
            for rid, (props, links, trace) in zip(ids, prepared, strict=True):
                row = self._insert(conn, obj, rid, props, now)
                for to_obj, to_id in links:
                    self._link(conn, obj, rid, to_obj, to_id)
                extra = {"objectWriteTraceId": trace} if trace is not None else None
                results.append(self._render(obj, row, list(props), extra=extra))
        return json_response(self._batch_envelope(results, [], started), 201)

    def _no_duplicate_unique(self, obj: str, batch: list[dict[str, str | None]]) -> None:
        defs = self._defs(obj)
        seen: set[tuple[str, str]] = set()
        for props in batch:
            for name, value in props.items():
                unique = defs[name].get("hasUniqueValue") or (obj == "contacts" and name == "email")
                if value is None or not unique:
                    continue
                key = (name, value.lower() if name == "email" else value)
                if key in seen:
                    raise ApiError(
                        409, "CONFLICT", f"Duplicate values for unique property {name}: {value}"
                    )
                seen.add(key)

    def _batch_update(self, req: Request, obj: str, body: dict[str, Any]) -> Response:
        started = self.now_ms()
        inputs = self._inputs(body)
        prepared = []
        ids = [str(item.get("id", "")) for item in inputs]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise _validation(f"Duplicate IDs found in batch input: {dupes}. IDs must be unique")
        for item in inputs:
            prepared.append(
                (
                    str(item.get("id", "")),
                    item.get("idProperty"),
                    self._clean(obj, item.get("properties")),
                    item.get("objectWriteTraceId"),
                )
            )
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        now = self.now_ms()
        with self.store.write() as conn:
            for rid, id_property, props, trace in prepared:
                row = self._resolve(obj, rid, id_property=id_property)
                if row is None:
                    err: dict[str, Any] = {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "message": f"Could not update {MESSAGE_NAME[obj]} {rid}: object not found",
                        "context": {"ids": [rid]},
                        "errors": [],
                        "links": {},
                    }
                    if trace is not None:
                        err["context"]["objectWriteTraceId"] = [str(trace)]
                    errors.append(err)
                    continue
                self._unique_conflict(obj, props, row[1])
                row = self._update(conn, obj, row, props, now)
                extra = {"objectWriteTraceId": trace} if trace is not None else None
                results.append(self._render(obj, row, list(props), extra=extra))
        return json_response(self._batch_envelope(results, errors, started), 207 if errors else 200)

    def _batch_upsert(self, req: Request, obj: str, body: dict[str, Any]) -> Response:
        started = self.now_ms()
        inputs = self._inputs(body)
        defs = self._defs(obj)
        prepared = []
        for item in inputs:
            id_property = item.get("idProperty")
            value = _to_str(item.get("id"))
            if not id_property or not value:
                raise _validation("Each upsert input needs 'id' and 'idProperty'")
            d = defs.get(id_property)
            # idProperty must be a unique property (or email for contacts) [API.md §1.5].
            if d is None or not (
                d.get("hasUniqueValue") or (obj == "contacts" and id_property == "email")
            ):
                raise _validation(
                    f"Property '{id_property}' is not a unique identifier property for {obj};"
                    " upsert requires a property with hasUniqueValue=true",
                    subCategory="UPSERT_ID_PROPERTY_NOT_UNIQUE",
                )
            props = self._clean(obj, item.get("properties"))
            prepared.append((id_property, value, props, item.get("objectWriteTraceId")))
        keys = [(p, v.lower() if p == "email" else v) for p, v, _, _ in prepared]
        if len(set(keys)) != len(keys):
            raise _validation("Duplicate IDs found in batch input; ids must be unique")
        results = []
        now = self.now_ms()
        with self.store.write() as conn:
            creates = [x for x in prepared if self._find_by_property(obj, x[0], x[1]) is None]
            new_ids = iter(self._new_ids(obj, len(creates)) if creates else [])
            for id_property, value, props, trace in prepared:
                row = self._find_by_property(obj, id_property, value)
                extra: dict[str, Any] = {}
                if trace is not None:
                    extra["objectWriteTraceId"] = trace
                if row is None:
                    full = {**props, id_property: value}
                    self._required_on_create(obj, full)
                    self._unique_conflict(obj, full, None)
                    row = self._insert(conn, obj, next(new_ids), full, now)
                    extra["new"] = True
                else:
                    self._unique_conflict(obj, props, row[1])
                    row = self._update(conn, obj, row, props, now)
                    extra["new"] = False
                results.append(self._render(obj, row, [*props, id_property], extra=extra))
        return json_response(self._batch_envelope(results, [], started))

    def _batch_archive(self, req: Request, obj: str, body: dict[str, Any]) -> Response:
        inputs = self._inputs(body)
        now = self.now_ms()
        with self.store.write() as conn:
            for item in inputs:
                self._archive(conn, obj, str(item.get("id", "")), now)
        return empty_response(204)

    # -- search -----------------------------------------------------------------------------------

    def _column(self, obj: str, name: str) -> tuple[str, str]:
        """SQL expression and comparison kind for a property in a search filter or sort."""
        if name in ("hs_lastmodifieddate", "lastmodifieddate") and (
            name == modified_property(obj) or obj == "contacts"
        ):
            return "updated_ms", "ms"  # indexed column: fast on 1M rows
        if name == "createdate":
            return "created_ms", "ms"
        if name == "hs_object_id":
            return "CAST(id AS INTEGER)", "int"
        d = self._defs(obj).get(name)
        if d is None or not _NAME_RE.match(name):
            raise _validation(
                f"There was a problem with the request: property {name!r} does not exist on {obj}",
                subCategory="PROPERTY_DOESNT_EXIST",
            )
        expr = f"json_extract(data, '$.properties.\"{name}\"')"
        kind = d["type"]
        if kind == "number":
            return f"CAST({expr} AS REAL)", "number"
        if kind in ("datetime", "date"):
            return expr, kind
        return f"lower({expr})", "text"

    @staticmethod
    def _value(kind: str, raw: Any) -> Any:
        text = _to_str(raw)
        if text is None:
            raise _validation("A filter value is required for this operator")
        if kind in ("ms", "datetime", "date"):
            ms = parse_time_ms(text)
            if ms is None:
                raise _validation(f"Invalid datetime value {text!r}; use epoch milliseconds")
            if kind == "ms":
                return ms
            return iso_ms(ms) if kind == "datetime" else date_of_ms(ms)
        if kind in ("int", "number"):
            try:
                return float(text) if kind == "number" else int(float(text))
            except ValueError:
                raise _validation(f"Invalid number value {text!r}") from None
        return text.lower()

    def _filter_sql(self, obj: str, f: dict[str, Any]) -> tuple[str, list[Any]]:
        name = f.get("propertyName")
        op = f.get("operator", "EQ")
        if not isinstance(name, str) or op not in _OPERATORS:
            raise _validation(
                f"Invalid filter: propertyName and a valid operator are required ({op})"
            )
        expr, kind = self._column(obj, name)
        if op == "HAS_PROPERTY":
            return f"({expr} IS NOT NULL AND {expr} != '')", []
        if op == "NOT_HAS_PROPERTY":
            return f"({expr} IS NULL OR {expr} = '')", []
        if op in ("IN", "NOT_IN"):
            values = f.get("values")
            if not isinstance(values, list) or not values:
                raise _validation(f"Operator {op} requires 'values'")
            args = [self._value(kind, v) for v in values]
            marks = ",".join("?" * len(args))
            if op == "IN":
                return f"{expr} IN ({marks})", args
            return f"({expr} IS NULL OR {expr} NOT IN ({marks}))", args
        if op == "BETWEEN":
            low = self._value(kind, f.get("value"))
            high = self._value(kind, f.get("highValue"))
            return f"{expr} BETWEEN ? AND ?", [low, high]
        if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            token = str(_to_str(f.get("value")) or "").lower()
            pattern = token.replace("*", "%") if "*" in token else f"%{token}%"
            clause = f"lower(CAST({expr} AS TEXT)) LIKE ?"
            if op == "CONTAINS_TOKEN":
                return clause, [pattern]
            return f"({expr} IS NULL OR NOT ({clause}))", [pattern]
        value = self._value(kind, f.get("value"))
        sql_op = {"EQ": "=", "NEQ": "!=", "LT": "<", "LTE": "<=", "GT": ">", "GTE": ">="}[op]
        if op == "NEQ":
            return f"({expr} IS NULL OR {expr} != ?)", [value]
        return f"{expr} {sql_op} ?", [value]

    @route("POST", "/crm/v3/objects/{t}/search", tags=("search",))
    def search(self, req: Request, t: str) -> Response:
        obj = self._object(t)
        body = req.json_object(required=False)
        opts = self.options
        limit = body.get("limit", 10)
        if isinstance(limit, str) and limit.isdigit():
            limit = int(limit)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise _validation(f"Invalid limit: {limit!r}")
        if limit > int(opts["search_max_limit"]):
            raise _validation(
                f"limit must be less than or equal to {opts['search_max_limit']}, got {limit}"
            )
        try:
            after = int(str(body.get("after") or "0"))
        except ValueError:
            raise _validation(f"Invalid after: {body.get('after')!r}") from None
        cap = int(opts["search_result_cap"])
        # 10,000 results per query at most; paging beyond gives 400 [API.md §1.4].
        if after + limit > cap:
            raise _validation(
                f"The search endpoints are limited to {cap} total results for any given query;"
                f" after={after} with limit={limit} goes beyond that.",
                context={"after": [str(after)], "limit": [str(limit)]},
            )
        groups = body.get("filterGroups") or []
        if not isinstance(groups, list):
            raise _validation("filterGroups must be an array")
        if len(groups) > int(opts["search_max_groups"]):
            raise _validation(
                f"Too many filter groups: {len(groups)}; the maximum is {opts['search_max_groups']}"
            )
        total_filters = 0
        # Literal vendor and state: SQLite can then use the hubspot_modified partial index.
        where = ["vendor = 'hubspot'", "object = ?", "state = 0"]
        args: list[Any] = [obj]
        lag = int(opts.get("search_index_lag_ms") or 0)
        if lag:
            where.append("updated_ms <= ?")
            args.append(self.now_ms() - lag)
        ors = []
        for g in groups:
            filters = (g or {}).get("filters") or []
            if len(filters) > int(opts["search_max_filters_per_group"]):
                raise _validation(
                    f"Too many filters in a group: {len(filters)}; the maximum is"
                    f" {opts['search_max_filters_per_group']}"
                )
            total_filters += len(filters)
            ands = []
            for f in filters:
                clause, vals = self._filter_sql(obj, f)
                ands.append(clause)
                args.extend(vals)
            if ands:
                ors.append("(" + " AND ".join(ands) + ")")
        if total_filters > int(opts["search_max_filters"]):
            raise _validation(
                f"Too many filters: {total_filters}; the maximum is {opts['search_max_filters']}"
            )
        if ors:
            where.append("(" + " OR ".join(ors) + ")")
        query = body.get("query")
        if isinstance(query, str) and query.strip():
            parts = []
            for name in _QUERY_PROPS.get(obj, ()):
                if name in self._defs(obj):
                    parts.append(f"lower(json_extract(data, '$.properties.\"{name}\"')) LIKE ?")
                    args.append(f"%{query.strip().lower()}%")
            if parts:
                where.append("(" + " OR ".join(parts) + ")")
        order: list[str] = []
        sorts = body.get("sorts") or []
        if not isinstance(sorts, list):
            raise _validation("sorts must be an array")
        tie_dir = "ASC"
        sort_cols: list[str] = []
        for s in sorts:
            # Both forms: "prop" / "-prop" strings [spec] and {propertyName, direction} [docs].
            if isinstance(s, str):
                name, direction = (s[1:], "DESC") if s.startswith("-") else (s, "ASC")
            elif isinstance(s, dict):
                name = str(s.get("propertyName", ""))
                direction = "DESC" if str(s.get("direction", "ASCENDING")).upper() in (
                    "DESCENDING", "DESC"
                ) else "ASC"  # fmt: skip
            else:
                raise _validation("Invalid sort")
            expr, _kind = self._column(obj, name)
            if not order:
                tie_dir = direction
            order.append(f"{expr} {direction}")
            sort_cols.append(expr)
        # Ties (same millisecond) are broken by id, in the first sort's direction, so paging is
        # stable; HubSpot documents no tie order (dedupe by id) [API.md §1.4].
        order.append(f"id {tie_dir}")
        sql_where = " AND ".join(where)
        order_sql = ", ".join(order)
        conn = self.store.conn()
        # HubSpot returns the total with every page; it is computed once per query and reused
        # until the next write (memo), so deep paging does not count the whole table each time.
        query_key: tuple[Any, ...] = (obj, sql_where, tuple(args), order_sql)
        if lag:  # the visible set moves with the clock: nothing can be reused
            query_key = (*query_key, self.now_ms())
        total = int(
            self.memo(
                ("search-total", *query_key[:3]),
                lambda: conn.execute(
                    f"SELECT count(*) FROM records INDEXED BY hubspot_modified WHERE {sql_where}",
                    args,
                ).fetchone()[0],
            )
        )
        # Keyset continuation: when the previous page of this query ended at offset ``after``
        # and nothing was written since, start after its last row instead of skipping ``after``
        # rows (same rows, same order: the order is total thanks to the id tie-break).
        keyset = len(sort_cols) <= 1 and all(c in ("updated_ms", "created_ms") for c in sort_cols)
        cols = [*sort_cols, "id"]
        version = self.data_version() if keyset and not lag else None
        anchor = self.memo_get(("search-anchor", *query_key, after)) if after and version else None
        select = f"SELECT seq, id, created_ms, updated_ms, state, data, {', '.join(cols)}"
        if anchor is not None:
            cmp = "<" if tie_dir == "DESC" else ">"
            # "+column": the filters' time bounds stay out of index selection, so SQLite seeks
            # to the anchor's row value instead of scanning from the filter's bound.
            keyset_where = _TIME_COLUMN.sub(r"+\1", sql_where)
            rows = conn.execute(
                f"{select} FROM records WHERE {keyset_where}"
                f" AND ({', '.join(cols)}) {cmp} ({', '.join('?' * len(cols))})"
                f" ORDER BY {order_sql} LIMIT ?",
                [*args, *anchor, limit],
            ).fetchall()
        else:
            rows = conn.execute(
                f"{select} FROM records WHERE {sql_where} ORDER BY {order_sql} LIMIT ? OFFSET ?",
                [*args, limit, after],
            ).fetchall()
        if rows and version is not None:
            self.memo_put(
                ("search-anchor", *query_key, after + len(rows)), tuple(rows[-1][6:]), version
            )
        rows = [r[:6] for r in rows]
        names = body.get("properties") or None
        results = [self._render(obj, r, names) for r in rows]
        out: dict[str, Any] = {"total": total, "results": results}
        if after + len(rows) < total and rows:
            out["paging"] = {"next": {"after": str(after + len(rows))}}
        return json_response(out)

    # -- associations ----------------------------------------------------------------------------

    def _assoc_rows(self, obj: str, rid: str, to: str, after: str, limit: int) -> list[Any]:
        rows = self.store.conn().execute(
            "SELECT a.to_id, a.kind FROM associations a JOIN records r ON r.vendor = a.vendor"
            " AND r.object = a.to_type AND r.id = a.to_id AND r.state = 0"
            " WHERE a.vendor = ? AND a.from_type = ? AND a.from_id = ? AND a.to_type = ?"
            " AND a.to_id > ? ORDER BY a.to_id LIMIT ?",
            (VENDOR, obj, rid, to, after, limit + 1),
        )
        return rows.fetchall()

    def _assoc_types(self, obj: str, to: str, kinds: Iterable[str]) -> list[dict[str, Any]]:
        out = []
        for kind in kinds:
            out.append({"category": "HUBSPOT_DEFINED", "typeId": int(kind), "label": None})
        return out or [
            {
                "category": "HUBSPOT_DEFINED",
                "typeId": ASSOCIATION_TYPE_IDS[(obj, to)],
                "label": None,
            }
        ]

    def _assoc_pair(self, from_t: str, to_t: str) -> tuple[str, str]:
        obj, to = self._object(from_t), self._object(to_t)
        if (obj, to) not in ASSOCIATION_TYPE_IDS:
            raise _validation(f"No association definition exists between {obj} and {to}")
        return obj, to

    @route("GET", "/crm/v4/objects/{t}/{rid}/associations/{to_t}")
    def v4_list_associations(self, req: Request, t: str, rid: str, to_t: str) -> Response:
        obj, to = self._assoc_pair(t, to_t)
        limit = self._list_limit(req, 500, int(self.options["associations_page_size"]))
        after = req.arg("after") or ""
        grouped: dict[str, list[str]] = {}
        rows = self._assoc_rows(obj, rid, to, after, limit)
        for to_id, kind in rows[:limit]:
            grouped.setdefault(to_id, []).append(kind)
        body: dict[str, Any] = {
            "results": [
                {"toObjectId": int(i), "associationTypes": self._assoc_types(obj, to, kinds)}
                for i, kinds in grouped.items()
            ]
        }
        if len(rows) > limit:
            last = rows[limit - 1][0]
            body["paging"] = {"next": {"after": last, "link": f"?after={last}"}}
        return json_response(body)

    @route("GET", "/crm/v3/objects/{t}/{rid}/associations/{to_t}")
    def v3_list_associations(self, req: Request, t: str, rid: str, to_t: str) -> Response:
        obj, to = self._assoc_pair(t, to_t)
        limit = self._list_limit(req, 500, int(self.options["associations_page_size"]))
        rows = self._assoc_rows(obj, rid, to, req.arg("after") or "", limit)
        seen: list[str] = []
        for to_id, _kind in rows[:limit]:
            if to_id not in seen:
                seen.append(to_id)
        body: dict[str, Any] = {
            "results": [{"id": i, "type": association_name(obj, to)} for i in seen]
        }
        if len(rows) > limit:
            last = rows[limit - 1][0]
            body["paging"] = {"next": {"after": last, "link": f"?after={last}"}}
        return json_response(body)

    @route("PUT", "/crm/v4/objects/{t}/{rid}/associations/default/{to_t}/{to_id}")
    def v4_create_default(self, req: Request, t: str, rid: str, to_t: str, to_id: str) -> Response:
        started = self.now_ms()
        obj, to = self._assoc_pair(t, to_t)
        if self._resolve(obj, rid) is None:
            raise self._object_not_found(rid)
        if self._resolve(to, to_id) is None:
            raise self._object_not_found(to_id)
        with self.store.write() as conn:
            self._link(conn, obj, rid, to, to_id)
        results = [
            {
                "from": {"id": rid},
                "to": {"id": to_id},
                "associationSpec": {
                    "associationCategory": "HUBSPOT_DEFINED",
                    "associationTypeId": ASSOCIATION_TYPE_IDS[(obj, to)],
                },
            },
            {
                "from": {"id": to_id},
                "to": {"id": rid},
                "associationSpec": {
                    "associationCategory": "HUBSPOT_DEFINED",
                    "associationTypeId": ASSOCIATION_TYPE_IDS[(to, obj)],
                },
            },
        ]
        return json_response(self._batch_envelope(results, [], started))

    @route("POST", "/crm/v4/associations/{t}/{to_t}/batch/read")
    def v4_batch_read(self, req: Request, t: str, to_t: str) -> Response:
        started = self.now_ms()
        obj, to = self._assoc_pair(t, to_t)
        inputs = self._inputs(req.json_object(), limit_key="batch_max_inputs")
        results, errors = [], []
        for item in inputs:
            rid = str(item.get("id", ""))
            rows = self._assoc_rows(obj, rid, to, "", 100_000)
            grouped: dict[str, list[str]] = {}
            for to_id, kind in rows:
                grouped.setdefault(to_id, []).append(kind)
            if not grouped:
                errors.append(
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                        "message": f"No {to[:-1] if to != 'companies' else 'company'} is"
                        f" associated with {obj[:-1] if obj != 'companies' else 'company'} {rid}.",
                        "context": {"fromObjectId": [rid]},
                        "errors": [],
                        "links": {},
                    }
                )
                continue
            results.append(
                {
                    "from": {"id": rid},
                    "to": [
                        {"toObjectId": int(i), "associationTypes": self._assoc_types(obj, to, k)}
                        for i, k in grouped.items()
                    ],
                }
            )
        return json_response(self._batch_envelope(results, errors, started), 207 if errors else 200)

    # -- owners ----------------------------------------------------------------------------------

    def _owners(self) -> list[dict[str, Any]]:
        return list(self.store.get_meta(VENDOR, "owners", []) or [])

    @route("GET", "/crm/v3/owners")
    def list_owners(self, req: Request) -> Response:
        limit = self._list_limit(req, 100, 500)
        owners = self._owners()
        email = req.arg("email")
        if email:
            owners = [o for o in owners if o.get("email", "").lower() == email.lower()]
        archived = self._archived_arg(req)
        owners = [o for o in owners if bool(o.get("archived")) == archived]
        try:
            start = int(req.arg("after") or 0)
        except ValueError:
            raise _validation("Invalid after") from None
        page = owners[start : start + limit]
        body: dict[str, Any] = {"results": page}
        if start + limit < len(owners):
            nxt = str(start + limit)
            body["paging"] = {
                "next": {"after": nxt, "link": f"{self._link_base(req)}/crm/v3/owners?after={nxt}"}
            }
        return json_response(body)

    @route("GET", "/crm/v3/owners/{owner_id}")
    def get_owner(self, req: Request, owner_id: str) -> Response:
        key = "userId" if req.arg("idProperty") == "userId" else "id"
        for o in self._owners():
            if str(o.get(key)) == owner_id:
                return json_response(o)
        raise ApiError(
            404, "OBJECT_NOT_FOUND", f"Owner {owner_id} not found", context={"id": [owner_id]}
        )

    # -- custom object schemas --------------------------------------------------------------------

    @route("GET", "/crm-object-schemas/v3/schemas")
    @route("GET", "/crm/v3/schemas")
    def list_schemas(self, req: Request) -> Response:
        # Schemas API, "Retrieve all custom object schemas": {"results": [ObjectSchema]} with no
        # paging (hubspot-api-client: CollectionResponseObjectSchemaNoPaging). The older guide
        # calls it at /crm/v3/schemas, the reference at /crm-object-schemas/v3/schemas. The
        # sandbox's portal defines no custom objects, archived or not, so the list is empty.
        return json_response({"results": []})

    # -- properties ------------------------------------------------------------------------------

    def _save_custom(self, obj: str, d: dict[str, Any]) -> None:
        with self._meta_lock:
            custom = self.store.get_meta(VENDOR, "custom_properties", {}) or {}
            custom.setdefault(obj, {})[d["name"]] = d
            self.store.set_meta(VENDOR, "custom_properties", custom)
            self._props_cache = None

    def _property(self, obj: str, name: str, *, archived: bool = False) -> dict[str, Any]:
        d = self._properties().get(obj, {}).get(name)
        if d is None or bool(d.get("archived")) != archived:
            raise ApiError(
                404,
                "OBJECT_NOT_FOUND",
                f"Unable to find property with name: {name} for object type: "
                f"{OBJECT_TYPE_IDS[obj]}",
            )
        return d

    def _groups(self, obj: str) -> dict[str, dict[str, Any]]:
        stored = self.store.get_meta(VENDOR, "property_groups", None)
        if stored is None:
            stored = {o: {g["name"]: g for g in gs} for o, gs in builtin_groups().items()}
        return dict(stored.get(obj, {}))

    def _save_groups(self, obj: str, groups: dict[str, dict[str, Any]]) -> None:
        with self._meta_lock:
            stored = self.store.get_meta(VENDOR, "property_groups", None)
            if stored is None:
                stored = {o: {g["name"]: g for g in gs} for o, gs in builtin_groups().items()}
            stored[obj] = groups
            self.store.set_meta(VENDOR, "property_groups", stored)

    def _new_property(self, obj: str, body: dict[str, Any]) -> dict[str, Any]:
        missing = [
            k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)
        ]
        if missing:
            raise _validation(
                f"Missing required fields: {', '.join(missing)}",
                errors=[{"message": f"{k} is required", "code": "REQUIRED_FIELD"} for k in missing],
            )
        name = str(body["name"])
        if not _NAME_RE.match(name):
            raise _validation(
                f"Property name {name!r} is invalid: use lowercase letters, digits and underscores"
            )
        if body["type"] not in _PROPERTY_TYPES:
            raise _validation(f"Invalid property type {body['type']!r}")
        if body["fieldType"] not in _FIELD_TYPES:
            raise _validation(f"Invalid fieldType {body['fieldType']!r}")
        if body["groupName"] not in self._groups(obj):
            raise _validation(f"Property group {body['groupName']!r} does not exist")
        if name in self._properties().get(obj, {}):
            # Creating an existing property gives 409 [API.md §1.7].
            raise ApiError(
                409,
                "OBJECT_ALREADY_EXISTS",
                f"A property named '{name}' already exists.",
                context={"name": [name]},
            )
        d = prop(
            name,
            str(body["label"]),
            str(body["type"]),
            str(body["groupName"]),
            field_type=str(body["fieldType"]),
            options=tuple(
                (str(o.get("value")), str(o.get("label"))) for o in body.get("options") or []
            ),
            unique=bool(body.get("hasUniqueValue", False)),
            hubspot_defined=False,
            description=str(body.get("description") or ""),
            order=int(body.get("displayOrder", -1)),
        )
        now = iso_ms(self.now_ms())
        d["createdAt"] = d["updatedAt"] = now
        d["hidden"] = bool(body.get("hidden", False))
        d["formField"] = bool(body.get("formField", False))
        return d

    # -- pipelines [API.md §1.13] ---------------------------------------------------------------

    def _pipeline_object(self, t: str) -> str:
        obj = self._object(t)
        if obj not in _PIPELINE_PROPERTIES:
            raise _validation(f"Object type {t} does not support pipelines")
        return obj

    @route("GET", "/crm/v3/pipelines/{t}")
    def list_pipelines(self, req: Request, t: str) -> Response:
        return json_response({"results": self._pipelines(self._pipeline_object(t))})

    @route("GET", "/crm/v3/pipelines/{t}/{pid}")
    def get_pipeline(self, req: Request, t: str, pid: str) -> Response:
        for p in self._pipelines(self._pipeline_object(t)):
            if p["id"] == pid:
                return json_response(p)
        raise ApiError(404, "OBJECT_NOT_FOUND", f"Unable to find pipeline {pid}")

    @route("POST", "/crm/v3/pipelines/{t}")
    def create_pipeline(self, req: Request, t: str) -> Response:
        """A pipeline with numeric ids, as a portal's own pipelines have. Deal stages need
        ``probability`` (0.0 to 1.0) in their metadata, ticket stages ``ticketState``."""
        obj = self._pipeline_object(t)
        self._require_scope(f"crm.schemas.{obj}.write")
        body = req.json_object()
        label, stages = body.get("label"), body.get("stages")
        if not isinstance(label, str) or not label or not isinstance(stages, list) or not stages:
            raise _validation("A pipeline needs a label and at least one stage")
        parsed: list[tuple[str, str, dict[str, str]]] = []
        for stage in stages:
            meta = stage.get("metadata") if isinstance(stage, dict) else None
            if not isinstance(meta, dict) or not isinstance(stage.get("label"), str):
                raise _validation("Each stage needs a label and metadata")
            meta = {str(k): str(v) for k, v in meta.items()}
            if obj == "deals":
                try:
                    probability = float(meta["probability"])
                except (KeyError, ValueError):
                    raise _validation("A deal stage needs metadata.probability") from None
                if not 0.0 <= probability <= 1.0:
                    raise _validation("metadata.probability must be between 0.0 and 1.0")
                meta["probability"] = f"{probability:.1f}"
                meta.setdefault("isClosed", str(probability in (0.0, 1.0)).lower())
            elif meta.get("ticketState") not in ("OPEN", "CLOSED"):
                raise _validation("A ticket stage needs metadata.ticketState OPEN or CLOSED")
            parsed.append(("", stage["label"], meta))
        with self._meta_lock:
            made = self.store.get_meta(VENDOR, "pipelines", {}) or {}
            ids = [
                str(800_000_000 + n)
                for n in self.store.next_ids("hubspot:pipelines", 1 + len(parsed))
            ]
            new = pipeline(
                ids[0],
                label,
                [(ids[i + 1], lab, meta) for i, (_, lab, meta) in enumerate(parsed)],
                int(body.get("displayOrder") or 0),
            )
            made.setdefault(obj, []).append(new)
            self.store.set_meta(VENDOR, "pipelines", made)
            self._props_cache = None
        return json_response(new, 201)

    @route("GET", "/crm/v3/properties/{t}")
    def list_properties(self, req: Request, t: str) -> Response:
        obj = self._object(t)
        defs = self._defs(obj, archived=self._archived_arg(req))
        names = self._names(req)
        results = [d for n, d in defs.items() if names is None or n in names]
        return json_response({"results": results})

    @route("POST", "/crm/v3/properties/{t}")
    def create_property(self, req: Request, t: str) -> Response:
        obj = self._object(t)
        self._require_scope(f"crm.schemas.{obj}.write")
        with self._meta_lock:
            d = self._new_property(obj, req.json_object())
            self._save_custom(obj, d)
        return json_response(d, 201)

    @route("GET", "/crm/v3/properties/{t}/{name}")
    def get_property(self, req: Request, t: str, name: str) -> Response:
        obj = self._object(t)
        return json_response(self._property(obj, name, archived=self._archived_arg(req)))

    @route("PATCH", "/crm/v3/properties/{t}/{name}")
    def update_property(self, req: Request, t: str, name: str) -> Response:
        obj = self._object(t)
        self._require_scope(f"crm.schemas.{obj}.write")
        body = req.json_object()
        with self._meta_lock:
            d = dict(self._property(obj, name))
            if d.get("hubspotDefined"):
                raise _validation(
                    f"Property {name} is HubSpot-defined; its definition is read-only"
                )
            for key in ("label", "description", "groupName", "hidden", "displayOrder", "formField",
                        "type", "fieldType"):  # fmt: skip
                if key in body:
                    d[key] = body[key]
            if "options" in body:
                d["options"] = [
                    {"label": o.get("label"), "value": o.get("value"),
                     "displayOrder": o.get("displayOrder", i), "hidden": bool(o.get("hidden"))}
                    for i, o in enumerate(body["options"] or [])
                ]  # fmt: skip
            d["updatedAt"] = iso_ms(self.now_ms())
            self._save_custom(obj, d)
        return json_response(d)

    @route("DELETE", "/crm/v3/properties/{t}/{name}")
    def archive_property(self, req: Request, t: str, name: str) -> Response:
        obj = self._object(t)
        self._require_scope(f"crm.schemas.{obj}.write")
        with self._meta_lock:
            d = dict(self._property(obj, name))
            if d.get("hubspotDefined"):
                raise _validation(f"Property {name} is HubSpot-defined and cannot be archived")
            d["archived"] = True
            d["archivedAt"] = iso_ms(self.now_ms())
            self._save_custom(obj, d)
        return empty_response(204)

    @route("POST", "/crm/v3/properties/{t}/batch/{op}")
    def batch_properties(self, req: Request, t: str, op: str) -> Response:
        obj = self._object(t)
        if op in ("create", "archive"):
            self._require_scope(f"crm.schemas.{obj}.write")
        started = self.now_ms()
        inputs = self._inputs(req.json_object())
        results, errors = [], []
        with self._meta_lock:
            if op == "create":
                for item in inputs:
                    try:
                        d = self._new_property(obj, item)
                    except ApiError as err:
                        errors.append(
                            {"status": "error", "category": err.code, "message": err.message,
                             "context": {"name": [str(item.get("name"))]}, "errors": [],
                             "links": {}}
                        )  # fmt: skip
                        continue
                    self._save_custom(obj, d)
                    results.append(d)
                return json_response(
                    self._batch_envelope(results, errors, started), 207 if errors else 201
                )
            if op == "read":
                archived = bool(req.json_object().get("archived", False))
                missing = []
                for item in inputs:
                    name = str(item.get("name", ""))
                    found = self._properties().get(obj, {}).get(name)
                    if found is None or bool(found.get("archived")) != archived:
                        missing.append(name)
                    else:
                        results.append(found)
                if missing:
                    errors.append(
                        {"status": "error", "category": "OBJECT_NOT_FOUND",
                         "message": "Unable to find some properties",
                         "context": {"names": missing}, "errors": [], "links": {}}
                    )  # fmt: skip
                return json_response(
                    self._batch_envelope(results, errors, started), 207 if errors else 200
                )
            if op == "archive":
                for item in inputs:
                    old = self._properties().get(obj, {}).get(str(item.get("name", "")))
                    if (
                        old is not None
                        and not old.get("hubspotDefined")
                        and not old.get("archived")
                    ):
                        self._save_custom(
                            obj, {**old, "archived": True, "archivedAt": iso_ms(self.now_ms())}
                        )
                return empty_response(204)
        raise self.not_found_error(req)

    @route("GET", "/crm/v3/properties/{t}/groups")
    def list_groups(self, req: Request, t: str) -> Response:
        obj = self._object(t)
        return json_response(
            {"results": [g for g in self._groups(obj).values() if not g.get("archived")]}
        )

    @route("POST", "/crm/v3/properties/{t}/groups")
    def create_group(self, req: Request, t: str) -> Response:
        obj = self._object(t)
        self._require_scope(f"crm.schemas.{obj}.write")
        body = req.json_object()
        name, label = body.get("name"), body.get("label")
        if not name or not label:
            raise _validation("Property group 'name' and 'label' are required")
        with self._meta_lock:
            groups = self._groups(obj)
            if name in groups:
                raise ApiError(
                    409, "OBJECT_ALREADY_EXISTS", f"A property group named '{name}' already exists."
                )
            g = {
                "name": str(name),
                "label": str(label),
                "displayOrder": int(body.get("displayOrder", -1)),
                "archived": False,
            }
            groups[str(name)] = g
            self._save_groups(obj, groups)
        return json_response(g, 201)

    def _group(self, obj: str, name: str) -> dict[str, Any]:
        g = self._groups(obj).get(name)
        if g is None or g.get("archived"):
            raise ApiError(404, "OBJECT_NOT_FOUND", f"Unable to find property group {name}")
        return g

    @route("GET", "/crm/v3/properties/{t}/groups/{name}")
    def get_group(self, req: Request, t: str, name: str) -> Response:
        return json_response(self._group(self._object(t), name))

    @route("PATCH", "/crm/v3/properties/{t}/groups/{name}")
    def update_group(self, req: Request, t: str, name: str) -> Response:
        obj = self._object(t)
        self._require_scope(f"crm.schemas.{obj}.write")
        body = req.json_object()
        with self._meta_lock:
            g = dict(self._group(obj, name))
            for key in ("label", "displayOrder"):
                if key in body:
                    g[key] = body[key]
            groups = self._groups(obj)
            groups[name] = g
            self._save_groups(obj, groups)
        return json_response(g)

    @route("DELETE", "/crm/v3/properties/{t}/groups/{name}")
    def delete_group(self, req: Request, t: str, name: str) -> Response:
        obj = self._object(t)
        self._require_scope(f"crm.schemas.{obj}.write")
        with self._meta_lock:
            g = dict(self._group(obj, name))
            g["archived"] = True
            groups = self._groups(obj)
            groups[name] = g
            self._save_groups(obj, groups)
        return empty_response(204)
