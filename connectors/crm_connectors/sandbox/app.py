"""Assemble the sandbox: state, credentials, faults, stats and one listener per vendor.

>>> with Sandbox(SandboxConfig(db_path="crm.sqlite", port=0)) as sb:  # doctest: +SKIP
...     sb.urls["hubspot"]
'http://127.0.0.1:41234'
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import emulators as _emulators
from .auth import TokenStore
from .faults import Fault, FaultInjector
from .http import Listener, VendorApp
from .stats import Stats
from .store import Store

log = logging.getLogger(__name__)


@dataclass
class SandboxConfig:
    db_path: str | Path = "crm-sandbox.sqlite"
    host: str = "127.0.0.1"
    #: Admin and web page port; each vendor listens on port + its emulator's ``port_offset``
    #: (1, 2, 3... in ``crm-sandbox credentials``). 0 picks free ports for all.
    port: int = 8700
    vendors: tuple[str, ...] = field(default_factory=_emulators.vendors)
    tls: bool = False
    tls_dir: str | Path | None = None
    #: "real" enforces each vendor's real rate limits, "off" none.
    rate_limits: str = "real"
    #: Per-vendor overrides of ``DEFAULT_OPTIONS`` (limits, page sizes, TTLs...).
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    fault_seed: int = 0
    credentials: dict[str, dict[str, Any]] = field(default_factory=_emulators.credentials)


class Context:
    """What every emulator shares: the store, credentials, faults, stats and options."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.store = Store(config.db_path)
        self.tokens = TokenStore(self.store, config.credentials)
        self.faults = FaultInjector(config.fault_seed)
        for fault in config.faults:
            self.faults.add(fault)
        self.stats = Stats()
        self.apps: dict[str, VendorApp] = {}
        self.urls: dict[str, str] = {}
        self.lock = threading.RLock()
        from .admin import AdminApp

        self.admin = AdminApp(self)

    def options_for(self, vendor: str, defaults: dict[str, Any]) -> dict[str, Any]:
        options = dict(defaults)
        if self.config.rate_limits == "off":
            options["rate_limits"] = False
        options.update(self.config.options.get(vendor, {}))
        return options

    def update_options(self, vendor: str, changes: dict[str, Any]) -> dict[str, Any]:
        app = self.apps[vendor]
        unknown = set(changes) - set(app.DEFAULT_OPTIONS) - {"rate_limits"}
        if unknown:
            raise ValueError(f"unknown {vendor} option(s): {', '.join(sorted(unknown))}")
        options = {**app.options, **changes}
        app.configure(options)
        return options


def load_emulator(vendor: str) -> type[VendorApp]:
    return _emulators.emulators()[vendor].app


class Sandbox:
    """The running sandbox. Use as a context manager or call :meth:`start` / :meth:`stop`."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.ctx = Context(config)
        self.listeners: dict[str, Listener] = {}

    @property
    def urls(self) -> dict[str, str]:
        return self.ctx.urls

    @property
    def store(self) -> Store:
        return self.ctx.store

    def start(self) -> Sandbox:
        ssl_context = None
        if self.config.tls:
            from .tls import server_context

            tls_dir = self.config.tls_dir or Path(str(self.config.db_path) + ".tls")
            ssl_context = server_context(Path(tls_dir))
        cfg = self.config

        def port_for(offset: int) -> int:
            return 0 if cfg.port == 0 else cfg.port + offset

        try:
            self.listeners["admin"] = Listener(cfg.host, port_for(0), self.ctx.admin, ssl_context)
            for vendor in cfg.vendors:
                app = load_emulator(vendor)(self.ctx)
                self.ctx.apps[vendor] = app
                self.listeners[vendor] = Listener(
                    cfg.host,
                    port_for(_emulators.emulators()[vendor].port_offset),
                    app,
                    ssl_context,
                )
        except OSError:
            for listener in self.listeners.values():
                listener.server.server_close()
            raise
        for name, listener in self.listeners.items():
            self.ctx.urls[name] = listener.url
            listener.start()
        log.info("sandbox listening: %s", self.ctx.urls)
        return self

    def stop(self) -> None:
        for listener in self.listeners.values():
            listener.stop()
        self.listeners.clear()
        self.ctx.store.close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
