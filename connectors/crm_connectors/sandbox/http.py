"""The sandbox's HTTP layer: one threaded HTTP/1.1 listener per vendor, sharing one state.

A vendor emulator is a :class:`VendorApp` subclass whose handler methods carry :func:`route`
decorators. This module owns everything around the handlers, the same for every vendor:

    request -> fault injection -> routing (404 / 405 + Allow) -> auth (401) -> rate limit
            -> handler -> rate-limit headers -> stats

and renders every failure through the vendor's own error shape (``VendorApp.render_error``), so a
client never sees a stack trace or a 500 of the sandbox's own making.

Errors raised by handlers:

    ApiError(status, code, message)      rendered in the vendor's envelope
    MalformedJson                        -> VendorApp.malformed_json_error()
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from .auth import Principal, TokenRejected
from .faults import spoil

if TYPE_CHECKING:
    from .context import Context

log = logging.getLogger(__name__)

MAX_BODY = 32 * 1024 * 1024


# -- requests and responses -------------------------------------------------------------------


class MalformedJson(Exception):
    """The request body is not valid JSON (or not the JSON type the route needs)."""


class ApiError(Exception):
    """A vendor API error; ``code`` is the vendor's error code / category."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: Iterable[str] = (),
        headers: Iterable[tuple[str, str]] = (),
        **extra: Any,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = list(fields)
        self.headers = list(headers)
        self.extra = extra


@dataclass(slots=True)
class Request:
    method: str
    path: str  # percent-decoded, without the query string
    raw_path: str  # as sent, with the query string
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    vendor: str = ""
    principal: Principal | None = None
    _json: Any = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def bearer(self) -> str | None:
        value = self.header("Authorization") or ""
        scheme, _, token = value.partition(" ")
        return token.strip() or None if scheme.lower() == "bearer" else None

    def json(self, *, default: Any = None) -> Any:
        """The body parsed as JSON; ``default`` when empty; :class:`MalformedJson` when invalid."""
        if self._json is None:
            if not self.body.strip():
                return default
            try:
                self._json = orjson.loads(self.body)
            except orjson.JSONDecodeError as exc:
                raise MalformedJson(str(exc)) from None
        return self._json

    def json_object(self, *, required: bool = True) -> dict[str, Any]:
        """The body as a JSON object; an empty body gives ``{}`` unless ``required``."""
        value = self.json(default=None)
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            raise MalformedJson("the request body must be a JSON object")
        return value


@dataclass(slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json;charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(
    payload: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()
) -> Response:
    return Response(status, orjson.dumps(payload), headers=list(headers))


def empty_response(status: int = 204, headers: Iterable[tuple[str, str]] = ()) -> Response:
    return Response(status, b"", content_type="", headers=list(headers))


# -- routing ----------------------------------------------------------------------------------

Handler = Callable[..., Response]
_PARAM = re.compile(r"\{(\w+)(?::(path))?\}")


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    template: str
    regex: re.Pattern[str]
    handler_name: str
    auth: bool = True
    tags: frozenset[str] = frozenset()


def route(
    method: str, template: str, *, auth: bool = True, tags: Iterable[str] = ()
) -> Callable[[Handler], Handler]:
    """Declare a handler for ``method template``. ``{name}`` matches one path segment,
    ``{name:path}`` the rest of the path; both are passed to the handler as keyword arguments.
    ``tags`` let a vendor's rate-limit policy tell routes apart (e.g. ``"search"``)."""

    def decorate(func: Handler) -> Handler:
        specs = list(getattr(func, "_routes", []))
        specs.append((method.upper(), template, auth, frozenset(tags)))
        func._routes = specs  # type: ignore[attr-defined]
        return func

    return decorate


def _compile(template: str) -> re.Pattern[str]:
    pattern, pos = "", 0
    for m in _PARAM.finditer(template):
        pattern += re.escape(template[pos : m.start()])
        pattern += f"(?P<{m.group(1)}>.+)" if m.group(2) else f"(?P<{m.group(1)}>[^/]+)"
        pos = m.end()
    pattern += re.escape(template[pos:])
    return re.compile(pattern + r"/?\Z")


class VendorApp:
    """Base of the vendor emulators. Subclasses set ``vendor`` and implement the error hooks."""

    vendor: ClassVar[str] = ""
    #: Limits and behaviour knobs with the vendor's real values; overridable per sandbox.
    DEFAULT_OPTIONS: ClassVar[dict[str, Any]] = {}

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.options: dict[str, Any] = {}
        self.routes: list[Route] = []
        for name in dir(type(self)):
            func = getattr(type(self), name)
            for method, template, auth, tags in getattr(func, "_routes", ()):
                self.routes.append(Route(method, template, _compile(template), name, auth, tags))
        # Literal segments before parameters: /contacts/search must win over /contacts/{id}.
        self.routes.sort(key=lambda r: (-len(r.template.split("{")[0]), r.template))
        self._memo: dict[Any, Any] = {}
        self._memo_version: int | None = None
        self._memo_lock = threading.Lock()
        self._watch: sqlite3.Connection | None = None
        if self.store.path != ":memory:":
            self._watch = sqlite3.connect(
                self.store.path, isolation_level=None, check_same_thread=False
            )
        self.configure(ctx.options_for(self.vendor, self.DEFAULT_OPTIONS))

    # -- derived data cached until the database changes ------------------------------------

    MEMO_MAX: ClassVar[int] = 512

    def data_version(self) -> int | None:
        """A number that changes whenever any connection commits a change to the database
        (``PRAGMA data_version`` of a connection that never writes); None: caching is off."""
        if self._watch is None:
            return None
        with self._memo_lock:
            return int(self._watch.execute("PRAGMA data_version").fetchone()[0])

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()``, cached under ``key`` until the next committed write to the database.

        For results that are pure functions of the stored data (totals of a query, a sorted
        result set): a cached value is returned only if no write committed since it was
        computed, so responses are the same as without the cache."""
        version = self.data_version()
        if version is None or self.store.conn().in_transaction:
            return compute()  # inside a write: its changes may yet roll back
        with self._memo_lock:
            if version != self._memo_version:
                self._memo.clear()
                self._memo_version = version
            elif key in self._memo:
                return self._memo[key]
        value = compute()  # the version was read first: a write meanwhile only evicts it
        with self._memo_lock:
            if version == self._memo_version:
                if len(self._memo) >= self.MEMO_MAX:
                    self._memo.clear()
                self._memo[key] = value
        return value

    def memo_get(self, key: Any) -> Any:
        """A value :meth:`memo_put` stored, or None when absent or the database changed."""
        version = self.data_version()
        with self._memo_lock:
            if version is None or version != self._memo_version:
                return None
            return self._memo.get(key)

    def memo_put(self, key: Any, value: Any, version: int | None) -> None:
        """Store ``value`` if the database is still at ``version`` (from :meth:`data_version`
        read before the data behind ``value`` was)."""
        if version is None or self.store.conn().in_transaction:
            return
        with self._memo_lock:
            if version != self._memo_version:
                self._memo.clear()
                self._memo_version = version
            if len(self._memo) >= self.MEMO_MAX:
                self._memo.clear()
            self._memo[key] = value

    # -- time (the sandbox's clock: tests advance it instead of sleeping) -------------------

    def now_ms(self) -> int:
        return int(self.ctx.clock.time() * 1000)

    def now_s(self) -> int:
        return int(self.ctx.clock.time())

    def configure(self, options: dict[str, Any]) -> None:
        """Apply options (at start and on ``POST /_sandbox/options``); rebuild limiters here."""
        self.options = options

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
        allowed: list[str] = []
        for r in self.routes:
            m = r.regex.match(path)
            if m is None:
                continue
            if r.method == method:
                return r, m.groupdict(), []
            if r.method not in allowed:
                allowed.append(r.method)
        return None, {}, allowed

    # -- hooks a vendor implements ---------------------------------------------------------

    def render_error(self, req: Request, err: ApiError) -> Response:
        raise NotImplementedError

    def auth_error(self, req: Request, reason: str) -> ApiError:
        return ApiError(401, "unauthorized", "Authentication failed")

    def throttle_error(self, req: Request, retry_after: float | None) -> ApiError:
        return ApiError(429, "rate_limited", "Rate limit exceeded")

    def throttles(self, route: Route) -> bool:
        """Whether the vendor's rate limits cover ``route`` (a ``rate_limit`` fault fires only
        where they do)."""
        return True

    def server_error(self, req: Request, status: int) -> ApiError:
        return ApiError(status, "server_error", "Server error")

    def malformed_json_error(self, req: Request, detail: str) -> ApiError:
        return ApiError(400, "invalid_json", "The request body is not valid JSON")

    def not_found_error(self, req: Request) -> ApiError:
        return ApiError(404, "not_found", "Resource not found")

    def method_not_allowed_error(self, req: Request, allowed: list[str]) -> ApiError:
        return ApiError(405, "method_not_allowed", "Method not allowed")

    def authenticate(self, req: Request, route: Route) -> Principal:
        try:
            return self.ctx.tokens.check(self.vendor, req.bearer())
        except TokenRejected as rejected:
            raise self.auth_error(req, rejected.reason) from None

    def admit(
        self, req: Request, route: Route, principal: Principal | None
    ) -> list[tuple[str, str]]:
        """Apply the vendor's rate limits; return headers to add or raise a throttle error."""
        return []


# -- the listener -----------------------------------------------------------------------------


class _Dropped(Exception):
    """The connection must be closed without a response (the ``drop`` fault)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "crm-sandbox"
    sys_version = ""
    timeout = 120
    server: _Server
    _headers_buffer: list[bytes]  # BaseHTTPRequestHandler's own buffer, see _send

    def log_message(self, format: str, *args: Any) -> None:
        if log.isEnabledFor(logging.DEBUG):  # called for every request: format only if needed
            log.debug("%s %s", self.address_string(), format % args)

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline = self.request_version = self.command = ""
                self.send_error(414)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self._serve()
            self.wfile.flush()
        except (TimeoutError, ConnectionError, _Dropped):
            self.close_connection = True

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise ValueError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(8)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        app: VendorApp = self.server.app
        ctx = app.ctx
        started = time.perf_counter()
        split = urllib.parse.urlsplit(self.path)
        body_error = None
        try:
            body = self._read_body()
        except ValueError:
            body, body_error = b"", True
            self.close_connection = True
        req = Request(
            method=self.command,
            path=urllib.parse.unquote(split.path),
            raw_path=self.path,
            query=urllib.parse.parse_qs(split.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
            vendor=app.vendor,
        )
        if req.path.startswith("/_sandbox/") and ctx.admin is not None:
            resp = ctx.admin.handle(req)
            self._send(resp, truncate=False)
            return

        route, params, allowed = app.match(req.method, req.path)
        template = route.template if route else "(unmatched)"
        fault = ctx.faults.decide(
            app.vendor,
            req.method,
            req.path,
            exempt=() if route is None or app.throttles(route) else ("rate_limit",),
        )
        if fault is not None:
            ctx.stats.record_fault(app.vendor, fault.kind)
            if fault.kind == "slow":
                time.sleep(fault.delay)
            elif fault.kind == "drop":
                ctx.stats.record(app.vendor, req.method, template, 0, 0)
                self._drop()
        extra_headers: list[tuple[str, str]] = []
        try:
            if body_error:
                raise ApiError(413, "request_too_large", "The request body is too large")
            if fault is not None and fault.kind == "rate_limit":
                raise app.throttle_error(req, fault.retry_after)
            if fault is not None and fault.kind == "server_error":
                raise app.server_error(req, fault.status or 503)
            if route is None:
                if allowed:
                    err = app.method_not_allowed_error(req, allowed)
                    err.headers.append(("Allow", ", ".join(allowed)))
                    raise err
                raise app.not_found_error(req)
            if route.auth:
                req.principal = app.authenticate(req, route)
                if fault is not None and fault.kind == "expired_token":
                    if req.principal.kind == "access":
                        ctx.tokens.expire(req.principal.token)
                    raise app.auth_error(req, "expired")
            extra_headers = app.admit(req, route, req.principal)
            resp = getattr(app, route.handler_name)(req, **params)
        except ApiError as err:
            resp = app.render_error(req, err)
            resp.headers.extend(err.headers)
        except MalformedJson as exc:
            resp = app.render_error(req, app.malformed_json_error(req, str(exc)))
        except Exception:
            log.exception("%s %s %s failed in the sandbox", app.vendor, req.method, template)
            resp = app.render_error(req, app.server_error(req, 500))
        resp.headers.extend(extra_headers)
        if fault is not None and fault.kind == "malformed":
            resp.status, resp.body, resp.content_type = spoil(
                fault.variant, resp.status, resp.body, resp.content_type
            )
        truncate = fault is not None and fault.kind == "truncate"
        # Counted before sending, so a client that has its response sees it counted.
        ctx.stats.record(app.vendor, req.method, template, resp.status, len(resp.body))
        self._send(resp, truncate=truncate)
        log.debug(
            "%s %s %s -> %s in %.1f ms",
            app.vendor,
            req.method,
            req.path,
            resp.status,
            (time.perf_counter() - started) * 1000,
        )
        if truncate:
            self._drop()

    def _send(self, resp: Response, *, truncate: bool) -> int:
        self.send_response(resp.status)
        if resp.content_type and resp.status not in (204, 304):
            self.send_header("Content-Type", resp.content_type)
        for name, value in resp.headers:
            self.send_header(name, value)
        if resp.status not in (204, 304):
            self.send_header("Content-Length", str(len(resp.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        body = resp.body
        if self.command == "HEAD" or resp.status in (204, 304):
            body = b""
        if truncate:
            body = body[: len(body) // 2]
        # Headers and body leave in one write: two small writes meet Nagle's algorithm and the
        # client's delayed ACK, which stalls every keep-alive response by ~40 ms.
        self._headers_buffer.append(b"\r\n")
        self._headers_buffer.append(body)
        self.flush_headers()
        return len(body)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        raise _Dropped


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: VendorApp, ssl_context: Any = None) -> None:
        self.app = app
        self.ssl_context = ssl_context
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is not None:
            # The handshake runs in the handler's thread, not in the accept loop.
            sock = self.ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class Listener:
    """One vendor's HTTP listener running in a background thread."""

    def __init__(self, host: str, port: int, app: VendorApp, ssl_context: Any = None) -> None:
        self.server = _Server((host, port), app, ssl_context)
        self.scheme = "https" if ssl_context is not None else "http"
        self.thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"sandbox-{app.vendor}",
            daemon=True,
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"{self.scheme}://{host}:{port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
