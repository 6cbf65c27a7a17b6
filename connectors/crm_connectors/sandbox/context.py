"""What the sandbox's parts share: its configuration and :class:`Context` (the store, the
clock, credentials, faults, stats, options and the running apps). The apps (http.py, admin.py,
the emulators) take a Context; nothing here imports them."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import emulators as _emulators
from .auth import TokenStore
from .clock import Clock
from .faults import Fault, FaultInjector
from .stats import Stats
from .store import Store

if TYPE_CHECKING:
    from .admin import AdminApp
    from .http import VendorApp


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
    """What every emulator shares: the store, the clock, credentials, faults, stats and
    options."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.clock = Clock()
        self.store = Store(config.db_path)
        self.tokens = TokenStore(self.store, config.credentials, self.clock)
        self.faults = FaultInjector(config.fault_seed)
        for fault in config.faults:
            self.faults.add(fault)
        self.stats = Stats(clock=self.clock)
        self.apps: dict[str, VendorApp] = {}
        self.urls: dict[str, str] = {}
        self.lock = threading.RLock()
        self.admin: AdminApp | None = None  # the control API, set by the sandbox

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
