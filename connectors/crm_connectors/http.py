"""The HTTP foundation of every connector: one ``httpx.Client`` per API, errors classified by a
status table with each vendor's own rules on top, retries that honour ``Retry-After``, and a
pacer in front.

Status -> error (``classify``); a vendor's ``errors.py`` (:class:`ErrorRules`) reads its error
envelope's code and decides its special cases first:

- 401: AuthError (``expired`` for the codes the vendor uses for an expired token). The client
  renews the token once before raising it; a token that cannot be renewed (a static one) is
  sent once more after the credentials' ``retry_pause``, since the CRMs answer 401 now and then
  for a token that is valid.
- 403: MissingScopes (with the scopes when the body names them).
- 404, 410: NotFound. 409, 412: WriteConflict.
- 429: RateLimited (with ``retry_after``).
- 5xx: ServerError.
- Any other 4xx: FatalError (the request itself is wrong).

Retry rules: RetriableError, timeouts, resets, dropped connections and truncated bodies are
retried for *idempotent* requests: GET/HEAD/OPTIONS/PUT/DELETE, or any request sent with
``idempotent=True`` (search, batch read, upsert). A non-idempotent request (a create) is retried
only when the server certainly did not act on it: a throttle (the vendor rejects a throttled call
before handling it) or a connection that never opened. The wait is the ``Retry-After`` when one
is given (seconds or an HTTP date), else exponential with full jitter (``backoff.expo`` and
``backoff.full_jitter``). The loop is our own rather than ``backoff.on_exception`` because that
decorator calls ``time.sleep`` itself, and tests need a sleep they can inject.
"""

from __future__ import annotations

import email.utils
import logging
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

import backoff
import httpx
import orjson

from .errors import (
    AuthError,
    ConfigError,
    CrmError,
    FatalError,
    MissingScopes,
    NetworkError,
    NotFound,
    RateLimited,
    RetriableError,
    ServerError,
    WriteConflict,
)
from .pacing import NoPacing, Pacer
from .secrets import Secret, redact_url

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class Credentials(Protocol):
    """Where the token comes from (see :mod:`crm_connectors.auth`). It is sent as
    ``Authorization: Bearer <token>``, or with the credentials' own ``scheme`` attribute
    (``Basic``) when they have one."""

    #: The setting an :class:`AuthError` tells the user to fix.
    setting: str

    def token(self) -> Secret:
        """A token valid now (refreshing first when it is about to expire)."""
        ...

    def renew(self, rejected: Secret) -> bool:
        """The vendor rejected ``rejected`` with 401: get a new token if possible; True when a
        retry with :meth:`token` may succeed. The client retries once, after the credentials'
        ``retry_pause`` seconds when they have that attribute."""
        ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to retry. ``max_tries`` counts the first attempt; ``max_time`` (seconds) bounds
    the total, waits included. A ``Retry-After`` longer than what is left gives up at once.

    The time budget is what bounds an outage (five minutes per call); the tries are many so a
    degraded API does not end a run: with one call in four failing, six tries give up on one
    call in about 4,100 (1 of 10 faulted runs of the reliability suite failed so), ten tries on
    one in a million."""

    max_tries: int = 10
    max_time: float = 300.0
    base: float = 1.0  # first backoff ceiling, seconds; doubles each retry
    cap: float = 60.0  # largest backoff ceiling
    #: Retry a non-idempotent request after a throttle (the call was rejected, not applied).
    retry_writes_on_throttle: bool = True


Sleep = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class Attempt:
    """What a retry was about, for the ``on_retry`` hook (tests record these)."""

    route: str
    attempt: int
    wait: float
    error: CrmError


class _RedactUrls(logging.Filter):
    """httpx logs every request's full URL at INFO; mask credential query parameters in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_url(str(a)) if isinstance(a, httpx.URL) else a for a in record.args
            )
        return True


logging.getLogger("httpx").addFilter(_RedactUrls())


def quiet_request_logs(level: int) -> None:
    """Keep httpx's line per request (INFO) out of a plugin's log unless it logs at DEBUG: the
    connector layer logs retries and waits itself, and the plugins log per stream and CRM."""
    logging.getLogger("httpx").setLevel(max(logging.WARNING, level))


# -- the status -> error table ----------------------------------------------------------------


def envelope_code(body: Any) -> str:
    """The machine-readable error code of the common JSON error envelopes ('' when none):
    ``[{"errorCode"}]``, ``{"type": "error.list", "errors": [{"code"}]}``, OAuth 2.0's
    ``{"error": "<code>"}``, ``{"errorType" | "category"}``, or a textual ``status``."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return str(body[0].get("errorCode") or "")
    if not isinstance(body, dict):
        return ""
    if body.get("type") == "error.list":
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("code") or "")
    if "error" in body and isinstance(body["error"], str):
        return body["error"]
    for key in ("errorType", "category"):
        if body.get(key):
            return str(body[key])
    status = body.get("status")
    # Some OAuth endpoints put their code in "status" (BAD_REFRESH_TOKEN); "error" is not one.
    return str(status) if isinstance(status, str) and status != "error" else ""


def body_scopes(body: Any) -> list[str]:
    """Scopes a 403 body says are missing (``errors[].context.required*Scopes``)."""
    scopes: list[str] = []
    if isinstance(body, dict):
        for err in body.get("errors") or []:
            context = err.get("context") if isinstance(err, dict) else None
            if isinstance(context, dict):
                for key in ("requiredGranularScopes", "requiredScopes"):
                    scopes.extend(str(s) for s in context.get(key) or [])
    return scopes


class ErrorRules:
    """One API's error conventions. A vendor's ``errors.py`` subclasses this: its envelope's
    code, the codes meaning an expired token, and the special cases its documentation lists,
    decided before the shared status table."""

    #: Vendor codes of a 401 that a token renewal cures.
    expired_codes: frozenset[str] = frozenset()

    def __init__(self, vendor: str) -> None:
        self.vendor = vendor

    def code(self, body: Any) -> str:
        """The vendor's machine-readable error code from its error envelope ('' when none)."""
        return envelope_code(body)

    def special(
        self, status: int, code: str, body: Any, retry_after: float | None, kw: dict[str, Any]
    ) -> CrmError | None:
        """The vendor's own reading of a response, or None for the shared table. ``kw`` holds
        the keywords every :class:`CrmError` takes (vendor, method, route, status, code, ids)."""
        return None


def classify(
    rules: ErrorRules,
    status: int,
    body: Any,
    *,
    retry_after: float | None = None,
    method: str = "",
    route: str = "",
    ids: tuple[str, ...] = (),
) -> CrmError:
    """The error for an HTTP error response; the message holds no body text."""
    code = rules.code(body)
    kw: dict[str, Any] = {
        "vendor": rules.vendor,
        "method": method,
        "route": route,
        "status": status,
        "code": code,
        "ids": ids,
    }
    special = rules.special(status, code, body, retry_after, kw)
    if special is not None:
        return special
    if status == 401:
        return AuthError("credentials rejected", expired=code in rules.expired_codes, **kw)
    if status == 429:
        return RateLimited("throttled", retry_after=retry_after, **kw)
    if status == 403:
        return MissingScopes("access denied", scopes=body_scopes(body), **kw)
    if status in (404, 410):
        return NotFound("not found", **kw)
    if status in (409, 412):
        return WriteConflict("conflict", **kw)
    if status >= 500:
        return ServerError("server error", retry_after=retry_after, **kw)
    return FatalError("request rejected", **kw)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds to wait: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


# -- the client -------------------------------------------------------------------------------


class ApiClient:
    """One vendor API over a reused ``httpx.Client``.

    ``base_url`` is the API root (``https://api.hubapi.com``); ``request`` takes paths under it
    or absolute URLs. ``route`` names the call in logs and errors (``GET /crm/v3/objects/{t}``);
    it defaults to the method and the URL path.
    """

    def __init__(
        self,
        vendor: str,
        base_url: str,
        *,
        errors: ErrorRules | None = None,
        credentials: Credentials | None = None,
        pacer: Pacer | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_retry: Callable[[Attempt], None] | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        verify: bool | str = True,
        transport: httpx.BaseTransport | None = None,
        address_setting: str = "",
    ) -> None:
        self.vendor = vendor
        #: The setting ``base_url`` comes from: named when nothing answers there, or something
        #: that is not this vendor's API does (a 404 without the vendor's JSON error body).
        self.address_setting = address_setting
        self.errors = errors or ErrorRules(vendor)
        self.credentials = credentials
        self.pacer: Pacer = pacer or NoPacing()
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._on_retry = on_retry
        self._http = httpx.Client(
            base_url=base_url,
            headers=dict(headers or {}),
            timeout=timeout,
            verify=verify,
            transport=transport,
            follow_redirects=False,
        )

    def absolute(self, host_path: str) -> str:
        """An absolute URL for a host-relative link the API returned (Salesforce
        ``nextRecordsUrl`` ``/services/data/v66.0/query/01g…``): ``request`` joins relative
        paths to the base URL's *path*, as httpx does, which would double the prefix."""
        base = self._http.base_url
        return str(base.copy_with(raw_path=host_path.encode("ascii")))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        route: str | None = None,
        idempotent: bool | None = None,
        shape: Callable[[Any], bool] | None = None,
    ) -> Any:
        """Send and return the parsed JSON body (``None`` when empty). ``shape`` says whether a
        successful body is what the API documents; one that is not (a proxy's answer, an API
        bug) is retried like a truncated body, then raised as a NetworkError."""
        reply = self._call(
            method, url, params, json, data, headers, route, idempotent, shape or True
        )
        return reply[1]

    def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        route: str | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send and return the (fully read) response, for non-JSON bodies and headers."""
        return self._call(method, url, params, json, data, headers, route, idempotent, False)[0]

    # -- internals -------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json: Any,
        data: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        route: str | None,
        idempotent: bool | None,
        parse: bool | Callable[[Any], bool],
    ) -> tuple[httpx.Response, Any]:
        method = method.upper()
        route = route or f"{method} {urllib.parse.urlsplit(url).path}"
        safe = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        policy = self.retry
        waits = backoff.expo(base=2, factor=policy.base, max_value=policy.cap)
        next(waits)  # prime the generator (backoff's own protocol)
        started = self._clock()
        attempt = 0
        renewed = False
        while True:
            attempt += 1
            token = self.credentials.token() if self.credentials else None
            try:
                return self._attempt(method, url, params, json, data, headers, route, token, parse)
            except AuthError as err:
                if renewed or token is None or self.credentials is None:
                    raise self._auth_failure(err) from None
                renewed = True
                if not self.credentials.renew(token):
                    raise self._auth_failure(err) from None
                pause = getattr(self.credentials, "retry_pause", 0.0)
                log.info(
                    "%s %s: token rejected, retrying once%s",
                    self.vendor,
                    route,
                    f" in {pause:g} s with the same token" if pause else " with a new one",
                )
                if pause:
                    self._sleep(pause)
                attempt -= 1  # a token refresh is not a retry
            except RetriableError as err:
                if not self._may_retry(err, safe):
                    raise
                wait = err.retry_after
                if wait is None:
                    wait = backoff.full_jitter(next(waits))
                elapsed = self._clock() - started
                if attempt >= policy.max_tries or elapsed + wait > policy.max_time:
                    # str(err) starts with the vendor and route already.
                    log.warning("%s; giving up after %d attempt(s)", err, attempt)
                    raise
                log.warning(
                    "%s; retry %d of %d in %.2f s", err, attempt, policy.max_tries - 1, wait
                )
                if self._on_retry is not None:
                    self._on_retry(Attempt(route, attempt, wait, err))
                self._sleep(wait)

    def _may_retry(self, err: RetriableError, safe: bool) -> bool:
        if safe:
            return True
        if isinstance(err, RateLimited):
            return self.retry.retry_writes_on_throttle
        return isinstance(err, NetworkError) and not err.sent

    def _auth_failure(self, err: AuthError) -> AuthError:
        setting = self.credentials.setting if self.credentials else ""
        return AuthError(
            "credentials rejected",
            setting=setting,
            expired=err.expired,
            **err.call(),
        )

    def _attempt(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json: Any,
        data: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        route: str,
        token: Secret | None,
        parse: bool | Callable[[Any], bool],
    ) -> tuple[httpx.Response, Any]:
        merged = dict(headers or {})
        if token is not None:
            scheme = getattr(self.credentials, "scheme", "Bearer")
            merged["Authorization"] = f"{scheme} {token.reveal()}"
        kw: dict[str, Any] = {"vendor": self.vendor, "method": method, "route": route}
        self.pacer.before(route)
        began = time.perf_counter()
        try:
            response = self._http.request(
                method, url, params=params, json=json, data=data, headers=merged
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            self.pacer.after(None)
            where = f"; check the setting '{self.address_setting}'" if self.address_setting else ""
            raise NetworkError(
                f"connection failed ({type(exc).__name__}){where}", sent=False, **kw
            ) from None
        except (httpx.TransportError, httpx.TimeoutException) as exc:
            # Reset, drop, read timeout, or a body cut short (RemoteProtocolError/ReadError).
            self.pacer.after(None)
            raise NetworkError(f"no complete response ({type(exc).__name__})", **kw) from None
        self.pacer.after(response)
        log.debug(
            "%s %s -> %d in %.1f ms",
            self.vendor,
            route,
            response.status_code,
            (time.perf_counter() - began) * 1000,
        )
        if response.is_success:
            if not parse:
                return response, None
            try:
                body = orjson.loads(response.content) if response.content else None
            except ValueError:
                raise NetworkError("truncated or malformed JSON body", **kw) from None
            if callable(parse) and not parse(body):
                raise NetworkError("a response of the wrong shape", **kw)
            return response, body
        try:
            body = orjson.loads(response.content) if response.content else None
        except ValueError:
            body = None  # gateways' 502/504 pages are often HTML
        if response.status_code == 404 and body is None and self.address_setting:
            raise ConfigError(
                f"no {self.vendor} API at this address (HTTP 404 without {self.vendor}'s error"
                " body)",
                setting=self.address_setting,
                status=404,
                **kw,
            )
        retry_after = parse_retry_after(response.headers.get("Retry-After"), time.time())
        raise classify(
            self.errors,
            response.status_code,
            body,
            retry_after=retry_after,
            method=method,
            route=route,
        )


_C = TypeVar("_C", bound="VendorClient")


class VendorClient:
    """Base of the per-CRM clients: one paced, retrying :class:`ApiClient` and its lifetime.

    Subclasses set ``vendor``, choose their default pacer and add typed methods for the calls
    their readers make."""

    vendor: ClassVar[str] = ""
    #: The vendor's API host, used when no ``base_url`` is given.
    default_base_url: ClassVar[str] = ""
    #: Headers every call carries (e.g. an API version).
    headers: ClassVar[Mapping[str, str]] = {}
    #: The vendor's error conventions (its ``errors.py``).
    errors: ClassVar[ErrorRules] = ErrorRules("")

    def __init__(
        self,
        credentials: Credentials,
        *,
        base_url: str | None = None,
        pacer: Pacer | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
        on_retry: Callable[[Attempt], None] | None = None,
        transport: httpx.BaseTransport | None = None,
        address_setting: str = "",
    ) -> None:
        self.sleep = sleep
        self._credentials = credentials
        self.api = ApiClient(
            self.vendor,
            base_url or self.default_base_url,
            errors=self.errors,
            credentials=credentials,
            pacer=pacer if pacer is not None else self.default_pacer(sleep),
            retry=retry,
            sleep=sleep,
            on_retry=on_retry,
            transport=transport,
            headers=self.headers or None,
            address_setting=address_setting,
        )

    def default_pacer(self, sleep: Sleep) -> Pacer:
        """The vendor's own pacing, used when no ``pacer`` is given."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the API connection and the token endpoint's, if the credentials have one."""
        self.api.close()
        close_credentials = getattr(self._credentials, "close", None)
        if callable(close_credentials):
            close_credentials()

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
