"""The Intercom 2.x emulator: contacts, companies, conversations, admins, data attributes, tags
and notes, with Intercom's pagination, day-granular search, scroll lock, rate limits and errors.

Sources: ../API.md §3 (cited as [API.md §3.4] and so on) and Intercom's 2.14 OpenAPI
description, cited as "[spec]" or "[spec <operation or schema>]": the file
tests/specs/intercom/2.14/api.intercom.io.yaml in this repository.
See FIDELITY.md beside this file for what is and is not emulated.
"""

from __future__ import annotations

import base64
import bisect
import math
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from crm_connectors.sandbox.auth import Principal
from crm_connectors.sandbox.http import (
    ApiError,
    Request,
    Response,
    Route,
    VendorApp,
    json_response,
    route,
)
from crm_connectors.sandbox.ratelimit import FixedWindow
from crm_connectors.sandbox.store import ARCHIVED, LIVE, PURGED

from .model import (
    APP_ID,
    COMPANY_KIND,
    CONTACT_KIND,
    COUNTER_ATTRIBUTE,
    COUNTER_COMPANY,
    COUNTER_CONTACT,
    COUNTER_CONVERSATION,
    COUNTER_NOTE,
    COUNTER_TAG,
    VENDOR,
    attached_list,
    company_ref,
    data_attribute,
    object_id,
)

#: [spec intercom_version] enum 1.0…2.14 in the 2.14 file, 2.15/2.16 in newer specs, "Unstable".
VERSIONS = frozenset([f"1.{i}" for i in range(5)] + [f"2.{i}" for i in range(17)] + ["Unstable"])
DAY = 86_400
#: Search operators [spec single_filter_search_request].
OPERATORS = frozenset(("=", "!=", "IN", "NIN", "<", "<=", ">", ">=", "~", "!~", "^", "$"))
#: Date fields accept only =, <, > [spec SearchContacts description, API.md §3.4].
DATE_OPERATORS = frozenset(("=", "<", ">"))
VISIBLE = (LIVE, ARCHIVED)  # contacts: archived ones are still readable, flagged archived:true
JsonObj = dict[str, Any]
Predicate = Callable[[JsonObj], bool]


def _error(status: int, code: str, message: str, field: str | None = None) -> ApiError:
    return ApiError(status, code, message, fields=[field] if field else ())


def _invalid(message: str, field: str | None = None) -> ApiError:
    return _error(400, "parameter_invalid", message, field)


def _encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def _decode_cursor(text: str) -> Any:
    try:
        return orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise _invalid("starting_after is invalid", "starting_after") from None


def _sort_key(value: Any) -> list[Any]:
    if value is None:
        return [0, 0, ""]
    if isinstance(value, bool | int | float):
        return [1, float(value), ""]
    if isinstance(value, str):
        return [2, 0, value]
    return [3, 0, orjson.dumps(value).decode()]


def _resolve(data: Any, path: str) -> Any:
    """A dotted field path inside an Intercom object; lists and addressable lists fan out."""
    current: Any = data
    for part in path.split("."):
        if isinstance(current, list):
            current = [_resolve(item, part) for item in current]
            continue
        if not isinstance(current, dict):
            return None
        if part in current:
            current = current[part]
        elif isinstance(current.get("data"), list):
            current = [item.get(part) for item in current["data"] if isinstance(item, dict)]
        else:
            return None
    return current


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _equal(field_value: Any, value: Any) -> bool:
    if isinstance(field_value, list):
        return any(_equal(v, value) for v in field_value)
    if field_value is None or value is None:
        return field_value is None and value is None
    if isinstance(field_value, bool) and isinstance(value, int | str):
        # Booleans also match 1/0 and "true"/"false" (python-intercom sends True as 1).
        return str(value).lower() in (("true", "1") if field_value else ("false", "0"))
    if isinstance(field_value, bool) or isinstance(value, bool):
        return False
    a, b = _as_number(field_value), _as_number(value)
    if (
        a is not None
        and b is not None
        and not (isinstance(field_value, str) and isinstance(value, str))
    ):
        return a == b
    return str(field_value) == str(value)


def _text(field_value: Any) -> list[str]:
    values = field_value if isinstance(field_value, list) else [field_value]
    return [str(v).lower() for v in values if v is not None]


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_]+\Z")


def _fields(node: Any) -> list[str]:
    """Every ``field`` a (validated) search query refers to."""
    if not isinstance(node, dict):
        return []
    if node.get("operator") in ("AND", "OR") and isinstance(node.get("value"), list):
        return [f for child in node["value"] for f in _fields(child)]
    field = node.get("field")
    return [field] if isinstance(field, str) else []


def _lower_bound(query: Any) -> tuple[str, int] | None:
    """A safe ``updated_ms`` / ``created_ms`` lower bound implied by the query, if any."""
    filters: list[Any] = [query]
    if isinstance(query, dict) and query.get("operator") == "AND":
        value = query.get("value")
        filters = value if isinstance(value, list) else []
    best: tuple[str, int] | None = None
    for f in filters:
        if not isinstance(f, dict) or f.get("operator") not in (">", "="):
            continue
        column = {"updated_at": "updated_ms", "created_at": "created_ms"}.get(str(f.get("field")))
        number = _as_number(f.get("value"))
        if column is None or number is None or isinstance(f.get("value"), bool | float):
            continue
        start = int(number) // DAY * DAY + (DAY if f["operator"] == ">" else 0)
        if best is None or start * 1000 > best[1]:
            best = (column, start * 1000)
    return best


def _spliced_list(raw: list[str], total: int, pages: JsonObj) -> Response:
    """``{"type":"list","data":[...],"total_count":n,"pages":{...}}`` with the stored JSON texts
    spliced in as they are (they are the API objects): no parse and re-encode per record."""
    body = b'{"type":"list","data":[' + ",".join(raw).encode() + b'],"total_count":'
    body += orjson.dumps(total) + b',"pages":' + orjson.dumps(pages) + b"}"
    return Response(200, body)


@dataclass(slots=True)
class _Scroll:
    param: str
    after_seq: int
    used_at: float


class IntercomEmulator(VendorApp):
    vendor = VENDOR
    DEFAULT_OPTIONS: ClassVar[dict[str, Any]] = {
        # 10,000 calls/min per app, split evenly into 10-second windows [API.md §3.7].
        "calls_per_minute": 10_000,
        "window_seconds": 10,
        # Version used when the Intercom-Version header is absent (the app's default) [API.md §3.1].
        "default_version": "2.14",
        # per_page caps and defaults [API.md §3.2]: contacts/search ≤150, conversations default 20.
        "max_per_page": 150,
        "contacts_per_page": 50,
        "search_per_page": 50,
        "conversations_per_page": 20,
        "companies_per_page": 15,
        # companies/list returns at most 10,000 companies [spec listAllCompanies].
        "companies_list_cap": 10_000,
        # One scroll per app; the param expires after 1 minute idle [spec scrollOverAllCompanies].
        "scroll_ttl_seconds": 60.0,
        "scroll_page_size": 100,
        # Search nesting: 2 levels, 15 filters per group [API.md §3.4].
        "search_max_depth": 2,
        "search_max_filters": 15,
        # Scopes the access token lacks, e.g. ["write_data_attributes"]: a call that needs one
        # gets 403 forbidden "You do not have the required scope (x) ..." (2.16 spec example).
        # Scope names are [assumed]; data attribute writes need "write_data_attributes".
        "missing_scopes": [],
    }

    def __init__(self, ctx: Any) -> None:
        self._scroll: _Scroll | None = None
        self._scroll_lock = threading.Lock()
        super().__init__(ctx)
        with self.store.write() as conn:
            # Partial expression indexes for the lookups Intercom does by natural key.
            conn.execute(
                "CREATE INDEX IF NOT EXISTS intercom_company_cid ON records"
                " (json_extract(data, '$.company_id'))"
                " WHERE vendor = 'intercom' AND object = 'companies'"
            )
            conn.execute(
                "CREATE INDEX IF NOT EXISTS intercom_contact_email ON records"
                " (json_extract(data, '$.email'))"
                " WHERE vendor = 'intercom' AND object = 'contacts'"
            )
            # Listing order (seq) with the state beside it: keyset pages and index-only counts.
            conn.execute(
                "CREATE INDEX IF NOT EXISTS intercom_seq ON records (object, seq, state)"
                " WHERE vendor = 'intercom'"
            )
            conn.execute(
                "CREATE INDEX IF NOT EXISTS intercom_contact_xid ON records"
                " (json_extract(data, '$.external_id'))"
                " WHERE vendor = 'intercom' AND object = 'contacts'"
            )

    def configure(self, options: dict[str, Any]) -> None:
        super().configure(options)
        window = float(options["window_seconds"])
        per_window = max(1, int(options["calls_per_minute"] * window / 60))
        self.limiter = FixedWindow(per_window, window)

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
        """Route like Intercom: a literal path (``/companies/list``) shadows the parameterised
        one (``/companies/{id}``), so 405's ``Allow`` lists only the literal resource's methods."""
        best: str | None = None
        allowed: list[str] = []
        for r in self.routes:  # sorted by literal prefix length, most specific first
            m = r.regex.match(path)
            if m is None:
                continue
            if best is None:
                best = r.template
            elif r.template != best:
                continue
            if r.method == method:
                return r, m.groupdict(), []
            if r.method not in allowed:
                allowed.append(r.method)
        return None, {}, allowed

    # -- pipeline hooks ----------------------------------------------------------------------

    def render_error(self, req: Request, err: ApiError) -> Response:
        # [spec error] {type:"error.list", request_id, errors:[{code, message, field?}]}
        item: JsonObj = {"code": err.code, "message": err.message}
        if err.fields:
            item["field"] = err.fields[0]
        body = {"type": "error.list", "request_id": str(uuid.uuid4()), "errors": [item]}
        return json_response(body, err.status)

    def auth_error(self, req: Request, reason: str) -> ApiError:
        # [spec example] 401 unauthorized "Access Token Invalid".
        return _error(401, "unauthorized", "Access Token Invalid")

    def throttle_error(self, req: Request, retry_after: float | None) -> ApiError:
        limit = self.limiter.limit
        err = _error(
            429,
            "rate_limit_exceeded",
            f"Exceeded rate limit of {limit} in {int(self.limiter.interval)}_seconds",
        )
        if retry_after is not None:
            err.headers.append(("Retry-After", str(max(1, math.ceil(retry_after)))))
        return err

    def server_error(self, req: Request, status: int) -> ApiError:
        if status == 503:
            return _error(
                503, "service_unavailable", "Sorry, the API service is temporarily unavailable"
            )
        return _error(status, "server_error", "Server Error")

    def malformed_json_error(self, req: Request, detail: str) -> ApiError:
        return _invalid("There was a problem in the JSON you submitted")

    def not_found_error(self, req: Request) -> ApiError:
        return _error(404, "not_found", "Resource Not Found")

    def method_not_allowed_error(self, req: Request, allowed: list[str]) -> ApiError:
        return _error(405, "method_not_allowed", f"{req.method} is not allowed on this resource")

    def authenticate(self, req: Request, route: Route) -> Principal:
        principal = super().authenticate(req, route)
        # An unknown Intercom-Version is a 400 [API.md §3.1 intercom_version_invalid].
        version = req.header("Intercom-Version")
        if version is not None and version not in VERSIONS:
            raise _error(
                400,
                "intercom_version_invalid",
                "The requested version could not be found",
                "Intercom-Version",
            )
        return principal

    def admit(
        self, req: Request, route: Route, principal: Principal | None
    ) -> list[tuple[str, str]]:
        # Rate-limit headers only on authenticated responses [API.md §3.7]; per app, fixed windows.
        decision = self.limiter.take("app", self.ctx.clock.time())
        enforce = self.options.get("rate_limits", True)
        headers = [
            ("X-RateLimit-Limit", str(decision.limit)),
            ("X-RateLimit-Remaining", str(decision.remaining)),
            ("X-RateLimit-Reset", str(math.ceil(decision.reset_at))),
        ]
        if not decision.allowed and enforce:
            err = self.throttle_error(req, None)
            err.headers.extend(headers)
            raise err
        return headers

    # -- storage helpers ---------------------------------------------------------------------

    def _load(self, obj: str, rid: str, states: tuple[int, ...] = (LIVE,)) -> JsonObj | None:
        row = self.store.get(VENDOR, obj, rid)
        if row is None or row[4] not in states:
            return None
        data: JsonObj = orjson.loads(row[5])
        return data

    def _save(self, obj: str, rid: str, data: JsonObj, state: int = LIVE) -> None:
        now = self.ctx.clock.time()
        row = self.store.get(VENDOR, obj, rid)
        created_ms = row[2] if row else int(data.get("created_at", now) * 1000)
        self.store.put(
            VENDOR, obj, rid, data, created_ms=created_ms, updated_ms=int(now * 1000), state=state
        )

    def _find(self, obj: str, field: str, value: str, states: tuple[int, ...]) -> JsonObj | None:
        marks = ",".join("?" * len(states))
        row = (
            self.store.conn()
            .execute(
                f"SELECT data FROM records WHERE vendor = 'intercom' AND object = '{obj}'"
                f" AND json_extract(data, '$.{field}') = ? AND state IN ({marks})"
                " ORDER BY seq LIMIT 1",
                (value, *states),
            )
            .fetchone()
        )
        return orjson.loads(row[0]) if row else None

    def _attributes(self, model: str) -> dict[str, JsonObj]:
        rows = self.store.conn().execute(
            "SELECT data FROM records WHERE vendor = 'intercom' AND object = 'data_attributes'"
            " AND json_extract(data, '$.model') = ?",
            (model,),
        )
        return {d["name"]: d for d in (orjson.loads(r[0]) for r in rows)}

    def _check_custom(self, model: str, values: Any) -> JsonObj:
        """Custom attributes must be defined (and not archived) data attributes of the model."""
        if not isinstance(values, dict):
            raise _invalid("custom_attributes must be an object", "custom_attributes")
        defined = self._attributes(model)
        kinds: dict[str, tuple[type, ...]] = {
            "string": (str,),
            "integer": (int,),
            "float": (int, float),
            "boolean": (bool,),
            "date": (int,),
            "datetime": (int, str),
            "options": (str,),
        }
        for name, value in values.items():
            attr = defined.get(name)
            if attr is None or not attr["custom"] or attr["archived"]:
                # Unknown custom attribute -> 400 parameter_invalid (Intercom's message shape).
                raise _invalid(f"Custom attribute '{name}' does not exist", "custom_attributes")
            expected = kinds.get(attr["data_type"], (str,))
            ok = value is None or isinstance(value, expected)
            if bool not in expected and isinstance(value, bool):
                ok = False
            if not ok:
                raise _invalid(
                    f"Custom attribute '{name}' must be of type {attr['data_type']}",
                    "custom_attributes",
                )
        return values

    @staticmethod
    def _check_types(body: JsonObj, spec: dict[str, tuple[type, ...]], nullable: set[str]) -> None:
        for key, value in body.items():
            if key not in spec:
                # [spec createOrUpdateCompany example] 400 bad_request "bad 'test' parameter".
                raise _error(400, "bad_request", f"bad '{key}' parameter", key)
            if value is None and key in nullable:
                continue
            expected = spec[key]
            if isinstance(value, bool) and bool not in expected:
                raise _invalid(f"{key} must be of type {expected[0].__name__}", key)
            if not isinstance(value, expected):
                raise _invalid(f"{key} must be of type {expected[0].__name__}", key)

    def _per_page(self, raw: Any, default: int, field: str = "per_page") -> int:
        if raw is None:
            return default
        if isinstance(raw, str):
            try:
                raw = int(raw)
            except ValueError:
                raise _invalid(f"{field} must be an integer", field) from None
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise _invalid(f"{field} must be an integer", field)
        cap = int(self.options["max_per_page"])
        # per_page is capped at 150 [API.md §3.2]; larger values are rejected, not clamped.
        if not 1 <= raw <= cap:
            raise _invalid(f"{field} must be between 1 and {cap}", field)
        return raw

    @staticmethod
    def _page_arg(req: Request, name: str = "page") -> int:
        raw = req.arg(name)
        if raw is None:
            return 1
        try:
            value = int(raw)
        except ValueError:
            raise _invalid(f"{name} must be an integer", name) from None
        if value < 1:
            raise _invalid(f"{name} must be at least 1", name)
        return value

    @staticmethod
    def _pages(page: int, per_page: int, total: int, next_cursor: str | None) -> JsonObj:
        pages: JsonObj = {
            "type": "pages",
            "page": page,
            "per_page": per_page,
            "total_pages": math.ceil(total / per_page) if total else 0,
        }
        if next_cursor is not None:
            pages["next"] = {"per_page": per_page, "starting_after": next_cursor}
        return pages

    # -- cursor listing ----------------------------------------------------------------------

    def _cursor_list(
        self, req: Request, obj: str, states: tuple[int, ...], default_per_page: int
    ) -> tuple[list[JsonObj], int, JsonObj]:
        raw, total, pages = self._cursor_rows(req, obj, states, default_per_page)
        return [orjson.loads(r) for r in raw], total, pages

    def _cursor_rows(
        self, req: Request, obj: str, states: tuple[int, ...], default_per_page: int
    ) -> tuple[list[str], int, JsonObj]:
        """A cursor page as the stored JSON texts (the API objects as they are returned)."""
        per_page = self._per_page(req.arg("per_page"), default_per_page)
        page, after = 1, 0
        cursor = req.arg("starting_after")
        if cursor:
            decoded = _decode_cursor(cursor)
            if not (
                isinstance(decoded, list)
                and len(decoded) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) for v in decoded)
            ):
                raise _invalid("starting_after is invalid", "starting_after")
            page, after = decoded
        marks = ",".join(str(int(s)) for s in states)
        conn = self.store.conn()
        # total_count comes with every page: counted once per listing until the next write.
        total = self.memo(
            ("list-total", obj, states),
            lambda: conn.execute(
                "SELECT count(*) FROM records INDEXED BY intercom_seq WHERE vendor = 'intercom'"
                f" AND object = ? AND state IN ({marks})",
                (obj,),
            ).fetchone()[0],
        )
        rows = conn.execute(
            "SELECT seq, data FROM records INDEXED BY intercom_seq WHERE vendor = 'intercom'"
            f" AND object = ? AND seq > ? AND state IN ({marks}) ORDER BY seq LIMIT ?",
            (obj, after, per_page + 1),
        ).fetchall()
        more = len(rows) > per_page
        rows = rows[:per_page]
        next_cursor = _encode_cursor([page + 1, rows[-1][0]]) if more and rows else None
        return [r[1] for r in rows], total, self._pages(page, per_page, total, next_cursor)

    # -- search ------------------------------------------------------------------------------

    def _compile(self, node: Any, depth: int, date_fields: set[str]) -> Predicate:
        if not isinstance(node, dict):
            raise _invalid("query must be an object", "query")
        op = node.get("operator")
        if isinstance(op, str) and op in ("AND", "OR"):
            if depth >= int(self.options["search_max_depth"]):
                # At most 2 levels of nesting [API.md §3.4].
                raise _invalid("Nesting of filters is limited to 2 levels", "query")
            value = node.get("value")
            if not isinstance(value, list) or not value:
                raise _invalid(f"{op} requires a non-empty array of filters", "query")
            if len(value) > int(self.options["search_max_filters"]):
                # At most 15 filters per AND/OR group [API.md §3.4].
                raise _invalid(
                    f"A group can have at most {self.options['search_max_filters']} filters",
                    "query",
                )
            parts = [self._compile(child, depth + 1, date_fields) for child in value]
            if op == "AND":
                return lambda d: all(p(d) for p in parts)
            return lambda d: any(p(d) for p in parts)
        field = node.get("field")
        if not isinstance(field, str) or not field:
            raise _invalid("field is required in a search filter", "query.field")
        if not isinstance(op, str) or op not in OPERATORS:
            raise _invalid(f"operator '{op}' is not supported", "query.operator")
        if "value" not in node:
            raise _invalid("value is required in a search filter", "query.value")
        return self._filter(field, op, node["value"], date_fields)

    def _filter(self, field: str, op: str, value: Any, date_fields: set[str]) -> Predicate:
        if isinstance(value, float):
            # The spec's value is a string, integer, boolean or array. A number with a zero
            # fraction (946684800.0) is an integer in JSON Schema (draft 6 on) and the real API
            # takes it: singer-io tap-intercom sends its start date and bookmarks as
            # datetime.timestamp() floats in every contacts search, and its integration tests run
            # against a real workspace. Fractional values stay rejected (no evidence either way).
            if not value.is_integer():
                raise _invalid(
                    f"'{field}' value must be a string, integer, boolean or array", field
                )
            value = int(value)
        is_date = field in date_fields
        if is_date:
            if op not in DATE_OPERATORS:
                # Date fields reject != >= <= IN NIN [API.md §3.4, spec].
                raise _invalid(f"Operator '{op}' is not supported for date field '{field}'", field)
            number = _as_number(value)
            if number is None:
                raise _invalid(f"'{field}' requires a unix timestamp value", field)
            # Timestamps are matched by calendar day in the workspace timezone (UTC) [API.md §3.4]:
            # '>' from the start of the next day, '<' before the day, '=' the whole day.
            start = int(number) // DAY * DAY
            end = start + DAY

            def date_pred(d: JsonObj) -> bool:
                v = _as_number(_resolve(d, field))
                if v is None:
                    return False
                if op == ">":
                    return v >= end
                if op == "<":
                    return v < start
                return start <= v < end

            return date_pred
        scalars = (str, int, bool)
        listed = isinstance(value, list) and all(isinstance(v, scalars) for v in value)
        if value is not None and not isinstance(value, scalars) and not listed:
            # value is a string, integer, boolean or an array of them [spec].
            raise _invalid(f"'{field}' value must be a string, integer, boolean or array", field)
        if op in ("IN", "NIN"):
            if not isinstance(value, list):
                raise _invalid(f"Operator '{op}' requires an array value", field)
            if op == "IN":
                return lambda d: any(_equal(_resolve(d, field), v) for v in value)
            return lambda d: not any(_equal(_resolve(d, field), v) for v in value)
        if isinstance(value, list | dict):
            raise _invalid(f"Operator '{op}' requires a scalar value", field)
        if op == "=":
            return lambda d: _equal(_resolve(d, field), value)
        if op == "!=":
            return lambda d: not _equal(_resolve(d, field), value)
        if op in ("<", ">", "<=", ">="):
            bound = _as_number(value)
            if bound is None:
                raise _invalid(f"Operator '{op}' requires a numeric value", field)

            def cmp_pred(d: JsonObj) -> bool:
                raw = _resolve(d, field)
                values = raw if isinstance(raw, list) else [raw]
                for item in values:
                    v = _as_number(item)
                    if v is None:
                        continue
                    if (
                        (op == "<" and v < bound)
                        or (op == ">" and v > bound)
                        or (op == "<=" and v <= bound)
                        or (op == ">=" and v >= bound)
                    ):
                        return True
                return False

            return cmp_pred
        needle = str(value).lower()
        if op == "~":
            return lambda d: any(needle in t for t in _text(_resolve(d, field)))
        if op == "!~":
            return lambda d: not any(needle in t for t in _text(_resolve(d, field)))
        if op == "^":
            return lambda d: any(t.startswith(needle) for t in _text(_resolve(d, field)))
        return lambda d: any(t.endswith(needle) for t in _text(_resolve(d, field)))

    def _date_fields(self, model: str) -> set[str]:
        fields = set()
        for name, attr in self._attributes(model).items():
            if attr["data_type"] in ("date", "datetime"):
                fields.add(attr["full_name"] if attr["custom"] else name)
        return fields

    def _search(
        self, req: Request, obj: str, model: str, states: tuple[int, ...], default_per_page: int
    ) -> tuple[list[JsonObj], int, JsonObj]:
        raw, total, pages = self._search_rows(req, obj, model, states, default_per_page)
        return [orjson.loads(r) for r in raw], total, pages

    def _search_rows(
        self, req: Request, obj: str, model: str, states: tuple[int, ...], default_per_page: int
    ) -> tuple[list[str], int, JsonObj]:
        """A search page as stored JSON texts. The sorted hits of a query are computed once and
        reused until the next write, so each further page costs only its own rows."""
        body = req.json_object()
        unknown = set(body) - {"query", "pagination", "sort"}
        if unknown:
            raise _invalid(f"'{sorted(unknown)[0]}' is not a valid search parameter")
        if "query" not in body:
            raise _error(400, "parameter_not_found", "query parameter is required", "query")
        date_fields = self._date_fields(model)
        if model == "conversation":
            date_fields |= {
                "waiting_since",
                "snoozed_until",
                "statistics.last_close_at",
                "statistics.first_close_at",
                "conversation_rating.created_at",
            }
        predicate = self._compile(body["query"], 0, date_fields)
        pagination = body.get("pagination")
        if pagination is None:
            pagination = {}
        if not isinstance(pagination, dict):
            raise _invalid("pagination must be an object", "pagination")
        # For search the cursor goes in the BODY; a query-string starting_after is ignored
        # [API.md §3.2].
        if "per_page" in pagination and pagination["per_page"] is None:
            raise _invalid("per_page must be an integer", "per_page")
        per_page = self._per_page(pagination.get("per_page"), default_per_page, "per_page")
        cursor = pagination.get("starting_after")
        if cursor is not None and not isinstance(cursor, str):
            raise _invalid("starting_after must be a string", "starting_after")
        sort = body.get("sort")
        field, descending = None, False
        if sort is not None:
            if not isinstance(sort, dict) or not isinstance(sort.get("field"), str):
                raise _invalid("sort must be an object with a field", "sort")
            order = sort.get("order", "ascending")
            if order not in ("ascending", "descending"):
                raise _invalid("sort order must be ascending or descending", "sort.order")
            field, descending = sort["field"], order == "descending"
        bound = _lower_bound(body["query"])
        query_key = ("search", obj, states, orjson.dumps(body["query"]), field, bound)
        seqs, keys = self.memo(
            query_key, lambda: self._search_hits(obj, states, body["query"], predicate, field)
        )
        page, start = 1, 0
        if cursor:
            decoded = _decode_cursor(cursor)
            if not (
                isinstance(decoded, list)
                and len(decoded) == 2
                and isinstance(decoded[0], int)
                and isinstance(decoded[1], list)
                and len(decoded[1]) == (4 if field else 1)
            ):
                raise _invalid("starting_after is invalid", "starting_after")
            page, last = decoded
            # The first hit after ``last`` in result order (``keys`` ascending, unique: seq).
            if descending:
                start = len(keys) - bisect.bisect_left(keys, last)
            else:
                start = bisect.bisect_right(keys, last)
        n = len(seqs)
        window = list(range(start, min(start + per_page, n)))
        order = [seqs[n - 1 - i] if descending else seqs[i] for i in window]
        more = start + per_page < n
        next_cursor = None
        if more and window:
            last_key = keys[n - 1 - window[-1]] if descending else keys[window[-1]]
            next_cursor = _encode_cursor([page + 1, last_key])
        return self._raw_by_seq(order), n, self._pages(page, per_page, n, next_cursor)

    def _search_hits(
        self, obj: str, states: tuple[int, ...], query: Any, predicate: Predicate, field: str | None
    ) -> tuple[list[int], list[list[Any]]]:
        """Every hit's ``seq`` and sort key (sort value(s) + seq), in ascending key order.

        Only the top-level members the query and the sort refer to are read (``data -> '$.x'``
        in SQLite) and handed to the predicate, which resolves paths from the top level only."""
        marks = ",".join(str(int(s)) for s in states)
        sql_where = f"vendor = 'intercom' AND object = ? AND state IN ({marks})"
        args: list[Any] = [obj]
        bound = _lower_bound(query)
        if bound is not None:
            # Index prefilter only: the columns track updated_at / created_at (ms >= s * 1000).
            sql_where += f" AND {bound[0]} >= ?"
            args.append(bound[1])
        tops = {"data"}  # _resolve falls back to a top-level "data" list
        for name in (*_fields(query), *([field] if field else [])):
            tops.add(name.split(".", 1)[0])
        hits: list[tuple[list[Any], int]] = []
        if all(_PLAIN_KEY.match(t) for t in tops):
            names = sorted(tops)
            cols = ", ".join(f"data -> '$.\"{t}\"'" for t in names)
            rows = self.store.conn().execute(
                f"SELECT seq, {cols} FROM records WHERE {sql_where}", args
            )
            loads = orjson.loads
            for seq, *values in rows:
                data = {t: loads(v) for t, v in zip(names, values, strict=True) if v is not None}
                if predicate(data):
                    hits.append(((_sort_key(_resolve(data, field)) if field else []) + [seq], seq))
        else:
            rows = self.store.conn().execute(
                f"SELECT seq, data FROM records WHERE {sql_where}", args
            )
            for seq, raw in rows:
                data = orjson.loads(raw)
                if predicate(data):
                    hits.append(((_sort_key(_resolve(data, field)) if field else []) + [seq], seq))
        hits.sort(key=lambda h: h[0])
        return [h[1] for h in hits], [h[0] for h in hits]

    def _raw_by_seq(self, seqs: list[int]) -> list[str]:
        if not seqs:
            return []
        rows = self.store.conn().execute(
            f"SELECT seq, data FROM records WHERE seq IN ({','.join('?' * len(seqs))})", seqs
        )
        found = dict(rows.fetchall())
        return [found[s] for s in seqs if s in found]

    # -- admins ------------------------------------------------------------------------------

    def _admins(self) -> list[JsonObj]:
        rows = self.store.conn().execute(
            "SELECT data FROM records WHERE vendor = ? AND object = 'admins' AND state = 0"
            " ORDER BY seq",
            (VENDOR,),
        )
        return [orjson.loads(r[0]) for r in rows]

    @route("GET", "/admins")
    def list_admins(self, req: Request) -> Response:
        if req.arg("display_avatar") not in (None, "true", "false"):
            raise _invalid("display_avatar must be a boolean", "display_avatar")
        return json_response({"type": "admin.list", "admins": self._admins()})

    @route("GET", "/admins/{admin_id}")
    def get_admin(self, req: Request, admin_id: str) -> Response:
        data = self._load("admins", admin_id)
        if data is None:
            raise _error(404, "admin_not_found", "Admin not found")
        return json_response(data)

    @route("GET", "/me")
    def me(self, req: Request) -> Response:
        admins = self._admins()
        admin: JsonObj = dict(admins[0]) if admins else {"type": "admin", "id": "0"}
        admin.pop("team_priority_level", None)
        admin.pop("away_status_reason_id", None)
        admin["avatar"] = {"type": "avatar", "image_url": None}
        admin["email_verified"] = True
        admin["app"] = {
            "type": "app",
            "id_code": APP_ID,
            "name": "CRM Sandbox",
            "created_at": 1_700_000_000,
            "secure": False,
            "identity_verification": False,
            "timezone": "UTC",
            "region": "US",
        }
        return json_response(admin)

    # -- contacts ----------------------------------------------------------------------------

    _CONTACT_FIELDS: ClassVar[dict[str, tuple[type, ...]]] = {
        "role": (str,),
        "external_id": (str,),
        "email": (str,),
        "phone": (str,),
        "name": (str,),
        "avatar": (str,),
        "signed_up_at": (int,),
        "last_seen_at": (int,),
        "owner_id": (int,),
        "unsubscribed_from_emails": (bool,),
        "custom_attributes": (dict,),
    }
    _CONTACT_NULLABLE: ClassVar[set[str]] = {
        "phone", "name", "avatar", "signed_up_at", "last_seen_at", "owner_id",
        "unsubscribed_from_emails", "custom_attributes",
    }  # fmt: skip

    def _contact(self, contact_id: str, states: tuple[int, ...] = VISIBLE) -> JsonObj:
        data = self._load("contacts", contact_id, states)
        if data is None:
            raise _error(404, "not_found", "User Not Found")
        return data

    def _check_unique(self, body: JsonObj, own_id: str | None) -> None:
        # Duplicate email or external_id -> 409 conflict [API.md §3.2, Intercom-OpenAPI PR #543].
        for field in ("email", "external_id"):
            value = body.get(field)
            if not value:
                continue
            other = self._find("contacts", field, value, VISIBLE)
            if other is not None and other["id"] != own_id:
                raise _error(
                    409,
                    "conflict",
                    f"A contact matching those details already exists with id={other['id']}",
                )

    def _apply_contact(self, data: JsonObj, body: JsonObj) -> None:
        for key, value in body.items():
            if key == "custom_attributes":
                data["custom_attributes"] = {
                    **data.get("custom_attributes", {}),
                    **self._check_custom("contact", value or {}),
                }
            elif key == "avatar":
                data["avatar"] = {"type": "avatar", "image_url": value} if value else None
            else:
                data[key] = value
        email = data.get("email") or ""
        data["email_domain"] = email.partition("@")[2]
        data["updated_at"] = self.now_s()

    @route("GET", "/contacts")
    def list_contacts(self, req: Request) -> Response:
        # Merged (and deleted) contacts are not listed [API.md §3.2].
        raw, total, pages = self._cursor_rows(
            req, "contacts", VISIBLE, int(self.options["contacts_per_page"])
        )
        return _spliced_list(raw, total, pages)

    @route("POST", "/contacts/search", tags=("search",))
    def search_contacts(self, req: Request) -> Response:
        raw, total, pages = self._search_rows(
            req, "contacts", "contact", VISIBLE, int(self.options["search_per_page"])
        )
        return _spliced_list(raw, total, pages)

    @route("POST", "/contacts")
    def create_contact(self, req: Request) -> Response:
        body = req.json_object()
        self._check_types(body, self._CONTACT_FIELDS, self._CONTACT_NULLABLE)
        role = body.get("role", "user")
        if role not in ("user", "lead"):
            raise _invalid("role must be either user or lead", "role")
        if not (body.get("email") or body.get("external_id") or "role" in body):
            raise _invalid("One of email, external_id or role is required")
        self._check_unique(body, None)
        now = self.now_s()
        key = self.store.next_ids(COUNTER_CONTACT)[0]
        cid = object_id(CONTACT_KIND, key, now)
        url = f"/contacts/{cid}"
        data: JsonObj = {
            "type": "contact", "id": cid, "workspace_id": APP_ID, "external_id": None,
            "role": role, "email": "", "email_domain": "", "phone": None, "name": None,
            "owner_id": None, "has_hard_bounced": False, "marked_email_as_spam": False,
            "unsubscribed_from_emails": False, "created_at": now, "updated_at": now,
            "signed_up_at": None, "last_seen_at": None, "last_replied_at": None,
            "last_contacted_at": None, "last_email_opened_at": None,
            "last_email_clicked_at": None, "language_override": None, "browser": None,
            "browser_version": None, "browser_language": None, "os": None,
            "custom_attributes": {}, "avatar": None,
            "tags": attached_list("tags", url, []), "notes": attached_list("notes", url, []),
            "companies": attached_list("companies", url, []),
            "location": {"type": "location", "country": None, "region": None, "city": None},
            "social_profiles": {"type": "list", "data": []}, "archived": False,
        }  # fmt: skip
        self._apply_contact(data, {k: v for k, v in body.items() if k != "role"})
        data["created_at"] = data["updated_at"] = now
        self._save("contacts", cid, data)
        return json_response(data)

    @route("GET", "/contacts/find_by_external_id/{external_id}")
    def find_contact(self, req: Request, external_id: str) -> Response:
        data = self._find("contacts", "external_id", external_id, VISIBLE)
        if data is None:
            raise _error(404, "not_found", "User Not Found")
        return json_response(data)

    @route("GET", "/contacts/{contact_id}")
    def get_contact(self, req: Request, contact_id: str) -> Response:
        return json_response(self._contact(contact_id))

    @route("PUT", "/contacts/{contact_id}")
    def update_contact(self, req: Request, contact_id: str) -> Response:
        data = self._contact(contact_id)
        body = req.json_object()
        self._check_types(body, self._CONTACT_FIELDS, self._CONTACT_NULLABLE)
        if "role" in body and body["role"] not in ("user", "lead"):
            raise _invalid("role must be either user or lead", "role")
        self._check_unique(body, contact_id)
        self._apply_contact(data, body)
        self._save("contacts", contact_id, data, ARCHIVED if data.get("archived") else LIVE)
        return json_response(data)

    @route("DELETE", "/contacts/{contact_id}")
    def delete_contact(self, req: Request, contact_id: str) -> Response:
        data = self._contact(contact_id)
        for ref in data["companies"]["data"]:
            self._bump_users(ref["id"], -1)
        self._save("contacts", contact_id, data, PURGED)
        # [API.md §3.2] DELETE returns {id, external_id, type:"contact", deleted:true}.
        return json_response(
            {"id": contact_id, "external_id": data.get("external_id"), "type": "contact",
             "deleted": True}
        )  # fmt: skip

    def _set_archived(self, contact_id: str, archived: bool) -> Response:
        data = self._contact(contact_id)
        data["archived"] = archived
        data["updated_at"] = self.now_s()
        self._save("contacts", contact_id, data, ARCHIVED if archived else LIVE)
        return json_response(
            {"id": contact_id, "external_id": data.get("external_id"), "type": "contact",
             "archived": archived}
        )  # fmt: skip

    @route("POST", "/contacts/{contact_id}/archive")
    def archive_contact(self, req: Request, contact_id: str) -> Response:
        return self._set_archived(contact_id, True)

    @route("POST", "/contacts/{contact_id}/unarchive")
    def unarchive_contact(self, req: Request, contact_id: str) -> Response:
        return self._set_archived(contact_id, False)

    # contact <-> company

    def _bump_users(self, company_id: str, delta: int) -> None:
        company = self._load("companies", company_id)
        if company is not None:
            company["user_count"] = max(0, int(company.get("user_count", 0)) + delta)
            self._save("companies", company_id, company)

    @route("GET", "/contacts/{contact_id}/companies")
    def contact_companies(self, req: Request, contact_id: str) -> Response:
        data = self._contact(contact_id)
        companies = [
            c
            for c in (self._load("companies", ref["id"]) for ref in data["companies"]["data"])
            if c is not None
        ]
        return json_response(
            {"type": "list", "data": companies, "total_count": len(companies),
             "pages": self._pages(1, 50, len(companies), None)}
        )  # fmt: skip

    @route("POST", "/contacts/{contact_id}/companies")
    def attach_company(self, req: Request, contact_id: str) -> Response:
        data = self._contact(contact_id)
        body = req.json_object()
        company_id = body.get("id")
        if not isinstance(company_id, str):
            raise _error(400, "parameter_not_found", "company not specified", "id")
        company = self._load("companies", company_id)
        if company is None:
            raise _error(404, "company_not_found", "Company Not Found")
        refs = data["companies"]["data"]
        if all(r["id"] != company_id for r in refs):
            refs.append(company_ref(company_id))
            data["companies"]["total_count"] = len(refs)
            data["updated_at"] = self.now_s()
            self._save("contacts", contact_id, data, ARCHIVED if data.get("archived") else LIVE)
            self._bump_users(company_id, 1)
            company = self._load("companies", company_id) or company
        return json_response(company)

    @route("DELETE", "/contacts/{contact_id}/companies/{company_id}")
    def detach_company(self, req: Request, contact_id: str, company_id: str) -> Response:
        data = self._contact(contact_id)
        company = self._load("companies", company_id)
        refs = data["companies"]["data"]
        if company is None or all(r["id"] != company_id for r in refs):
            raise _error(404, "company_not_found", "Company Not Found")
        data["companies"]["data"] = [r for r in refs if r["id"] != company_id]
        data["companies"]["total_count"] = len(data["companies"]["data"])
        data["updated_at"] = self.now_s()
        self._save("contacts", contact_id, data, ARCHIVED if data.get("archived") else LIVE)
        self._bump_users(company_id, -1)
        return json_response(self._load("companies", company_id) or company)

    # notes and tags on contacts

    @route("POST", "/contacts/{contact_id}/notes")
    def create_note(self, req: Request, contact_id: str) -> Response:
        contact = self._contact(contact_id)
        body = req.json_object()
        text = body.get("body")
        if not isinstance(text, str) or not text:
            raise _error(400, "parameter_not_found", "body is required", "body")
        admins = self._admins()
        admin_id = str(body.get("admin_id") or (admins[0]["id"] if admins else ""))
        admin = self._load("admins", admin_id)
        if admin is None:
            raise _error(404, "admin_not_found", "Admin not found")
        now = self.now_s()
        note_id = str(self.store.next_ids(COUNTER_NOTE)[0])
        note = {
            "type": "note",
            "id": note_id,
            "created_at": now,
            "contact": {"type": "contact", "id": contact_id},
            "author": admin,
            "body": f"<p>{text}</p>",
        }
        self._save("notes", note_id, note)
        contact["notes"]["data"].append({"type": "note", "id": note_id, "url": f"/notes/{note_id}"})
        contact["notes"]["total_count"] = len(contact["notes"]["data"])
        self._save("contacts", contact_id, contact, ARCHIVED if contact.get("archived") else LIVE)
        return json_response(note)

    @route("GET", "/contacts/{contact_id}/notes")
    def list_notes(self, req: Request, contact_id: str) -> Response:
        contact = self._contact(contact_id)
        notes = [
            n
            for n in (self._load("notes", ref["id"]) for ref in contact["notes"]["data"])
            if n is not None
        ]
        notes.sort(key=lambda n: n["created_at"], reverse=True)
        return json_response(
            {"type": "list", "data": notes, "total_count": len(notes),
             "pages": self._pages(1, 50, len(notes), None)}
        )  # fmt: skip

    @route("POST", "/contacts/{contact_id}/tags")
    def tag_contact(self, req: Request, contact_id: str) -> Response:
        contact = self._contact(contact_id)
        tag_id = req.json_object().get("id")
        tag = self._load("tags", str(tag_id)) if isinstance(tag_id, str | int) else None
        if tag is None:
            raise _error(404, "tag_not_found", "Tag not found")
        refs = contact["tags"]["data"]
        if all(r["id"] != tag["id"] for r in refs):
            refs.append({"type": "tag", "id": tag["id"], "url": f"/tags/{tag['id']}"})
            contact["tags"]["total_count"] = len(refs)
            contact["updated_at"] = self.now_s()
            self._save(
                "contacts", contact_id, contact, ARCHIVED if contact.get("archived") else LIVE
            )
        return json_response(tag)

    # -- companies ---------------------------------------------------------------------------

    _COMPANY_FIELDS: ClassVar[dict[str, tuple[type, ...]]] = {
        "name": (str,),
        "company_id": (str,),
        "plan": (str,),
        "size": (int,),
        "website": (str,),
        "industry": (str,),
        "custom_attributes": (dict,),
        "remote_created_at": (int,),
        "monthly_spend": (int,),  # [spec] integer
    }

    def _apply_company(self, data: JsonObj, body: JsonObj) -> None:
        for key, value in body.items():
            if key == "company_id":
                continue  # company_id can't be changed once set [spec createOrUpdateCompany]
            if key == "custom_attributes":
                data["custom_attributes"] = {
                    **data.get("custom_attributes", {}),
                    **self._check_custom("company", value),
                }
            elif key == "plan":
                data["plan"] = {"type": "plan", "id": str(abs(hash(value)) % 10_000), "name": value}
            elif key == "monthly_spend":
                data["monthly_spend"] = int(value)
            else:
                data[key] = value
        data["updated_at"] = self.now_s()

    def _company(self, company_id: str) -> JsonObj:
        data = self._load("companies", company_id)
        if data is None:
            raise _error(404, "company_not_found", "Company Not Found")
        return data

    @route("POST", "/companies")
    def upsert_company(self, req: Request) -> Response:
        body = req.json_object()
        self._check_types(body, self._COMPANY_FIELDS, set())
        # Create or update, looked up by company_id [spec createOrUpdateCompany].
        external = body.get("company_id")
        existing = self._find("companies", "company_id", external, (LIVE,)) if external else None
        if existing is not None:
            self._apply_company(existing, body)
            self._save("companies", existing["id"], existing)
            return json_response(existing)
        if not external:
            # company_id is required to create or update [spec create_or_update_company_request].
            raise _error(400, "parameter_not_found", "company_id not specified", "company_id")
        now = self.now_s()
        key = self.store.next_ids(COUNTER_COMPANY)[0]
        cid = object_id(COMPANY_KIND, key, now)
        data: JsonObj = {
            "type": "company", "id": cid, "company_id": external,
            "app_id": APP_ID, "name": body.get("name", ""), "remote_created_at": now,
            "created_at": now, "updated_at": now, "last_request_at": now, "monthly_spend": 0,
            "session_count": 0, "user_count": 0, "tags": {"type": "tag.list", "tags": []},
            "segments": {"type": "segment.list", "segments": []}, "plan": {},
            "custom_attributes": {},
        }  # fmt: skip
        self._apply_company(data, body)
        self._save("companies", cid, data)
        return json_response(data)

    @route("GET", "/companies")
    def retrieve_companies(self, req: Request) -> Response:
        per_page = self._per_page(req.arg("per_page"), int(self.options["companies_per_page"]))
        page = self._page_arg(req)
        for field in ("company_id", "name"):
            value = req.arg(field)
            if value is not None:
                found = self._find("companies", field, value, (LIVE,))
                if found is None:
                    raise _error(404, "company_not_found", "Company Not Found")
                return json_response(
                    {"type": "list", "data": [found], "total_count": 1,
                     "pages": self._pages(1, per_page, 1, None)}
                )  # fmt: skip
        return json_response(self._company_page(page, per_page, "desc", with_users=False))

    def _company_page(self, page: int, per_page: int, order: str, *, with_users: bool) -> JsonObj:
        cap = int(self.options["companies_list_cap"])
        where = "vendor = 'intercom' AND object = 'companies' AND state = 0"
        if with_users:
            # companies/list excludes companies without users [spec listAllCompanies].
            where += " AND json_extract(data, '$.user_count') > 0"
        conn = self.store.conn()
        total = min(conn.execute(f"SELECT count(*) FROM records WHERE {where}").fetchone()[0], cap)
        offset = (page - 1) * per_page
        # At most 10,000 companies can be paged through; use scroll beyond [spec].
        limit = max(0, min(per_page, cap - offset))
        direction = "DESC" if order == "desc" else "ASC"
        rows = conn.execute(
            f"SELECT data FROM records WHERE {where}"
            f" ORDER BY json_extract(data, '$.last_request_at') {direction}, seq {direction}"
            " LIMIT ? OFFSET ?",
            (limit, offset),
        ).fetchall()
        pages = self._pages(page, per_page, total, None)
        pages["next"] = None
        return {
            "type": "list",
            "data": [orjson.loads(r[0]) for r in rows],
            "total_count": total,
            "pages": pages,
        }

    @route("POST", "/companies/list")
    def list_companies(self, req: Request) -> Response:
        per_page = self._per_page(req.arg("per_page"), int(self.options["companies_per_page"]))
        page = self._page_arg(req)
        order = req.arg("order", "desc")
        if order not in ("asc", "desc"):
            raise _invalid("order must be asc or desc", "order")
        return json_response(self._company_page(page, per_page, order or "desc", with_users=True))

    @route("GET", "/companies/scroll")
    def scroll_companies(self, req: Request) -> Response:
        param = req.arg("scroll_param")
        now = self.ctx.clock.monotonic()
        ttl = float(self.options["scroll_ttl_seconds"])
        size = int(self.options["scroll_page_size"])
        with self._scroll_lock:
            scroll = self._scroll
            if scroll is not None and now - scroll.used_at > ttl:
                scroll = self._scroll = None  # idle for longer than the TTL: expired [spec]
            if not param:
                if scroll is not None:
                    # One open scroll per app [spec scrollOverAllCompanies].
                    raise _error(400, "scroll_exists", "scroll already exists for this workspace")
                scroll = self._scroll = _Scroll(str(uuid.uuid4()), 0, now)
            elif scroll is None or scroll.param != param:
                raise _error(404, "not_found", "scroll parameter not found")
            rows = (
                self.store.conn()
                .execute(
                    "SELECT seq, data FROM records INDEXED BY intercom_seq"
                    " WHERE vendor = 'intercom' AND object = 'companies'"
                    " AND seq > ? AND state = 0 ORDER BY seq LIMIT ?",
                    (scroll.after_seq, size),
                )
                .fetchall()
            )
            if rows:
                scroll.after_seq = rows[-1][0]
                scroll.used_at = now
            else:
                self._scroll = None  # end reached: empty data and the param expires [spec]
        # The stored JSON is the API object: spliced in as is, not parsed and re-encoded.
        body = b'{"type":"list","data":[' + ",".join(r[1] for r in rows).encode()
        body += b'],"pages":null,"total_count":null,"scroll_param":' + orjson.dumps(scroll.param)
        return Response(200, body + b"}")

    @route("GET", "/companies/{company_id}")
    def get_company(self, req: Request, company_id: str) -> Response:
        return json_response(self._company(company_id))

    @route("PUT", "/companies/{company_id}")
    def update_company(self, req: Request, company_id: str) -> Response:
        data = self._company(company_id)
        body = req.json_object(required=False)
        fields = {
            k: v
            for k, v in self._COMPANY_FIELDS.items()
            if k not in ("company_id", "remote_created_at")
        }
        self._check_types(body, fields, set())
        self._apply_company(data, body)
        self._save("companies", company_id, data)
        return json_response(data)

    @route("DELETE", "/companies/{company_id}")
    def delete_company(self, req: Request, company_id: str) -> Response:
        data = self._company(company_id)
        # Delete archives the company and detaches its contacts [spec deleteCompany].
        rows = (
            self.store.conn()
            .execute(
                "SELECT id, state, data FROM records"
                " WHERE vendor = 'intercom' AND object = 'contacts'"
                " AND state IN (0, 1) AND instr(data, ?) > 0",
                (f'"/companies/{company_id}"',),
            )
            .fetchall()
        )
        for cid, state, raw in rows:
            contact = orjson.loads(raw)
            refs = [r for r in contact["companies"]["data"] if r["id"] != company_id]
            contact["companies"]["data"] = refs
            contact["companies"]["total_count"] = len(refs)
            self._save("contacts", cid, contact, state)
        data["user_count"] = 0
        self._save("companies", company_id, data, ARCHIVED)
        return json_response({"id": company_id, "object": "company", "deleted": True})

    # -- conversations -----------------------------------------------------------------------

    @staticmethod
    def _list_item(data: JsonObj) -> JsonObj:
        item = dict(data)
        item.pop("conversation_parts", None)
        return item

    @route("GET", "/conversations")
    def list_conversations(self, req: Request) -> Response:
        data, total, pages = self._cursor_list(
            req, "conversations", (LIVE,), int(self.options["conversations_per_page"])
        )
        return json_response(
            {"type": "conversation.list", "conversations": [self._list_item(d) for d in data],
             "total_count": total, "pages": pages}
        )  # fmt: skip

    @route("POST", "/conversations/search", tags=("search",))
    def search_conversations(self, req: Request) -> Response:
        data, total, pages = self._search(
            req, "conversations", "conversation", (LIVE,),
            int(self.options["conversations_per_page"]),
        )  # fmt: skip
        return json_response(
            {"type": "conversation.list", "conversations": [self._list_item(d) for d in data],
             "total_count": total, "pages": pages}
        )  # fmt: skip

    @route("GET", "/conversations/{conversation_id}")
    def get_conversation(self, req: Request, conversation_id: str) -> Response:
        display = req.arg("display_as")
        if display not in (None, "", "plaintext"):
            raise _invalid("display_as must be plaintext", "display_as")
        data = self._load("conversations", conversation_id)
        if data is None:
            raise _error(404, "not_found", "Conversation not found")
        return json_response(data)

    @route("POST", "/conversations")
    def create_conversation(self, req: Request) -> Response:
        body = req.json_object()
        sender = body.get("from")
        text = body.get("body")
        if not isinstance(sender, dict) or not isinstance(sender.get("id"), str):
            raise _error(400, "parameter_not_found", "from is required", "from")
        if sender.get("type") not in ("lead", "user", "contact"):
            raise _invalid("from.type must be lead, user or contact", "from.type")
        if not isinstance(text, str):
            raise _error(400, "parameter_not_found", "body is required", "body")
        created = body.get("created_at")
        if created is not None and (not isinstance(created, int) or isinstance(created, bool)):
            raise _invalid("created_at must be an integer", "created_at")
        contact = self._contact(sender["id"])
        now = self.now_s()
        conv_id = str(self.store.next_ids(COUNTER_CONVERSATION)[0])
        ref = {"type": "contact", "id": contact["id"], "external_id": contact.get("external_id")}
        author: JsonObj = {"type": contact["role"], "id": contact["id"], "name": contact["name"]}
        if contact.get("email"):
            author["email"] = contact["email"]
        data: JsonObj = {
            "type": "conversation", "id": conv_id, "title": None,
            "created_at": created or now, "updated_at": now, "waiting_since": now,
            "snoozed_until": None, "open": True, "state": "open", "read": False,
            "priority": "not_priority", "admin_assignee_id": None, "team_assignee_id": None,
            "tags": {"type": "tag.list", "tags": []}, "conversation_rating": None,
            "source": {
                "type": "conversation", "id": conv_id, "delivered_as": "customer_initiated",
                "subject": "", "body": f"<p>{text}</p>", "author": author, "attachments": [],
                "url": None, "redacted": False,
            },
            "contacts": {"type": "contact.list", "contacts": [ref]},
            "teammates": {"type": "admin.list", "teammates": [], "admins": []},
            "custom_attributes": {},
            "first_contact_reply": {"created_at": now, "type": "conversation", "url": None},
            "statistics": {"type": "conversation_statistics", "count_conversation_parts": 0},
            "conversation_parts": {
                "type": "conversation_part.list", "conversation_parts": [], "total_count": 0,
            },
            "linked_objects": {"type": "list", "total_count": 0, "has_more": False, "data": []},
            "ai_agent_participated": False,
        }  # fmt: skip
        self._save("conversations", conv_id, data)
        return json_response(
            {"type": "user_message", "id": conv_id, "created_at": data["created_at"],
             "body": text, "message_type": "inapp", "conversation_id": conv_id}
        )  # fmt: skip

    @route("PUT", "/conversations/{conversation_id}")
    def update_conversation(self, req: Request, conversation_id: str) -> Response:
        data = self._load("conversations", conversation_id)
        if data is None:
            raise _error(404, "not_found", "Conversation not found")
        body = req.json_object(required=False)
        spec: dict[str, tuple[type, ...]] = {
            "read": (bool,),
            "title": (str,),
            "custom_attributes": (dict,),
            "company_id": (str,),
        }
        self._check_types(body, spec, {"company_id"})
        for key, value in body.items():
            if key == "custom_attributes":
                data["custom_attributes"] = {
                    **data.get("custom_attributes", {}),
                    **self._check_custom("conversation", value),
                }
            elif key == "company_id":
                if value is not None and self._load("companies", value) is None:
                    raise _error(404, "company_not_found", "Company Not Found")
                data["company_id"] = value
            else:
                data[key] = value
        data["updated_at"] = self.now_s()
        self._save("conversations", conversation_id, data)
        return json_response(data)

    @route("DELETE", "/conversations/{conversation_id}")
    def delete_conversation(self, req: Request, conversation_id: str) -> Response:
        data = self._load("conversations", conversation_id)
        if data is None:
            raise _error(404, "not_found", "Conversation not found")
        self._save("conversations", conversation_id, data, PURGED)
        return json_response({"id": conversation_id, "object": "conversation", "deleted": True})

    # -- data attributes ---------------------------------------------------------------------

    @route("GET", "/data_attributes")
    def list_attributes(self, req: Request) -> Response:
        model = req.arg("model")
        if model is not None and model not in ("contact", "company", "conversation"):
            raise _invalid("model must be one of contact, company, conversation", "model")
        raw = req.arg("include_archived", "false")
        if raw not in ("true", "false"):
            raise _invalid("include_archived must be a boolean", "include_archived")
        rows = self.store.conn().execute(
            "SELECT data FROM records WHERE vendor = 'intercom' AND object = 'data_attributes'"
            " ORDER BY seq"
        )
        data = [orjson.loads(r[0]) for r in rows]
        data = [
            d
            for d in data
            if (model is None or d["model"] == model) and (raw == "true" or not d["archived"])
        ]
        return json_response({"type": "list", "data": data})

    def _require_scope(self, scope: str) -> None:
        if scope in (self.options.get("missing_scopes") or ()):
            raise _error(
                403,
                "forbidden",
                f"You do not have the required scope ({scope}) to access this resource",
            )

    @route("POST", "/data_attributes")
    def create_attribute(self, req: Request) -> Response:
        self._require_scope("write_data_attributes")
        body = req.json_object()
        for field in ("name", "model", "data_type"):
            if field not in body:
                raise _error(400, "parameter_not_found", f"{field} is required", field)
        name, model, dtype = body["name"], body["model"], body["data_type"]
        if not isinstance(name, str) or not name.strip():
            raise _invalid("name must be a non-empty string", "name")
        if model not in ("contact", "company"):
            raise _invalid("model must be contact or company", "model")
        if dtype not in ("string", "integer", "float", "boolean", "datetime", "date", "options"):
            raise _invalid(f"data_type '{dtype}' is not valid", "data_type")
        for key in ("description",):
            if key in body and not isinstance(body[key], str):
                raise _invalid(f"{key} must be a string", key)
        if "messenger_writable" in body and not isinstance(body["messenger_writable"], bool):
            raise _invalid("messenger_writable must be a boolean", "messenger_writable")
        options = body.get("options")
        values: list[str] | None = None
        if dtype == "options":
            # An options attribute needs at least two options [API.md §3.6].
            if not isinstance(options, list) or len(options) < 2:
                raise _invalid("options must contain at least two values", "options")
            values = [str(o.get("value")) if isinstance(o, dict) else str(o) for o in options]
        if name in self._attributes(model):
            # Duplicate name -> 400 parameter_invalid [spec createDataAttribute example].
            raise _invalid(f"You already have '{name}' in your {model} data.", "name")
        attr_id = self.store.next_ids(COUNTER_ATTRIBUTE)[0]
        data = data_attribute(
            attr_id, model, name, name, dtype, custom=True, created_s=self.now_s(),
            description=body.get("description", ""), options=values,
            messenger_writable=bool(body.get("messenger_writable", False)),
        )  # fmt: skip
        self._save("data_attributes", str(attr_id), data)
        return json_response(data)

    @route("PUT", "/data_attributes/{attribute_id}")
    def update_attribute(self, req: Request, attribute_id: str) -> Response:
        self._require_scope("write_data_attributes")
        data = self._load("data_attributes", attribute_id)
        if data is None:
            raise _error(404, "not_found", "Data attribute not found")
        body = req.json_object(required=False)
        spec: dict[str, tuple[type, ...]] = {
            "archived": (bool,),
            "description": (str,),
            "messenger_writable": (bool,),
            "options": (list,),
        }
        self._check_types(body, spec, set())
        if not data["custom"]:
            raise _invalid("Standard data attributes can't be updated", "name")
        for key, value in body.items():
            if key == "options":
                data["options"] = [
                    str(o.get("value")) if isinstance(o, dict) else str(o) for o in value
                ]
            else:
                data[key] = value
        data["updated_at"] = self.now_s()
        self._save("data_attributes", attribute_id, data)
        return json_response(data)

    # -- tags --------------------------------------------------------------------------------

    @route("GET", "/tags")
    def list_tags(self, req: Request) -> Response:
        rows = self.store.conn().execute(
            "SELECT data FROM records WHERE vendor = 'intercom' AND object = 'tags'"
            " AND state = 0 ORDER BY seq"
        )
        return json_response({"type": "list", "data": [orjson.loads(r[0]) for r in rows]})

    @route("POST", "/tags")
    def create_tag(self, req: Request) -> Response:
        body = req.json_object()
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise _error(400, "parameter_not_found", "name is required", "name")
        tag = self._find("tags", "name", name, (LIVE,))
        if tag is None:
            tag_id = str(self.store.next_ids(COUNTER_TAG)[0])
            tag = {"type": "tag", "id": tag_id, "name": name}
            self._save("tags", tag_id, tag)
        companies = body.get("companies") or []
        users = body.get("users") or []
        if not isinstance(companies, list) or not isinstance(users, list):
            raise _invalid("companies and users must be arrays")
        for ref in companies:
            if not isinstance(ref, dict):
                raise _invalid("companies must hold objects", "companies")
            company = (
                self._load("companies", str(ref["id"]))
                if "id" in ref
                else self._find("companies", "company_id", str(ref.get("company_id")), (LIVE,))
            )
            if company is None:
                raise _error(404, "company_not_found", "Company Not Found")
            tags = [t for t in company["tags"]["tags"] if t["id"] != tag["id"]]
            if not ref.get("untag"):
                tags.append({"type": "tag", "id": tag["id"], "name": name})
            company["tags"]["tags"] = tags
            company["updated_at"] = self.now_s()
            self._save("companies", company["id"], company)
        for ref in users:
            if not isinstance(ref, dict) or "id" not in ref:
                raise _invalid("users must hold objects with an id", "users")
            contact = self._contact(str(ref["id"]))
            refs = [r for r in contact["tags"]["data"] if r["id"] != tag["id"]]
            if not ref.get("untag"):
                refs.append({"type": "tag", "id": tag["id"], "url": f"/tags/{tag['id']}"})
            contact["tags"]["data"] = refs
            contact["tags"]["total_count"] = len(refs)
            contact["updated_at"] = self.now_s()
            self._save(
                "contacts", contact["id"], contact, ARCHIVED if contact.get("archived") else LIVE
            )
        return json_response(tag)

    # -- sandbox web page --------------------------------------------------------------------

    def ui_fields(self, obj: str, data: dict[str, Any]) -> dict[str, Any]:
        keys = ("name", "email", "company_id", "title", "state", "updated_at")
        return {k: data[k] for k in keys if k in data}
