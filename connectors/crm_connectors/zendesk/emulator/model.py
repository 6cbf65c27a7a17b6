"""Shared Zendesk shapes and rules: id schemes, timestamps, the record builders the seeder and the
emulator use, the error envelope, the validation of writes (organizations, organization fields,
tickets), job views, and the cursor codecs. Pure functions: the emulator (app.py) owns storage.

Everything cites the contract ``../API.md`` as ``[API.md §N.M]``.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import math
import re
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from crm_connectors.sandbox.http import ApiError

VENDOR = "zendesk"
JsonObj = dict[str, Any]

#: The sandbox admin the well-known credentials sign in as (EMULATOR.credentials["email"]).
ADMIN_EMAIL = "sandbox-admin@example.com"
ADMIN_NAME = "Sandbox Admin"
SUPPORT_ADDRESS = "support@sandbox.zendesk.com"

# -- ids ----------------------------------------------------------------------------------------
# Zendesk ids are large integers (13 digits observed: 6164110654490) [API.md §5.1]; ours are a
# fixed base per object type plus the world key, so the same world gives the same ids. Ticket ids
# are small per-account numbers in Zendesk; ours are the world's ticket keys.
ORG_BASE = 6_160_000_000_000
STAFF_BASE = 6_165_000_000_000  # the sandbox admin (+0) and world.OWNERS (+1 ...)
USER_BASE = 6_170_000_000_000  # end users: + contact key
METRIC_BASE = 6_180_000_000_000  # one metric set per ticket: + ticket id
RATING_BASE = 6_190_000_000_000  # one satisfaction rating per ticket at most: + ticket id
AUDIT_BASE = 6_195_000_000_000
ORG_FIELD_BASE = 6_150_000_000_000
FIELD_OPTION_BASE = 6_155_000_000_000
TICKET_FIELD_BASE = 6_140_000_000_000
BRAND_ID = 6_130_000_000_001
TICKET_FORM_ID = 6_130_000_000_101
ADMIN_USER_ID = STAFF_BASE

API = "/api/v2"
#: Counters: API-created records continue above the seeded key spaces.
COUNTER_ORG = "zendesk.organization"
COUNTER_USER = "zendesk.user"
COUNTER_TICKET = "zendesk.ticket"
COUNTER_ORG_FIELD = "zendesk.organization_field"
COUNTER_FIELD_OPTION = "zendesk.field_option"
COUNTER_AUDIT = "zendesk.audit"
COUNTER_JOB = "zendesk.job"
COUNTER_OAUTH = "zendesk.oauth_token"

PRIORITY = {"low": "low", "medium": "normal", "high": "high", "urgent": "urgent"}
#: Solved tickets close automatically 4 days after they are solved (Zendesk's default
#: automation) [assumed]; the seeder reports older closed tickets as "closed".
AUTO_CLOSE_DAYS = 4


def org_id(account_key: int) -> int:
    return ORG_BASE + account_key


def user_id(contact_key: int) -> int:
    return USER_BASE + contact_key


def staff_id(owner_index: int) -> int:
    return STAFF_BASE + 1 + owner_index


def metric_id(ticket_id: int) -> int:
    return METRIC_BASE + ticket_id


def rating_id(ticket_id: int) -> int:
    return RATING_BASE + ticket_id


# -- time ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=65_536)
def iso(seconds: int) -> str:
    """UTC ISO 8601 with ``Z``, whole seconds: ``2023-09-18T23:25:58Z`` [API.md §9]."""
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(ms: int) -> str:
    return iso(ms // 1000)


def date_value(day: str) -> str:
    """A date field's value as the docs render it: ``2018-11-04T00:00:00+00:00`` [API.md §6.4]."""
    return f"{day[:10]}T00:00:00+00:00"


def parse_time(text: Any) -> int | None:
    """Unix seconds of an ISO 8601 date or timestamp (``Z`` or an offset); None when invalid."""
    if not isinstance(text, str) or not text:
        return None
    value = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return int(parsed.timestamp())


def job_message(seconds: float) -> str:
    """``Completed at 2023-09-18 23:35:58 +0000`` (observed) [API.md §7.3]."""
    when = dt.datetime.fromtimestamp(int(seconds), dt.timezone.utc)
    return f"Completed at {when.strftime('%Y-%m-%d %H:%M:%S')} +0000"


# -- cursors ------------------------------------------------------------------------------------


def encode_cursor(value: Any) -> str:
    """An opaque cursor: URL-safe base64 of JSON, without padding, so that it survives zenpy's
    unencoded query strings (``+`` would become a space) [API.md §10.1]."""
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def decode_cursor(text: str) -> Any:
    """The value of :func:`encode_cursor`; ValueError when the text is not one of ours."""
    try:
        return orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, orjson.JSONDecodeError, TypeError) as exc:
        raise ValueError(str(exc)) from None


# -- organization fields [API.md §6] ------------------------------------------------------------

FIELD_TYPES = frozenset(
    ("text", "textarea", "checkbox", "date", "integer", "decimal", "regexp", "dropdown",
     "lookup", "multiselect")
)  # fmt: skip
OPTION_TYPES = frozenset(("dropdown", "multiselect"))
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_]+\Z")
LOOKUP_TARGETS = re.compile(r"^zen:(user|organization|ticket|custom_object:[A-Za-z0-9_]+)\Z")

#: The organization fields the seeder defines: ``(key, type, title, options)``.
SEEDED_ORG_FIELDS: tuple[tuple[str, str, str, tuple[tuple[str, str], ...]], ...] = (
    ("arr", "decimal", "ARR", ()),
    ("seats", "integer", "Seats", ()),
    ("plan", "dropdown", "Plan",
     (("Starter", "starter"), ("Growth", "growth"), ("Enterprise", "enterprise"))),
    ("renewal_date", "date", "Renewal date", ()),
    ("customer_since", "date", "Customer since", ()),
)  # fmt: skip

#: A real account's organization fields (the realistic profile): the same facts under keys of
#: its own, and more a support team keeps.
REALISTIC_ORG_FIELDS: tuple[tuple[str, str, str, tuple[tuple[str, str], ...]], ...] = (
    ("contract_value", "decimal", "Contract value (annual)", ()),
    ("licensed_agents", "integer", "Licensed seats", ()),
    ("service_tier", "dropdown", "Service tier",
     (("Starter", "tier_starter"), ("Growth", "tier_growth"), ("Enterprise", "tier_enterprise"))),
    ("contract_end", "date", "Contract end", ()),
    ("customer_since_date", "date", "Customer since", ()),
    ("account_manager", "text", "Account manager", ()),
    ("region", "text", "Region", ()),
    ("sla_hours", "integer", "SLA (hours)", ()),
    ("escalation_contact", "text", "Escalation contact", ()),
    ("vip", "checkbox", "VIP", ()),
)  # fmt: skip


def field_option(option_id: int, name: str, value: str, position: int) -> JsonObj:
    return {"id": option_id, "name": name, "raw_name": name, "value": value,
            "position": position, "default": False}  # fmt: skip


def organization_field(
    field_id: int,
    key: str,
    ftype: str,
    title: str,
    *,
    created_s: int,
    description: str = "",
    position: int = 9999,
    options: list[JsonObj] | None = None,
    regexp: str | None = None,
    tag: str | None = None,
    relationship: tuple[str | None, Any] = (None, None),
) -> JsonObj:
    """An organization field as ``GET /organization_fields`` shows it (without ``url``, which
    names the caller's host); the observed create response [API.md §6.1]."""
    data: JsonObj = {
        "id": field_id,
        "type": ftype,
        "key": key,
        "title": title,
        "description": description,
        "raw_title": title,
        "raw_description": description,
        "position": position,
        "active": True,
        "system": False,
        "regexp_for_validation": regexp if ftype == "regexp" else None,
        "created_at": iso(created_s),
        "updated_at": iso(created_s),
    }
    if ftype == "checkbox":
        data["tag"] = tag
    if ftype in OPTION_TYPES:
        data["custom_field_options"] = options or []
    if ftype == "lookup":
        data["relationship_target_type"], data["relationship_filter"] = relationship
    return data


class FieldError(Exception):
    """A value that a field rejects; rendered as one 422 ``details`` entry [API.md §8.1]."""

    def __init__(self, key: str, code: str, description: str) -> None:
        super().__init__(description)
        self.key, self.code, self.description = key, code, description


def coerce_field_value(field: JsonObj, value: Any) -> Any:
    """The stored form of ``value`` for an organization field, or :class:`FieldError`.

    [API.md §6.4] says how values read back (dates ``...T00:00:00+00:00``, decimals as numbers,
    dropdowns as the option ``value``) but not which write formats are accepted: the sandbox
    accepts ``YYYY-MM-DD`` or ISO timestamps for dates and numeric strings for numbers [assumed].
    ``null`` (or an empty string) clears any field.
    """
    key, ftype, title = field["key"], field["type"], field["title"]

    def bad() -> FieldError:
        return FieldError(key, "InvalidValue", f"{title}: is invalid")

    if value is None or value == "":
        return None
    if ftype in ("text", "textarea"):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise bad()
        return str(value)
    if ftype == "regexp":
        pattern = field.get("regexp_for_validation") or ""
        if not isinstance(value, str) or (pattern and not re.search(pattern, value)):
            raise bad()
        return value
    if ftype == "checkbox":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        raise bad()
    if ftype == "date":
        day = value[:10] if isinstance(value, str) else ""
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day) or parse_time(value) is None:
            raise bad()
        return date_value(day)
    if ftype in ("integer", "lookup"):
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
        raise bad()
    if ftype == "decimal":
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, int | float):
            return float(value)
        try:
            return float(str(value))
        except ValueError:
            raise bad() from None
    allowed = [o.get("value") for o in field.get("custom_field_options") or []]
    if ftype == "dropdown":
        if not isinstance(value, str) or value not in allowed:
            raise bad()
        return value
    if ftype == "multiselect":
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or any(v not in allowed for v in values):
            raise bad()
        return list(dict.fromkeys(values))
    raise bad()


def shown_field_values(stored: Any, fields: list[JsonObj]) -> JsonObj:
    """``organization_fields`` as read: every defined key, ``null`` when unset
    (GH:zendesk/zendesk_api_client_rb#226 in [API.md §6.4]); a dropdown value whose option was
    removed reads as null [API.md §6.2]."""
    values = stored if isinstance(stored, dict) else {}
    out: JsonObj = {}
    for field in fields:
        value = values.get(field["key"])
        if field["type"] in OPTION_TYPES and value is not None:
            allowed = {o.get("value") for o in field.get("custom_field_options") or []}
            if isinstance(value, list):
                value = [v for v in value if v in allowed]
            elif value not in allowed:
                value = None
        out[field["key"]] = value
    return out


# -- record builders ----------------------------------------------------------------------------


def organization_record(
    oid: int,
    name: str,
    *,
    created_s: int,
    updated_s: int,
    external_id: str | None = None,
    domain_names: list[str] | None = None,
    fields: JsonObj | None = None,
    details: str | None = None,
    notes: str | None = None,
    tags: list[str] | None = None,
) -> JsonObj:
    """The observed fresh organization [API.md §5.1] (``url`` is added when served)."""
    return {
        "id": oid,
        "name": name,
        "shared_tickets": False,
        "shared_comments": False,
        "external_id": external_id,
        "created_at": iso(created_s),
        "updated_at": iso(updated_s),
        "domain_names": domain_names or [],
        "details": details,
        "notes": notes,
        "group_id": None,
        "tags": tags or [],
        "organization_fields": fields or {},
    }


def user_record(
    uid: int,
    name: str,
    email: str | None,
    *,
    role: str,
    created_s: int,
    updated_s: int,
    organization_id: int | None = None,
    phone: str | None = None,
    active: bool = True,
    external_id: str | None = None,
    last_login_s: int | None = None,
) -> JsonObj:
    """A user [API.md §5.2]; ``active: false`` means deleted."""
    staff = role != "end-user"
    return {
        "id": uid,
        "name": name,
        "email": email,
        "created_at": iso(created_s),
        "updated_at": iso(updated_s),
        "time_zone": "UTC",
        "iana_time_zone": "Etc/UTC",
        "phone": phone,
        "shared_phone_number": None,
        "photo": None,
        "locale_id": 1,
        "locale": "en-US",
        "organization_id": organization_id,
        "role": role,
        "verified": True,
        "external_id": external_id,
        "tags": [],
        "alias": "",
        "active": active,
        "shared": False,
        "shared_agent": False,
        "last_login_at": iso(last_login_s) if last_login_s else None,
        "two_factor_auth_enabled": None,
        "signature": "" if staff else None,
        "details": "",
        "notes": "",
        "role_type": 4 if role == "admin" else None,
        "custom_role_id": None,
        "moderator": staff,
        "ticket_restriction": None if staff else "requested",
        "only_private_comments": False,
        "restricted_agent": not staff,
        "suspended": False,
        "default_group_id": None,
        "report_csv": staff,
        "user_fields": {},
    }


def e164(phone: str | None) -> str | None:
    """The world's ``+1-555-0123`` as E.164 ``+15550123`` [API.md §5.2]."""
    if not phone:
        return None
    digits = re.sub(r"\D", "", phone)
    return f"+{digits}" if digits else None


def ticket_record(
    tid: int,
    *,
    subject: str | None,
    description: str,
    status: str,
    priority: str | None,
    requester_id: int | None,
    submitter_id: int | None,
    assignee_id: int | None,
    organization_id: int | None,
    created_s: int,
    updated_s: int,
    ticket_type: str | None = None,
    due_at: str | None = None,
    tags: list[str] | None = None,
    external_id: str | None = None,
    custom_fields: list[JsonObj] | None = None,
    via: JsonObj | None = None,
    rating: JsonObj | None = None,
) -> JsonObj:
    """A ticket [API.md §5.3]. ``generated_timestamp`` is stored with it and shown in exports
    only [API.md §3.4]."""
    return {
        "id": tid,
        "external_id": external_id,
        "via": via or {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
        "created_at": iso(created_s),
        "updated_at": iso(updated_s),
        "generated_timestamp": updated_s,
        "type": ticket_type,
        "subject": subject,
        "raw_subject": subject,
        "description": description,
        "priority": priority,
        "status": status,
        "recipient": SUPPORT_ADDRESS,
        "requester_id": requester_id,
        "submitter_id": submitter_id,
        "assignee_id": assignee_id,
        "organization_id": organization_id,
        "group_id": None,
        "collaborator_ids": [],
        "follower_ids": [],
        "email_cc_ids": [],
        "forum_topic_id": None,
        "problem_id": None,
        "has_incidents": False,
        "is_public": True,
        "due_at": due_at,
        "tags": tags or [],
        "custom_fields": custom_fields or [],
        "fields": custom_fields or [],
        "satisfaction_rating": rating,
        "sharing_agreement_ids": [],
        "followup_ids": [],
        "ticket_form_id": TICKET_FORM_ID,
        "brand_id": BRAND_ID,
        "allow_channelback": False,
        "allow_attachments": True,
        "from_messaging_channel": False,
    }


def minutes(calendar: int | None) -> JsonObj:
    """A ``{"calendar": n, "business": n}`` pair [API.md §5.4]; business time is taken as 60% of
    calendar time (business hours only) [assumed]."""
    if calendar is None:
        return {"calendar": None, "business": None}
    return {"calendar": calendar, "business": int(calendar * 0.6)}


def metric_record(
    tid: int,
    *,
    created_s: int,
    updated_s: int,
    solved_s: int | None,
    reply_minutes: int | None,
    assigned_s: int | None,
    replies: int,
) -> JsonObj:
    """A ticket metric set [API.md §5.4]."""
    resolution = None if solved_s is None else max(1, (solved_s - created_s) // 60)
    wait = None if resolution is None else max(0, resolution - (reply_minutes or 0))
    return {
        "id": metric_id(tid),
        "ticket_id": tid,
        "created_at": iso(created_s),
        "updated_at": iso(updated_s),
        "group_stations": 1 if assigned_s else 0,
        "assignee_stations": 1 if assigned_s else 0,
        "reopens": 0,
        "replies": replies,
        "assignee_updated_at": iso(assigned_s) if assigned_s else None,
        "requester_updated_at": iso(created_s),
        "status_updated_at": iso(updated_s),
        "initially_assigned_at": iso(assigned_s) if assigned_s else None,
        "assigned_at": iso(assigned_s) if assigned_s else None,
        "solved_at": iso(solved_s) if solved_s else None,
        "latest_comment_added_at": iso(updated_s),
        "custom_status_updated_at": iso(updated_s),
        "reply_time_in_minutes": minutes(reply_minutes),
        "first_resolution_time_in_minutes": minutes(resolution),
        "full_resolution_time_in_minutes": minutes(resolution),
        "agent_wait_time_in_minutes": minutes(0 if resolution is not None else None),
        "requester_wait_time_in_minutes": minutes(wait),
        "on_hold_time_in_minutes": minutes(0 if resolution is not None else None),
    }


def rating_record(
    tid: int,
    *,
    score: str,
    comment: str | None,
    requester_id: int | None,
    assignee_id: int | None,
    created_s: int,
) -> JsonObj:
    """A (legacy CSAT) satisfaction rating [API.md §5.5]; ``reason`` only on bad ratings."""
    data: JsonObj = {
        "id": rating_id(tid),
        "assignee_id": assignee_id,
        "group_id": None,
        "requester_id": requester_id,
        "ticket_id": tid,
        "score": score,
        "created_at": iso(created_s),
        "updated_at": iso(created_s),
        "comment": comment,
    }
    if score == "bad":
        data["reason"] = "The issue took too long to resolve"
        data["reason_id"] = None
    return data


def ticket_field(position: int, ftype: str, title: str, created_s: int) -> JsonObj:
    """A system ticket field of ``GET /ticket_fields`` (not read in detail [API.md §4.3])."""
    options: dict[str, list[tuple[str, str]]] = {
        "status": [("Open", "open"), ("Pending", "pending"), ("Solved", "solved")],
        "tickettype": [("Question", "question"), ("Incident", "incident"),
                       ("Problem", "problem"), ("Task", "task")],
        "priority": [("Low", "low"), ("Normal", "normal"), ("High", "high"),
                     ("Urgent", "urgent")],
    }  # fmt: skip
    data: JsonObj = {
        "id": TICKET_FIELD_BASE + position + 1,
        "type": ftype,
        "title": title,
        "raw_title": title,
        "description": title,
        "raw_description": title,
        "position": position,
        "active": True,
        "required": ftype in ("subject", "description"),
        "collapsed_for_agents": False,
        "regexp_for_validation": None,
        "title_in_portal": title,
        "raw_title_in_portal": title,
        "visible_in_portal": ftype in ("subject", "description"),
        "editable_in_portal": ftype in ("subject", "description"),
        "required_in_portal": ftype in ("subject", "description"),
        "tag": None,
        "created_at": iso(created_s),
        "updated_at": iso(created_s),
        "removable": False,
        "key": None,
        "agent_description": None,
    }
    if ftype in options:
        data["system_field_options"] = [{"name": n, "value": v} for n, v in options[ftype]]
    return data


SYSTEM_TICKET_FIELDS = (
    ("subject", "Subject"), ("description", "Description"), ("status", "Status"),
    ("tickettype", "Type"), ("priority", "Priority"), ("group", "Group"),
    ("assignee", "Assignee"),
)  # fmt: skip


# -- errors [API.md §8.1] and request constants -------------------------------------------------

#: What an incremental export serves, and the object each reads [API.md §3.2, §3.3].
EXPORTS = {"organizations": "organizations", "users": "users", "tickets": "tickets"}
SORTS = {"id": "seq", "created_at": "created_ms", "updated_at": "updated_ms"}
#: [API.md §1.5] D-AUTH / GH:fprimex/zdesk#58.
BEARER_REJECTED = (
    "The access token provided is expired, revoked, malformed or invalid for other reasons."
)
FORBIDDEN = (
    "You do not have access to this page. Please contact the account owner of this help desk"
    " for further help."
)
#: Satisfaction score filters [API.md §4.3]: (scores, comment required: True/False/None).
SCORE_FILTERS: dict[str, tuple[tuple[str, ...], bool | None]] = {
    "offered": (("offered",), None),
    "unoffered": (("unoffered",), None),
    "received": (("good", "bad"), None),
    "received_with_comment": (("good", "bad"), True),
    "received_without_comment": (("good", "bad"), False),
    "good": (("good",), None),
    "good_with_comment": (("good",), True),
    "good_without_comment": (("good",), False),
    "bad": (("bad",), None),
    "bad_with_comment": (("bad",), True),
    "bad_without_comment": (("bad",), False),
}
#: OAuth resource scopes by API path segment ("organizations:write" etc.) [API.md §1.4].
SCOPE_RESOURCE = {
    "organization_fields": "organizations",
    "user_fields": "users",
    "ticket_fields": "tickets",
    "ticket_metrics": "tickets",
    "job_statuses": "organizations",
}
ORG_WRITABLE = frozenset(
    ("name", "external_id", "domain_names", "details", "notes", "group_id", "shared_tickets",
     "shared_comments", "tags", "organization_fields")
)  # fmt: skip
TICKET_TYPES = (None, "problem", "incident", "question", "task")
PRIORITIES = (None, "urgent", "high", "normal", "low")
CREATE_STATUSES = ("new", "open", "pending", "hold", "solved")
KEY_RULE = "Key: may contain only letters, numbers and underscores, not only numbers"


def error(status: int, code: str, description: str, **extra: Any) -> ApiError:
    """``{"error": code, "description": ...}``, the usual JSON error [API.md §8.1]."""
    return ApiError(status, code, description, **extra)


def raw_error(status: int, body: Any, headers: Iterable[tuple[str, str]] = ()) -> ApiError:
    """An error whose body is not the usual envelope (401s, 429s) [API.md §1.5, §7.1]."""
    return ApiError(status, "raw", "", headers=headers, body=body)


def not_found() -> ApiError:
    return error(404, "RecordNotFound", "Not found")  # [API.md §7.1, §8.1]


def bad_request(description: str, code: str = "InvalidValue") -> ApiError:
    return error(400, code, description)


def invalid(details: dict[str, list[JsonObj]]) -> ApiError:
    # [API.md §8.1] GH:zendesk/zendesk_api_client_rb#457.
    return error(422, "RecordInvalid", "Record validation errors", details=details)


def add_detail(details: dict[str, list[JsonObj]], key: str, code: str, description: str) -> None:
    details.setdefault(key, []).append({"description": description, "error": code})


def forbidden() -> ApiError:
    return error(403, "Forbidden", FORBIDDEN)  # [API.md §1.5]


def whole_seconds(value: float) -> int:
    """A ``Retry-After`` / reset value: whole seconds, at least 1 [API.md §2.2]."""
    return max(1, math.ceil(value))


def int_arg(text: str | None, name: str) -> int | None:
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise bad_request(f"{name} must be an integer") from None


def record_id(text: str) -> str:
    """A numeric record id from the path; anything else names no record (404)."""
    if not text.isdigit():
        raise not_found()
    return str(int(text))


# -- validation of writes -----------------------------------------------------------------------


def org_changes(
    current: JsonObj,
    changes: JsonObj,
    fields: list[JsonObj],
    *,
    taken: Callable[[str, str], bool],
    strict: bool,
) -> tuple[JsonObj, list[str]]:
    """``current`` with ``changes`` applied, and the keys ignored as unpermitted (``id`` among
    them [API.md §7.1]); 422 RecordInvalid with ``details`` [API.md §8.1] when a value is
    refused. ``taken(column, value)``: another live organization holds that name/external id
    (both unique, case-insensitive [API.md §5.1])."""
    details: dict[str, list[JsonObj]] = {}
    new = dict(current)
    ignored: list[str] = []
    for k, v in changes.items():
        if k not in ORG_WRITABLE:
            ignored.append(k)
        elif k == "name":
            if not isinstance(v, str) or not v.strip():
                add_detail(details, k, "BlankValue", "Name: cannot be blank")
            elif taken("name", v):  # the observed text, two spaces [API.md §7.3]
                add_detail(details, k, "DuplicateValue", f"Name:  {v} has already been taken")
            else:
                new[k] = v
        elif k == "external_id":
            if v in (None, ""):
                new[k] = None
            elif isinstance(v, bool) or not isinstance(v, str | int):
                add_detail(details, k, "InvalidValue", "External: is invalid")
            elif taken("external_id", str(v)):
                add_detail(details, k, "DuplicateValue", "External: has already been taken")
            else:
                new[k] = str(v)
        elif k in ("domain_names", "tags"):
            values = v.replace(",", " ").split() if isinstance(v, str) else v
            if not isinstance(values, list) or not all(isinstance(x, str) for x in values):
                add_detail(details, k, "InvalidValue", f"{k}: is invalid")
            else:  # a PUT replaces the whole list [API.md §5.1]
                new[k] = [x.lower() for x in values] if k == "tags" else list(values)
        elif k in ("details", "notes"):
            if v is not None and not isinstance(v, str):
                add_detail(details, k, "InvalidValue", f"{k.title()}: is invalid")
            else:
                new[k] = v
        elif k in ("shared_tickets", "shared_comments"):
            if not isinstance(v, bool):
                add_detail(details, k, "InvalidValue", f"{k}: is invalid")
            else:
                new[k] = v
        elif k == "group_id":
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                add_detail(details, k, "InvalidValue", "Group: is invalid")
            else:
                new[k] = v
        else:
            new[k] = merge_field_values(current.get(k), v, fields, details, strict=strict)
    if details:
        raise invalid(details)
    return new, ignored


def merge_field_values(
    stored: Any,
    values: Any,
    fields: list[JsonObj],
    details: dict[str, list[JsonObj]],
    *,
    strict: bool,
) -> JsonObj:
    """Merge ``organization_fields`` keys into the stored ones [API.md §6.4]. Unknown keys are
    ignored, or refused with option ``strict_custom_fields`` [assumed]."""
    merged = dict(stored) if isinstance(stored, dict) else {}
    if not isinstance(values, dict):
        add_detail(
            details, "organization_fields", "InvalidValue", "Organization fields: is invalid"
        )
        return merged
    by_key = {f["key"]: f for f in fields}
    for key, value in values.items():
        field = by_key.get(key)
        if field is None:
            if strict:
                add_detail(details, key, "InvalidValue", f"{key}: is not an organization field")
            continue
        try:
            merged[key] = coerce_field_value(field, value)
        except FieldError as exc:
            add_detail(details, exc.key, exc.code, exc.description)
    return merged


def field_spec_details(
    spec: JsonObj, keys: set[str]
) -> tuple[dict[str, list[JsonObj]], str, str, str, Any]:
    """Checks of a new organization field [API.md §6.1, §6.2]: ``(details, type, key, title,
    relationship_target_type)``. A duplicate key is 422 with ``details.key`` DuplicateValue
    (an inference of [API.md §6.3])."""
    details: dict[str, list[JsonObj]] = {}
    ftype = spec.get("type") or "text"  # text when omitted [API.md §6.1]
    key, title = spec.get("key"), spec.get("title")
    if ftype not in FIELD_TYPES:
        add_detail(details, "type", "InvalidValue", f"Type: {ftype} is not a valid field type")
    if not isinstance(key, str) or not key:
        add_detail(details, "key", "BlankValue", "Key: cannot be blank")
    elif not KEY_PATTERN.match(key) or key.isdigit():
        add_detail(details, "key", "InvalidValue", KEY_RULE)
    elif key in keys:
        add_detail(details, "key", "DuplicateValue", "Key: has already been taken")
    if not isinstance(title, str) or not title.strip():
        add_detail(details, "title", "BlankValue", "Title: cannot be blank")
    target = spec.get("relationship_target_type")
    if ftype == "lookup" and not (isinstance(target, str) and LOOKUP_TARGETS.match(target)):
        add_detail(details, "relationship_target_type", "InvalidValue",
                   "Relationship target type: is invalid")  # fmt: skip
    return details, str(ftype), str(key), str(title), target


def ticket_input(t: JsonObj) -> tuple[JsonObj, dict[str, list[JsonObj]]]:
    """The plain values of a new ticket and the 422 ``details`` they earn [API.md §5.3, §7.4]:
    the first comment (``comment.body``, or ``description`` alone), type, priority, status
    (``new``, or ``open`` with an assignee), ``due_at`` (tasks only; dropped otherwise), tags
    (lower case) and custom fields."""
    details: dict[str, list[JsonObj]] = {}
    comment = t.get("comment")
    first = comment if isinstance(comment, dict) else {"body": comment}
    text = first.get("body") or first.get("html_body") or t.get("description")
    if not isinstance(text, str) or not text.strip():
        add_detail(details, "description", "BlankValue", "Description: cannot be blank")
    ticket_type, priority = t.get("type"), t.get("priority")
    if ticket_type not in TICKET_TYPES:
        add_detail(details, "type", "InvalidValue", "Type: is invalid")
    if priority not in PRIORITIES:
        add_detail(details, "priority", "InvalidValue", "Priority: is invalid")
    status = t.get("status") or ("open" if t.get("assignee_id") is not None else "new")
    if status not in CREATE_STATUSES:
        add_detail(details, "status", "InvalidValue", "Status: is invalid")
    due_at = None
    if ticket_type == "task" and t.get("due_at") is not None:
        due_s = parse_time(t["due_at"])
        if due_s is None:
            add_detail(details, "due_at", "InvalidValue", "Due at: is invalid")
        else:
            due_at = iso(due_s)
    tags = t.get("tags") or []
    tags = tags.split() if isinstance(tags, str) else tags
    custom = t.get("custom_fields") or []
    if not isinstance(tags, list) or not isinstance(custom, list):
        add_detail(details, "base", "InvalidValue", "Tags and custom fields must be arrays")
        tags, custom = [], []
    values = {
        "text": str(text),
        "public": bool(first.get("public", True)),
        "subject": t.get("subject"),
        "type": ticket_type,
        "priority": priority,
        "status": status,
        "due_at": due_at,
        "tags": list(dict.fromkeys(str(x).lower() for x in tags)),
        "custom_fields": custom,
        "external_id": None if t.get("external_id") is None else str(t["external_id"]),
    }
    return values, details


def ticket_audit(
    audit_id: int,
    ticket: JsonObj,
    author_id: int,
    text: str,
    public: bool,
    client: str,
    via: JsonObj,
) -> JsonObj:
    """The audit of a ticket's creation: the first comment and a Create event per set field
    [API.md §7.4]."""
    events: list[JsonObj] = [
        {"id": audit_id + 1, "type": "Comment", "author_id": author_id, "body": text,
         "html_body": f'<div class="zd-comment"><p>{text}</p></div>', "plain_body": text,
         "public": public, "attachments": [], "audit_id": audit_id},
    ]  # fmt: skip
    for name in ("subject", "status", "priority", "type", "requester_id", "assignee_id"):
        if ticket.get(name) is not None:
            events.append({"id": audit_id + len(events) + 1, "type": "Create",
                           "value": str(ticket[name]), "field_name": name})  # fmt: skip
    return {
        "id": audit_id,
        "ticket_id": ticket["id"],
        "created_at": ticket["created_at"],
        "author_id": author_id,
        "metadata": {"system": {"client": client}, "custom": {}},
        "events": events,
        "via": via,
    }


# -- OAuth, jobs, paging ------------------------------------------------------------------------

#: The token endpoint's errors, in OAuth's (Doorkeeper's) words [API.md §1.4, §1.5].
OAUTH_ERRORS = {
    "unsupported_grant_type": "The authorization grant type is not supported by the"
    " authorization server.",
    "invalid_client": "Client authentication failed due to unknown client, no client"
    " authentication included, or unsupported authentication method.",
    "invalid_grant": "The provided authorization grant is invalid, expired, revoked, does not"
    " match the redirection URI used in the authorization request, or was issued to another"
    " client.",
}
#: The incremental exports' 429 body [API.md §3.1].
EXPORT_429 = {
    "error": "APIRateLimitExceeded",
    "description": "Number of allowed incremental export API requests per minute exceeded",
}


def oauth_error(code: str) -> JsonObj:
    return {"error": code, "error_description": OAUTH_ERRORS[code]}


def job_failure(op: JsonObj, details: str, oid: Any = None) -> JsonObj:
    """A failed job item: ``{index, error, id, details}``, no ``success`` [API.md §7.3]."""
    out: JsonObj = {"index": op["index"], "error": "OrganizationUpdateFailed"}
    if oid is not None:
        out["id"] = oid
    out["details"] = details
    return out


def job_view(job: JsonObj, now: float, url: str) -> JsonObj:
    """A job status as served at ``now`` [API.md §7.3]: ``queued`` for the first half of its
    delay, then ``working`` with partial ``progress``; completed jobs are stored as such."""
    status, progress = job["status"], job["progress"]
    if status == "queued":
        done = (now - job["created"]) / max(job["due"] - job["created"], 1e-9)
        if done >= 0.5:
            status = "working"
            progress = min(max(job["total"] - 1, 0), int(job["total"] * done))
    return {
        "id": job["id"],
        "url": url,
        "job_type": job["job_type"],
        "total": job["total"],
        "progress": progress,
        "status": status,
        "message": job["message"],
        "results": job["results"],
    }


def memory_page(
    total: int, size: int, after: str | None, before: str | None
) -> tuple[list[int], bool]:
    """Indexes of a CBP page over an in-memory list of ``total`` items, and ``has_more``; the
    cursors hold an index."""
    try:
        start = int(decode_cursor(after or before or "")[0]) if (after or before) else -1
    except (ValueError, TypeError, IndexError):
        raise bad_request("Invalid cursor", "InvalidPaginationParameter") from None
    if before:
        lo = max(0, start - size)
        return list(range(lo, start)), lo > 0
    chosen = list(range(start + 1, min(total, start + 1 + size)))
    return chosen, bool(chosen) and chosen[-1] + 1 < total
