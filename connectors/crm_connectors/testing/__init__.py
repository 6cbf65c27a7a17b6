"""The conformance kit: one test body per behaviour, run over a connector against its emulator.

A connector (in this repository or its own package) gets the whole suite with two lines in a
test module::

    from crm_connectors.testing import conformance_suite

    TestZendeskConformance = conformance_suite("zendesk")

The suite seeds a small world into a sandbox serving that CRM alone, builds the connector from
the emulator's ``client_settings`` exactly as the plugins build it (``ConnectorSpec.connect``,
``ConnectorSpec.writer``), and checks, over real HTTP:

- **discovery** types the custom fields the emulator seeds (``KitHooks.typed_fields``);
- **a full read equals the emulator's store**: every record once, deleted ones flagged
  (``KitHooks.expected``);
- **a read stopped anywhere and resumed from its bookmark loses nothing**;
- **20% faults** (throttles with and without ``Retry-After``, 5xx, dropped connections, cut
  bodies) give the same records as a clean read;
- **1% changed** through the vendor's API (``KitHooks.edit``) gives an incremental read of
  those, plus at most the records that share the bookmark's second;
- **personal fields are marked PII** (emails, phones, person names);
- **errors are classified**: rejected credentials are an ``AuthError`` naming one of the
  connector's settings, throttles a ``RateLimited`` (or ``QuotaExhausted``), 5xx a
  ``ServerError``, each after the client's retries;
- **the writer** creates its fields once and touches no other, writes in calls of its batch
  maximum and reads back what it wrote, restores earlier values (a rollback), lists the fields to
  create when it may not, and creates, finds and deletes a follow-up.

Waiting never happens on the wall clock: clients sleep on the sandbox's clock (it advances).
This module is test tooling: it comes with the sandbox, not with the plugins.
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from .. import registry
from ..base import Bookmark, ConnectorSpec, Record, Resource
from ..errors import AuthError, CrmError, QuotaExhausted, RateLimited, ServerError
from ..fields import Field, normalize
from ..http import RetryPolicy
from ..pacing import NoPacing
from ..sandbox.app import Sandbox, SandboxConfig
from ..sandbox.emulators import EmulatorSpec, KitHooks, client_settings, emulators
from ..sandbox.faults import Fault
from ..sandbox.seed import seed
from ..sandbox.world import WorldSpec

#: Fields that are personal wherever they appear (matched on the field's own name).
PERSONAL = re.compile(
    r"^(e_?mail|phone|mobile_?phone|first_?name|last_?name|given_?name|family_?name)$", re.I
)
#: The kit's own logical fields for write-back checks: one of each kind.
FIELDS = (
    Field("score", "Kit score", "number", "A number the kit writes.", low=0, high=100),
    Field("band", "Kit band", "enum", "An option the kit writes.", options=("good", "bad")),
    Field("factors", "Kit text", "text", "A text the kit writes.", max_length=255),
    Field("updated_at", "Kit time", "datetime", "A time the kit writes."),
)
VALUES = ({"score": 42.5, "band": "bad", "factors": "kit", "updated_at": "2026-01-02T03:04:05Z"},
          {"score": 7.0, "band": "good", "factors": "kit again",
           "updated_at": "2026-02-03T04:05:06Z"})  # fmt: skip
#: Faults that must have fired before the faults check counts.
MIN_FAULTS = 5
#: The mixed faults of the faults check: 20% of the calls in all.
FAULTS = (
    {"kind": "rate_limit", "retry_after": 1, "probability": 0.05},
    {"kind": "rate_limit", "probability": 0.05},
    {"kind": "server_error", "status": 503, "probability": 0.04},
    {"kind": "drop", "probability": 0.03},
    {"kind": "truncate", "probability": 0.03},
)


def _schema_type(schema: Mapping[str, Any], path: str) -> str | None:
    """The non-null JSON type at a dotted property path (None when absent)."""
    node: Any = schema
    for part in path.split("."):
        node = (node.get("properties") or {}).get(part) if isinstance(node, Mapping) else None
        if node is None:
            return None
    types = node.get("type")
    types = [types] if isinstance(types, str) else list(types or [])
    return next((t for t in types if t != "null"), None)


def _personal_unmarked(schema: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, Mapping):
            continue
        if PERSONAL.match(name) and not prop.get("x-pii"):
            yield prefix + name
        if prop.get("properties"):
            yield from _personal_unmarked(prop, f"{prefix}{name}.")


class Harness:
    """One CRM's connector against its emulator, in sandboxes made from one seeded world."""

    def __init__(self, name: str, workdir: Path, size: int, seed_value: int) -> None:
        self.name = name
        self.spec: ConnectorSpec = registry.get(name)
        emulator = emulators().get(name)
        if emulator is None or emulator.kit is None:
            pytest.skip(f"{name} has no emulator with conformance hooks")
        self.emulator: EmulatorSpec = emulator
        self.kit: KitHooks = emulator.kit
        self.workdir = workdir
        self.template = workdir / "world.sqlite"
        seed(self.template, WorldSpec(size=size, seed=seed_value), (name,))
        self._sandboxes: list[Sandbox] = []

    def sandbox(self, **options: Any) -> Sandbox:
        """A fresh sandbox of the seeded world (its own copy of the database)."""
        db = self.workdir / f"sandbox-{len(self._sandboxes)}.sqlite"
        shutil.copyfile(self.template, db)
        config = SandboxConfig(
            db_path=db,
            port=0,
            vendors=(self.name,),
            rate_limits="off",
            options={self.name: options} if options else {},
        )
        box = Sandbox(config).start()
        self._sandboxes.append(box)
        return box

    def stop(self) -> None:
        for box in self._sandboxes:
            box.stop()

    def config(self, box: Sandbox, **overrides: Any) -> dict[str, Any]:
        return client_settings(box.urls, (self.name,)) | {"crms": [self.name], **overrides}

    def client_kw(self, box: Sandbox, retry: RetryPolicy | None = None) -> dict[str, Any]:
        """No proactive pacing (limits are off) and every wait on the sandbox's clock."""
        kw: dict[str, Any] = {"pacer": NoPacing(), "sleep": box.ctx.clock.sleep}
        if retry is not None:
            kw["retry"] = retry
        return kw

    def resources(self, box: Sandbox, **client_kw: Any) -> tuple[Any, list[Resource]]:
        connector = self.spec.connect(self.config(box), **(self.client_kw(box) | client_kw))
        return connector, connector.resources()

    def read_all(self, box: Sandbox, **client_kw: Any) -> dict[str, list[tuple[Record, Bookmark]]]:
        connector, resources = self.resources(box, **client_kw)
        try:
            return {r.name: list(r.read(Bookmark())) for r in resources}
        finally:
            connector.close()

    def expected(self, box: Sandbox) -> Mapping[str, Any]:
        return self.kit.expected(box.store)

    def calls(self, box: Sandbox, routes: frozenset[str]) -> int:
        vendor = box.ctx.stats.snapshot()["vendors"].get(self.name, {})
        return sum(
            int(info.get("calls", 0))
            for route, info in (vendor.get("routes") or {}).items()
            if route in routes
        )


def conformance_suite(name: str, *, size: int = 150, seed_value: int = 7) -> type:
    """The conformance tests of the connector ``name`` as a pytest class (see the module doc)."""

    class Suite:
        crm = name

        @pytest.fixture(scope="class")
        def harness(self, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
            harness = Harness(name, tmp_path_factory.mktemp(f"kit-{name}"), size, seed_value)
            yield harness
            harness.stop()

        @pytest.fixture(scope="class")
        def shared(self, harness: Harness) -> Sandbox:
            """A sandbox the read-only checks share (faults are removed after each)."""
            return harness.sandbox()

        @pytest.fixture(scope="class")
        def clean(self, harness: Harness, shared: Sandbox) -> dict[str, Any]:
            return harness.read_all(shared)

        # -- reading -------------------------------------------------------------------------

        def test_discovery_types_the_custom_fields(self, harness: Harness, shared: Sandbox) -> None:
            connector, resources = harness.resources(shared)
            try:
                schemas = {r.name: r.schema() for r in resources}
            finally:
                connector.close()
            assert schemas, "the connector offers no resource"
            for stream, fields in harness.kit.typed_fields.items():
                for path, kind in fields.items():
                    assert _schema_type(schemas[stream], path) == kind, (stream, path)

        def test_a_full_read_gives_every_record_once_with_deletes_flagged(
            self, harness: Harness, shared: Sandbox, clean: dict[str, Any]
        ) -> None:
            expected = harness.expected(shared)
            assert expected, "the kit's hooks name no stream to check"
            for stream, want in expected.items():
                got = [rec for rec, _ in clean[stream]]
                ids = [rec.id for rec in got]
                assert len(ids) == len(set(ids)), f"{stream}: records read twice"
                assert set(ids) == want.ids, stream
                assert {rec.id for rec in got if rec.deleted} == want.deleted, stream
                # a bookmark saved later never resumes earlier than one saved before it
                marks = [bm.watermark for _, bm in clean[stream] if bm.watermark is not None]
                assert marks == sorted(marks), f"{stream}: a bookmark went back"

        def test_a_read_stopped_anywhere_then_resumed_loses_nothing(
            self, harness: Harness, shared: Sandbox, clean: dict[str, Any]
        ) -> None:
            for stream, want in harness.expected(shared).items():
                total = len(clean[stream])
                for stop in sorted({1, total // 3, total // 2, max(total - 1, 1)}):
                    if stop < 1 or stop > total:
                        continue
                    connector, resources = harness.resources(shared)
                    try:
                        resource = next(r for r in resources if r.name == stream)
                        seen: set[str] = set()
                        bookmark = Bookmark()
                        for n, (rec, after) in enumerate(resource.read(Bookmark()), 1):
                            seen.add(rec.id)
                            bookmark = after
                            if n == stop:
                                break  # the process dies here; its last state is `bookmark`
                        seen |= {rec.id for rec, _ in resource.read(bookmark)}
                    finally:
                        connector.close()
                    assert seen == want.ids, (stream, stop)

        def test_twenty_percent_faults_give_the_records_of_a_clean_read(
            self, harness: Harness, shared: Sandbox, clean: dict[str, Any]
        ) -> None:
            faults = shared.ctx.faults
            for fault in FAULTS:
                bare = fault["kind"] == "rate_limit" and "retry_after" not in fault
                if bare and harness.kit.bare_throttle_is_quota:
                    continue
                faults.add(
                    Fault.from_dict({"vendor": name, "path": harness.kit.api_paths, **fault})
                )
            retry = RetryPolicy(max_tries=12, max_time=100_000)

            def fired() -> int:
                vendor = shared.ctx.stats.snapshot()["vendors"][name]
                return sum(vendor.get("faults", {}).values())

            before = fired()
            try:
                # a CRM with big pages makes few calls: read again until enough faults fired
                for _ in range(20):
                    faulty = harness.read_all(shared, retry=retry)
                    for stream in harness.expected(shared):
                        got = {r.id: r for r, _ in faulty[stream]}
                        assert got == {r.id: r for r, _ in clean[stream]}, stream
                    if fired() - before >= MIN_FAULTS:
                        break
            finally:
                faults.clear()
            assert fired() - before >= MIN_FAULTS, "too few faults fired: the check proved little"

        def test_personal_fields_are_marked_pii(self, harness: Harness, shared: Sandbox) -> None:
            connector, resources = harness.resources(shared)
            try:
                unmarked = [
                    f"{r.name}.{path}" for r in resources for path in _personal_unmarked(r.schema())
                ]
            finally:
                connector.close()
            assert not unmarked

        def test_errors_are_classified(self, harness: Harness, shared: Sandbox) -> None:
            secrets = {k for k, v in harness.spec.settings.items() if v.get("secret")}
            bad = {k: "rejected-by-the-kit" for k in harness.config(shared) if k in secrets}
            assert bad, "the emulator's client settings carry no credential"
            once = RetryPolicy(max_tries=2, max_time=100)
            kw = harness.client_kw(shared, once)
            first = harness.kit.account_stream
            # rejected credentials name a setting of the connector
            with pytest.raises(AuthError) as rejected:
                connector = harness.spec.connect(harness.config(shared, **bad), **kw)
                try:
                    resource = next(r for r in connector.resources() if r.name == first)
                    list(resource.read(Bookmark()))
                finally:
                    connector.close()
            assert rejected.value.setting in harness.spec.settings, rejected.value.setting
            # a throttle and a server error that last, after the client's retries
            for fault, kinds in (
                ({"kind": "rate_limit", "retry_after": 1}, (RateLimited, QuotaExhausted)),
                ({"kind": "server_error", "status": 503}, (ServerError,)),
            ):
                shared.ctx.faults.add(
                    Fault.from_dict({"vendor": name, "path": harness.kit.api_paths, **fault})
                )
                try:
                    with pytest.raises(CrmError) as caught:
                        connector = harness.spec.connect(harness.config(shared), **kw)
                        try:
                            resource = next(r for r in connector.resources() if r.name == first)
                            list(resource.read(Bookmark()))
                        finally:
                            connector.close()
                finally:
                    shared.ctx.faults.clear()
                assert isinstance(caught.value, kinds), (fault, type(caught.value))

        def test_one_percent_changed_gives_an_incremental_read_of_those(
            self, harness: Harness
        ) -> None:
            box = harness.sandbox()
            full = harness.read_all(box)
            edited: dict[str, set[str]] = {}
            for stream, rows in full.items():
                live = sorted(rec.id for rec, _ in rows if not rec.deleted)
                count = max(1, len(live) // 100)
                picked = live[:: max(1, len(live) // count)][:count]
                if picked and harness.kit.edit(
                    box.urls[name], harness.emulator.credentials, stream, picked
                ):
                    edited[stream] = set(picked)
            assert edited, "the kit's hooks edit no stream"
            box.ctx.clock.advance(harness.kit.settle_seconds)
            connector, resources = harness.resources(box)
            try:
                for resource in resources:
                    if resource.name not in edited:
                        continue
                    rows = full[resource.name]
                    last = rows[-1][1] if rows else Bookmark()
                    again = {rec.id for rec, _ in resource.read(last)}
                    # the bookmark's second is read again by CRMs that cannot order its ties
                    tied = {
                        rec.id
                        for rec, _ in rows
                        if last.watermark is not None
                        and rec.modified // 1000 == last.watermark // 1000
                    }
                    assert edited[resource.name] <= again, resource.name
                    assert again - edited[resource.name] <= tied, resource.name
            finally:
                connector.close()

        # -- writing -------------------------------------------------------------------------

        def _writer(self, harness: Harness, box: Sandbox) -> Any:
            if harness.spec.writer is None:
                pytest.skip(f"{name} writes nothing back")
            return harness.spec.writer(harness.config(box), FIELDS, **harness.client_kw(box))

        def test_the_writer_creates_its_fields_once_and_writes_in_batches(
            self, harness: Harness
        ) -> None:
            box = harness.sandbox()
            with self._writer(harness, box) as writer:
                names = [cf.name for cf in writer.fields]
                dry = writer.ensure_fields(create=False)
                assert dry.missing == names and not dry.created
                first = writer.ensure_fields()
                assert first.created == names and first.ok, first.message
                again = writer.ensure_fields()
                assert (again.created, sorted(again.existing), again.missing) == (
                    [],
                    sorted(names),
                    [],
                )
                accounts = sorted(
                    i
                    for i in harness.expected(box)[harness.kit.account_stream].ids
                    if i not in harness.expected(box)[harness.kit.account_stream].deleted
                )
                assert accounts, "no live account to write"
                before = writer.read(accounts)
                sent = harness.calls(box, harness.kit.write_routes)
                results = writer.write([(i, VALUES[0]) for i in accounts])
                assert all(r.ok for r in results), [r for r in results if not r.ok][:3]
                calls = harness.calls(box, harness.kit.write_routes) - sent
                assert calls == math.ceil(len(accounts) / writer.batch_max)
                # what is read back is what was sent, in canonical form (a rerun plans nothing)
                wanted = {f.key: normalize(f, VALUES[0][f.key]) for f in FIELDS}
                assert writer.read(accounts) == dict.fromkeys(accounts, wanted)
                # a rollback writes the earlier values back
                restored = writer.write([(i, before[i]) for i in accounts])
                assert all(r.ok for r in restored)
                assert writer.read(accounts) == before

        def test_the_writer_lists_the_fields_to_create_when_it_may_not(
            self, harness: Harness
        ) -> None:
            if not harness.kit.deny_writes:
                pytest.skip(f"{name}'s emulator cannot withhold the right to create fields")
            box = harness.sandbox(**harness.kit.deny_writes)
            with self._writer(harness, box) as writer:
                report = writer.ensure_fields()
                assert report.created == [] and report.missing == [cf.name for cf in writer.fields]
                for cf in writer.fields:
                    assert cf.describe() in report.message, cf.name

        def test_a_followup_is_created_found_and_deleted_once(self, harness: Harness) -> None:
            box = harness.sandbox()
            with self._writer(harness, box) as writer:
                if not hasattr(writer, "create_followup"):
                    pytest.skip(f"{name} makes no follow-ups")
                want = harness.expected(box)[harness.kit.account_stream]
                account = sorted(want.ids - want.deleted)[0]
                marker = "hc-0123456789"
                made = writer.create_followup(
                    account, f"Kit check [{marker}]", "A follow-up the kit makes.", marker=marker
                )
                assert writer.find_followup(account, marker) == made
                assert writer.delete_followup(made) is True
                assert writer.find_followup(account, marker) is None
                assert writer.delete_followup(made) is False

    Suite.__name__ = Suite.__qualname__ = f"TestConformance{name.title().replace('_', '')}"
    return Suite
