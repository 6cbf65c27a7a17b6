"""The Salesforce REST API (v66.0; any vXX.X from v20.0) as the sandbox serves it.

Contracts: ../API.md §2 (cited as [API.md §2.2] and so on) and the official Postman request
templates it cites. What is emulated and what is not is listed in ``FIDELITY.md`` beside
this file.

Records live in the shared ``records`` table as ``{Field: value}`` (JSON-typed, datetimes as
``2026-01-01T00:00:00.000+0000``); ``updated_ms`` is ``SystemModstamp``; the recycle bin is
``state`` ARCHIVED (or MERGED for merge losers) with ``IsDeleted: true``.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import email.utils
import hashlib
import hmac
import re
import threading
import urllib.parse
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from crm_connectors.sandbox.auth import Principal, TokenRejected
from crm_connectors.sandbox.http import (
    ApiError,
    MalformedJson,
    Request,
    Response,
    Route,
    VendorApp,
    empty_response,
    json_response,
    route,
)
from crm_connectors.sandbox.store import ARCHIVED, LIVE, MERGED, dumps, loads

from . import soql
from .model import (
    COMPOUND_TYPES,
    CUSTOM_FIELD_PREFIX,
    JOB_PREFIX,
    LOCATOR_PREFIX,
    NUMBER_TYPES,
    OBJECT_BY_PREFIX,
    ORG_PREFIX,
    PREFIXES,
    STRING_TYPES,
    TOOLING_TYPES,
    Stage,
    compound_parts,
    fmt_datetime,
    make_id,
    normalize_id,
    org_case_statuses,
    org_stages,
    parse_date,
    parse_datetime,
    plain_org,
    realistic_org,
    realistic_restricted,
    standard_objects,
)
from .model import field as make_field

if TYPE_CHECKING:
    from crm_connectors.sandbox.app import Context

V = "/services/data/{version}"
_VERSION = re.compile(r"/services/data/v(\d+)\.(\d)(?=/|\Z)")
_FIELD_NAME = re.compile(r"\A[A-Za-z][A-Za-z0-9_]*\Z")
_EMAIL = re.compile(r"\A[^@\s]+@[^@\s]+\.[^@\s]+\Z")
MIN_VERSION = 20
#: Datetime fields kept in indexed columns of ``records`` (pushed into SQL by the planner).
_TIME_COLUMNS = {"SystemModstamp": "updated_ms", "CreatedDate": "created_ms"}
ADMIN_USER = make_id(PREFIXES["User"], 1)
ORG_ID = make_id(ORG_PREFIX, 1)
QUERY_STATES = (LIVE,)
QUERY_ALL_STATES = (LIVE, ARCHIVED, MERGED)  # queryAll sees the recycle bin and merge losers


#: The org's other documented limits, untouched by anything the emulator does [API.md §2.8].
_OTHER_LIMITS = {
    "ConcurrentAsyncGetReportInstances": 200, "ConcurrentSyncReportRuns": 20,
    "DailyAsyncApexExecutions": 250_000, "DailyBulkApiBatches": 15_000,
    "DailyDurableStreamingApiEvents": 10_000, "DailyGenericStreamingApiEvents": 10_000,
    "DailyStreamingApiEvents": 10_000, "DailyWorkflowEmails": 1_875,
    "DurableStreamingApiConcurrentClients": 20, "FileStorageMB": 1024,
    "HourlyAsyncReportRuns": 1_200, "HourlyDashboardRefreshes": 200,
    "HourlyDashboardResults": 5_000, "HourlyDashboardStatuses": 999_999_999,
    "HourlyODataCallout": 10_000, "HourlySyncReportRuns": 500,
    "HourlyTimeBasedWorkflow": 50, "MassEmail": 10, "PermissionSets": 1_500,
    "SingleEmail": 15, "StreamingApiConcurrentClients": 20,
}  # fmt: skip


class _Rollback(Exception):
    """Raised inside a write transaction to undo it (allOrNone) while keeping the results."""

    def __init__(self, results: list[dict[str, Any]]) -> None:
        super().__init__("rolled back")
        self.results = results


class _DailyUsage:
    """Salesforce's daily API allocation: a rolling 24-hour count of calls per org
    [API.md §2.8]."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._calls: deque[float] = deque()
        self._lock = threading.Lock()

    def _prune(self, now: float) -> None:
        horizon = now - self.window
        while self._calls and self._calls[0] <= horizon:
            self._calls.popleft()

    def take(self, now: float, enforce: bool) -> bool:
        with self._lock:
            self._prune(now)
            if len(self._calls) >= self.limit and enforce:
                return False
            self._calls.append(now)
            return True

    def used(self, now: float) -> int:
        with self._lock:
            self._prune(now)
            return min(len(self._calls), self.limit) if self.limit else len(self._calls)


@dataclass
class _Plan:
    q: soql.Query
    obj: str
    types: dict[str, str]
    where_sql: str
    params: list[Any]
    residual: soql.Predicate | None
    order_cols: tuple[str, ...] | None  # SQL keyset columns, or None: sorted in Python
    desc: bool = False  # the keyset columns run descending
    # where_sql with the time bounds kept out of index selection ("+column"), so that a keyset
    # continuation seeks to its (column, id) row value instead of scanning from the time bound.
    keyset_where: str = ""
    count_index: str | None = None  # a covering index for count(*), when one applies

    @property
    def order_sql(self) -> str:
        suffix = " DESC" if self.desc else ""
        return ", ".join(c + suffix for c in self.order_cols or ("seq",))

    @property
    def streamable(self) -> bool:
        return self.residual is None and self.order_cols is not None and self.q.offset == 0


@dataclass
class _Cursor:
    id: str
    plan: _Plan
    version: str
    batch: int
    total: int
    seqs: list[int] | None  # materialised results (Python filter / sort), else keyset paging
    keys: dict[int, tuple[Any, ...] | None] = field(default_factory=dict)
    last_used: float = 0.0
    done: bool = False


@dataclass
class _Job:
    id: str
    info: dict[str, Any]
    plan: _Plan
    version: str
    created: float
    polled: bool = False
    seqs: list[int] | None = None


class SalesforceEmulator(VendorApp):
    vendor = "salesforce"
    DEFAULT_OPTIONS: ClassVar[dict[str, Any]] = {
        # Daily API request allocation, a rolling 24 h window; 403 REQUEST_LIMIT_EXCEEDED when
        # exhausted [API.md §2.8]. Real orgs: 15,000 + per-licence amounts; 100,000 here.
        "daily_api_requests": 100_000,
        "api_window_seconds": 86_400,
        "api_version": "66.0",  # Spring '26 [API.md §2.1]
        # Sforce-Query-Options batchSize: min 200, max 2000, default 2000 [API.md §2.2].
        "query_batch_default": 2000,
        "query_batch_min": 200,
        "query_batch_max": 2000,
        # Query locators expire after ~15 min idle; ~10 open per user, the oldest is released.
        "query_locator_ttl": 900.0,
        "max_open_locators": 10,
        "collections_max": 200,  # sObject Collections [API.md §2.5]
        "collections_retrieve_max": 2000,
        "composite_max": 25,  # Composite subrequests [API.md §2.6]
        "session_ttl": 7200.0,  # session timeout, 2 h by default [auth.py]
        # Bulk 2.0 query jobs: seconds from creation to JobComplete (0: the first poll).
        "bulk_query_delay": 0.0,
        "bulk_results_default_max": 100_000,
        # getUpdated: 30 days back; getDeleted: 15 days back [postman sobject_get_*.json].
        "updated_window_days": 30,
        "deleted_window_days": 15,
        # Real orgs hide a new custom field from the API user until field-level security is
        # granted (POST /sobjects/FieldPermissions) [API.md §2.10]. Off by default here.
        "custom_field_requires_fls": False,
        # The API user's "Customize Application" permission (with "Manage Profiles and Permission
        # Sets"): without it, Tooling CustomField creates and FieldPermissions grants get 403
        # INSUFFICIENT_ACCESS [API.md §2.9: 403 is insufficient access].
        "customize_application": True,
        # Objects this org lacks, or its API user has no Read on (an org without the sandbox's
        # NPS_Response__c, a user whose permission sets leave out Case): describe answers 404
        # NOT_FOUND, SOQL 400 INVALID_TYPE, describeGlobal omits them, as a real org does for
        # an object the user cannot see [API.md §2.3].
        "hidden_objects": [],
        "rate_limits": True,
    }

    def __init__(self, ctx: Context) -> None:
        self._lock = threading.RLock()
        self._tl = threading.local()
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self._jobs: dict[str, _Job] = {}
        self._usage = _DailyUsage(100_000, 86_400)
        super().__init__(ctx)
        self._schema: dict[str, dict[str, Any]] = {}
        self._compounds: dict[str, dict[str, tuple[tuple[str, str], ...]]] = {}
        self._load_schema()
        if self.store.get_meta(self.vendor, "schema_modified_ms") is None:
            self.store.set_meta(self.vendor, "schema_modified_ms", self.now_ms() // 1000 * 1000)
        for obj, info in self._schema.items():
            for f in info["fields"]:
                if f["custom"] and (f["externalId"] or f["unique"]):
                    self._ensure_index(obj, f["name"])
        with self.store.write() as conn:
            # Query paging: seq order (no ORDER BY) and SystemModstamp order, with the state in
            # the index so counts read the index only.
            conn.execute(
                "CREATE INDEX IF NOT EXISTS salesforce_seq ON records (object, seq, state)"
                " WHERE vendor = 'salesforce'"
            )
            conn.execute(
                "CREATE INDEX IF NOT EXISTS salesforce_mod ON records"
                " (object, updated_ms, id, state) WHERE vendor = 'salesforce'"
            )

    # -- options, limits, auth ---------------------------------------------------------------

    def configure(self, options: dict[str, Any]) -> None:
        self.options = options
        self._usage = _DailyUsage(
            int(options["daily_api_requests"]), float(options["api_window_seconds"])
        )
        if hasattr(self, "_schema"):
            self._load_schema()

    def _limit_header(self) -> tuple[str, str]:
        used = self._usage.used(self.ctx.clock.time())
        return ("Sforce-Limit-Info", f"api-usage={used}/{self._usage.limit}")

    def throttles(self, route: Route) -> bool:
        # The API request allocation counts REST calls; the token endpoint and the version
        # list are outside it [API.md §2.1, §2.8], so they never answer REQUEST_LIMIT_EXCEEDED.
        return "uncounted" not in route.tags

    def admit(
        self, req: Request, route: Route, principal: Principal | None
    ) -> list[tuple[str, str]]:
        if "uncounted" in route.tags:
            return []
        enforce = bool(self.options.get("rate_limits", True))
        if not self._usage.take(self.ctx.clock.time(), enforce):
            raise self.throttle_error(req, None)
        self._tl.admitted = req
        return [self._limit_header()]

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
        if path.startswith("/services/data/v"):
            m = _VERSION.match(path)
            top = int(float(self.options.get("api_version", "66.0")))
            if m is None or m.group(2) != "0" or not MIN_VERSION <= int(m.group(1)) <= top:
                return None, {}, []
        return super().match(method, path)

    def authenticate(self, req: Request, route: Route) -> Principal:
        # Salesforce takes "Bearer <token>" and the older "OAuth <token>" scheme.
        scheme, _, token = (req.header("Authorization") or "").partition(" ")
        value = token.strip() if scheme.lower() in ("bearer", "oauth") else ""
        try:
            return self.ctx.tokens.check(self.vendor, value or None)
        except TokenRejected as rejected:
            raise self.auth_error(req, rejected.reason) from None

    # -- error hooks -------------------------------------------------------------------------

    def render_error(self, req: Request, err: ApiError) -> Response:
        if err.extra.get("oauth"):
            body: Any = {"error": err.code, "error_description": err.message}
            return json_response(body, err.status)
        entry: dict[str, Any] = {"message": err.message, "errorCode": err.code}
        if err.fields:
            entry["fields"] = err.fields
        resp = json_response([entry], err.status)
        counted = req.path.startswith("/services/data/v")
        if counted and getattr(self._tl, "admitted", None) is not req:
            resp.headers.append(self._limit_header())
        return resp

    def auth_error(self, req: Request, reason: str) -> ApiError:
        return ApiError(
            401,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
            headers=[("WWW-Authenticate", "Token")],
        )

    def throttle_error(self, req: Request, retry_after: float | None) -> ApiError:
        headers = [] if retry_after is None else [("Retry-After", str(max(1, round(retry_after))))]
        return ApiError(
            403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", headers=headers
        )

    def server_error(self, req: Request, status: int) -> ApiError:
        if status == 500:
            return ApiError(
                500,
                "UNKNOWN_EXCEPTION",
                "An unexpected error occurred. Please include this ErrorId if you contact "
                "support: 1234567890-12345 (-1234567890)",
            )
        return ApiError(status, "SERVER_UNAVAILABLE", "Server temporarily unavailable; retry.")

    def malformed_json_error(self, req: Request, detail: str) -> ApiError:
        m = re.search(r"line (\d+) column (\d+)", detail)
        where = f" at [line:{m.group(1)}, column:{m.group(2)}]" if m else ""
        return ApiError(400, "JSON_PARSER_ERROR", f"Unexpected character in JSON body{where}")

    def not_found_error(self, req: Request) -> ApiError:
        return ApiError(404, "NOT_FOUND", "The requested resource does not exist")

    def method_not_allowed_error(self, req: Request, allowed: list[str]) -> ApiError:
        return ApiError(
            405,
            "METHOD_NOT_ALLOWED",
            f"HTTP Method '{req.method}' not allowed. Allowed are {','.join(allowed)}",
        )

    # -- schema ------------------------------------------------------------------------------

    def _load_schema(self) -> None:
        objects = standard_objects()
        profile = self.store.get_meta(self.vendor, "profile")
        if profile == "vanilla":
            objects = plain_org(objects)
        elif profile == "realistic":
            objects = realistic_org(objects)
        for hidden in self.options.get("hidden_objects") or ():
            objects.pop(hidden, None)
        custom: dict[str, list[dict[str, Any]]] = self.store.get_meta(
            self.vendor, "custom_fields", {}
        )
        grants: dict[str, dict[str, bool]] = self.store.get_meta(self.vendor, "fls", {})
        need_fls = bool(self.options.get("custom_field_requires_fls", False))
        gated = [(obj, f, need_fls) for obj, fields in custom.items() for f in fields]
        restricted = self._restricted(profile)
        gated += [(obj, f, True) for obj, fields in restricted.items() for f in fields]
        for obj, f, needs_grant in gated:
            if obj not in objects:
                continue
            grant = grants.get(f"{obj}.{f['name']}")
            if needs_grant and not (grant and grant.get("read")):
                continue  # invisible to the API user until FLS is granted
            if needs_grant and grant and not grant.get("edit"):
                f = {**f, "createable": False, "updateable": False}
            objects[obj]["fields"].append(f)
        with self._lock:
            self._schema = objects
            self._by_lower = {name.lower(): name for name in objects}
            self._field_maps = {
                obj: {f["name"].lower(): f for f in info["fields"]} for obj, info in objects.items()
            }
            # compound fields (a realistic org's addresses): their components, per object
            self._compounds = {
                obj: {
                    f["name"]: compound_parts(f)
                    for f in info["fields"]
                    if f["type"] in COMPOUND_TYPES
                }
                for obj, info in objects.items()
            }

    @staticmethod
    def _restricted(profile: str | None) -> dict[str, list[dict[str, Any]]]:
        """The org's fields that stay hidden until a FieldPermissions grant (realistic org)."""
        return realistic_restricted() if profile == "realistic" else {}

    def _gated_fields(self, obj: str) -> list[dict[str, Any]]:
        """Every field of ``obj`` that field-level security can hide, granted or not."""
        custom = self.store.get_meta(self.vendor, "custom_fields", {}).get(obj, [])
        return custom + self._restricted(self._profile()).get(obj, [])

    def _obj(self, name: str) -> str | None:
        return self._by_lower.get(name.lower())

    def _require_obj(self, name: str) -> str:
        obj = self._obj(name)
        if obj is None:
            raise self.not_found_error_for_type(name)
        return obj

    @staticmethod
    def not_found_error_for_type(name: str) -> ApiError:
        return ApiError(404, "NOT_FOUND", "The requested resource does not exist")

    def _fields(self, obj: str) -> dict[str, dict[str, Any]]:
        return self._field_maps[obj]

    def _types(self, obj: str) -> dict[str, str]:
        return {f["name"]: f["type"] for f in self._schema[obj]["fields"]}

    def _ensure_index(self, obj: str, name: str) -> None:
        if not (_FIELD_NAME.match(obj) and _FIELD_NAME.match(name)):
            return
        with self.store.write() as conn:
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS salesforce_xid_{obj}_{name}"
                f" ON records (json_extract(data, '$.{name}'))"
                f" WHERE vendor = 'salesforce' AND object = '{obj}'"
            )

    def _schema_modified(self) -> int:
        return int(self.store.get_meta(self.vendor, "schema_modified_ms", 0))

    def _not_modified(self, req: Request) -> bool:
        since = req.header("If-Modified-Since")
        if not since:
            return False
        try:
            parsed = email.utils.parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.timezone.utc)
        return self._schema_modified() <= int(parsed.timestamp() * 1000)

    # -- OAuth and discovery -----------------------------------------------------------------

    @route("POST", "/services/oauth2/token", auth=False, tags=("uncounted",))
    def oauth_token(self, req: Request) -> Response:
        form = urllib.parse.parse_qs(req.body.decode("utf-8", "replace"))
        arg = {k: v[0] for k, v in form.items() if v}
        for k, v in req.query.items():
            arg.setdefault(k, v[0])
        grant = arg.get("grant_type")
        tokens = self.ctx.tokens
        if grant not in ("refresh_token", "client_credentials"):
            raise ApiError(400, "unsupported_grant_type", "grant type not supported", oauth=True)
        creds = tokens.credentials.get(self.vendor, {})
        if arg.get("client_id") != creds.get("client_id"):
            raise ApiError(400, "invalid_client_id", "client identifier invalid", oauth=True)
        if not tokens.client_ok(self.vendor, arg.get("client_id"), arg.get("client_secret")):
            raise ApiError(400, "invalid_client", "invalid client credentials", oauth=True)
        if grant == "refresh_token" and not tokens.refresh_ok(
            self.vendor, arg.get("refresh_token")
        ):
            raise ApiError(400, "invalid_grant", "expired access/refresh token", oauth=True)
        token, _ = tokens.issue_access(self.vendor, float(self.options["session_ttl"]))
        issued = str(self.now_ms())
        ident = f"https://login.salesforce.com/id/{ORG_ID}/{ADMIN_USER}"
        secret = str(creds.get("client_secret", "")).encode()
        signature = base64.b64encode(
            hmac.new(secret, (ident + issued).encode(), hashlib.sha256).digest()
        ).decode()
        # No expires_in: Salesforce does not tell the session lifetime [auth.py].
        return json_response(
            {
                "access_token": token,
                "instance_url": self.ctx.urls.get(self.vendor, ""),
                "id": ident,
                "token_type": "Bearer",
                "issued_at": issued,
                "signature": signature,
                "scope": "api refresh_token",
            }
        )

    @route("GET", "/services/data", auth=False, tags=("uncounted",))
    def versions(self, req: Request) -> Response:
        # Does not count against the allocation and carries no Sforce-Limit-Info
        # [API.md §2.1, §2.8].
        top = int(float(self.options.get("api_version", "66.0")))
        out = []
        for v in range(MIN_VERSION, top + 1):
            k = 66 - v
            season = ("Spring", "Winter", "Summer")[k % 3]
            out.append(
                {
                    "label": f"{season} '{26 - (k + 1) // 3:02d}",
                    "url": f"/services/data/v{v}.0",
                    "version": f"{v}.0",
                }
            )
        return json_response(out)

    @route("GET", V)
    def resources(self, req: Request, version: str) -> Response:
        base = f"/services/data/{version}"
        names = ("sobjects", "query", "queryAll", "limits", "composite", "jobs", "tooling")
        return json_response({n: f"{base}/{n}" for n in names})

    @route("GET", V + "/limits")
    def limits(self, req: Request, version: str) -> Response:
        used = self._usage.used(self.ctx.clock.time())
        jobs = len(self._jobs)
        return json_response(
            {
                "DailyApiRequests": {
                    "Max": self._usage.limit,
                    "Remaining": self._usage.limit - used,
                },
                "DailyBulkV2QueryJobs": {"Max": 10_000, "Remaining": max(0, 10_000 - jobs)},
                "DailyBulkV2QueryFileStorageMB": {"Max": 1_048_576, "Remaining": 1_048_576},
                "DataStorageMB": {"Max": 1024, "Remaining": 1000},
                **{name: {"Max": top, "Remaining": top} for name, top in _OTHER_LIMITS.items()},
            }
        )

    # -- SOQL --------------------------------------------------------------------------------

    def _plan(self, text: str | None, include_deleted: bool) -> _Plan:
        try:
            q = soql.parse(text or "")
            obj = self._obj(q.obj)
            if obj is None:
                raise soql.SoqlError(
                    "INVALID_TYPE", soql.unsupported_type(q.obj), q.obj_pos, q.soql
                )
            soql.bind(q, obj, self._fields(obj))
        except soql.SoqlError as exc:
            raise ApiError(400, exc.code, exc.message) from None
        types = self._types(obj)
        states = set(QUERY_ALL_STATES if include_deleted else QUERY_STATES)
        clauses: list[str] = []
        keyset_clauses: list[str] = []
        params: list[Any] = [obj]
        residual: list[soql.Cond] = []
        for c in soql.conjuncts(q.where):
            lit = c.values[0] if c.values else None
            if c.op == "cmp" and lit is not None:
                column = _TIME_COLUMNS.get(c.field)
                if column and lit.kind == "datetime" and c.cmp != "!=":
                    # SystemModstamp is indexed: the updated_ms column [API.md §2.2].
                    clauses.append(f"{column} {c.cmp} ?")
                    keyset_clauses.append(f"+{column} {c.cmp} ?")
                    params.append(lit.value)
                    continue
                if c.field == "Id" and c.cmp == "=" and lit.kind == "string":
                    clauses.append("id = ?")
                    keyset_clauses.append("id = ?")
                    params.append(normalize_id(lit.value) or lit.value)
                    continue
                if c.field == "IsDeleted" and c.cmp == "=" and lit.kind == "boolean":
                    states &= {ARCHIVED, MERGED} if lit.value else {LIVE}
                    continue
            if c.op == "in" and c.field == "Id":
                ids = [normalize_id(v.value) or str(v.value) for v in c.values]
                clauses.append(f"id IN ({','.join('?' * len(ids))})")
                keyset_clauses.append(clauses[-1])
                params.extend(ids)
                continue
            residual.append(c)
        state_list = sorted(states) or [-1]
        where = (
            "vendor = 'salesforce' AND object = ?"
            f" AND state IN ({','.join(str(s) for s in state_list)})"
        )
        keyset_where = where
        if clauses:
            keyset_where += " AND " + " AND ".join(keyset_clauses)
            where += " AND " + " AND ".join(clauses)
        count_index = None
        if not clauses:
            count_index = "salesforce_seq"
        elif all(c.startswith("updated_ms ") for c in clauses):
            count_index = "salesforce_mod"
        predicate = None
        if residual:
            predicate = soql.compile_where(soql.Cond("and", residual), types)
        order_cols: tuple[str, ...] | None = None
        desc = bool(q.order) and q.order[0].desc
        names = [o.field for o in q.order]
        if any(o.desc != desc for o in q.order):
            order_cols = None
        elif not names:
            order_cols = ("seq",)
        elif names[0] in _TIME_COLUMNS and names[1:] in ([], ["Id"]):
            order_cols = (_TIME_COLUMNS[names[0]], "id")
        elif names == ["Id"]:
            order_cols = ("id",)
        return _Plan(
            q, obj, types, where, params, predicate, order_cols, desc, keyset_where, count_index
        )

    def _count(self, plan: _Plan) -> int:
        if plan.residual is None:
            # The partial indexes carry the state: the count reads the index only.
            hint = f" INDEXED BY {plan.count_index}" if plan.count_index else ""
            row = (
                self.store.conn()
                .execute(f"SELECT count(*) FROM records{hint} WHERE {plan.where_sql}", plan.params)
                .fetchone()
            )
            n = int(row[0])
        else:
            n = sum(1 for _ in self._filtered(plan))
        n = max(0, n - plan.q.offset)
        return min(n, plan.q.limit) if plan.q.limit is not None else n

    def _filtered(self, plan: _Plan) -> Iterator[tuple[int, dict[str, Any]]]:
        cur = self.store.conn().execute(
            f"SELECT seq, data FROM records WHERE {plan.where_sql} ORDER BY {plan.order_sql}",
            plan.params,
        )
        for seq, data in cur:
            record = loads(data)
            if plan.residual is None or plan.residual(record):
                yield seq, record

    def _collect(self, plan: _Plan) -> list[int]:
        """Every matching row's ``seq`` in result order (OFFSET and LIMIT applied)."""
        q = plan.q
        if plan.residual is None and plan.order_cols is not None:
            rows = self.store.conn().execute(
                f"SELECT seq FROM records WHERE {plan.where_sql} ORDER BY {plan.order_sql}",
                plan.params,
            )
            seqs = [r[0] for r in rows]
        elif plan.order_cols is not None:
            seqs = [seq for seq, _ in self._filtered(plan)]
        else:
            rows_ = list(self._filtered(plan))
            for o in reversed(q.order):
                ftype = plan.types[o.field]
                null_rank = 0 if o.nulls_first != o.desc else 2

                def key(item: tuple[int, dict[str, Any]], f: str = o.field, t: str = ftype,
                        nr: int = null_rank) -> tuple[int, Any]:  # fmt: skip
                    value = soql.sort_key(item[1].get(f), t)
                    return (nr, 0) if value is None else (1, value)

                rows_.sort(key=key, reverse=o.desc)
            seqs = [seq for seq, _ in rows_]
        seqs = seqs[q.offset :]
        return seqs[: q.limit] if q.limit is not None else seqs

    def _rows_by_seq(self, seqs: list[int]) -> list[dict[str, Any]]:
        if not seqs:
            return []
        found: dict[int, dict[str, Any]] = {}
        conn = self.store.conn()
        for i in range(0, len(seqs), 900):
            chunk = seqs[i : i + 900]
            rows = conn.execute(
                f"SELECT seq, data FROM records WHERE seq IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            found.update((seq, loads(data)) for seq, data in rows)
        return [found[s] for s in seqs if s in found]

    def _present(
        self, obj: str, record: dict[str, Any], fields: Iterable[str], version: str
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attributes": {
                "type": obj,
                "url": f"/services/data/{version}/sobjects/{obj}/{record.get('Id')}",
            }
        }
        compounds = self._compounds.get(obj) or {}
        for name in fields:
            parts = compounds.get(name)
            out[name] = record.get(name) if parts is None else _compound(record, parts)
        return out

    def _batch_size(self, req: Request) -> int:
        size = int(self.options["query_batch_default"])
        header = req.header("Sforce-Query-Options") or ""
        m = re.search(r"batchSize\s*=\s*(\d+)", header, re.IGNORECASE)
        if m:
            # Not guaranteed to be honoured; kept within [200, 2000] [API.md §2.2].
            size = int(m.group(1))
        lo, hi = int(self.options["query_batch_min"]), int(self.options["query_batch_max"])
        return max(lo, min(hi, size))

    @route("GET", V + "/query")
    def query(self, req: Request, version: str) -> Response:
        return self._start_query(req, version, include_deleted=False)

    @route("GET", V + "/queryAll")
    def query_all(self, req: Request, version: str) -> Response:
        return self._start_query(req, version, include_deleted=True)

    def _start_query(self, req: Request, version: str, include_deleted: bool) -> Response:
        text = req.arg("q")
        if not text:
            raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
        plan = self._plan(text, include_deleted)
        q = plan.q
        if q.count:
            return json_response({"totalSize": self._count(plan), "done": True, "records": []})
        if q.count_field is not None:
            name = q.count_field
            n = sum(1 for _, r in self._filtered(plan) if r.get(name) is not None)
            agg = {"attributes": {"type": "AggregateResult"}, "expr0": n}
            return json_response({"totalSize": 1, "done": True, "records": [agg]})
        if plan.streamable:
            total, seqs = self._count(plan), None
        else:
            seqs = self._collect(plan)
            total = len(seqs)
        with self._lock:
            cursor_id = make_id(LOCATOR_PREFIX, self.store.next_ids("salesforce:locator")[0])
        cursor = _Cursor(cursor_id, plan, version, self._batch_size(req), total, seqs)
        cursor.keys[0] = None
        return self._page(cursor, 0)

    @route("GET", V + "/query/{locator}")
    def query_more(self, req: Request, version: str, locator: str) -> Response:
        return self._more(version, locator)

    @route("GET", V + "/queryAll/{locator}")
    def query_all_more(self, req: Request, version: str, locator: str) -> Response:
        return self._more(version, locator)

    def _more(self, version: str, locator: str) -> Response:
        cursor_id, _, offset_text = locator.rpartition("-")
        now = self.ctx.clock.time()
        ttl = float(self.options["query_locator_ttl"])
        with self._lock:
            self._expire_cursors(now)
            cursor = self._cursors.get(cursor_id)
            if cursor is not None:
                cursor.last_used = now
        valid = cursor is not None and offset_text.isdigit()
        if valid and cursor is not None:
            offset = int(offset_text)
            valid = 0 < offset < cursor.total and (cursor.seqs is not None or offset in cursor.keys)
        if not valid or cursor is None or ttl <= 0:
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(cursor, int(offset_text))

    def _expire_cursors(self, now: float) -> None:
        ttl = float(self.options["query_locator_ttl"])
        for cid in [c.id for c in self._cursors.values() if now - c.last_used > ttl]:
            del self._cursors[cid]

    def _page(self, cursor: _Cursor, offset: int) -> Response:
        plan = cursor.plan
        size = min(cursor.batch, cursor.total - offset)
        if cursor.seqs is not None:
            records = self._rows_by_seq(cursor.seqs[offset : offset + size])
        else:
            cols = plan.order_cols or ("seq",)
            after = cursor.keys.get(offset)
            where = plan.where_sql if after is None else plan.keyset_where
            sql = f"SELECT {', '.join(cols)}, data FROM records WHERE {where}"
            params = list(plan.params)
            if after is not None:
                op = "<" if plan.desc else ">"
                sql += f" AND ({', '.join(cols)}) {op} ({', '.join('?' * len(cols))})"
                params.extend(after)
            sql += f" ORDER BY {plan.order_sql} LIMIT ?"
            params.append(max(size, 0))
            rows = self.store.conn().execute(sql, params).fetchall()
            records = [loads(r[-1]) for r in rows]
            if rows:
                cursor.keys[offset + len(rows)] = tuple(rows[-1][:-1])
            if len(rows) < size:  # rows vanished since the count: finish early
                cursor.total = offset + len(rows)
        fields = [name for name, _ in plan.q.fields]
        body: dict[str, Any] = {
            "totalSize": cursor.total,
            "done": True,
            "records": [self._present(plan.obj, r, fields, cursor.version) for r in records],
        }
        end = offset + len(records)
        now = self.ctx.clock.time()
        with self._lock:
            if end < cursor.total:
                body["done"] = False
                body["nextRecordsUrl"] = f"/services/data/{cursor.version}/query/{cursor.id}-{end}"
                cursor.last_used = now
                if cursor.id not in self._cursors:
                    self._cursors[cursor.id] = cursor
                    self._release_oldest()
            else:
                cursor.done = True
        return json_response(body)

    def _release_oldest(self) -> None:
        # "If 10 QueryLocator cursors are open ... the oldest of the 10 cursors is released."
        limit = int(self.options["max_open_locators"])
        open_ = [c for c in self._cursors.values() if not c.done]
        while len(open_) > limit:
            oldest = open_.pop(0)
            del self._cursors[oldest.id]

    # -- describe ----------------------------------------------------------------------------

    def _global_entry(self, obj: str, version: str) -> dict[str, Any]:
        info = self._schema[obj]
        base = f"/services/data/{version}/sobjects/{obj}"
        writable = obj != "User" and not info.get("setup")
        return {
            "name": obj,
            "label": info["label"],
            "labelPlural": info["labelPlural"],
            "keyPrefix": PREFIXES[obj],
            "custom": obj.endswith("__c"),
            "createable": writable,
            "updateable": not info.get("setup"),
            "deletable": writable,
            "undeletable": writable,
            "mergeable": obj in ("Account", "Contact"),
            "queryable": True,
            "retrieveable": True,
            "searchable": True,
            "replicateable": True,
            "triggerable": True,
            "layoutable": True,
            "deprecatedAndHidden": False,
            "urls": {
                "sobject": base,
                "describe": f"{base}/describe",
                "rowTemplate": f"{base}/{{ID}}",
            },
        }

    def _last_modified_header(self) -> tuple[str, str]:
        ms = self._schema_modified()
        return ("Last-Modified", email.utils.formatdate(ms / 1000, usegmt=True))

    @route("GET", V + "/sobjects")
    def describe_global(self, req: Request, version: str) -> Response:
        if self._not_modified(req):
            return empty_response(304)
        body = {
            "encoding": "UTF-8",
            "maxBatchSize": 200,
            "sobjects": [self._global_entry(obj, version) for obj in sorted(self._schema)],
        }
        return json_response(body, headers=[self._last_modified_header()])

    @route("GET", V + "/sobjects/{sobject}")
    def sobject_info(self, req: Request, version: str, sobject: str) -> Response:
        obj = self._require_obj(sobject)
        rows = self.store.conn().execute(
            "SELECT data FROM records WHERE vendor = 'salesforce' AND object = ? AND state = 0"
            " ORDER BY updated_ms DESC LIMIT 3",
            (obj,),
        )
        name_field = "Name" if "name" in self._fields(obj) else "Id"
        recent = [self._present(obj, loads(r[0]), ["Id", name_field], version) for r in rows]
        return json_response(
            {"objectDescribe": self._global_entry(obj, version), "recentItems": recent}
        )

    @route("GET", V + "/sobjects/{sobject}/describe")
    def describe(self, req: Request, version: str, sobject: str) -> Response:
        obj = self._require_obj(sobject)
        if self._not_modified(req):
            return empty_response(304)
        body = self._global_entry(obj, version)
        body["fields"] = copy.deepcopy(self._schema[obj]["fields"])
        body["childRelationships"] = []
        body["recordTypeInfos"] = []
        return json_response(body, headers=[self._last_modified_header()])

    # -- record writes -----------------------------------------------------------------------

    def _coerce(self, f: dict[str, Any], value: Any) -> Any:
        name, ftype, label = f["name"], f["type"], f["label"]
        if value is None:
            return None

        def parser_error(kind: str) -> ApiError:
            vtype = type(value).__name__
            return ApiError(
                400,
                "JSON_PARSER_ERROR",
                f"Cannot deserialize instance of {kind} from {vtype} value for field {name}"
                " or request may be missing a required field",
                fields=[name],
            )

        if ftype in ("id", "reference"):
            rid = normalize_id(value) if isinstance(value, str) else None
            prefix_ok = rid is not None and (
                not f["referenceTo"] or OBJECT_BY_PREFIX.get(rid[:3]) in f["referenceTo"]
            )
            if rid is None or not prefix_ok:
                raise ApiError(
                    400,
                    "MALFORMED_ID",
                    f"{label}: id value of incorrect type: {str(value)[:40]}",
                    fields=[name],
                )
            return rid
        if ftype in STRING_TYPES:
            if isinstance(value, (bool, dict, list)):
                raise parser_error("string")
            text = str(value)
            if f["length"] and len(text) > f["length"]:
                raise ApiError(
                    400,
                    "STRING_TOO_LONG",
                    f"{label}: data value too large: {text[:20]}... (max length={f['length']})",
                    fields=[name],
                )
            if ftype == "email" and text and not _EMAIL.match(text):
                raise ApiError(
                    400,
                    "INVALID_EMAIL_ADDRESS",
                    f"{label}: invalid email address: {text[:80]}",
                    fields=[name],
                )
            return text
        if ftype in NUMBER_TYPES:
            number: float
            if isinstance(value, bool):
                raise parser_error("double")
            if isinstance(value, (int, float)):
                number = value
            elif isinstance(value, str):
                try:
                    number = float(value)
                except ValueError:
                    raise parser_error("double") from None
            else:
                raise parser_error("double")
            if ftype == "int":
                return int(number)
            return float(number)
        if ftype == "boolean":
            if not isinstance(value, bool):
                raise parser_error("boolean")
            return value
        if ftype == "date":
            day = parse_date(value[:10]) if isinstance(value, str) else None
            if day is None:
                raise parser_error("date")
            return day
        if ftype == "datetime":
            ms = parse_datetime(value) if isinstance(value, str) else None
            if ms is None:
                raise parser_error("datetime")
            return fmt_datetime(ms)
        return value

    def _clean(self, obj: str, body: dict[str, Any], creating: bool) -> dict[str, Any]:
        fields = self._fields(obj)
        out: dict[str, Any] = {}
        for key, value in body.items():
            if key == "attributes":
                continue
            f = fields.get(key.lower())
            if f is None:
                raise ApiError(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{key}' on sobject of type {obj}",
                    fields=[key],
                )
            name = f["name"]
            if not (f["createable"] if creating else f["updateable"]):
                raise ApiError(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {name}. Please check the security "
                    "settings of this field and verify that it is read/write for your profile "
                    "or permission set.",
                    fields=[name],
                )
            out[name] = self._coerce(f, value)
        required = [
            f["name"]
            for f in self._schema[obj]["fields"]
            if not f["nillable"] and f["createable"] and not f["defaultedOnCreate"]
        ]
        missing = [
            n
            for n in required
            if (creating and out.get(n) is None) or (n in out and out[n] is None)
        ]
        if missing:
            raise ApiError(
                400,
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                fields=missing,
            )
        return out

    def _find(
        self, obj: str, name: str, value: Any, states: tuple[int, ...] = (LIVE,)
    ) -> list[str]:
        if not _FIELD_NAME.match(name):
            return []
        if name == "Id":
            rid = normalize_id(str(value))
            row = self.store.get(self.vendor, obj, rid or "")
            return [rid] if rid and row is not None and row[4] in states else []
        rows = self.store.conn().execute(
            f"SELECT id, state FROM records WHERE vendor = 'salesforce' AND object = '{obj}'"
            f" AND json_extract(data, '$.{name}') = ?",
            (value,),
        )
        return [rid for rid, state in rows if state in states]

    def _check_unique(self, obj: str, values: dict[str, Any], rid: str | None) -> None:
        fields = self._fields(obj)
        for name, value in values.items():
            f = fields[name.lower()]
            if not f["unique"] or value is None:
                continue
            others = [o for o in self._find(obj, name, value) if o != rid]
            if others:
                raise ApiError(
                    400,
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {name} duplicates value on record with id: "
                    f"{others[0]}",
                    fields=[name],
                )

    def _derive(self, obj: str, data: dict[str, Any], now: int) -> None:
        """What Salesforce calculates on save: names, and closed/won from the org's own stage
        and status records (OpportunityStage, CaseStatus), whatever their labels."""
        if obj in ("Contact", "User"):
            parts = (data.get("FirstName"), data.get("LastName"))
            data["Name"] = " ".join(p for p in parts if p) or None
        elif obj == "Opportunity":
            stage = self._stages().get(data.get("StageName") or "")
            data["IsClosed"] = bool(stage and stage.closed)
            data["IsWon"] = bool(stage and stage.won)
            if stage is not None and "forecastcategory" in self._fields(obj):
                data["ForecastCategory"], data["ForecastCategoryName"] = stage.forecast
        elif obj == "Case":
            closed = dict(org_case_statuses(self._profile())).get(data.get("Status") or "", False)
            if closed and not data.get("IsClosed"):
                data["ClosedDate"] = fmt_datetime(now)
            data["IsClosed"] = closed
            if not closed:
                data["ClosedDate"] = None
        elif obj == "Task":
            data["IsClosed"] = data.get("Status") == "Completed"

    def _profile(self) -> str | None:
        return self.store.get_meta(self.vendor, "profile")

    def _stages(self) -> dict[str, Stage]:
        return {s.label: s for s in org_stages(self._profile())}

    def _refuse_setup(self, obj: str, operation: str) -> None:
        if self._schema[obj].get("setup"):
            raise ApiError(
                400,
                "INVALID_TYPE_FOR_OPERATION",
                f"entity type cannot be {operation}: {self._schema[obj]['label']}",
            )

    def _create(self, obj: str, body: dict[str, Any]) -> str:
        self._refuse_setup(obj, "inserted")
        if obj == "User":
            raise ApiError(
                400,
                "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
                "Users are not creatable in this sandbox",
            )
        if any(k.lower() == "id" for k in body):
            raise ApiError(
                400, "INVALID_FIELD", "Cannot specify Id in an insert call", fields=["Id"]
            )
        values = self._clean(obj, body, creating=True)
        with self.store.write():
            self._check_unique(obj, values, None)
            n = self.store.next_ids(f"salesforce:{obj}")[0]
            rid = make_id(PREFIXES[obj], n)
            now = self.now_ms()
            stamp = fmt_datetime(now)
            data: dict[str, Any] = {f["name"]: None for f in self._schema[obj]["fields"]}
            for f in self._schema[obj]["fields"]:
                if f["type"] == "boolean":
                    data[f["name"]] = False
            data.update(
                Id=rid,
                IsDeleted=False,
                CreatedDate=stamp,
                CreatedById=ADMIN_USER,
                LastModifiedDate=stamp,
                LastModifiedById=ADMIN_USER,
                SystemModstamp=stamp,
            )
            if "OwnerId" in data:
                data["OwnerId"] = ADMIN_USER
            if obj == "Case":
                data["CaseNumber"] = f"{n:08d}"
                data["Status"] = "New"
            if obj == "Task":
                data.update(Status="Not Started", Priority="Normal")
            if obj == "NPS_Response__c":
                data["Name"] = f"NPS-{n:07d}"
            data.update(values)
            self._derive(obj, data, now)
            self.store.put(self.vendor, obj, rid, data, created_ms=now, updated_ms=now)
        return rid

    def _load(self, obj: str, rid: str) -> tuple[str, int, dict[str, Any]] | None:
        norm = normalize_id(rid)
        if norm is None:
            return None
        row = self.store.get(self.vendor, obj, norm)
        if row is None:
            return None
        return norm, int(row[4]), loads(row[5])

    def _update(self, obj: str, rid: str, body: dict[str, Any]) -> None:
        body = {k: v for k, v in body.items() if k.lower() != "id"}
        values = self._clean(obj, body, creating=False)
        with self.store.write():
            loaded = self._load(obj, rid)
            if loaded is None:
                raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
            norm, state, data = loaded
            if state != LIVE:
                raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
            self._check_unique(obj, values, norm)
            now = self.now_ms()
            data.update(values)
            data["LastModifiedDate"] = data["SystemModstamp"] = fmt_datetime(now)
            data["LastModifiedById"] = ADMIN_USER
            self._derive(obj, data, now)
            created = parse_datetime(data["CreatedDate"]) or now
            self.store.put(self.vendor, obj, norm, data, created_ms=created, updated_ms=now)

    def _delete(self, obj: str, rid: str) -> str:
        self._refuse_setup(obj, "deleted")
        if obj == "User":
            raise ApiError(400, "DELETE_FAILED", "Users cannot be deleted")
        with self.store.write():
            loaded = self._load(obj, rid)
            if loaded is None:
                raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
            norm, state, data = loaded
            if state != LIVE:
                raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
            now = self.now_ms()
            data["IsDeleted"] = True
            data["SystemModstamp"] = fmt_datetime(now)
            created = parse_datetime(data["CreatedDate"]) or now
            # To the recycle bin: still visible to queryAll and /deleted [API.md §2.2].
            self.store.put(
                self.vendor, obj, norm, data, created_ms=created, updated_ms=now, state=ARCHIVED
            )
        return norm

    def _ext_field(self, obj: str, name: str) -> dict[str, Any]:
        f = self._fields(obj).get(name.lower())
        if f is None or not (f["externalId"] or f["name"] == "Id"):
            raise ApiError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {name}",
            )
        return f

    def _upsert(
        self, obj: str, f: dict[str, Any], value: Any, body: dict[str, Any], version: str
    ) -> tuple[str, bool]:
        """Upsert by external id; returns ``(id, created)``; raises 300 when ambiguous."""
        with self.store.write():
            matches = self._find(obj, f["name"], value)
            if len(matches) > 1:
                urls = [f"/services/data/{version}/sobjects/{obj}/{m}" for m in matches]
                raise ApiError(300, "MULTIPLE_CHOICES", "Multiple records match", urls=urls)
            if matches:
                self._update(obj, matches[0], body)
                return matches[0], False
            if f["name"] == "Id":
                raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
            return self._create(obj, {**body, f["name"]: value}), True

    # -- sObject REST ------------------------------------------------------------------------

    @route("POST", V + "/sobjects/{sobject}")
    def create(self, req: Request, version: str, sobject: str) -> Response:
        obj = self._require_obj(sobject)
        rid = self._create(obj, req.json_object())
        return json_response({"id": rid, "success": True, "errors": []}, 201)

    def _select_fields(self, req: Request, obj: str) -> list[str]:
        fields = self._fields(obj)
        wanted = req.arg("fields")
        if not wanted:
            return [f["name"] for f in self._schema[obj]["fields"]]
        out = []
        for name in (n.strip() for n in wanted.split(",") if n.strip()):
            f = fields.get(name.lower())
            if f is None:
                raise ApiError(400, "INVALID_FIELD", soql.no_such_column(name, obj))
            out.append(f["name"])
        return out

    @route("GET", V + "/sobjects/{sobject}/{rid}")
    def read(self, req: Request, version: str, sobject: str, rid: str) -> Response:
        obj = self._require_obj(sobject)
        fields = self._select_fields(req, obj)
        loaded = self._load(obj, rid)
        if normalize_id(rid) is None:
            raise ApiError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {rid}",
            )
        if loaded is None or loaded[1] != LIVE:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        return json_response(self._present(obj, loaded[2], fields, version))

    @route("PATCH", V + "/sobjects/{sobject}/{rid}")
    def update(self, req: Request, version: str, sobject: str, rid: str) -> Response:
        obj = self._require_obj(sobject)
        self._update(obj, rid, req.json_object())
        return empty_response(204)

    @route("DELETE", V + "/sobjects/{sobject}/{rid}")
    def delete(self, req: Request, version: str, sobject: str, rid: str) -> Response:
        obj = self._require_obj(sobject)
        self._delete(obj, rid)
        return empty_response(204)

    @route("GET", V + "/sobjects/{sobject}/{ext_field}/{ext_value}")
    def read_by_external_id(
        self, req: Request, version: str, sobject: str, ext_field: str, ext_value: str
    ) -> Response:
        obj = self._require_obj(sobject)
        f = self._ext_field(obj, ext_field)
        fields = self._select_fields(req, obj)
        matches = self._find(obj, f["name"], ext_value)
        if len(matches) > 1:
            urls = [f"/services/data/{version}/sobjects/{obj}/{m}" for m in matches]
            return json_response(urls, 300)
        if not matches:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        loaded = self._load(obj, matches[0])
        assert loaded is not None
        return json_response(self._present(obj, loaded[2], fields, version))

    @route("PATCH", V + "/sobjects/{sobject}/{ext_field}/{ext_value}")
    def upsert(
        self, req: Request, version: str, sobject: str, ext_field: str, ext_value: str
    ) -> Response:
        obj = self._require_obj(sobject)
        f = self._ext_field(obj, ext_field)
        body = req.json_object()
        if any(k.lower() == f["name"].lower() for k in body):
            # The body must not carry the external id field [API.md §2.4].
            raise ApiError(
                400,
                "INVALID_FIELD",
                f"The external ID field {f['name']} is set from the URL and must not appear in "
                "the request body",
                fields=[f["name"]],
            )
        try:
            rid, created = self._upsert(obj, f, ext_value, body, version)
        except ApiError as err:
            if err.status == 300:
                return json_response(err.extra["urls"], 300)
            raise
        if created:
            return json_response({"id": rid, "success": True, "errors": [], "created": True}, 201)
        if int(float(version[1:])) < 46:  # 204 before API 46.0 [API.md §2.4]
            return empty_response(204)
        return json_response({"id": rid, "success": True, "errors": [], "created": False})

    def _window(self, req: Request, days: int) -> tuple[int, int, int]:
        start_text, end_text = req.arg("start"), req.arg("end")
        if not start_text or not end_text:
            missing = "start" if not start_text else "end"
            raise ApiError(400, "MISSING_ARGUMENT", f"{missing} is not specified")
        start, end = parse_datetime(start_text), parse_datetime(end_text)
        if start is None or end is None:
            raise ApiError(400, "INVALID_REPLICATION_DATE", "start and end must be ISO 8601 dates")
        # "The API ignores the seconds portion of the specified dateTime value."
        start, end = start // 60_000 * 60_000, end // 60_000 * 60_000
        now = self.now_ms()
        earliest = (now - days * 86_400_000) // 86_400_000 * 86_400_000
        if start >= end:
            raise ApiError(
                400, "INVALID_REPLICATION_DATE", "EndDate must be chronologically after StartDate"
            )
        if start < earliest:
            raise ApiError(
                400, "INVALID_REPLICATION_DATE", f"startDate cannot be more than {days} days ago"
            )
        # Covered up to the moment of the call at most.
        return start, min(end, now + 1), earliest

    @route("GET", V + "/sobjects/{sobject}/updated")
    def updated(self, req: Request, version: str, sobject: str) -> Response:
        obj = self._require_obj(sobject)
        start, end, _ = self._window(req, int(self.options["updated_window_days"]))
        rows = self.store.conn().execute(
            "SELECT id FROM records WHERE vendor = 'salesforce' AND object = ? AND state = 0"
            " AND updated_ms >= ? AND updated_ms < ? ORDER BY updated_ms, id LIMIT 600001",
            (obj, start, end),
        )
        ids = [r[0] for r in rows]
        if len(ids) > 600_000:
            raise ApiError(400, "EXCEEDED_ID_LIMIT", "too many ids: narrow the time range")
        return json_response({"ids": ids, "latestDateCovered": fmt_datetime(end)})

    @route("GET", V + "/sobjects/{sobject}/deleted")
    def deleted(self, req: Request, version: str, sobject: str) -> Response:
        obj = self._require_obj(sobject)
        start, end, earliest = self._window(req, int(self.options["deleted_window_days"]))
        rows = self.store.conn().execute(
            "SELECT id, updated_ms FROM records WHERE vendor = 'salesforce' AND object = ?"
            " AND state != 0 AND updated_ms >= ? AND updated_ms < ? ORDER BY updated_ms, id",
            (obj, start, end),
        )
        return json_response(
            {
                "deletedRecords": [{"id": r, "deletedDate": fmt_datetime(ms)} for r, ms in rows],
                "earliestDateAvailable": fmt_datetime(earliest),
                "latestDateCovered": fmt_datetime(end),
            }
        )

    # -- sObject Collections -----------------------------------------------------------------

    @staticmethod
    def _row_error(err: ApiError) -> dict[str, Any]:
        return {
            "success": False,
            "errors": [{"statusCode": err.code, "message": err.message, "fields": err.fields}],
        }

    def _collection_body(self, req: Request) -> tuple[bool, list[Any]]:
        body = req.json_object()
        records = body.get("records")
        if not isinstance(records, list):
            raise ApiError(400, "INVALID_FIELD", "records is required", fields=["records"])
        self._check_batch(len(records))
        return bool(body.get("allOrNone", False)), records

    def _check_batch(self, n: int) -> None:
        limit = int(self.options["collections_max"])
        if n > limit:
            raise ApiError(
                400,
                "EXCEEDED_ID_LIMIT",
                f"record limit reached. cannot submit more than {limit} records into this call",
            )

    def _run_rows(
        self, all_or_none: bool, ops: list[Callable[[], dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        """Run per-record operations in one transaction; allOrNone rolls all back on a failure
        and marks the other rows ALL_OR_NONE_OPERATION_ROLLED_BACK [API.md §2.5]."""
        results: list[dict[str, Any]] = []
        try:
            with self.store.write():
                for op in ops:
                    try:
                        results.append(op())
                    except ApiError as err:
                        results.append(self._row_error(err))
                if all_or_none and any(not r["success"] for r in results):
                    raise _Rollback(results)
        except _Rollback as rb:
            rolled = []
            for r in rb.results:
                if r["success"]:
                    rolled.append(
                        {
                            "id": None,
                            "success": False,
                            "errors": [
                                {
                                    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                                    "message": "Record rolled back because not all records were "
                                    "valid and the request was using AllOrNone header",
                                    "fields": [],
                                }
                            ],
                        }
                    )
                else:
                    rolled.append(r)
            return rolled
        return results

    def _record_type(self, record: Any) -> str:
        if not isinstance(record, dict):
            raise ApiError(400, "INVALID_FIELD", "each record must be a JSON object")
        attrs = record.get("attributes")
        name = attrs.get("type") if isinstance(attrs, dict) else None
        if not name:
            raise ApiError(400, "INVALID_TYPE", "Must specify a type in attributes")
        obj = self._obj(str(name))
        if obj is None:
            raise ApiError(400, "INVALID_TYPE", f"sObject type '{name}' is not supported.")
        return obj

    @route("POST", V + "/composite/sobjects")
    def collection_create(self, req: Request, version: str) -> Response:
        all_or_none, records = self._collection_body(req)

        def op(record: Any) -> Callable[[], dict[str, Any]]:
            def run() -> dict[str, Any]:
                obj = self._record_type(record)
                return {"id": self._create(obj, record), "success": True, "errors": []}

            return run

        return json_response(self._run_rows(all_or_none, [op(r) for r in records]))

    @route("PATCH", V + "/composite/sobjects")
    def collection_update(self, req: Request, version: str) -> Response:
        all_or_none, records = self._collection_body(req)

        def op(record: Any) -> Callable[[], dict[str, Any]]:
            def run() -> dict[str, Any]:
                obj = self._record_type(record)
                rid = record.get("id") or record.get("Id")
                if not rid:
                    raise ApiError(400, "MISSING_ARGUMENT", "Id not specified in an update call")
                self._update(obj, str(rid), record)
                return {"id": normalize_id(str(rid)), "success": True, "errors": []}

            return run

        return json_response(self._run_rows(all_or_none, [op(r) for r in records]))

    @route("PATCH", V + "/composite/sobjects/{sobject}/{ext_field}")
    def collection_upsert(
        self, req: Request, version: str, sobject: str, ext_field: str
    ) -> Response:
        obj = self._require_obj(sobject)
        f = self._fields(obj).get(ext_field.lower())
        if f is None or not f["externalId"]:
            # "Only external ids are supported. Don't use record ids." [API.md §2.5]
            raise ApiError(
                400,
                "INVALID_FIELD",
                f"Field name provided, {ext_field} is not an External ID or indexed field for "
                f"{obj}",
            )
        all_or_none, records = self._collection_body(req)

        def op(record: Any) -> Callable[[], dict[str, Any]]:
            def run() -> dict[str, Any]:
                if self._record_type(record) != obj:
                    raise ApiError(400, "INVALID_TYPE", f"records must be of type {obj}")
                key = next((k for k in record if k.lower() == f["name"].lower()), None)
                value = record.get(key) if key else None
                if value in (None, ""):
                    raise ApiError(
                        400,
                        "REQUIRED_FIELD_MISSING",
                        f"Required fields are missing: [{f['name']}]",
                        fields=[f["name"]],
                    )
                rest = {k: v for k, v in record.items() if k != key}
                try:
                    rid, created = self._upsert(obj, f, value, rest, version)
                except ApiError as err:
                    if err.status == 300:
                        raise ApiError(
                            300,
                            "DUPLICATE_EXTERNAL_ID",
                            f"{f['name']}: more than one record found for external id field",
                            fields=[f["name"]],
                        ) from None
                    raise
                return {"id": rid, "success": True, "errors": [], "created": created}

            return run

        return json_response(self._run_rows(all_or_none, [op(r) for r in records]))

    @route("DELETE", V + "/composite/sobjects")
    def collection_delete(self, req: Request, version: str) -> Response:
        ids = [i for i in (req.arg("ids") or "").split(",") if i]
        if not ids:
            raise ApiError(400, "MISSING_ARGUMENT", "ids is required")
        self._check_batch(len(ids))
        all_or_none = (req.arg("allOrNone") or "false").lower() == "true"

        def op(rid: str) -> Callable[[], dict[str, Any]]:
            def run() -> dict[str, Any]:
                norm = normalize_id(rid)
                obj = OBJECT_BY_PREFIX.get(norm[:3]) if norm else None
                if norm is None or obj is None:
                    raise ApiError(400, "MALFORMED_ID", f"malformed id {rid[:20]}")
                try:
                    return {"id": self._delete(obj, norm), "success": True, "errors": []}
                except ApiError as err:
                    if err.code == "NOT_FOUND":
                        raise ApiError(
                            400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id"
                        ) from None
                    raise

            return run

        results = self._run_rows(all_or_none, [op(r) for r in ids])
        for rid, r in zip(ids, results, strict=True):
            r.setdefault("id", rid)
            if r["id"] is None:
                r["id"] = normalize_id(rid) or rid
        return json_response(results)

    def _retrieve(self, obj: str, ids: list[str], names: list[str], version: str) -> Response:
        if not names:
            raise ApiError(400, "MISSING_ARGUMENT", "fields is required")
        if len(ids) > int(self.options["collections_retrieve_max"]):
            raise ApiError(400, "EXCEEDED_ID_LIMIT", "too many ids")
        fields = self._fields(obj)
        canonical = []
        for name in names:
            f = fields.get(name.strip().lower())
            if f is None:
                raise ApiError(400, "INVALID_FIELD", soql.no_such_column(name, obj))
            canonical.append(f["name"])
        out: list[Any] = []
        for rid in ids:
            loaded = self._load(obj, rid)
            ok = loaded is not None and loaded[1] == LIVE
            out.append(self._present(obj, loaded[2], canonical, version) if ok and loaded else None)
        return json_response(out)

    @route("GET", V + "/composite/sobjects/{sobject}")
    def collection_retrieve(self, req: Request, version: str, sobject: str) -> Response:
        obj = self._require_obj(sobject)
        ids = [i for i in (req.arg("ids") or "").split(",") if i]
        names = [n for n in (req.arg("fields") or "").split(",") if n]
        return self._retrieve(obj, ids, names, version)

    @route("POST", V + "/composite/sobjects/{sobject}")
    def collection_retrieve_post(self, req: Request, version: str, sobject: str) -> Response:
        obj = self._require_obj(sobject)
        body = req.json_object()
        ids, names = body.get("ids") or [], body.get("fields") or []
        if not isinstance(ids, list) or not isinstance(names, list):
            raise ApiError(400, "JSON_PARSER_ERROR", "ids and fields must be arrays")
        return self._retrieve(obj, [str(i) for i in ids], [str(n) for n in names], version)

    # -- Composite ---------------------------------------------------------------------------

    @route("POST", V + "/composite")
    def composite(self, req: Request, version: str) -> Response:
        body = req.json_object()
        subs = body.get("compositeRequest")
        if not isinstance(subs, list) or not subs:
            raise ApiError(400, "JSON_PARSER_ERROR", "compositeRequest is required")
        if len(subs) > int(self.options["composite_max"]):
            raise ApiError(
                400,
                "LIMIT_EXCEEDED",
                f"Maximum number of subrequests allowed is {self.options['composite_max']}",
            )
        all_or_none = bool(body.get("allOrNone", False))
        results: list[dict[str, Any]] = []
        refs: dict[str, Any] = {}
        halted = {
            "errorCode": "PROCESSING_HALTED",
            "message": "The transaction was rolled back since another operation in the same "
            "transaction failed.",
        }
        try:
            with self.store.write():
                failed = False
                for sub in subs:
                    ref = str(sub.get("referenceId", "")) if isinstance(sub, dict) else ""
                    if failed and all_or_none:
                        results.append(
                            {"body": [halted], "httpHeaders": {}, "httpStatusCode": 400,
                             "referenceId": ref}
                        )  # fmt: skip
                        continue
                    status, payload, headers = self._sub_request(req, sub, refs)
                    if status < 300 and ref:
                        refs[ref] = payload
                    failed = failed or status >= 400
                    results.append(
                        {"body": payload, "httpHeaders": headers, "httpStatusCode": status,
                         "referenceId": ref}
                    )  # fmt: skip
                if failed and all_or_none:
                    raise _Rollback(results)
        except _Rollback:
            for r in results:
                if r["httpStatusCode"] < 400:
                    r.update(body=[halted], httpStatusCode=400, httpHeaders={})
        # The whole call counts as one API request [API.md §2.6].
        return json_response({"compositeResponse": results})

    def _sub_request(
        self, req: Request, sub: Any, refs: dict[str, Any]
    ) -> tuple[int, Any, dict[str, str]]:
        def resolve(text: str) -> str:
            def one(m: re.Match[str]) -> str:
                ref, *path = m.group(1).split(".")
                value: Any = refs.get(ref)
                for part in path:
                    value = value.get(part) if isinstance(value, dict) else None
                if value is None:
                    raise ApiError(
                        400,
                        "INVALID_REFERENCE",
                        f"Invalid reference specified. No value for {m.group(1)} found in {ref}.",
                    )
                return str(value)

            return re.sub(r"@\{([^}]+)\}", one, text)

        sub_req = Request("GET", "", "", {}, req.headers, b"", self.vendor, req.principal)
        try:
            if not isinstance(sub, dict) or not sub.get("url") or not sub.get("method"):
                raise ApiError(400, "JSON_PARSER_ERROR", "each subrequest needs method and url")
            url = resolve(str(sub["url"]))
            body_bytes = b""
            if sub.get("body") is not None:
                body_bytes = resolve(dumps(sub["body"])).encode()
            split = urllib.parse.urlsplit(url)
            sub_req = Request(
                method=str(sub["method"]).upper(),
                path=urllib.parse.unquote(split.path),
                raw_path=url,
                query=urllib.parse.parse_qs(split.query, keep_blank_values=True),
                headers=req.headers,
                body=body_bytes,
                vendor=self.vendor,
                principal=req.principal,
            )
            found, params, allowed = self.match(sub_req.method, sub_req.path)
            if found is None or "uncounted" in found.tags or "/composite" in found.template:
                if allowed:
                    raise self.method_not_allowed_error(sub_req, allowed)
                raise self.not_found_error(sub_req)
            resp = getattr(self, found.handler_name)(sub_req, **params)
        except ApiError as err:
            resp = self.render_error(sub_req, err)
        except soql.SoqlError as exc:
            resp = self.render_error(sub_req, ApiError(400, exc.code, exc.message))
        except MalformedJson as exc:
            resp = self.render_error(sub_req, self.malformed_json_error(sub_req, str(exc)))
        payload = loads(resp.body) if resp.body else None
        headers = {k: v for k, v in resp.headers if k in ("Location", "Last-Modified")}
        return resp.status, payload, headers

    # -- Bulk API 2.0 query jobs -------------------------------------------------------------

    def _job(self, job_id: str) -> _Job:
        with self._lock:
            job = self._jobs.get(normalize_id(job_id) or job_id)
        if job is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        return job

    @route("POST", V + "/jobs/query")
    def job_create(self, req: Request, version: str) -> Response:
        body = req.json_object()
        operation = body.get("operation")
        if operation not in ("query", "queryAll"):
            raise ApiError(400, "INVALIDJOB", "operation must be query or queryAll")
        plan = self._plan(body.get("query"), include_deleted=operation == "queryAll")
        if plan.q.count or plan.q.count_field or plan.q.offset:
            raise ApiError(
                400, "INVALIDJOB", "Aggregate queries and OFFSET are not supported by Bulk API"
            )
        compound = [n for n, _ in plan.q.fields if plan.types[n] in COMPOUND_TYPES]
        if compound:
            # Bulk cannot select a compound address or geolocation field [FIDELITY.md]
            raise ApiError(
                400,
                "API_ERROR",
                "FeatureNotEnabled : Selecting compound data not supported in Bulk Query",
            )
        delimiter = body.get("columnDelimiter", "COMMA")
        line_ending = body.get("lineEnding", "LF")
        if delimiter not in _DELIMITERS or line_ending not in ("LF", "CRLF"):
            raise ApiError(400, "INVALIDJOB", "invalid columnDelimiter or lineEnding")
        n = self.store.next_ids("salesforce:job")[0]
        job_id = make_id(JOB_PREFIX, n)
        stamp = fmt_datetime(self.now_ms())
        info = {
            "id": job_id,
            "operation": operation,
            "object": plan.obj,
            "createdById": ADMIN_USER,
            "createdDate": stamp,
            "systemModstamp": stamp,
            "state": "UploadComplete",
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(version[1:]),
            "lineEnding": line_ending,
            "columnDelimiter": delimiter,
        }
        job = _Job(job_id, info, plan, version, self.ctx.clock.time())
        with self._lock:
            self._jobs[job_id] = job
        return json_response(dict(info))

    def _advance(self, job: _Job) -> None:
        info = job.info
        if info["state"] in ("JobComplete", "Aborted", "Failed"):
            return
        delay = float(self.options["bulk_query_delay"])
        if self.ctx.clock.time() - job.created >= delay:
            job.seqs = self._collect(job.plan)
            info.update(
                state="JobComplete",
                numberRecordsProcessed=len(job.seqs),
                retries=0,
                totalProcessingTime=int((self.ctx.clock.time() - job.created) * 1000),
                systemModstamp=fmt_datetime(self.now_ms()),
            )
        elif job.polled:
            info["state"] = "InProgress"
        job.polled = True

    def _job_info(self, job: _Job) -> dict[str, Any]:
        out = dict(job.info)
        out.setdefault("numberRecordsProcessed", 0)
        out.setdefault("retries", 0)
        out.setdefault("totalProcessingTime", 0)
        out["jobType"] = "V2Query"
        out["isPkChunkingSupported"] = True
        return out

    @route("GET", V + "/jobs/query/{job_id}")
    def job_get(self, req: Request, version: str, job_id: str) -> Response:
        job = self._job(job_id)
        with self._lock:
            self._advance(job)
        return json_response(self._job_info(job))

    @route("PATCH", V + "/jobs/query/{job_id}")
    def job_abort(self, req: Request, version: str, job_id: str) -> Response:
        job = self._job(job_id)
        if req.json_object().get("state") != "Aborted":
            raise ApiError(400, "INVALIDJOBSTATE", "Only the Aborted state can be set")
        with self._lock:
            if job.info["state"] in ("JobComplete", "Failed", "Aborted"):
                raise ApiError(
                    400, "INVALIDJOBSTATE", f"Job is already in state {job.info['state']}"
                )
            job.info["state"] = "Aborted"
        return json_response(self._job_info(job))

    @route("DELETE", V + "/jobs/query/{job_id}")
    def job_delete(self, req: Request, version: str, job_id: str) -> Response:
        job = self._job(job_id)
        with self._lock:
            self._advance(job)
            if job.info["state"] not in ("JobComplete", "Failed", "Aborted"):
                raise ApiError(
                    400, "INVALIDJOBSTATE", "Only a finished or aborted job can be deleted"
                )
            self._jobs.pop(job.id, None)
        return empty_response(204)

    @route("GET", V + "/jobs/query")
    def job_list(self, req: Request, version: str) -> Response:
        with self._lock:
            jobs = [self._job_info(j) for j in self._jobs.values()]
        return json_response({"done": True, "records": jobs, "nextRecordsUrl": None})

    @route("GET", V + "/jobs/query/{job_id}/results")
    def job_results(self, req: Request, version: str, job_id: str) -> Response:
        job = self._job(job_id)
        with self._lock:
            self._advance(job)
        if job.info["state"] != "JobComplete" or job.seqs is None:
            # The job must be JobComplete [API.md §2.7: 412 JOB_NOT_COMPLETE].
            raise ApiError(412, "JOB_NOT_COMPLETE", "The job is not in JobComplete state")
        if version != job.version:
            raise ApiError(
                409, "INVALIDJOBSTATE", "Results must be fetched with the job's API version"
            )
        offset = 0
        locator = req.arg("locator")
        if locator:
            try:
                offset = int(base64.b64decode(locator + "=" * (-len(locator) % 4)).decode())
            except (ValueError, UnicodeDecodeError):
                raise ApiError(400, "INVALID_LOCATOR", "invalid locator") from None
            if not 0 <= offset <= len(job.seqs):
                raise ApiError(400, "INVALID_LOCATOR", "invalid locator")
        max_text = req.arg("maxRecords")
        size = int(self.options["bulk_results_default_max"])
        if max_text:
            if not max_text.isdigit() or int(max_text) < 1:
                raise ApiError(400, "INVALIDQUERYPARAMETER", "maxRecords must be positive")
            size = int(max_text)
        seqs = job.seqs[offset : offset + size]
        records = self._rows_by_seq(seqs)
        fields = [name for name, _ in job.plan.q.fields]
        delim = _DELIMITERS[job.info["columnDelimiter"]]
        eol = "\r\n" if job.info["lineEnding"] == "CRLF" else "\n"
        lines = [delim.join(_csv(name) for name in fields)]
        lines.extend(delim.join(_csv(r.get(name)) for name in fields) for r in records)
        end = offset + len(seqs)
        next_locator = (
            base64.b64encode(str(end).encode()).decode().rstrip("=")
            if end < len(job.seqs)
            else "null"
        )
        return Response(
            200,
            (eol.join(lines) + eol).encode(),
            content_type="text/csv",
            headers=[
                ("Sforce-Locator", next_locator),
                ("Sforce-NumberOfRecords", str(len(records))),
            ],
        )

    # -- Tooling API: custom fields ----------------------------------------------------------

    def _require_setup_access(self) -> None:
        if not self.options.get("customize_application", True):
            raise ApiError(
                403,
                "INSUFFICIENT_ACCESS",
                "insufficient access rights on cross-reference id: the user lacks the"
                " Customize Application permission",
            )

    @route("POST", V + "/tooling/sobjects/CustomField")
    def tooling_custom_field(self, req: Request, version: str) -> Response:
        self._require_setup_access()
        body = req.json_object()
        full = body.get("FullName")
        meta = body.get("Metadata")
        if not isinstance(full, str) or "." not in full or not isinstance(meta, dict):
            raise ApiError(
                400,
                "REQUIRED_FIELD_MISSING",
                "Required fields are missing: [FullName, Metadata]",
                fields=["FullName", "Metadata"],
            )
        obj_name, _, name = full.partition(".")
        obj = self._obj(obj_name)
        if obj is None:
            raise ApiError(400, "INVALID_CROSS_REFERENCE_KEY", f"invalid object: {obj_name}")
        if not name.endswith("__c") or not _FIELD_NAME.match(name) or "__" in name[:-3]:
            raise ApiError(
                400, "FIELD_INTEGRITY_EXCEPTION", "Custom field names must end with __c",
                fields=["FullName"],
            )  # fmt: skip
        ftype = TOOLING_TYPES.get(str(meta.get("type")))
        if ftype is None:
            raise ApiError(
                400, "FIELD_INTEGRITY_EXCEPTION", f"Invalid field type: {meta.get('type')}",
                fields=["Metadata"],
            )  # fmt: skip
        label = str(meta.get("label") or name[:-3].replace("_", " "))
        kwargs: dict[str, Any] = {
            "external_id": bool(meta.get("externalId", False)),
            "unique": bool(meta.get("unique", False)),
        }
        if ftype == "string":
            length = meta.get("length")
            if not isinstance(length, int) or not 1 <= length <= 255:
                raise ApiError(
                    400, "FIELD_INTEGRITY_EXCEPTION", "Length must be between 1 and 255",
                    fields=["Metadata"],
                )  # fmt: skip
            kwargs["length"] = length
        elif ftype == "textarea":
            kwargs["length"] = int(meta.get("length") or 32_768)
        elif ftype in NUMBER_TYPES:
            kwargs["precision"] = int(meta.get("precision") or 18)
            kwargs["scale"] = int(meta.get("scale") or 0)
        elif ftype == "boolean":
            kwargs.update(nillable=False, defaulted=True)
        elif ftype == "picklist":
            values = ((meta.get("valueSet") or {}).get("valueSetDefinition") or {}).get("value")
            kwargs["picklist"] = tuple(
                str(v.get("fullName")) for v in values or [] if isinstance(v, dict)
            )
        new = make_field(name, ftype, label, custom=True, **kwargs)
        with self._lock, self.store.write():
            taken = set(self._fields(obj)) | {f["name"].lower() for f in self._gated_fields(obj)}
            if name.lower() in taken:
                raise ApiError(
                    400,
                    "DUPLICATE_DEVELOPER_NAME",
                    f"This field name is already in use on {obj}: {name}",
                    fields=["FullName"],
                )
            custom = self.store.get_meta(self.vendor, "custom_fields", {})
            custom.setdefault(obj, []).append(new)
            self.store.set_meta(self.vendor, "custom_fields", custom)
            self.store.set_meta(
                self.vendor, "schema_modified_ms", self.now_ms() // 1000 * 1000 + 1000
            )
            fid = make_id(CUSTOM_FIELD_PREFIX, self.store.next_ids("salesforce:customfield")[0])
        self._load_schema()
        if new["externalId"] or new["unique"]:
            self._ensure_index(obj, name)
        return json_response(
            {"id": fid, "success": True, "errors": [], "warnings": [], "infos": []}, 201
        )

    @route("POST", V + "/sobjects/FieldPermissions")
    def field_permissions(self, req: Request, version: str) -> Response:
        """Grant field-level security on a field (any permission set id is accepted)."""
        self._require_setup_access()
        body = req.json_object()
        target = body.get("Field")
        parent = body.get("ParentId")
        if not isinstance(target, str) or "." not in target or not parent:
            raise ApiError(
                400,
                "REQUIRED_FIELD_MISSING",
                "Required fields are missing: [ParentId, SobjectType, Field]",
                fields=["ParentId", "SobjectType", "Field"],
            )
        obj_name, _, name = target.partition(".")
        obj = self._obj(obj_name)
        known = {f["name"].lower(): f["name"] for f in self._gated_fields(obj or "")}
        if obj is None or name.lower() not in known:
            raise ApiError(
                400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", f"Field: bad value for restricted "
                f"picklist field: {target}", fields=["Field"],
            )  # fmt: skip
        with self._lock, self.store.write():
            grants = self.store.get_meta(self.vendor, "fls", {})
            grants[f"{obj}.{known[name.lower()]}"] = {
                "read": bool(body.get("PermissionsRead")) or bool(body.get("PermissionsEdit")),
                "edit": bool(body.get("PermissionsEdit")),
            }
            self.store.set_meta(self.vendor, "fls", grants)
            fid = make_id("01k", self.store.next_ids("salesforce:fieldpermissions")[0])
        self._load_schema()
        return json_response({"id": fid, "success": True, "errors": []}, 201)

    # -- sandbox web page --------------------------------------------------------------------

    def ui_fields(self, obj: str, data: Any) -> dict[str, Any]:
        return dict(data) if isinstance(data, dict) else {}


_DELIMITERS = {
    "COMMA": ",",
    "TAB": "\t",
    "PIPE": "|",
    "SEMICOLON": ";",
    "CARET": "^",
    "BACKQUOTE": "`",
}


def _compound(record: dict[str, Any], parts: tuple[tuple[str, str], ...]) -> Any:
    """A compound address as a REST query returns it: an object of its components (with the
    state and country codes an org without state and country picklists leaves null), or null
    when every component is null."""
    values = {key: record.get(name) for name, key in parts}
    if all(v is None for v in values.values()):
        return None
    values.update(countryCode=None, stateCode=None)
    return dict(sorted(values.items()))


def _csv(value: Any) -> str:
    """One Bulk 2.0 CSV cell: quoted, quotes doubled; null is an empty unquoted cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    else:
        text = str(value)
    return '"' + text.replace('"', '""') + '"'
