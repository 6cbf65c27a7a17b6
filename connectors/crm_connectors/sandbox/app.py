"""Assemble the sandbox: its context (context.py) and one listener per vendor.

>>> with Sandbox(SandboxConfig(db_path="crm.sqlite", port=0)) as sb:  # doctest: +SKIP
...     sb.urls["hubspot"]
'http://127.0.0.1:41234'
"""

from __future__ import annotations

import logging
from pathlib import Path

from . import emulators as _emulators
from .admin import AdminApp
from .context import Context, SandboxConfig
from .http import Listener, VendorApp
from .store import Store

__all__ = ["Context", "Sandbox", "SandboxConfig", "load_emulator"]

log = logging.getLogger(__name__)


def load_emulator(vendor: str) -> type[VendorApp]:
    return _emulators.emulators()[vendor].app


class Sandbox:
    """The running sandbox. Use as a context manager or call :meth:`start` / :meth:`stop`."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.ctx = Context(config)
        self.admin = self.ctx.admin = AdminApp(self.ctx)
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
            self.listeners["admin"] = Listener(cfg.host, port_for(0), self.admin, ssl_context)
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
