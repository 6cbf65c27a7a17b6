"""The Zendesk Support emulator: organizations, users, tickets, ticket metrics, satisfaction
ratings, custom fields, background jobs and the incremental exports, with Zendesk's auth, rate
limits, pagination and error shapes.

The contract is ``../API.md`` (the real API, cited ``[API.md §N.M]``); FIDELITY.md beside this
file says what is and is not reproduced. Every path below also answers with a ``.json`` suffix
[API.md §1.1].

Routes::

    POST   /oauth/tokens                              client_credentials grant [§1.4]
    POST   /api/v2/oauth/tokens                       a non-expiring bearer token [§1.4]
    GET    /api/v2/users/me                           the caller [§4.3]
    GET    /api/v2/users              /users/{id}     CBP or offset [§4]
    GET    /api/v2/organizations      /organizations/{id}   /organizations/show_many?ids=
    PUT    /api/v2/organizations/{id}                 5/min per organization [§7.1]
    PUT    /api/v2/organizations/update_many          a background job [§7.2]
    GET    /api/v2/job_statuses/{id}                  queued -> working -> completed [§7.3]
    GET    /api/v2/tickets (?external_id=)  POST /api/v2/tickets (Idempotency-Key) [§7.4, §8.2]
    GET    /api/v2/tickets/{id}   DELETE /api/v2/tickets/{id}   GET /api/v2/tickets/{id}/metrics
    GET    /api/v2/ticket_metrics     /ticket_metrics/{id}
    GET    /api/v2/satisfaction_ratings (score, start_time, end_time)  /satisfaction_ratings/{id}
    GET    /api/v2/organization_fields   POST   PUT /organization_fields/reorder
    GET|PUT|DELETE /api/v2/organization_fields/{id or key}                          [§6]
    GET    /api/v2/user_fields   /api/v2/ticket_fields
    GET    /api/v2/incremental/{organizations|users|tickets}?start_time=    time-based [§3.2]
    GET    /api/v2/incremental/{users|tickets}/cursor?start_time= | ?cursor=  cursor [§3.3]
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import threading
import urllib.parse
from collections.abc import Iterable
from typing import Any, ClassVar

import orjson

from crm_connectors.sandbox.auth import Principal, TokenRejected
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
from crm_connectors.sandbox.ratelimit import FixedWindow
from crm_connectors.sandbox.store import ARCHIVED, LIVE, MERGED, PURGED

from .model import (
    ADMIN_EMAIL,
    ADMIN_NAME,
    ADMIN_USER_ID,
    API,
    AUDIT_BASE,
    BEARER_REJECTED,
    COUNTER_AUDIT,
    COUNTER_FIELD_OPTION,
    COUNTER_JOB,
    COUNTER_OAUTH,
    COUNTER_ORG_FIELD,
    COUNTER_TICKET,
    COUNTER_USER,
    EXPORT_429,
    EXPORTS,
    FIELD_OPTION_BASE,
    OPTION_TYPES,
    ORG_FIELD_BASE,
    SCOPE_RESOURCE,
    SCORE_FILTERS,
    SORTS,
    VENDOR,
    JsonObj,
    add_detail,
    bad_request,
    decode_cursor,
    encode_cursor,
    error,
    field_option,
    field_spec_details,
    forbidden,
    int_arg,
    invalid,
    iso,
    job_failure,
    job_message,
    job_view,
    memory_page,
    metric_id,
    metric_record,
    not_found,
    oauth_error,
    org_changes,
    organization_field,
    raw_error,
    record_id,
    shown_field_values,
    ticket_audit,
    ticket_input,
    ticket_record,
    user_id,
    user_record,
    whole_seconds,
)


class ZendeskEmulator(VendorApp):
    vendor = VENDOR
    DEFAULT_OPTIONS: ClassVar[dict[str, Any]] = {
        # Account limit, requests per minute: Enterprise plan [API.md §2.1].
        "account_limit_per_minute": 700,
        # GET /incremental/*: 10/min; the users cursor export has its own 20/min [API.md §2.3].
        "export_limit_per_minute": 10,
        "users_cursor_limit_per_minute": 20,
        # PUT /organizations/{id}: 5 per minute per organization [API.md §2.3, §7.1].
        "organization_update_limit_per_minute": 5,
        # Exports leave out what changed in the last minute and refuse a start_time within
        # it [API.md §3.1].
        "exclusion_seconds": 60,
        # Export per_page default and max [API.md §3.1]; CBP page[size] max [API.md §4.1];
        # offset pagination stops after 100 pages [API.md §4.2].
        "export_per_page": 1000,
        "max_page_size": 100,
        "max_offset_pages": 100,
        # update_many: at most 100 items [API.md §7.2], done after this much sandbox time
        # (observed: ~10 s for 100 orgs [API.md §7.3]; 1 s keeps tests short); statuses kept
        # one day [API.md §7.3]; at most 30 queued or working jobs [API.md §2.4].
        "bulk_max": 100,
        "job_delay_seconds": 1.0,
        "job_ttl_seconds": 86_400,
        "max_active_jobs": 30,
        # Idempotency-Key lifetime on POST /tickets: 2 hours [API.md §8.2].
        "idempotency_ttl_seconds": 7_200,
        # Whether the sandbox credentials act as an admin; False: as an agent, who gets 403 on
        # the exports, satisfaction ratings and organization-field writes [API.md §1.5, §3.1].
        "admin": True,
        # Unknown organization_fields keys on writes: ignored (False) or 422 (True) [assumed].
        "strict_custom_fields": False,
    }

    def __init__(self, ctx: Any) -> None:
        self._jobs_lock = threading.Lock()
        self._pending: dict[str, float] = {}  # job id -> when it completes
        super().__init__(ctx)
        with self.store.write() as conn:
            for sql in (
                # Listing order (seq) with the state beside it; the export order; lookups.
                "zendesk_seq ON records (object, seq, state) WHERE vendor = 'zendesk'",
                "zendesk_created ON records (object, created_ms, seq) WHERE vendor = 'zendesk'",
                "zendesk_user_email ON records (json_extract(data, '$.email'))"
                " WHERE vendor = 'zendesk' AND object = 'users'",
                "zendesk_org_name ON records (lower(json_extract(data, '$.name')))"
                " WHERE vendor = 'zendesk' AND object = 'organizations'",
                "zendesk_org_xid ON records (lower(json_extract(data, '$.external_id')))"
                " WHERE vendor = 'zendesk' AND object = 'organizations'",
                "zendesk_ticket_xid ON records (json_extract(data, '$.external_id'))"
                " WHERE vendor = 'zendesk' AND object = 'tickets'",
            ):
                conn.execute(f"CREATE INDEX IF NOT EXISTS {sql}")
            for rid, data in conn.execute(
                "SELECT id, data FROM records WHERE vendor = 'zendesk'"
                " AND object = 'job_statuses' AND json_extract(data, '$.status') = 'queued'"
            ):
                self._pending[rid] = float(orjson.loads(data)["due"])

    def configure(self, options: dict[str, Any]) -> None:
        super().configure(options)
        self._account = FixedWindow(int(options["account_limit_per_minute"]), 60)
        self._exports = FixedWindow(int(options["export_limit_per_minute"]), 60)
        self._users_cursor = FixedWindow(int(options["users_cursor_limit_per_minute"]), 60)
        self._org_updates = FixedWindow(int(options["organization_update_limit_per_minute"]), 60)

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
        # Paths work with or without a .json suffix [API.md §1.1].
        return super().match(method, path[:-5] if path.endswith(".json") else path)

    # -- error hooks -----------------------------------------------------------------------

    def render_error(self, req: Request, err: ApiError) -> Response:
        if "text" in err.extra:
            return Response(
                err.status, str(err.extra["text"]).encode(), "text/plain; charset=utf-8"
            )
        body = err.extra.get("body")
        if body is None:
            body = {"error": err.code, "description": err.message, **err.extra}
        return json_response(body, err.status)

    def auth_error(self, req: Request, reason: str) -> ApiError:
        scheme = (req.header("Authorization") or "").partition(" ")[0].lower()
        if scheme == "bearer":  # also when expired [API.md §1.5]
            return raw_error(401, {"error": "invalid_token", "error_description": BEARER_REJECTED})
        return raw_error(
            401,
            {"error": "Couldn't authenticate you"},
            [("WWW-Authenticate", 'Basic realm="Web Password"')],
        )

    def throttle_error(self, req: Request, retry_after: float | None) -> ApiError:
        now = self.ctx.clock.time()
        wait = whole_seconds(retry_after if retry_after is not None else 60 - now % 60)
        headers = [("Retry-After", str(wait))]
        if self._match_path(req).startswith(f"{API}/incremental/"):
            return raw_error(429, dict(EXPORT_429), headers)  # [API.md §3.1]
        # General 429 bodies have been plain text [API.md §8.1].
        return ApiError(429, "raw", "", headers=headers,
                        text="Number of allowed API requests per minute exceeded")  # fmt: skip

    def server_error(self, req: Request, status: int) -> ApiError:
        # 5xx shapes are not in the docs read [API.md §8.1]: the usual envelope [assumed].
        if status == 503:
            return error(503, "ServiceUnavailable", "Service temporarily unavailable",
                         headers=[("Retry-After", "10")])  # fmt: skip
        return error(status, "InternalError", "Something went wrong. Please try again later.")

    def malformed_json_error(self, req: Request, detail: str) -> ApiError:
        return bad_request("The request body is not valid JSON", "BadRequest")  # [assumed]

    def not_found_error(self, req: Request) -> ApiError:
        return error(404, "InvalidEndpoint", "Not found")  # [assumed]

    def method_not_allowed_error(self, req: Request, allowed: list[str]) -> ApiError:
        return error(404, "InvalidEndpoint", "Not found")  # [assumed]: Rails answers 404

    @staticmethod
    def _match_path(req: Request) -> str:
        return req.path[:-5] if req.path.endswith(".json") else req.path

    # -- auth [API.md §1] --------------------------------------------------------------------

    def authenticate(self, req: Request, route: Route) -> Principal:
        scheme, _, value = (req.header("Authorization") or "").partition(" ")
        if scheme.lower() == "bearer":
            try:
                principal = self.ctx.tokens.check(VENDOR, value.strip())
            except TokenRejected as rejected:
                raise self.auth_error(req, rejected.reason) from None
            self._check_scope(req, principal)
            return principal
        if scheme.lower() == "basic":
            principal_or_none = self._basic(value.strip())
            if principal_or_none is not None:
                return principal_or_none
        raise self.auth_error(req, "invalid")

    def _basic(self, value: str) -> Principal | None:
        """``base64("{email}/token:{api_token}")`` [API.md §1.2]. The token is the account's;
        the email decides whose permissions apply: the sandbox admin, or a seeded agent/admin.
        Passwords (``email:password``) are off [API.md §1.3]."""
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, _, token = decoded.partition(":")
        email, sep, kind = user.rpartition("/")
        creds = self.ctx.tokens.credentials.get(VENDOR, {})
        if not sep or kind != "token" or not token or token != creds.get("api_token"):
            return None
        if email.casefold() == str(creds.get("email", "")).casefold():
            staff = self._user_by_email(email)
            uid = staff["id"] if staff else ADMIN_USER_ID
            return Principal(VENDOR, f"basic:{email}", "static", {"user_id": uid})
        staff = self._user_by_email(email)
        if staff is None or staff["role"] == "end-user" or not staff["active"]:
            return None
        info = {"user_id": staff["id"], "role": staff["role"], "staff": True}
        return Principal(VENDOR, f"basic:{email}", "static", info)

    def _check_scope(self, req: Request, principal: Principal) -> None:
        """OAuth scopes: ``read``/``write`` or ``<resource>:read|write``; a token with an
        invalid scope exists but gets 403 Forbidden [API.md §1.4]."""
        scope = principal.info.get("scope")
        if scope is None:
            return
        need = "read" if req.method in ("GET", "HEAD") else "write"
        parts = self._match_path(req).removeprefix(f"{API}/").split("/")
        resource = parts[1] if parts[0] == "incremental" and len(parts) > 1 else parts[0]
        resource = SCOPE_RESOURCE.get(resource, resource)
        scopes = set(str(scope).split())
        if need not in scopes and f"{resource}:{need}" not in scopes:
            raise forbidden()

    def _is_admin(self, req: Request) -> bool:
        info = req.principal.info if req.principal else {}
        if info.get("staff"):
            return info.get("role") == "admin"
        return bool(self.options["admin"])

    def _require_admin(self, req: Request) -> None:
        if not self._is_admin(req):
            raise forbidden()

    def _caller_id(self, req: Request) -> int:
        info = req.principal.info if req.principal else {}
        return int(info.get("user_id", ADMIN_USER_ID))

    @route("POST", "/oauth/tokens", auth=False)
    def oauth_token(self, req: Request) -> Response:
        """The grant-type token endpoint, JSON (or form) body [API.md §1.4]: only
        ``client_credentials`` can be served without a user [A-CC]."""
        ctype = req.header("Content-Type") or ""
        if "json" in ctype:
            body = req.json_object(required=False)
        else:
            body = {
                k: v[0]
                for k, v in urllib.parse.parse_qs(req.body.decode("utf-8", "replace")).items()
            }
        client_id, secret = body.get("client_id"), body.get("client_secret")
        scheme, _, value = (req.header("Authorization") or "").partition(" ")
        if not client_id and scheme.lower() == "basic":  # client_secret_basic, as OAuth allows
            try:
                pair = base64.b64decode(value.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                pair = ""
            client_id, _, secret = pair.partition(":")
        grant = body.get("grant_type")
        if grant not in ("client_credentials", "authorization_code", "refresh_token"):
            return json_response(oauth_error("unsupported_grant_type"), 400)
        if not self.ctx.tokens.client_ok(VENDOR, str(client_id or ""), str(secret or "")):
            return json_response(oauth_error("invalid_client"), 401)
        if grant != "client_credentials":
            return json_response(oauth_error("invalid_grant"), 400)
        scope = str(body.get("scope") or "read write")
        ttl = float(self.ctx.tokens.credentials.get(VENDOR, {}).get("access_token_ttl", 1800))
        requested = body.get("expires_in")
        if (
            isinstance(requested, int | str)
            and str(requested).isdigit()
            and 300 <= int(requested) <= 172_800  # the documented bounds [API.md §1.4]
        ):
            ttl = float(requested)
        token, lifetime = self.ctx.tokens.issue_access(
            VENDOR, ttl, scope=scope, user_id=ADMIN_USER_ID
        )
        return json_response(
            {"access_token": token, "token_type": "bearer", "scope": scope,
             "expires_in": int(lifetime)},
            201,
        )  # fmt: skip

    @route("POST", f"{API}/oauth/tokens")
    def api_token(self, req: Request) -> Response:
        """An admin mints a token that never expires and has no refresh token [API.md §1.4]."""
        self._require_admin(req)
        spec = req.json_object().get("token")
        if not isinstance(spec, dict) or not isinstance(spec.get("scopes"), list):
            raise invalid({"scopes": [{"description": "Scopes: cannot be blank",
                                        "error": "BlankValue"}]})  # fmt: skip
        token_id = self.store.next_ids(COUNTER_OAUTH)[0]
        token = f"sbx-zd-{secrets.token_hex(20)}"
        scope = " ".join(str(s) for s in spec["scopes"])
        with self.store.write() as conn:
            conn.execute(
                "INSERT INTO tokens (token, vendor, kind, expires_at, info)"
                " VALUES (?, ?, 'static', NULL, ?)",
                (token, VENDOR, orjson.dumps({"scope": scope, "user_id": ADMIN_USER_ID}).decode()),
            )
        now = iso(self.now_s())
        return json_response(
            {"token": {"id": token_id, "token": token[:10],
                       "full_token": token, "client_id": spec.get("client_id"),
                       "user_id": ADMIN_USER_ID, "scopes": spec["scopes"], "created_at": now,
                       "expires_at": None, "refresh_token_expires_at": None}},
            201,
        )  # fmt: skip

    # -- rate limits [API.md §2] -------------------------------------------------------------

    def admit(
        self, req: Request, route: Route, principal: Principal | None
    ) -> list[tuple[str, str]]:
        # Background jobs finish as sandbox time passes: settle those due before serving.
        self._settle_jobs()
        if principal is None or not self.options.get("rate_limits", True):
            return []  # limits off: nothing enforced, nothing advertised
        now = self.ctx.clock.time()
        account = self._account.take("account", now)
        headers = [
            ("X-Rate-Limit", str(account.limit)),
            ("X-Rate-Limit-Remaining", str(account.remaining)),
            ("ratelimit-limit", str(account.limit)),
            ("ratelimit-remaining", str(account.remaining)),
            ("ratelimit-reset", str(whole_seconds(account.reset_at - now))),
        ]
        if not account.allowed:
            err = self.throttle_error(req, account.reset_at - now)
            err.headers.extend(headers)
            raise err
        if "export" in route.tags:
            users_cursor = "users_cursor" in route.tags
            window = self._users_cursor if users_cursor else self._exports
            export = window.take("exports", now)
            reset = whole_seconds(export.reset_at - now)
            if users_cursor:  # its own allocation and header [API.md §2.3]
                headers.append(
                    ("Zendesk-RateLimit-incremental-exports-cursor",
                     f"total={export.limit}; remaining={export.remaining}; resets={reset}")
                )  # fmt: skip
            if not export.allowed:
                raise raw_error(429, dict(EXPORT_429), [("Retry-After", str(reset)), *headers])
        return headers

    # -- storage helpers ---------------------------------------------------------------------

    def _row(self, obj: str, rid: str, states: tuple[int, ...] = (LIVE,)) -> Any:
        row = self.store.get(VENDOR, obj, rid)
        return row if row is not None and row[4] in states else None

    def _load(self, obj: str, rid: str, states: tuple[int, ...] = (LIVE,)) -> JsonObj:
        row = self._row(obj, rid, states)
        if row is None:
            raise not_found()
        data: JsonObj = orjson.loads(row[5])
        return data

    def _save(self, obj: str, data: JsonObj, now_ms: int, state: int = LIVE) -> None:
        self.store.put(VENDOR, obj, str(data["id"]), data, created_ms=now_ms, updated_ms=now_ms,
                       state=state)  # fmt: skip

    def _user_by_email(self, email: str) -> JsonObj | None:
        row = (
            self.store.conn()
            .execute(
                "SELECT data FROM records WHERE vendor = 'zendesk' AND object = 'users'"
                " AND json_extract(data, '$.email') = ? ORDER BY state, seq LIMIT 1",
                (email,),
            )
            .fetchone()
        )
        return orjson.loads(row[0]) if row else None

    def _org_fields(self) -> list[JsonObj]:
        """The organization field definitions in their configured order [API.md §4.3]."""

        def compute() -> list[JsonObj]:
            rows = self.store.conn().execute(
                "SELECT data FROM records WHERE vendor = 'zendesk'"
                " AND object = 'organization_fields' AND state = 0"
            )
            fields = [orjson.loads(r[0]) for r in rows]
            return sorted(fields, key=lambda f: (f.get("position", 9999), f["id"]))

        fields: list[JsonObj] = self.memo(("org_fields",), compute)
        return fields

    def _base(self, req: Request) -> str:
        """The sandbox's own host, as the caller named it [API.md §1.1, §9]."""
        listener = self.ctx.urls.get(VENDOR, "")
        scheme = listener.partition("://")[0] if "://" in listener else "http"
        return f"{scheme}://{req.header('Host') or listener.partition('://')[2]}"

    def _link(self, req: Request, path: str, params: dict[str, Any]) -> str:
        suffix = ".json" if req.path.endswith(".json") else ""
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        return f"{self._base(req)}{path}{suffix}" + (f"?{query}" if query else "")

    def _out(self, req: Request, obj: str, data: JsonObj, *, export: bool = False) -> JsonObj:
        """A stored record as served: ``url`` first, field values completed."""
        out: JsonObj = {"url": f"{self._base(req)}{API}/{obj}/{data['id']}.json", **data}
        if obj == "organizations":
            out["organization_fields"] = shown_field_values(
                data.get("organization_fields"), self._org_fields()
            )
        elif obj == "tickets" and not export:
            out.pop("generated_timestamp", None)  # export items only [API.md §3.4]
        elif obj == "users" and export:
            out.setdefault("permanently_deleted", False)  # [API.md §3.5]
        return out

    # -- lists: cursor (CBP) and offset pagination [API.md §4] --------------------------------

    def _order(self, req: Request, default: tuple[str, bool]) -> tuple[str, bool]:
        sort = req.arg("sort")
        if not sort:
            return default
        column = SORTS.get(sort.lstrip("-"))
        if column is None:
            raise bad_request(f"sort is not valid: {sort}", "InvalidPaginationParameter")
        return column, sort.startswith("-")

    @staticmethod
    def _is_cbp(req: Request) -> bool:
        return any(k in req.query for k in ("page[size]", "page[after]", "page[before]"))

    def _page_size(self, req: Request) -> int:
        size = int_arg(req.arg("page[size]"), "page[size]") or 100
        if not 1 <= size <= int(self.options["max_page_size"]):
            raise bad_request(
                f"page[size] must be between 1 and {self.options['max_page_size']}",
                "InvalidPaginationParameter",
            )
        return size

    def _list(
        self,
        req: Request,
        obj: str,
        key: str,
        where: Iterable[str] = (),
        args: Iterable[Any] = (),
        default: tuple[str, bool] = ("seq", False),
    ) -> Response:
        """A list endpoint over the records of ``obj``: CBP with ``page[size]``, else offset."""
        column, desc = self._order(req, default)
        conds = ["vendor = 'zendesk'", "object = ?", *where]
        base_args = [obj, *args]
        path = self._match_path(req)

        def fetch(extra: str, extra_args: list[Any], reverse: bool, limit: int,
                  offset: int = 0) -> list[Any]:  # fmt: skip
            direction = "DESC" if desc != reverse else "ASC"
            sql = (
                f"SELECT seq, {column}, data FROM records WHERE {' AND '.join(conds)}{extra}"
                f" ORDER BY {column} {direction}, seq {direction} LIMIT ? OFFSET ?"
            )
            return list(self.store.conn().execute(sql, [*base_args, *extra_args, limit, offset]))

        def shown(rows: list[Any]) -> list[JsonObj]:
            return [self._out(req, obj, orjson.loads(r[2])) for r in rows]

        if self._is_cbp(req):
            size = self._page_size(req)
            after, before = req.arg("page[after]"), req.arg("page[before]")
            extra, extra_args, reverse = "", [], False
            if after or before:
                try:
                    value, seq = decode_cursor(after or before or "")
                except (ValueError, TypeError):
                    raise bad_request("Invalid cursor", "InvalidPaginationParameter") from None
                reverse = not after
                op = "<" if desc != reverse else ">"
                extra, extra_args = f" AND ({column}, seq) {op} (?, ?)", [value, seq]
            rows = fetch(extra, extra_args, reverse, size + 1)
            has_more = len(rows) > size
            rows = rows[:size]
            if reverse:
                rows.reverse()
            return self._cbp_response(req, path, key, shown(rows), has_more,
                                      [(r[1], r[0]) for r in rows])  # fmt: skip
        page, per_page = self._offset_params(req)
        total = self.memo(
            ("count", obj, tuple(conds), tuple(base_args)),
            lambda: int(
                self.store.conn()
                .execute(f"SELECT count(*) FROM records WHERE {' AND '.join(conds)}", base_args)
                .fetchone()[0]
            ),
        )
        rows = fetch("", [], False, per_page, (page - 1) * per_page)
        return self._offset_response(req, path, key, shown(rows), page, per_page, total)

    def _offset_params(self, req: Request) -> tuple[int, int]:
        page = int_arg(req.arg("page"), "page") or 1
        per_page = min(max(int_arg(req.arg("per_page"), "per_page") or 100, 1), 100)
        if page < 1:
            raise bad_request("page must be a positive integer", "InvalidPaginationParameter")
        if page > int(self.options["max_offset_pages"]):  # [API.md §4.2] D-OBP
            raise bad_request(
                "Offset pagination is limited to the first 100 pages (10,000 records)."
                " Use cursor-based pagination instead.",
                "InvalidPaginationParameter",
            )
        return page, per_page

    def _cbp_response(self, req: Request, path: str, key: str, items: list[JsonObj],
                      has_more: bool, keys: list[tuple[Any, Any]]) -> Response:  # fmt: skip
        """``{items, meta: {has_more, after_cursor, before_cursor}, links: {prev, next}}`` with
        absolute, percent-encoded links [API.md §4.1]."""
        params = {k: v[0] for k, v in req.query.items() if k not in ("page[after]", "page[before]")}
        after = encode_cursor(list(keys[-1])) if keys else None
        before = encode_cursor(list(keys[0])) if keys else None
        links = {
            "prev": self._link(req, path, {**params, "page[before]": before}) if before else None,
            "next": self._link(req, path, {**params, "page[after]": after}) if after else None,
        }
        meta = {"has_more": has_more, "after_cursor": after, "before_cursor": before}
        return json_response({key: items, "meta": meta, "links": links})

    def _offset_response(self, req: Request, path: str, key: str, items: list[JsonObj],
                         page: int, per_page: int, total: int) -> Response:  # fmt: skip
        """``{items, next_page, previous_page, count}`` [API.md §4.2]."""
        params: dict[str, Any] = {k: v[0] for k, v in req.query.items() if k != "page"}
        params["per_page"] = per_page
        nxt = (
            self._link(req, path, {**params, "page": page + 1}) if page * per_page < total else None
        )
        prev = self._link(req, path, {**params, "page": page - 1}) if page > 1 else None
        return json_response({key: items, "next_page": nxt, "previous_page": prev, "count": total})

    def _memory_list(self, req: Request, key: str, items: list[JsonObj]) -> Response:
        """CBP or offset over a small in-memory list (the field definitions)."""
        path = self._match_path(req)
        if self._is_cbp(req):
            size = self._page_size(req)
            chosen, has_more = memory_page(len(items), size, req.arg("page[after]"),
                                           req.arg("page[before]"))  # fmt: skip
            return self._cbp_response(req, path, key, [items[i] for i in chosen], has_more,
                                      [(i, i) for i in chosen])  # fmt: skip
        page, per_page = self._offset_params(req)
        chosen_items = items[(page - 1) * per_page : page * per_page]
        return self._offset_response(req, path, key, chosen_items, page, per_page, len(items))

    # -- users [API.md §5.2] -------------------------------------------------------------------

    @route("GET", f"{API}/users/me")
    def users_me(self, req: Request) -> Response:
        uid = self._caller_id(req)
        row = self._row("users", str(uid), (LIVE, ARCHIVED, MERGED))
        if row is None:  # credentials changed after the seed: the admin they name
            creds = self.ctx.tokens.credentials.get(VENDOR, {})
            data = user_record(uid, ADMIN_NAME, str(creds.get("email", ADMIN_EMAIL)),
                               role="admin", created_s=0, updated_s=0)  # fmt: skip
        else:
            data = orjson.loads(row[5])
        return json_response({"user": self._out(req, "users", data)})

    @route("GET", f"{API}/users")
    def list_users(self, req: Request) -> Response:
        roles = req.query.get("role[]") or req.query.get("role") or []
        where, args = ["state = 0"], []
        if roles:
            where.append(f"json_extract(data, '$.role') IN ({','.join('?' * len(roles))})")
            args += roles
        return self._list(req, "users", "users", where, args)

    @route("GET", f"{API}/users/{{uid}}")
    def get_user(self, req: Request, uid: str) -> Response:
        # Deleted users are still shown, with active: false [API.md §5.2].
        data = self._load("users", record_id(uid), (LIVE, ARCHIVED, MERGED))
        return json_response({"user": self._out(req, "users", data)})

    @route("GET", f"{API}/user_fields")
    def list_user_fields(self, req: Request) -> Response:
        return self._memory_list(req, "user_fields", [])

    @route("GET", f"{API}/ticket_fields")
    def list_ticket_fields(self, req: Request) -> Response:
        rows = self.store.conn().execute(
            "SELECT data FROM records WHERE vendor = 'zendesk' AND object = 'ticket_fields'"
            " AND state = 0 ORDER BY seq"
        )
        items = [self._out(req, "ticket_fields", orjson.loads(r[0])) for r in rows]
        return self._memory_list(req, "ticket_fields", items)

    # -- organizations [API.md §5.1, §7.1, §7.2] -----------------------------------------------

    @route("GET", f"{API}/organizations")
    def list_organizations(self, req: Request) -> Response:
        return self._list(req, "organizations", "organizations", ["state = 0"])

    @route("GET", f"{API}/organizations/show_many")
    def show_many_organizations(self, req: Request) -> Response:
        raw, by = req.arg("ids"), "id"
        if raw is None:
            raw, by = req.arg("external_ids"), "external_id"
        if raw is None:
            raise bad_request("ids or external_ids is required")
        values = [v.strip() for v in raw.split(",") if v.strip()]
        self._check_many(values, "ids" if by == "id" else "external_ids")
        found: list[JsonObj] = []
        for value in values:  # unknown ids are left out
            data = self._find_org(value, by)
            if data is not None:
                found.append(self._out(req, "organizations", data))
        return json_response({"organizations": found})

    def _check_many(self, values: list[Any], name: str) -> None:
        limit = int(self.options["bulk_max"])
        if len(values) > limit:  # [API.md §7.2] (observed on create_many)
            raise error(400, "TooManyValues",
                        f"Parameter {name} cannot specify more than {limit} values",
                        max_count=limit)  # fmt: skip

    def _find_org(self, value: Any, by: str) -> JsonObj | None:
        if by == "id":
            text = str(value)
            row = self._row("organizations", str(int(text))) if text.isdigit() else None
            return orjson.loads(row[5]) if row else None
        row = (
            self.store.conn()
            .execute(
                "SELECT data FROM records WHERE vendor = 'zendesk' AND object = 'organizations'"
                " AND lower(json_extract(data, '$.external_id')) = lower(?) AND state = 0"
                " LIMIT 1",
                (str(value),),
            )
            .fetchone()
        )
        return orjson.loads(row[0]) if row else None

    @route("GET", f"{API}/organizations/{{oid}}")
    def get_organization(self, req: Request, oid: str) -> Response:
        data = self._load("organizations", record_id(oid))
        return json_response({"organization": self._out(req, "organizations", data)})

    @route("PUT", f"{API}/organizations/{{oid}}")
    def update_organization(self, req: Request, oid: str) -> Response:
        rid = record_id(oid)
        self._load("organizations", rid)
        if self.options.get("rate_limits", True):
            now = self.ctx.clock.time()
            decision = self._org_updates.take(rid, now)
            if not decision.allowed:  # [API.md §7.1] OAS
                raise raw_error(
                    429,
                    {
                        "errors": [
                            {"code": "TooManyRequests", "title": "Too many requests to update"}
                        ]
                    },
                    [("Retry-After", str(whole_seconds(decision.reset_at - now)))],
                )
        changes = req.json_object().get("organization")
        if not isinstance(changes, dict):
            raise bad_request("organization parameter is missing or not an object")
        with self.store.write():
            current = self._load("organizations", rid)
            updated, ignored = self._apply_org(current, changes, self.now_ms())
        headers = []
        if ignored:  # an id in the body is accepted and flagged [API.md §7.1]
            headers.append(("x-zendesk-api-warn", f"Unpermitted parameters: {', '.join(ignored)}"))
        return json_response({"organization": self._out(req, "organizations", updated)},
                             headers=headers)  # fmt: skip

    def _apply_org(
        self, current: JsonObj, changes: JsonObj, at_ms: int
    ) -> tuple[JsonObj, list[str]]:
        """Validate and write ``changes`` to an organization (inside a write transaction);
        422 RecordInvalid with ``details`` [API.md §8.1]. Returns the record and the keys that
        were ignored."""
        new, ignored = org_changes(
            current,
            changes,
            self._org_fields(),
            taken=lambda column, value: self._org_taken(column, value, current["id"]),
            strict=bool(self.options["strict_custom_fields"]),
        )
        new["updated_at"] = iso(at_ms // 1000)
        self.store.put(VENDOR, "organizations", str(new["id"]), new, created_ms=at_ms,
                       updated_ms=at_ms)  # fmt: skip
        return new, ignored

    def _org_taken(self, column: str, value: str, own_id: int) -> bool:
        row = (
            self.store.conn()
            .execute(
                f"SELECT 1 FROM records WHERE vendor = 'zendesk' AND object = 'organizations'"
                f" AND lower(json_extract(data, '$.{column}')) = lower(?) AND state = 0"
                " AND id != ? LIMIT 1",
                (value, str(own_id)),
            )
            .fetchone()
        )
        return row is not None

    @route("PUT", f"{API}/organizations/update_many")
    def update_many_organizations(self, req: Request) -> Response:
        """Bulk (``?ids=`` / ``?external_ids=`` with one ``organization``) or batch
        (``organizations: [{id, ...}]``); a job, 200 ``{"job_status"}`` [API.md §7.2]."""
        body = req.json_object()
        ids, by = req.arg("ids"), "id"
        if ids is None and req.arg("external_ids") is not None:
            ids, by = req.arg("external_ids"), "external_id"
        ops: list[JsonObj] = []
        if ids is not None:
            values = [v.strip() for v in ids.split(",") if v.strip()]
            self._check_many(values, "ids" if by == "id" else "external_ids")
            changes = body.get("organization")
            if not isinstance(changes, dict):
                raise bad_request("organization parameter is missing or not an object")
            ops = [
                {"index": i, "key": v, "by": by, "changes": changes} for i, v in enumerate(values)
            ]
        else:
            items = body.get("organizations")
            if not isinstance(items, list):
                raise bad_request("organizations parameter is missing or not an array")
            self._check_many(items, "")  # observed: "Parameter  cannot ..." [API.md §7.2]
            ops = [
                {"index": i, "key": item.get("id") if isinstance(item, dict) else None,
                 "by": "id", "changes": item if isinstance(item, dict) else None}
                for i, item in enumerate(items)
            ]  # fmt: skip
        job = self._start_job(req, "bulk_update_organizations", ops)
        limit = int(self.options["max_active_jobs"])
        inflight = f"total={limit}; remaining={max(0, limit - len(self._pending))}; resets=60"
        return json_response({"job_status": self._job_out(req, job)},
                             headers=[("zendesk-ratelimit-inflight-jobs", inflight)])  # fmt: skip

    # -- background jobs [API.md §7.3, §2.4] ---------------------------------------------------

    def _start_job(self, req: Request, job_type: str, ops: list[JsonObj]) -> JsonObj:
        now = self.ctx.clock.time()
        delay = float(self.options["job_delay_seconds"])
        with self._jobs_lock:
            limit = int(self.options["max_active_jobs"])
            if len(self._pending) >= limit:
                # HTTP status not in the docs read [API.md §2.4]: 429 with Retry-After [assumed].
                wait = whole_seconds(min(self._pending.values()) - now)
                raise raw_error(
                    429,
                    {"error": "TooManyJobs", "description": "Too many OrganizationUpdateJob jobs"
                     " are currently queued or running. Try again later.",
                     "current_job_ids": sorted(self._pending)},
                    [("Retry-After", str(wait))],
                )  # fmt: skip
            n = self.store.next_ids(COUNTER_JOB)[0]
            jid = "V3-" + hashlib.sha256(f"zendesk-job-{n}".encode()).hexdigest()[:32]
            job = {"id": jid, "job_type": job_type, "total": len(ops), "progress": None,
                   "status": "queued", "message": None, "results": None, "created": now,
                   "due": now + delay, "ops": ops}  # fmt: skip
            self.store.put(VENDOR, "job_statuses", jid, job, created_ms=int(now * 1000),
                           updated_ms=int(now * 1000))  # fmt: skip
            self._pending[jid] = now + delay
        return job

    def _settle_jobs(self) -> None:
        if not self._pending:
            return
        now = self.ctx.clock.time()
        with self._jobs_lock:
            for jid in sorted((j for j, due in self._pending.items() if due <= now),
                              key=self._pending.__getitem__):  # fmt: skip
                self._complete_job(jid)
                del self._pending[jid]

    def _complete_job(self, jid: str) -> None:
        """Apply a job's changes at its due time; one failed item fails only itself
        [API.md §7.3]."""
        row = self.store.get(VENDOR, "job_statuses", jid)
        if row is None:
            return
        job: JsonObj = orjson.loads(row[5])
        at_ms = int(job["due"] * 1000)
        results: list[JsonObj] = []
        with self.store.write():
            for op in job.pop("ops", []):
                results.append(self._job_item(op, at_ms))
            job.update(status="completed", progress=job["total"], results=results,
                       message=job_message(job["due"]))  # fmt: skip
            self.store.put(VENDOR, "job_statuses", jid, job, created_ms=row[2], updated_ms=at_ms)

    def _job_item(self, op: JsonObj, at_ms: int) -> JsonObj:
        """One item of a job: its success or failure shape [API.md §7.3]."""
        if op["changes"] is None:
            return job_failure(op, "Organization must be an object")
        if op["key"] is None:
            return job_failure(op, "id is required")
        current = self._find_org(op["key"], op["by"])
        if current is None:  # the item fails, not the job [assumed details text]
            return job_failure(op, "RecordNotFound", op["key"] if op["by"] == "id" else None)
        try:
            self._apply_org(current, op["changes"], at_ms)
        except ApiError as exc:
            texts = [d["description"] for ds in exc.extra.get("details", {}).values() for d in ds]
            return job_failure(op, "; ".join(texts), current["id"])
        return {"action": "update", "id": current["id"], "status": "Updated", "success": True}

    def _job_out(self, req: Request, job: JsonObj) -> JsonObj:
        url = f"{self._base(req)}{API}/job_statuses/{job['id']}.json"
        return job_view(job, self.ctx.clock.time(), url)

    @route("GET", f"{API}/job_statuses/{{jid}}")
    def get_job_status(self, req: Request, jid: str) -> Response:
        row = self.store.get(VENDOR, "job_statuses", jid)
        if row is None:
            raise not_found()
        job = orjson.loads(row[5])
        if self.ctx.clock.time() - job["created"] > float(self.options["job_ttl_seconds"]):
            with self.store.write() as conn:  # kept one day [API.md §7.3]
                conn.execute(
                    "DELETE FROM records WHERE vendor = 'zendesk' AND object = 'job_statuses'"
                    " AND id = ?",
                    (jid,),
                )
            raise not_found()
        return json_response({"job_status": self._job_out(req, job)})

    # -- organization fields [API.md §6] ------------------------------------------------------

    @route("GET", f"{API}/organization_fields")
    def list_organization_fields(self, req: Request) -> Response:
        items = [self._out(req, "organization_fields", f) for f in self._org_fields()]
        return self._memory_list(req, "organization_fields", items)

    def _field(self, ref: str) -> JsonObj:
        for f in self._org_fields():
            if str(f["id"]) == ref or f["key"] == ref:
                return dict(f)
        raise not_found()

    @route("GET", f"{API}/organization_fields/{{ref}}")
    def get_organization_field(self, req: Request, ref: str) -> Response:
        field = self._field(ref)
        return json_response({"organization_field": self._out(req, "organization_fields", field)})

    @route("POST", f"{API}/organization_fields")
    def create_organization_field(self, req: Request) -> Response:
        """Admins only; 201 [API.md §6.1]; key rules [API.md §6.2]; duplicate key 422 with
        ``details.key`` DuplicateValue (an inference of [API.md §6.3])."""
        self._require_admin(req)
        spec = req.json_object().get("organization_field")
        if not isinstance(spec, dict):
            raise bad_request("organization_field parameter is missing or not an object")
        keys = {f["key"] for f in self._org_fields()}
        details, ftype, key, title, target = field_spec_details(spec, keys)
        options = self._options(ftype, spec.get("custom_field_options"), details)
        if details:
            raise invalid(details)
        with self.store.write():
            n = self.store.next_ids(COUNTER_ORG_FIELD)[0]
            field = organization_field(
                ORG_FIELD_BASE + n, str(key), str(ftype), str(title), created_s=self.now_s(),
                description=str(spec.get("description") or ""),
                position=spec["position"] if isinstance(spec.get("position"), int) else 9999,
                options=options,
                regexp=spec.get("regexp_for_validation"), tag=spec.get("tag"),
                relationship=(target, spec.get("relationship_filter")),
            )  # fmt: skip
            field["active"] = bool(spec.get("active", True))
            self._save("organization_fields", field, self.now_ms())
        out = self._out(req, "organization_fields", field)
        return json_response({"organization_field": out}, 201, [("Location", out["url"])])

    def _options(self, ftype: str, raw: Any, details: dict[str, list[JsonObj]],
                 current: list[JsonObj] | None = None) -> list[JsonObj] | None:  # fmt: skip
        """Dropdown/multiselect options: the full list each time; omitted ones are removed
        [API.md §6.2]."""
        if ftype not in OPTION_TYPES:
            return None
        if (
            not isinstance(raw, list)
            or not raw
            or not all(isinstance(o, dict) and o.get("name") and o.get("value") for o in raw)
        ):
            add_detail(details, "custom_field_options", "InvalidValue",
                       "Custom field options: each option needs a name and a value")  # fmt: skip
            return None
        if details:
            return None  # the request is rejected: no option ids are taken
        known = {o["value"]: o["id"] for o in current or []}
        out = []
        for i, o in enumerate(raw):
            oid = (
                known.get(o["value"])
                or FIELD_OPTION_BASE + self.store.next_ids(COUNTER_FIELD_OPTION)[0]
            )
            out.append(field_option(oid, str(o["name"]), str(o["value"]), i))
        return out

    @route("PUT", f"{API}/organization_fields/reorder")
    def reorder_organization_fields(self, req: Request) -> Response:
        self._require_admin(req)
        order = req.json_object().get("organization_field_ids")
        if not isinstance(order, list):
            raise bad_request("organization_field_ids must be an array")
        now = self.now_ms()
        with self.store.write():
            for position, fid in enumerate(order):
                field = self._field(str(fid))
                field["position"] = position
                self._save("organization_fields", field, now)
        return json_response({})

    @route("PUT", f"{API}/organization_fields/{{ref}}")
    def update_organization_field(self, req: Request, ref: str) -> Response:
        self._require_admin(req)
        spec = req.json_object().get("organization_field")
        if not isinstance(spec, dict):
            raise bad_request("organization_field parameter is missing or not an object")
        details: dict[str, list[JsonObj]] = {}
        with self.store.write():
            field = self._field(ref)
            for k in ("title", "description", "position", "active", "regexp_for_validation",
                      "tag", "relationship_filter"):  # fmt: skip
                if k in spec:
                    field[k] = spec[k]
            if "title" in spec:
                field["raw_title"] = spec["title"]
            if "description" in spec:
                field["raw_description"] = spec["description"]
            if "custom_field_options" in spec:
                field["custom_field_options"] = self._options(
                    field["type"],
                    spec["custom_field_options"],
                    details,
                    field.get("custom_field_options"),
                )
            if details:
                raise invalid(details)
            field["updated_at"] = iso(self.now_s())
            self._save("organization_fields", field, self.now_ms())
        return json_response({"organization_field": self._out(req, "organization_fields", field)})

    @route("DELETE", f"{API}/organization_fields/{{ref}}")
    def delete_organization_field(self, req: Request, ref: str) -> Response:
        self._require_admin(req)
        field = self._field(ref)
        self.store.set_state(VENDOR, "organization_fields", str(field["id"]), PURGED, self.now_ms())
        return empty_response(204)

    # -- tickets [API.md §5.3, §7.4, §8.2] ----------------------------------------------------

    @route("GET", f"{API}/tickets")
    def list_tickets(self, req: Request) -> Response:
        where, args = ["state = 0"], []  # deleted tickets are not listed
        external_id = req.arg("external_id")
        if external_id is not None:
            where.append("json_extract(data, '$.external_id') = ?")
            args.append(external_id)
        return self._list(req, "tickets", "tickets", where, args)

    @route("GET", f"{API}/tickets/{{tid}}")
    def get_ticket(self, req: Request, tid: str) -> Response:
        data = self._load("tickets", record_id(tid))
        return json_response({"ticket": self._out(req, "tickets", data)})

    @route("POST", f"{API}/tickets")
    def create_ticket(self, req: Request) -> Response:
        body = req.json_object()
        key = req.header("Idempotency-Key")
        if key is None:
            return self._create_ticket(req, body)
        if not key.strip() or len(key) > 255:  # up to 255 characters [API.md §8.2]
            raise bad_request(
                "Idempotency-Key must be 1 to 255 characters", "IdempotentRequestError"
            )
        digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
        name = f"idempotency:{key}"
        now = self.ctx.clock.time()
        with self.store.write():
            saved = self.store.get_meta(VENDOR, name)
            if saved and now - saved["at"] < float(self.options["idempotency_ttl_seconds"]):
                if saved["digest"] != digest:
                    raise bad_request(
                        "Request parameters don't match the given idempotency key",
                        "IdempotentRequestError",
                    )
                headers = [(h, v) for h, v in saved["headers"]]
                return Response(saved["status"], saved["body"].encode(),
                                headers=[*headers, ("x-idempotency-lookup", "hit")])  # fmt: skip
            resp = self._create_ticket(req, body)
            self.store.set_meta(VENDOR, name, {"at": now, "digest": digest, "status": resp.status,
                                               "body": resp.body.decode(),
                                               "headers": resp.headers})  # fmt: skip
        resp.headers.append(("x-idempotency-lookup", "miss"))
        return resp

    def _user(self, uid: Any) -> JsonObj | None:
        if isinstance(uid, bool) or not isinstance(uid, int | str) or not str(uid).isdigit():
            return None
        row = self._row("users", str(int(uid)))
        return orjson.loads(row[5]) if row else None

    def _requester(self, t: JsonObj, caller: int, details: dict[str, list[JsonObj]],
                   now_s: int) -> JsonObj | None:  # fmt: skip
        """``requester_id``, or ``requester: {name, email}`` (found or created), or the caller
        [API.md §7.4]."""
        if t.get("requester_id") is not None:
            user = self._user(t["requester_id"])
            if user is None:
                add_detail(details, "requester", "InvalidValue", "Requester: is invalid")
            return user
        spec = t.get("requester")
        if isinstance(spec, dict) and isinstance(spec.get("email"), str) and spec["email"]:
            user = self._user_by_email(spec["email"])
            if user is None:
                uid = user_id(self.store.next_ids(COUNTER_USER)[0])
                name = str(spec.get("name") or spec["email"].partition("@")[0])
                user = user_record(uid, name, spec["email"], role="end-user", created_s=now_s,
                                   updated_s=now_s)  # fmt: skip
                self._save("users", user, now_s * 1000)
            return user
        return self._user(caller)

    def _create_ticket(self, req: Request, body: JsonObj) -> Response:
        t = body.get("ticket")
        if not isinstance(t, dict):
            raise bad_request("ticket parameter is missing or not an object")
        now_s, now_ms, caller = self.now_s(), self.now_ms(), self._caller_id(req)
        v, details = ticket_input(t)
        with self.store.write():
            requester = self._requester(t, caller, details, now_s)
            assignee = t.get("assignee_id")
            if assignee is not None:
                staff = self._user(assignee)
                if staff is None or staff["role"] == "end-user":
                    add_detail(details, "assignee", "InvalidValue", "Assignee: is invalid")
            org = t.get("organization_id")
            if org is None and requester is not None:
                org = requester.get("organization_id")  # the requester's [API.md §7.4]
            elif org is not None and self._find_org(org, "id") is None:
                add_detail(details, "organization", "InvalidValue", "Organization: is invalid")
            if details:
                raise invalid(details)
            tid = self.store.next_ids(COUNTER_TICKET)[0]
            requester_id = requester["id"] if requester else caller
            data = ticket_record(
                tid, subject=v["subject"], description=v["text"], status=v["status"],
                priority=v["priority"], requester_id=requester_id,
                submitter_id=t.get("submitter_id") or caller, assignee_id=assignee,
                organization_id=org, created_s=now_s, updated_s=now_s, ticket_type=v["type"],
                due_at=v["due_at"], tags=v["tags"], external_id=v["external_id"],
                custom_fields=v["custom_fields"],
            )  # fmt: skip
            self._save("tickets", data, now_ms)
            metric = metric_record(
                tid, created_s=now_s, updated_s=now_s,
                solved_s=now_s if v["status"] == "solved" else None, reply_minutes=None,
                assigned_s=now_s if assignee else None, replies=0,
            )  # fmt: skip
            self._save("ticket_metrics", metric, now_ms)
            audit_id = AUDIT_BASE + self.store.next_ids(COUNTER_AUDIT)[0]
        out = self._out(req, "tickets", data)
        audit = ticket_audit(audit_id, out, caller, v["text"], v["public"],
                             req.header("User-Agent") or "", data["via"])  # fmt: skip
        return json_response({"ticket": out, "audit": audit}, 201, [("Location", out["url"])])

    @route("DELETE", f"{API}/tickets/{{tid}}")
    def delete_ticket(self, req: Request, tid: str) -> Response:
        """Soft delete, 204 [API.md §7.4]; afterwards the ticket reads as 404 and stays in the
        ticket export with ``status: "deleted"`` [API.md §3.5]."""
        rid = record_id(tid)
        now_ms = self.now_ms()
        with self.store.write():
            data = self._load("tickets", rid)
            data.update(status="deleted", updated_at=iso(now_ms // 1000),
                        generated_timestamp=now_ms // 1000)  # fmt: skip
            self._save("tickets", data, now_ms, ARCHIVED)
            self.store.set_state(
                VENDOR, "ticket_metrics", str(metric_id(int(rid))), ARCHIVED, now_ms
            )
        return empty_response(204)

    # -- ticket metrics and satisfaction ratings [API.md §4.3, §5.4, §5.5] --------------------

    @route("GET", f"{API}/tickets/{{tid}}/metrics")
    def get_ticket_metrics(self, req: Request, tid: str) -> Response:
        rid = record_id(tid)
        self._load("tickets", rid)
        data = self._load("ticket_metrics", str(metric_id(int(rid))))
        return json_response({"ticket_metric": self._out(req, "ticket_metrics", data)})

    @route("GET", f"{API}/ticket_metrics")
    def list_ticket_metrics(self, req: Request) -> Response:
        # Newest ticket first by creation [API.md §4.3].
        return self._list(req, "ticket_metrics", "ticket_metrics", ["state = 0"],
                          default=("created_ms", True))  # fmt: skip

    @route("GET", f"{API}/ticket_metrics/{{mid}}")
    def get_ticket_metric(self, req: Request, mid: str) -> Response:
        # The docs example shows an array under ticket_metric [API.md §4.3]; clients read an
        # object, which is what the sandbox sends (see FIDELITY.md).
        data = self._load("ticket_metrics", record_id(mid))
        return json_response({"ticket_metric": self._out(req, "ticket_metrics", data)})

    @route("GET", f"{API}/satisfaction_ratings")
    def list_satisfaction_ratings(self, req: Request) -> Response:
        self._require_admin(req)  # admins [API.md §4.3]
        where: list[str] = ["state = 0"]
        args: list[Any] = []
        score = req.arg("score")
        if score:
            if score not in SCORE_FILTERS:
                raise bad_request(f"score is not valid: {score}")
            scores, with_comment = SCORE_FILTERS[score]
            where.append(f"json_extract(data, '$.score') IN ({','.join('?' * len(scores))})")
            args += scores
            if with_comment is not None:
                has = "coalesce(json_extract(data, '$.comment'), '') != ''"
                where.append(has if with_comment else f"NOT ({has})")
        for name, op in (("start_time", ">="), ("end_time", "<=")):
            value = int_arg(req.arg(name), name)
            if value is not None:
                where.append(f"created_ms {op} ?")
                args.append(value * 1000 + (999 if op == "<=" else 0))
        return self._list(req, "satisfaction_ratings", "satisfaction_ratings", where, args)

    @route("GET", f"{API}/satisfaction_ratings/{{sid}}")
    def get_satisfaction_rating(self, req: Request, sid: str) -> Response:
        self._require_admin(req)
        data = self._load("satisfaction_ratings", record_id(sid))
        return json_response({"satisfaction_rating": self._out(req, "satisfaction_ratings", data)})

    # -- incremental exports [API.md §3] -------------------------------------------------------

    def _start_time(self, req: Request) -> int:
        raw = req.arg("start_time")
        if raw is None or raw == "":
            raise bad_request("start_time is required")  # [assumed] status and text
        try:
            start = int(float(raw))
        except ValueError:
            raise bad_request("start_time must be a Unix timestamp in seconds") from None
        if start < 0:
            raise bad_request("start_time must be a Unix timestamp in seconds")
        exclusion = int(self.options["exclusion_seconds"])
        if start > self.now_s() - exclusion:  # [API.md §3.1]
            minutes = max(1, exclusion // 60)
            unit = "minute" if minutes == 1 else "minutes"
            raise error(
                422,
                "InvalidValue",
                f"Too recent start_time. Use a start_time older than {minutes} {unit}",
            )
        return start

    def _export_filters(self, req: Request, resource: str) -> tuple[list[str], list[Any]]:
        """The export's upper bound (what changed in the last minute is left out, whole
        seconds) and the tickets' filters [API.md §3.1, §3.5]."""
        cutoff_ms = (self.now_s() - int(self.options["exclusion_seconds"]) + 1) * 1000
        where, args = ["updated_ms < ?"], [cutoff_ms]
        include = (req.arg("include") or "").split(",")
        if "last_audits" in include:
            raise bad_request("last_audits is not allowed as a side-load of exports")
        if resource == "tickets":
            if (req.arg("exclude_deleted") or "").lower() == "true":
                where.append("state = 0")
            scope = req.arg("support_type_scope") or "agent"  # default agent [API.md §3.1]
            if scope not in ("all", "agent", "ai_agent"):
                raise bad_request("support_type_scope must be one of all, agent, ai_agent")
            if scope == "ai_agent":  # the sandbox holds no AI-agent tickets
                where.append("0")
        return where, args

    def _export_per_page(self, req: Request) -> int:
        per_page = int_arg(req.arg("per_page"), "per_page")
        limit = int(self.options["export_per_page"])
        if per_page is not None and per_page < 1:
            raise bad_request("per_page must be a positive integer")
        return min(per_page or limit, limit)

    def _export_rows(
        self, obj: str, where: list[str], args: list[Any], limit: int | None
    ) -> list[Any]:
        sql = (
            "SELECT id, updated_ms, data FROM records WHERE vendor = 'zendesk' AND object = ?"
            f" AND {' AND '.join(where)} ORDER BY updated_ms, id"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return list(self.store.conn().execute(sql, [obj, *args]))

    def _export_body(self, req: Request, resource: str, rows: list[Any]) -> JsonObj:
        obj = EXPORTS[resource]
        items = [self._out(req, obj, orjson.loads(r[2]), export=True) for r in rows]
        body: JsonObj = {resource: items}
        if resource == "tickets" and "metric_sets" in (req.arg("include") or "").split(","):
            ids = [str(metric_id(int(i["id"]))) for i in items]
            metrics: list[JsonObj] = []
            for lo in range(0, len(ids), 500):
                chunk = ids[lo : lo + 500]
                metrics += [
                    self._out(req, "ticket_metrics", orjson.loads(r[0]))
                    for r in self.store.conn().execute(
                        "SELECT data FROM records WHERE vendor = 'zendesk'"
                        f" AND object = 'ticket_metrics' AND id IN ({','.join('?' * len(chunk))})",
                        chunk,
                    )
                ]
            body["metric_sets"] = metrics  # the page's tickets' metrics [API.md §3.6]
        return body

    def _kept_params(self, req: Request) -> dict[str, Any]:
        keep = ("per_page", "include", "exclude_deleted", "support_type_scope")
        return {k: req.arg(k) for k in keep if req.arg(k) is not None}

    @route("GET", f"{API}/incremental/{{resource}}", tags=("export",))
    def export_time(self, req: Request, resource: str) -> Response:
        """Time-based export [API.md §3.2]: ordered by update time (tickets:
        ``generated_timestamp``); items sharing a second stay on one page, so a page can exceed
        ``per_page``; ``end_time`` is the last item's second, so the next page repeats it, or
        that second + 1 when the whole page is one second (observed)."""
        if resource not in EXPORTS:
            raise self.not_found_error(req)
        self._require_admin(req)  # admins only [API.md §3.1]
        start = self._start_time(req)
        per_page = self._export_per_page(req)
        obj = EXPORTS[resource]
        where, args = self._export_filters(req, resource)
        rows = self._export_rows(obj, ["updated_ms >= ?", *where], [start * 1000, *args],
                                 per_page + 1)  # fmt: skip
        more = False
        if len(rows) > per_page:
            rows = rows[:per_page]
            last_ms, last_id = rows[-1][1], rows[-1][0]
            next_second = (last_ms // 1000 + 1) * 1000
            rows += self._export_rows(
                obj, ["updated_ms < ?", "(updated_ms, id) > (?, ?)", *where],
                [next_second, last_ms, last_id, *args], None,
            )  # fmt: skip
            more = bool(self._export_rows(obj, ["updated_ms >= ?", *where],
                                          [next_second, *args], 1))  # fmt: skip
        seconds = {r[1] // 1000 for r in rows}
        if not rows:
            end_time = start
        elif len(seconds) == 1:
            end_time = rows[-1][1] // 1000 + 1
        else:
            end_time = rows[-1][1] // 1000
        body = self._export_body(req, resource, rows)
        body.update(
            count=len(rows),
            end_time=end_time,
            next_page=self._link(req, f"{API}/incremental/{resource}",
                                 {"start_time": end_time, **self._kept_params(req)}),
            end_of_stream=not more,
        )  # fmt: skip
        return json_response(body)

    @route("GET", f"{API}/incremental/tickets/cursor", tags=("export",))
    def export_tickets_cursor(self, req: Request) -> Response:
        return self._export_cursor(req, "tickets")

    @route("GET", f"{API}/incremental/users/cursor", tags=("export", "users_cursor"))
    def export_users_cursor(self, req: Request) -> Response:
        return self._export_cursor(req, "users")

    def _export_cursor(self, req: Request, resource: str) -> Response:
        """Cursor-based export [API.md §3.3]: ``start_time`` first, then ``cursor``; at
        ``end_of_stream`` the ``after_cursor`` still marks the position for the next export.
        The cursor is opaque (base64 of the resource and the last item's position)."""
        self._require_admin(req)
        per_page = self._export_per_page(req)
        where, args = self._export_filters(req, resource)
        cursor = req.arg("cursor")
        if cursor:
            try:
                kind, position_ms, position_id = decode_cursor(cursor)
                if kind != resource:
                    raise ValueError(kind)
            except (ValueError, TypeError):
                raise bad_request("Invalid cursor", "InvalidPaginationParameter") from None
        else:
            kind, position_ms, position_id = resource, self._start_time(req) * 1000, None
        if position_id is None:  # a start_time: everything from that second on
            where, args = ["updated_ms >= ?", *where], [position_ms, *args]
        else:
            where, args = ["(updated_ms, id) > (?, ?)", *where], [position_ms, position_id, *args]
        rows = self._export_rows(resource, where, args, per_page + 1)
        more = len(rows) > per_page
        rows = rows[:per_page]
        if rows:
            position_ms, position_id = rows[-1][1], rows[-1][0]
        after = encode_cursor([resource, position_ms, position_id])
        body = self._export_body(req, resource, rows)
        body.update(
            after_url=self._link(req, f"{API}/incremental/{resource}/cursor",
                                 {"cursor": after, **self._kept_params(req)}),
            after_cursor=after,
            before_url=None,
            before_cursor=None,
            end_of_stream=not more,
        )  # fmt: skip
        return json_response(body)
