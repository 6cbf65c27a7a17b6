"""The sandbox's shared machinery: HTTP layer, faults, limits, store, control API.

These run a tiny vendor app (``Echo``) on the real listener, so what they pin is the behaviour every
emulator inherits; the per-vendor shapes are pinned in ``test_faults_per_vendor.py``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm_connectors.sandbox.admin import AdminApp
from crm_connectors.sandbox.app import Context, SandboxConfig
from crm_connectors.sandbox.auth import DEFAULT_CREDENTIALS
from crm_connectors.sandbox.faults import Fault, FaultInjector
from crm_connectors.sandbox.http import (
    ApiError,
    Listener,
    Request,
    Response,
    VendorApp,
    json_response,
    route,
)
from crm_connectors.sandbox.ratelimit import FixedWindow, RollingWindow
from crm_connectors.sandbox.store import Store

TOKEN = DEFAULT_CREDENTIALS["intercom"]["access_token"]


class Echo(VendorApp):
    vendor = "intercom"  # borrows Intercom's static token; the envelope below is its own

    def render_error(self, req: Request, err: ApiError) -> Response:
        return json_response({"echo_error": err.code, "message": err.message}, err.status)

    def throttle_error(self, req: Request, retry_after: float | None) -> ApiError:
        headers = [] if retry_after is None else [("Retry-After", str(int(retry_after)))]
        return ApiError(429, "throttled", "slow down", headers=headers)

    @route("GET", "/items")
    def list_items(self, req: Request) -> Response:
        return json_response({"items": list(range(200)), "principal": req.principal.kind})  # type: ignore[union-attr]

    @route("POST", "/items")
    def create_item(self, req: Request) -> Response:
        return json_response({"got": req.json_object()}, 201)

    @route("GET", "/items/search")
    def search(self, req: Request) -> Response:
        return json_response({"route": "search"})

    @route("GET", "/items/{item_id}")
    def get_item(self, req: Request, item_id: str) -> Response:
        return json_response({"id": item_id})

    @route("GET", "/files/{rest:path}", auth=False)
    def files(self, req: Request, rest: str) -> Response:
        return json_response({"rest": rest})

    @route("GET", "/boom")
    def boom(self, req: Request) -> Response:
        raise RuntimeError("a bug in a handler")


@pytest.fixture
def echo(tmp_path: Path) -> Iterator[tuple[Context, str]]:
    ctx = Context(SandboxConfig(db_path=tmp_path / "core.sqlite", port=0, vendors=()))
    ctx.admin = AdminApp(ctx)  # the control API on every vendor port, as the sandbox sets up
    listener = Listener("127.0.0.1", 0, Echo(ctx))
    ctx.urls["intercom"] = listener.url
    listener.start()
    yield ctx, listener.url
    listener.stop()
    ctx.store.close()


def _get(url: str, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {TOKEN}", **kw.pop("headers", {})}
    kw.setdefault("timeout", 10)
    return httpx.get(url, headers=headers, **kw)


# -- routing and errors --------------------------------------------------------------------


def test_given_literal_and_parameter_routes_when_matching_then_literal_wins(echo: Any) -> None:
    _, url = echo
    assert _get(f"{url}/items/search").json() == {"route": "search"}
    assert _get(f"{url}/items/42").json() == {"id": "42"}
    assert _get(f"{url}/files/a/b/c.txt").json() == {"rest": "a/b/c.txt"}


def test_given_wrong_method_when_requesting_then_405_with_allow(echo: Any) -> None:
    _, url = echo
    resp = httpx.request("TRACE", f"{url}/items", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 405
    assert set(resp.headers["Allow"].split(", ")) == {"GET", "POST"}
    assert resp.json()["echo_error"] == "method_not_allowed"


def test_given_unknown_path_when_requesting_then_vendor_shaped_404(echo: Any) -> None:
    _, url = echo
    resp = _get(f"{url}/nope")
    assert resp.status_code == 404
    assert resp.json()["echo_error"] == "not_found"


def test_given_no_or_bad_token_when_requesting_then_401(echo: Any) -> None:
    _, url = echo
    assert httpx.get(f"{url}/items").status_code == 401
    bad = httpx.get(f"{url}/items", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert bad.json()["echo_error"] == "unauthorized"


def test_given_malformed_json_when_posting_then_vendor_400(echo: Any) -> None:
    _, url = echo
    resp = httpx.post(
        f"{url}/items",
        content=b'{"a": \x00',
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    assert resp.status_code == 400
    assert resp.json()["echo_error"] == "invalid_json"


def test_given_chunked_body_when_posting_then_it_is_read_whole(echo: Any) -> None:
    _, url = echo

    def parts() -> Iterator[bytes]:
        yield b'{"name": "chunk'
        yield b'ed", "n": 2}'

    resp = httpx.post(f"{url}/items", content=parts(), headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 201
    assert resp.json() == {"got": {"name": "chunked", "n": 2}}


def test_given_handler_bug_when_requesting_then_vendor_shaped_500_without_trace(echo: Any) -> None:
    _, url = echo
    resp = _get(f"{url}/boom")
    assert resp.status_code == 500
    assert "Traceback" not in resp.text and "RuntimeError" not in resp.text
    assert resp.json()["echo_error"] == "server_error"


def test_given_keep_alive_when_sending_many_requests_then_one_connection_serves_all(
    echo: Any,
) -> None:
    _, url = echo
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        ports = set()
        for _ in range(20):
            resp = client.get(f"{url}/items/1")
            assert resp.status_code == 200
            stream = resp.extensions.get("network_stream")
            if stream is not None:
                ports.add(stream.get_extra_info("client_addr"))
    assert len(ports) == 1


# -- faults over HTTP ----------------------------------------------------------------------


def _add_fault(ctx: Context, **fields: Any) -> Fault:
    return ctx.faults.add(Fault.from_dict(fields))


def test_given_drop_fault_when_requesting_then_connection_closes_without_response(
    echo: Any,
) -> None:
    ctx, url = echo
    _add_fault(ctx, kind="drop", path="/items", max_times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        _get(f"{url}/items")
    assert _get(f"{url}/items").status_code == 200


def test_given_truncate_fault_when_reading_then_body_is_cut_short(echo: Any) -> None:
    ctx, url = echo
    _add_fault(ctx, kind="truncate", path="/items", max_times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        _get(f"{url}/items")
    assert len(_get(f"{url}/items").json()["items"]) == 200


def test_given_slow_fault_when_requesting_then_client_timeout_fires(echo: Any) -> None:
    ctx, url = echo
    _add_fault(ctx, kind="slow", delay=1.5, path="/items", max_times=1)
    with pytest.raises(httpx.ReadTimeout):
        _get(f"{url}/items", timeout=0.3)


def test_given_rate_limit_fault_when_requesting_then_throttle_with_optional_retry_after(
    echo: Any,
) -> None:
    ctx, url = echo
    _add_fault(ctx, kind="rate_limit", calls=[1], retry_after=3)
    _add_fault(ctx, kind="rate_limit", calls=[2])
    first, second, third = (_get(f"{url}/items/1") for _ in range(3))
    assert (first.status_code, first.headers.get("Retry-After")) == (429, "3")
    # The first fault matched call 2 too but did not fire, so the second saw its first call.
    assert second.status_code == 200
    assert third.status_code == 429 and "Retry-After" not in third.headers


def test_given_server_error_fault_when_requesting_then_that_status(echo: Any) -> None:
    ctx, url = echo
    _add_fault(ctx, kind="server_error", status=502, every=2)
    statuses = [_get(f"{url}/items/1").status_code for _ in range(4)]
    assert statuses == [200, 502, 200, 502]


def test_given_expired_token_fault_when_using_issued_token_then_it_stays_expired(
    echo: Any,
) -> None:
    ctx, url = echo
    token, _ = ctx.tokens.issue_access("intercom", ttl=600)
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{url}/items", headers=headers).json()["principal"] == "access"
    _add_fault(ctx, kind="expired_token", max_times=1)
    assert httpx.get(f"{url}/items", headers=headers).status_code == 401
    assert httpx.get(f"{url}/items", headers=headers).status_code == 401  # expired for good
    assert _get(f"{url}/items").status_code == 200  # the static token was never expired


def test_given_faults_and_calls_when_reading_stats_then_counts_by_route_and_status(
    echo: Any,
) -> None:
    ctx, url = echo
    _add_fault(ctx, kind="server_error", calls=[1])
    for _ in range(3):
        _get(f"{url}/items/7")
    stats = httpx.get(f"{url}/_sandbox/stats").json()["vendors"]["intercom"]
    assert stats["routes"]["GET /items/{item_id}"] == {
        "calls": 3,
        "statuses": {"503": 1, "200": 2},
    }
    assert stats["faults"] == {"server_error": 1}
    httpx.post(f"{url}/_sandbox/stats/reset")
    assert httpx.get(f"{url}/_sandbox/stats").json()["total"] == 0


def test_given_control_api_when_adding_bad_fault_then_400_and_nothing_added(echo: Any) -> None:
    ctx, url = echo
    resp = httpx.post(
        f"{url}/_sandbox/faults", json=[{"kind": "drop"}, {"kind": "explode"}], timeout=5
    )
    assert resp.status_code == 400
    assert "explode" in resp.json()["message"]
    assert ctx.faults.list() == []
    ok = httpx.post(f"{url}/_sandbox/faults", json={"kind": "slow", "delay": 0.01})
    assert ok.status_code == 201
    assert httpx.delete(f"{url}/_sandbox/faults").json() == {"removed": 1}


def test_given_raw_socket_garbage_when_sent_then_server_survives(echo: Any) -> None:
    _, url = echo
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
        sock.recv(1024)
    assert _get(f"{url}/items/1").status_code == 200


# -- units ---------------------------------------------------------------------------------


def test_given_fault_shorthand_when_parsing_then_fields_are_typed() -> None:
    fault = Fault.parse("kind=rate_limit,vendor=hubspot,probability=0.25,calls=3;5,retry_after=2")
    assert (fault.kind, fault.vendor, fault.probability, fault.calls, fault.retry_after) == (
        "rate_limit",
        "hubspot",
        0.25,
        [3, 5],
        2.0,
    )
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault.parse("kind=meltdown")
    with pytest.raises(ValueError, match="probability"):
        Fault.parse("kind=drop,probability=2")


def test_given_probability_and_seed_when_deciding_then_rate_and_sequence_are_reproducible() -> None:
    def run(seed: int) -> list[bool]:
        injector = FaultInjector(seed)
        injector.add(Fault(kind="server_error", probability=0.2))
        return [injector.decide("hubspot", "GET", "/x") is not None for _ in range(5000)]

    first = run(42)
    assert first == run(42)
    assert 0.17 < sum(first) / len(first) < 0.23


def test_given_vendor_and_path_filters_when_deciding_then_only_matches_fire() -> None:
    injector = FaultInjector()
    injector.add(Fault(kind="drop", vendor="salesforce", method="GET", path="/services/data/*"))
    assert injector.decide("salesforce", "GET", "/services/data/v66.0/query") is not None
    assert injector.decide("salesforce", "POST", "/services/data/v66.0/query") is None
    assert injector.decide("hubspot", "GET", "/services/data/v66.0/query") is None


def test_given_rolling_window_when_full_then_denies_until_oldest_call_ages_out() -> None:
    window = RollingWindow(limit=3, interval=10)
    assert [window.take("t", now).allowed for now in (0, 1, 2)] == [True, True, True]
    denied = window.take("t", 5)
    assert (denied.allowed, denied.remaining) == (False, 0)
    assert denied.retry_after == pytest.approx(5)
    assert window.take("t", 10.01).allowed
    assert window.take("other", 5).allowed  # per key


def test_given_fixed_window_when_next_window_starts_then_capacity_resets() -> None:
    window = FixedWindow(limit=2, interval=10)
    assert window.take("a", 20.0).remaining == 1
    assert window.take("a", 21.0).remaining == 0
    denied = window.take("a", 29.0)
    assert not denied.allowed and denied.reset_at == 30.0
    assert window.take("a", 30.0).allowed


def test_given_store_reopened_when_reserving_ids_then_sequence_continues(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    assert list(store.next_ids("hubspot:companies", 3, start=100)) == [100, 101, 102]
    store.close()
    again = Store(tmp_path / "s.sqlite")
    assert list(again.next_ids("hubspot:companies", 2)) == [103, 104]
    again.close()
