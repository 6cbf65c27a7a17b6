"""The sandbox's own control surface and its web page.

JSON control API, served on the admin port and under ``/_sandbox/`` on every vendor port:

    GET    /_sandbox/health              vendors and their base URLs
    GET    /_sandbox/stats               calls per vendor, route and status; faults fired
    GET    /_sandbox/stats/calls[?vendor=v]  the recent calls in order: time, route, status
    POST   /_sandbox/stats/reset
    GET    /_sandbox/faults              active faults with their match/fire counters
    POST   /_sandbox/faults              add one fault object or a list of them
    DELETE /_sandbox/faults[/{id}]       remove all faults, or one
    GET    /_sandbox/options             each vendor's limits and behaviour knobs
    PATCH  /_sandbox/options             {"hubspot": {"burst_limit": 10}, ...}
    POST   /_sandbox/tokens/expire       {"token": "..."}: an issued access token expires now
    GET    /_sandbox/clock               the sandbox's time: {"time": unix seconds, "offset": s}
    POST   /_sandbox/clock               {"advance": seconds}: move the sandbox's clock forward

The web page (admin port, ``/``) lists each CRM's objects and shows one record's fields as a CRM
user would see them, including the fields target-health writes.
"""

from __future__ import annotations

import html
import urllib.parse
from typing import TYPE_CHECKING, Any

import orjson

from .faults import Fault
from .http import ApiError, Request, Response, VendorApp, json_response, route
from .store import ARCHIVED, LIVE, MERGED, PURGED, loads

if TYPE_CHECKING:
    from .context import Context

STATE_NAMES = {LIVE: "live", ARCHIVED: "archived/deleted", MERGED: "merged", PURGED: "purged"}
PAGE_SIZE = 50


class AdminApp(VendorApp):
    vendor = "sandbox"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)

    def render_error(self, req: Request, err: ApiError) -> Response:
        return json_response({"error": err.code, "message": err.message}, err.status)

    def authenticate(self, req: Request, route: Any) -> Any:
        return None

    def handle(self, req: Request) -> Response:
        """Serve a ``/_sandbox/`` request that arrived on a vendor port."""
        found, params, allowed = self.match(req.method, req.path)
        try:
            if found is None:
                if allowed:
                    raise ApiError(405, "method_not_allowed", f"allowed: {', '.join(allowed)}")
                raise ApiError(404, "not_found", f"no sandbox route {req.path}")
            return getattr(self, found.handler_name)(req, **params)
        except ApiError as err:
            return self.render_error(req, err)
        except (ValueError, TypeError) as exc:
            return self.render_error(req, ApiError(400, "bad_request", str(exc)))

    # -- control API -----------------------------------------------------------------------

    @route("GET", "/_sandbox/health", auth=False)
    def health(self, req: Request) -> Response:
        return json_response({"ok": True, "urls": self.ctx.urls, "tls": self.ctx.config.tls})

    @route("GET", "/_sandbox/stats", auth=False)
    def stats(self, req: Request) -> Response:
        return json_response(self.ctx.stats.snapshot())

    @route("GET", "/_sandbox/stats/calls", auth=False)
    def stats_calls(self, req: Request) -> Response:
        vendor = req.query.get("vendor")
        return json_response(self.ctx.stats.timeline(vendor[0] if vendor else None))

    @route("POST", "/_sandbox/stats/reset", auth=False)
    def stats_reset(self, req: Request) -> Response:
        self.ctx.stats.reset()
        return json_response({"ok": True})

    @route("GET", "/_sandbox/faults", auth=False)
    def faults_list(self, req: Request) -> Response:
        return json_response({"faults": self.ctx.faults.list()})

    @route("POST", "/_sandbox/faults", auth=False)
    def faults_add(self, req: Request) -> Response:
        body = req.json()
        items = body if isinstance(body, list) else [body]
        if not all(isinstance(item, dict) for item in items):
            raise ApiError(400, "bad_request", "send a fault object or a list of them")
        faults = [Fault.from_dict(item) for item in items]  # validate all before adding any
        added = [self.ctx.faults.add(f).to_dict() for f in faults]
        return json_response({"faults": added}, 201)

    @route("DELETE", "/_sandbox/faults", auth=False)
    def faults_clear(self, req: Request) -> Response:
        return json_response({"removed": self.ctx.faults.clear()})

    @route("DELETE", "/_sandbox/faults/{fault_id}", auth=False)
    def faults_remove(self, req: Request, fault_id: str) -> Response:
        return json_response({"removed": self.ctx.faults.clear(int(fault_id))})

    @route("GET", "/_sandbox/clock", auth=False)
    def clock_get(self, req: Request) -> Response:
        clock = self.ctx.clock
        return json_response({"time": clock.time(), "offset": clock.offset})

    @route("POST", "/_sandbox/clock", auth=False)
    def clock_advance(self, req: Request) -> Response:
        seconds = req.json_object().get("advance")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ApiError(400, "bad_request", 'send {"advance": seconds >= 0}')
        self.ctx.clock.advance(float(seconds))
        return self.clock_get(req)

    @route("GET", "/_sandbox/options", auth=False)
    def options_get(self, req: Request) -> Response:
        return json_response({v: app.options for v, app in self.ctx.apps.items()})

    @route("PATCH", "/_sandbox/options", auth=False)
    def options_patch(self, req: Request) -> Response:
        body = req.json_object()
        result = {}
        for vendor, changes in body.items():
            if vendor not in self.ctx.apps or not isinstance(changes, dict):
                raise ApiError(
                    400, "bad_request", f"unknown vendor {vendor!r} or options not an object"
                )
            result[vendor] = self.ctx.update_options(vendor, changes)
        return json_response(result)

    @route("POST", "/_sandbox/tokens/expire", auth=False)
    def tokens_expire(self, req: Request) -> Response:
        token = req.json_object().get("token")
        if not isinstance(token, str):
            raise ApiError(400, "bad_request", 'send {"token": "..."}')
        self.ctx.tokens.expire(token)
        return json_response({"ok": True})

    # -- web page --------------------------------------------------------------------------

    @route("GET", "/", auth=False)
    def ui_index(self, req: Request) -> Response:
        rows = []
        for vendor, obj, live in self.store.objects():
            link = f"/ui/{_q(vendor)}/{_q(obj)}"
            rows.append(
                f"<tr><td>{_e(vendor)}</td><td><a href='{link}'>{_e(obj)}</a></td>"
                f"<td class=n>{live:,}</td></tr>"
            )
        urls = "".join(
            f"<li>{_e(name)}: <code>{_e(url)}</code></li>" for name, url in self.ctx.urls.items()
        )
        body = (
            f"<h1>CRM sandbox</h1><ul>{urls}</ul>"
            "<table><tr><th>CRM</th><th>object</th><th>records</th></tr>"
            f"{''.join(rows) or '<tr><td colspan=3>empty: run crm-sandbox seed</td></tr>'}</table>"
        )
        return _page("CRM sandbox", body)

    @route("GET", "/ui/{vendor}/{obj}", auth=False)
    def ui_list(self, req: Request, vendor: str, obj: str) -> Response:
        page = max(int(req.arg("page", "0") or 0), 0)
        needle = (req.arg("q") or "").strip()
        sql = "SELECT id, updated_ms, state, data FROM records WHERE vendor = ? AND object = ?"
        args: list[Any] = [vendor, obj]
        if needle:
            sql += " AND (id = ? OR data LIKE ?)"
            args += [needle, f"%{needle}%"]
        sql += " ORDER BY seq LIMIT ? OFFSET ?"
        args += [PAGE_SIZE + 1, page * PAGE_SIZE]
        found = self.store.conn().execute(sql, args).fetchall()
        app = self.ctx.apps.get(vendor)
        rows = []
        for rid, updated_ms, state, data in found[:PAGE_SIZE]:
            fields = _fields(app, obj, loads(data))
            title = next((str(fields[k]) for k in TITLE_KEYS if fields.get(k)), "")
            rows.append(
                f"<tr><td><a href='/ui/{_q(vendor)}/{_q(obj)}/{_q(rid)}'>{_e(rid)}</a></td>"
                f"<td>{_e(title[:80])}</td><td>{STATE_NAMES.get(state, state)}</td>"
                f"<td>{_ms(updated_ms)}</td></tr>"
            )
        nav = ""
        if page:
            nav += f"<a href='?page={page - 1}&q={_q(needle)}'>previous</a> "
        if len(found) > PAGE_SIZE:
            nav += f"<a href='?page={page + 1}&q={_q(needle)}'>next</a>"
        body = (
            f"<p><a href='/'>CRM sandbox</a> / {_e(vendor)}</p><h1>{_e(obj)}</h1>"
            f"<form><input name=q value='{_e(needle)}' placeholder='id or text'>"
            "<button>search</button></form>"
            "<table><tr><th>id</th><th>name</th><th>state</th><th>last modified</th></tr>"
            f"{''.join(rows)}</table><p>{nav}</p>"
        )
        return _page(f"{vendor} {obj}", body)

    @route("GET", "/ui/{vendor}/{obj}/{rid}", auth=False)
    def ui_record(self, req: Request, vendor: str, obj: str, rid: str) -> Response:
        row = self.store.get(vendor, obj, rid)
        if row is None:
            return _page("not found", f"<h1>No {_e(obj)} {_e(rid)} in {_e(vendor)}</h1>", 404)
        _seq, rid, created_ms, updated_ms, state, data = row
        fields = _fields(self.ctx.apps.get(vendor), obj, loads(data))
        items = "".join(
            f"<tr><th>{_e(k)}</th><td>{_e(_show(v))}</td></tr>" for k, v in sorted(fields.items())
        )
        assoc = (
            self.store.conn()
            .execute(
                "SELECT to_type, to_id FROM associations WHERE vendor = ? AND from_type = ?"
                " AND from_id = ? ORDER BY to_type, to_id LIMIT 200",
                (vendor, obj, rid),
            )
            .fetchall()
        )
        links = ", ".join(
            f"<a href='/ui/{_q(vendor)}/{_q(t)}/{_q(i)}'>{_e(t)} {_e(i)}</a>" for t, i in assoc
        )
        body = (
            f"<p><a href='/'>CRM sandbox</a> / {_e(vendor)} / "
            f"<a href='/ui/{_q(vendor)}/{_q(obj)}'>{_e(obj)}</a></p>"
            f"<h1>{_e(obj)} {_e(rid)}</h1>"
            f"<p>{STATE_NAMES.get(state, state)}; created {_ms(created_ms)};"
            f" last modified {_ms(updated_ms)}</p>"
            f"<table>{items}</table>" + (f"<h2>Associations</h2><p>{links}</p>" if links else "")
        )
        return _page(f"{vendor} {obj} {rid}", body)


TITLE_KEYS = ("name", "Name", "subject", "Subject", "email", "Email", "firstname", "hs_content")


def _fields(app: VendorApp | None, obj: str, data: Any) -> dict[str, Any]:
    hook = getattr(app, "ui_fields", None)
    if hook is not None:
        return hook(obj, data)
    if isinstance(data, dict) and isinstance(data.get("properties"), dict):
        return dict(data["properties"])
    if isinstance(data, dict):
        flat = {k: v for k, v in data.items() if k != "custom_attributes"}
        for k, v in (data.get("custom_attributes") or {}).items():
            flat[f"custom_attributes.{k}"] = v
        return flat
    return {"value": data}


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _ms(ms: int) -> str:
    import datetime as dt

    return (
        dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        + "Z"
    )


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _q(text: str) -> str:
    return urllib.parse.quote(text, safe="")


STYLE = (
    "body{font:14px system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:4px 10px;"
    "text-align:left;vertical-align:top}th{background:#f6f6f6}.n{text-align:right}"
    "td{max-width:60em;overflow-wrap:anywhere}"
)


def _page(title: str, body: str, status: int = 200) -> Response:
    doc = (
        f"<!doctype html><html><head><meta charset=utf-8><title>{_e(title)}</title>"
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    )
    return Response(status, doc.encode(), content_type="text/html;charset=utf-8")
