"""Map world bundles into Intercom records: companies, contacts, conversations, admins and data
attributes, in Intercom's own JSON (timestamps in unix seconds), written in large batches."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import orjson

from crm_connectors.sandbox.store import ARCHIVED, LIVE, MERGED, PURGED, RowBuffer, Store
from crm_connectors.sandbox.world import OWNERS, Account, Bundle, Contact, Ticket, WorldSpec

from .model import (
    ADMIN_BASE,
    APP_ID,
    BUILTIN_ATTRIBUTES,
    COMPANY_KIND,
    CONTACT_KIND,
    COUNTER_ATTRIBUTE,
    COUNTER_COMPANY,
    COUNTER_CONTACT,
    COUNTER_CONVERSATION,
    COUNTER_NOTE,
    COUNTER_PART,
    COUNTER_TAG,
    REALISTIC_CUSTOM,
    SEEDED_CUSTOM,
    VENDOR,
    attached_list,
    company_ref,
    data_attribute,
    object_id,
)

BATCH = 10_000
_STATE = {"archived": ARCHIVED, "deleted": PURGED, "merged": MERGED}
_PLAN_IDS = {"starter": "1", "growth": "2", "enterprise": "3"}


@functools.lru_cache(maxsize=16_384)
def _day_s(day: str) -> int:
    return int(dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc).timestamp())


def admin_record(index: int) -> dict[str, Any]:
    first, last, email = OWNERS[index]
    return {
        "type": "admin",
        "id": str(ADMIN_BASE + index),
        "name": f"{first} {last}",
        "email": email,
        "job_title": "Customer Success Manager",
        "away_mode_enabled": False,
        "away_mode_reassign": False,
        "away_status_reason_id": None,
        "has_inbox_seat": True,
        "team_ids": [],
        "avatar": None,
        "team_priority_level": {},
    }


def company_record(a: Account, created_s: int, user_count: int) -> dict[str, Any]:
    cid = object_id(COMPANY_KIND, a.key, created_s)
    updated_s = a.updated_ms // 1000
    data: dict[str, Any] = {
        "type": "company",
        "id": cid,
        "company_id": a.external_id,
        "app_id": APP_ID,
        "name": a.name,
        "remote_created_at": created_s,
        "created_at": created_s,
        "updated_at": updated_s,
        "last_request_at": updated_s,
        "monthly_spend": int(a.arr / 12),
        "session_count": a.seats * 12,
        "user_count": user_count,
        "tags": {"type": "tag.list", "tags": []},
        "segments": {"type": "segment.list", "segments": []},
        "plan": {"type": "plan", "id": _PLAN_IDS.get(a.plan, "0"), "name": a.plan},
        "custom_attributes": {
            "seats": a.seats,
            "arr": a.arr,
            "renewal_date": _day_s(a.renewal_date),
            "customer_since": _day_s(a.customer_since),
            "payment_issue": a.payment_issue,
        },
    }
    # The company schema types these as non-null strings/integers: absent rather than null.
    if a.domain:
        data["website"] = f"https://{a.domain}"
    if a.industry:
        data["industry"] = a.industry
    if a.employees is not None:
        data["size"] = a.employees
    return data


def contact_record(
    c: Contact, account: Account, company_id: str | None, owner_id: int
) -> dict[str, Any]:
    created_s = c.created_ms // 1000
    cid = object_id(CONTACT_KIND, c.key, created_s)
    url = f"/contacts/{cid}"
    name = " ".join(p for p in (c.first_name, c.last_name) if p) or None
    email = c.email or ""
    return {
        "type": "contact",
        "id": cid,
        "workspace_id": APP_ID,
        "external_id": f"CON-{c.key:07d}",
        "role": "user",
        "email": email,
        "email_domain": email.partition("@")[2],
        "phone": c.phone,
        "name": name,
        "owner_id": owner_id,
        "has_hard_bounced": False,
        "marked_email_as_spam": False,
        "unsubscribed_from_emails": False,
        "created_at": created_s,
        "updated_at": c.updated_ms // 1000,
        "signed_up_at": created_s,
        "last_seen_at": c.last_seen_ms // 1000 if c.last_seen_ms else None,
        "last_replied_at": None,
        "last_contacted_at": None,
        "last_email_opened_at": None,
        "last_email_clicked_at": None,
        "language_override": None,
        "browser": None,
        "browser_version": None,
        "browser_language": None,
        "os": None,
        "custom_attributes": {"job_title": c.title, "account_id": account.external_id},
        "avatar": None,
        "tags": attached_list("tags", url, []),
        "notes": attached_list("notes", url, []),
        "companies": attached_list(
            "companies", url, [company_ref(company_id)] if company_id else []
        ),
        "location": {
            "type": "location",
            "country": account.country,
            "region": None,
            "city": account.city,
        },
        "social_profiles": {"type": "list", "data": []},
        "archived": c.lifecycle.get(VENDOR) == "archived",
    }


def conversation_record(
    t: Ticket, contact: dict[str, Any] | None, admin_id: str, part_ids: range
) -> dict[str, Any]:
    created_s = t.created_ms // 1000
    updated_s = t.updated_ms // 1000
    closed_s = t.closed_ms // 1000 if t.closed_ms else None
    state = {"open": "open", "pending": "snoozed", "closed": "closed"}[t.status]
    ref = (
        {"type": "contact", "id": contact["id"], "external_id": contact["external_id"]}
        if contact
        else None
    )
    author: dict[str, Any] = {
        "type": "user" if contact else "lead",
        "id": contact["id"] if contact else "",
        "name": contact["name"] if contact else None,
    }
    if contact and contact["email"]:
        author["email"] = contact["email"]
    first, last, email = OWNERS[int(admin_id) - ADMIN_BASE]
    admin = {"type": "admin", "id": admin_id, "name": f"{first} {last}", "email": email}
    reply_s = min(created_s + 1800, updated_s)
    parts: list[dict[str, Any]] = [
        {
            "type": "conversation_part",
            "id": str(part_ids[0]),
            "part_type": "comment",
            "body": "<p>Thanks for reaching out, we are looking into it.</p>",
            "created_at": reply_s,
            "updated_at": reply_s,
            "notified_at": reply_s,
            "assigned_to": None,
            "author": admin,
            "attachments": [],
            "external_id": None,
            "redacted": False,
        }
    ]
    if closed_s is not None:
        parts.append(
            {
                "type": "conversation_part",
                "id": str(part_ids[1]),
                "part_type": "close",
                "body": None,
                "created_at": closed_s,
                "updated_at": closed_s,
                "notified_at": closed_s,
                "assigned_to": None,
                "author": admin,
                "attachments": [],
                "external_id": None,
                "redacted": False,
            }
        )
    rating: dict[str, Any] | None = None
    teammate = {"type": "admin", "id": admin_id}
    if t.csat is not None and closed_s is not None:
        rating = {
            "rating": t.csat,
            "remark": "" if t.csat >= 4 else "Took too long to resolve.",
            "created_at": closed_s,
            "updated_at": closed_s,
            "teammate": {"type": "admin", "id": admin_id},
        }
        if ref:
            rating["contact"] = ref
    stats: dict[str, Any] = {
        "type": "conversation_statistics",
        "time_to_admin_reply": reply_s - created_s,
        "first_contact_reply_at": created_s,
        "first_admin_reply_at": reply_s,
        "last_contact_reply_at": created_s,
        "last_admin_reply_at": reply_s,
        "count_reopens": 0,
        "count_assignments": 1,
        "count_conversation_parts": len(parts),
    }
    if closed_s is not None:
        stats.update(
            time_to_first_close=closed_s - created_s,
            time_to_last_close=closed_s - created_s,
            first_close_at=closed_s,
            last_close_at=closed_s,
            last_closed_by_id=admin_id,
        )
    return {
        "type": "conversation",
        "id": str(t.key),
        "title": t.subject,
        "created_at": created_s,
        "updated_at": updated_s,
        "waiting_since": None if state == "closed" else created_s,
        "snoozed_until": updated_s + 86_400 if state == "snoozed" else None,
        "open": state != "closed",
        "state": state,
        "read": True,
        "priority": "priority" if t.priority in ("high", "urgent") else "not_priority",
        "admin_assignee_id": int(admin_id),
        "team_assignee_id": None,
        "tags": {"type": "tag.list", "tags": []},
        "conversation_rating": rating,
        "source": {
            "type": "conversation",
            "id": str(t.key),
            "delivered_as": "customer_initiated",
            "subject": t.subject,
            "body": f"<p>{t.description}</p>" if t.description else "",
            "author": author,
            "attachments": [],
            "url": None,
            "redacted": False,
        },
        "contacts": {"type": "contact.list", "contacts": [ref] if ref else []},
        # The 2.14 spec names the list "teammates"; Intercom (and python-intercom) use
        # "admins": both are sent.
        "teammates": {"type": "admin.list", "teammates": [teammate], "admins": [teammate]},
        "custom_attributes": {},
        "first_contact_reply": {"created_at": created_s, "type": "conversation", "url": None},
        "statistics": stats,
        "conversation_parts": {
            "type": "conversation_part.list",
            "conversation_parts": parts,
            "total_count": len(parts),
        },
        "linked_objects": {"type": "list", "total_count": 0, "has_more": False, "data": []},
        "ai_agent_participated": False,
    }


class Seeder:
    """Buffers Intercom rows and writes them with ``Store.insert_many``."""

    def __init__(self, store: Store, spec: WorldSpec) -> None:
        self.store = store
        self.spec = spec
        objects = ("companies", "contacts", "conversations")
        self.buffer = RowBuffer(store, VENDOR, BATCH)
        self.buffer.counts.update(dict.fromkeys(objects, 0))
        self._put = self.buffer.put
        self.max_key = dict.fromkeys(objects, 0)

    def add(self, bundle: Bundle) -> None:
        a = bundle.account
        in_intercom = VENDOR in a.crms
        contacts = [c for c in bundle.contacts if VENDOR in c.crms]
        tickets = [t for t in bundle.tickets if t.crm == VENDOR]
        if not in_intercom and not contacts and not tickets:
            return
        company_id: str | None = None
        if in_intercom:
            created_s = a.created_ms // 1000
            company_id = object_id(COMPANY_KIND, a.key, created_s)
            live_users = sum(1 for c in contacts if VENDOR not in c.lifecycle)
            data = company_record(a, created_s, live_users)
            if not self.spec.custom_fields:  # a plain workspace has no custom attributes
                data["custom_attributes"] = {}
            elif self.spec.realistic:  # the same facts under the workspace's own names
                custom = data["custom_attributes"]
                data["custom_attributes"] = {
                    "annual_contract_value": custom["arr"],
                    "seat_count": custom["seats"],
                    "next_renewal": custom["renewal_date"],
                    "became_customer": custom["customer_since"],
                    "billing_overdue": custom["payment_issue"],
                    "tier": a.plan,
                    "region": a.country,
                }
            state = _STATE.get(a.lifecycle.get(VENDOR, ""), LIVE)
            self._put("companies", company_id, a.created_ms, a.updated_ms, state, data)
            self.max_key["companies"] = max(self.max_key["companies"], a.key)
        owner_id = ADMIN_BASE + a.owner
        records: dict[int, dict[str, Any]] = {}
        for c in contacts:
            data = contact_record(c, a, company_id, owner_id)
            if not self.spec.custom_fields:
                data["custom_attributes"] = {}
            elif self.spec.realistic:
                data["custom_attributes"] = {"role": c.title, "crm_id": a.external_id}
            records[c.key] = data
            state = _STATE.get(c.lifecycle.get(VENDOR, ""), LIVE)
            self._put("contacts", data["id"], c.created_ms, c.updated_ms, state, data)
            self.max_key["contacts"] = max(self.max_key["contacts"], c.key)
        live = [records[c.key] for c in contacts if VENDOR not in c.lifecycle]
        for t in tickets:
            contact = records.get(t.contact_key or -1) or (live[0] if live else None)
            # Two parts per conversation, numbered from the ticket key: ranges never collide.
            part_ids = range(t.key * 2 + 1, t.key * 2 + 3)
            data = conversation_record(t, contact, str(owner_id), part_ids)
            self._put("conversations", data["id"], t.created_ms, t.updated_ms, LIVE, data)
            self.max_key["conversations"] = max(self.max_key["conversations"], t.key)

    def finish(self) -> dict[str, int]:
        self.buffer.flush()
        now_s = self.spec.anchor_ms // 1000
        admins = [admin_record(i) for i in range(len(OWNERS))]
        self.store.insert_many(
            VENDOR,
            "admins",
            ((d["id"], now_s * 1000, now_s * 1000, LIVE, orjson.dumps(d).decode()) for d in admins),
        )
        attrs: list[dict[str, Any]] = []
        for model, builtins in BUILTIN_ATTRIBUTES.items():
            for name, label, dtype in builtins:
                attrs.append(
                    data_attribute(len(attrs) + 1, model, name, label, dtype, custom=False,
                                   created_s=now_s)
                )  # fmt: skip
        customs_of = REALISTIC_CUSTOM if self.spec.realistic else SEEDED_CUSTOM
        for model, customs in (customs_of if self.spec.custom_fields else {}).items():
            for name, label, dtype in customs:
                attrs.append(
                    data_attribute(len(attrs) + 1, model, name, label, dtype, custom=True,
                                   created_s=now_s)
                )  # fmt: skip
        self.store.insert_many(
            VENDOR,
            "data_attributes",
            (
                (str(d["id"]), now_s * 1000, now_s * 1000, LIVE, orjson.dumps(d).decode())
                for d in attrs
            ),
        )
        # Later creates continue above the seeded key spaces, so ids never collide.
        for name, value in (
            (COUNTER_CONTACT, self.max_key["contacts"]),
            (COUNTER_COMPANY, self.max_key["companies"]),
            (COUNTER_CONVERSATION, self.max_key["conversations"]),
            (COUNTER_ATTRIBUTE, len(attrs)),
            (COUNTER_PART, self.max_key["conversations"] * 2 + 2),
            (COUNTER_TAG, 0),
            (COUNTER_NOTE, 0),
        ):
            with self.store.write() as conn:
                conn.execute(
                    "INSERT INTO counters (name, value) VALUES (?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
                    (name, value),
                )
        return {**self.buffer.counts, "admins": len(admins), "data_attributes": len(attrs)}
