"""Map world bundles into Zendesk Support records: organizations, users (end users, agents and the
sandbox admin), tickets with their metric sets and satisfaction ratings, and the field
definitions, in Zendesk's own JSON, written in large batches.

Each record is stored as the API object without ``url`` (the emulator adds it with the caller's
host [API.md §1.1]); ``records.updated_ms`` is ``updated_at`` (tickets: ``generated_timestamp``
[API.md §3.4]) in milliseconds.
"""

from __future__ import annotations

from typing import Any

import orjson

from crm_connectors.sandbox.store import ARCHIVED, LIVE, MERGED, PURGED, RowBuffer, Store
from crm_connectors.sandbox.world import DAY_MS, OWNERS, Account, Bundle, Ticket, WorldSpec

from .model import (
    ADMIN_EMAIL,
    ADMIN_NAME,
    ADMIN_USER_ID,
    AUTO_CLOSE_DAYS,
    COUNTER_AUDIT,
    COUNTER_FIELD_OPTION,
    COUNTER_JOB,
    COUNTER_ORG,
    COUNTER_ORG_FIELD,
    COUNTER_TICKET,
    COUNTER_USER,
    FIELD_OPTION_BASE,
    ORG_FIELD_BASE,
    PRIORITY,
    REALISTIC_ORG_FIELDS,
    SEEDED_ORG_FIELDS,
    SUPPORT_ADDRESS,
    SYSTEM_TICKET_FIELDS,
    VENDOR,
    JsonObj,
    date_value,
    e164,
    field_option,
    iso,
    metric_record,
    org_id,
    organization_field,
    organization_record,
    rating_record,
    staff_id,
    ticket_field,
    ticket_record,
    user_id,
    user_record,
)

BATCH = 10_000
#: Organizations: a deleted or merged account is a deleted organization (kept for the export
#: with ``deleted_at``, see FIDELITY.md). Users: deleted, archived and merged contacts are
#: users with ``active: false`` (a merged-away Zendesk user is deleted) [API.md §3.5].
_ORG_STATE = {"deleted": PURGED, "archived": PURGED, "merged": MERGED}
_USER_STATE = {"deleted": ARCHIVED, "archived": ARCHIVED, "merged": MERGED}
#: First-reply targets by world priority (minutes); the reply time is spread below it.
_REPLY_MINUTES = {"urgent": 20, "high": 45, "medium": 120, "low": 240}
#: The fields' and staff's creation time: before any account of the world (2,400 days max).
_SETUP_DAYS = 2_500


def _json(data: Any) -> str:
    return orjson.dumps(data).decode()


class Seeder:
    """Buffers Zendesk rows and writes them with ``Store.insert_many``."""

    def __init__(self, store: Store, spec: WorldSpec) -> None:
        self.store = store
        self.spec = spec
        self.anchor_s = spec.anchor_ms // 1000
        self.setup_s = (spec.anchor_ms - _SETUP_DAYS * DAY_MS) // 1000
        objects = ("organizations", "users", "tickets", "ticket_metrics", "satisfaction_ratings")
        self.buffer = RowBuffer(store, VENDOR, BATCH)
        self.buffer.counts.update(dict.fromkeys(objects, 0))
        self._put = self.buffer.put
        self.max_key = {"account": 0, "contact": 0, "ticket": 0}
        #: Organization names are unique [API.md §5.1]; the world repeats some, so a repeat
        #: carries its external id. Unique per seeding process (parallel parts may repeat).
        self.names: set[str] = set()
        # Staff first: their ids are the lowest, and lists order by insertion (= id order).
        self.staff = self._staff()
        with self.store.write() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO records (vendor, object, id, created_ms, updated_ms,"
                " state, data) VALUES (?, 'users', ?, ?, ?, ?, ?)",
                ((VENDOR, str(d["id"]), self.setup_s * 1000, self.setup_s * 1000, LIVE, _json(d))
                 for d in self.staff),
            )  # fmt: skip

    def _staff(self) -> list[JsonObj]:
        """The sandbox admin (the well-known credentials' email) and ``world.OWNERS``: the first
        owner is an admin, the others agents."""
        out = [
            user_record(ADMIN_USER_ID, ADMIN_NAME, ADMIN_EMAIL, role="admin",
                        created_s=self.setup_s, updated_s=self.setup_s, last_login_s=self.anchor_s)
        ]  # fmt: skip
        for i, (first, last, email) in enumerate(OWNERS):
            out.append(
                user_record(staff_id(i), f"{first} {last}", email,
                            role="admin" if i == 0 else "agent", created_s=self.setup_s,
                            updated_s=self.setup_s, last_login_s=self.anchor_s)
            )  # fmt: skip
        return out

    def _unique_name(self, a: Account) -> str:
        name = a.name
        if name.casefold() in self.names:
            name = f"{a.name} ({a.external_id})"
        self.names.add(name.casefold())
        return name

    def add(self, bundle: Bundle) -> None:
        a = bundle.account
        if VENDOR not in a.crms:
            return  # contacts and tickets live in an account's CRMs only
        oid = org_id(a.key)
        created_s, updated_s = a.created_ms // 1000, a.updated_ms // 1000
        org_state = _ORG_STATE.get(a.lifecycle.get(VENDOR, ""), LIVE)
        if self.spec.realistic:  # the same facts under the account's own keys
            fields: JsonObj = {
                "contract_value": a.arr,
                "licensed_agents": a.seats,
                "service_tier": f"tier_{a.plan}" if a.plan else None,
                "contract_end": date_value(a.renewal_date),
                "customer_since_date": date_value(a.customer_since),
                "region": a.country,
            }
        elif self.spec.custom_fields:
            fields = {
                "arr": a.arr,
                "seats": a.seats,
                "plan": a.plan,
                "renewal_date": date_value(a.renewal_date),
                "customer_since": date_value(a.customer_since),
            }
        else:  # a plain account defines no organization field
            fields = {}
        org = organization_record(
            oid, self._unique_name(a), created_s=created_s, updated_s=updated_s,
            external_id=a.external_id, domain_names=[a.domain] if a.domain else [],
            fields=fields, details=a.industry, notes=a.description, tags=[a.plan],
        )  # fmt: skip
        if org_state != LIVE:
            org["deleted_at"] = iso(updated_s)
        self._put("organizations", oid, a.created_ms, a.updated_ms, org_state, org)
        self.max_key["account"] = max(self.max_key["account"], a.key)

        users: dict[int, JsonObj] = {}
        first_live: JsonObj | None = None
        for c in bundle.contacts:
            if VENDOR not in c.crms:
                continue
            life = c.lifecycle.get(VENDOR, "")
            name = " ".join(p for p in (c.first_name, c.last_name) if p) or c.email or "Unknown"
            data = user_record(
                user_id(c.key), name, c.email, role="end-user",
                created_s=c.created_ms // 1000, updated_s=c.updated_ms // 1000,
                organization_id=oid, phone=e164(c.phone), active=not life,
                external_id=f"CON-{c.key:07d}",
                last_login_s=c.last_seen_ms // 1000 if c.last_seen_ms else None,
            )  # fmt: skip
            users[c.key] = data
            if not life and first_live is None:
                first_live = data
            state = _USER_STATE.get(life, LIVE)
            self._put("users", data["id"], c.created_ms, c.updated_ms, state, data)
            self.max_key["contact"] = max(self.max_key["contact"], c.key)

        for t in bundle.tickets:
            if t.crm == VENDOR:
                requester = users.get(t.contact_key or -1) or first_live
                self._ticket(t, a, oid, requester)

    def _ticket(self, t: Ticket, a: Account, oid: int, requester: JsonObj | None) -> None:
        created_s, updated_s = t.created_ms // 1000, t.updated_ms // 1000
        closed_s = t.closed_ms // 1000 if t.closed_ms else None
        assignee = staff_id(a.owner)
        if closed_s is None:
            status = t.status  # open | pending
        elif closed_s + AUTO_CLOSE_DAYS * 86_400 <= self.anchor_s:
            status = "closed"
        else:
            status = "solved"
        rating: JsonObj | None = None
        if t.csat is not None and closed_s is not None:
            score = "good" if t.csat >= 4 else "bad" if t.csat <= 2 else "offered"
            comment = {5: "Great support, thanks!", 1: "Took too long to resolve."}.get(t.csat)
            record = rating_record(
                t.key, score=score, comment=comment,
                requester_id=requester["id"] if requester else assignee, assignee_id=assignee,
                created_s=closed_s,
            )  # fmt: skip
            self._put("satisfaction_ratings", record["id"], t.closed_ms or t.created_ms,
                      t.closed_ms or t.created_ms, LIVE, record)  # fmt: skip
            rating = {"id": record["id"], "score": score, "comment": comment}
        via: JsonObj = {
            "channel": "email",
            "source": {
                "from": {"address": requester["email"], "name": requester["name"]}
                if requester
                else {},
                "to": {"name": "Sandbox Support", "address": SUPPORT_ADDRESS},
                "rel": None,
            },
        }
        requester_id = requester["id"] if requester else assignee
        data = ticket_record(
            t.key, subject=t.subject, description=t.description or t.subject, status=status,
            priority=PRIORITY[t.priority], requester_id=requester_id, submitter_id=requester_id,
            assignee_id=assignee, organization_id=oid, created_s=created_s,
            updated_s=updated_s,
            ticket_type="incident" if t.priority in ("high", "urgent") else "question",
            via=via, rating=rating,
        )  # fmt: skip
        self._put("tickets", t.key, t.created_ms, t.updated_ms, LIVE, data)
        # A plausible first reply: spread below the priority's target, never after the last
        # update; assignment 5 minutes after creation.
        span = max(1, (updated_s - created_s) // 60)
        reply = min(span, 1 + (t.key * 7919) % _REPLY_MINUTES[t.priority])
        assigned_s = min(updated_s, created_s + 300)
        metric = metric_record(
            t.key, created_s=created_s, updated_s=updated_s, solved_s=closed_s,
            reply_minutes=reply, assigned_s=assigned_s, replies=1 if closed_s is None else 2,
        )  # fmt: skip
        self._put("ticket_metrics", metric["id"], t.created_ms, t.updated_ms, LIVE, metric)
        self.max_key["ticket"] = max(self.max_key["ticket"], t.key)

    def _definitions(self) -> tuple[list[JsonObj], list[JsonObj], int]:
        org_fields: list[JsonObj] = []
        option_n = 0
        seeded = (
            REALISTIC_ORG_FIELDS
            if self.spec.realistic
            else SEEDED_ORG_FIELDS
            if self.spec.custom_fields
            else ()
        )
        for position, (key, ftype, title, options) in enumerate(seeded):
            opts = []
            for i, (name, value) in enumerate(options):
                option_n += 1
                opts.append(field_option(FIELD_OPTION_BASE + option_n, name, value, i))
            org_fields.append(
                organization_field(ORG_FIELD_BASE + position + 1, key, ftype, title,
                                   created_s=self.setup_s, position=position, options=opts)
            )  # fmt: skip
        ticket_fields = [
            ticket_field(i, ftype, title, self.setup_s)
            for i, (ftype, title) in enumerate(SYSTEM_TICKET_FIELDS)
        ]
        return org_fields, ticket_fields, option_n

    def finish(self) -> dict[str, int]:
        self.buffer.flush()
        org_fields, ticket_fields, options = self._definitions()
        at = self.setup_s * 1000
        with self.store.write() as conn:
            for obj, items in (("organization_fields", org_fields),
                               ("ticket_fields", ticket_fields)):  # fmt: skip
                conn.executemany(
                    "INSERT OR IGNORE INTO records (vendor, object, id, created_ms, updated_ms,"
                    " state, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    ((VENDOR, obj, str(d["id"]), at, at, LIVE, _json(d)) for d in items),
                )
            # Later creates continue above the seeded key spaces, so ids never collide.
            for name, value in (
                (COUNTER_ORG, self.max_key["account"]),
                (COUNTER_USER, self.max_key["contact"]),
                (COUNTER_TICKET, self.max_key["ticket"]),
                (COUNTER_ORG_FIELD, len(org_fields)),
                (COUNTER_FIELD_OPTION, options),
                (COUNTER_AUDIT, 0),
                (COUNTER_JOB, 0),
            ):
                conn.execute(
                    "INSERT INTO counters (name, value) VALUES (?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
                    (name, value),
                )
        return {
            **self.buffer.counts,
            "users": self.buffer.counts["users"] + len(self.staff),
            "organization_fields": len(org_fields),
            "ticket_fields": len(ticket_fields),
        }
