"""HubSpot object types, built-in property definitions and association types (shared by the
emulator and the seeder).

Facts: object type ids 0-1 contacts, 0-2 companies, 0-3 deals, 0-5 tickets, 0-19
feedback_submissions, 0-27 tasks [API.md §1.2; HubSpot "Understanding the CRM" docs].
Property types ``bool date datetime enumeration number phone_number string`` with field types
[API.md §1.7]. Default (unlabeled) HUBSPOT_DEFINED association type ids follow HubSpot's
"Associations v4" reference table.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from typing import Any

VENDOR = "hubspot"

#: Object name -> object type id [API.md §1.2].
OBJECT_TYPE_IDS = {
    "contacts": "0-1",
    "companies": "0-2",
    "deals": "0-3",
    "tickets": "0-5",
    "feedback_submissions": "0-19",
    "tasks": "0-27",
    # more standard objects, served empty unless written [API.md §1.2]
    "notes": "0-46",
    "meetings": "0-47",
    "calls": "0-48",
    "emails": "0-49",
    "products": "0-7",
    "line_items": "0-8",
    "quotes": "0-14",
}
TYPE_ID_OBJECTS = {v: k for k, v in OBJECT_TYPE_IDS.items()}
#: The objects the seeder fills; the others are served empty unless written.
_BASE_OBJECTS = frozenset(
    {"contacts", "companies", "deals", "tickets", "feedback_submissions", "tasks"}
)
#: feedback_submissions is read-only in the public API [API.md §1.2].
READ_ONLY_OBJECTS = frozenset({"feedback_submissions"})
#: Singular names used in association type names ("contact_to_company").
SINGULAR = {
    "contacts": "contact",
    "companies": "company",
    "deals": "deal",
    "tickets": "ticket",
    "feedback_submissions": "feedback_submission",
    "tasks": "task",
    "notes": "note",
    "meetings": "meeting",
    "calls": "call",
    "emails": "email",
    "products": "product",
    "line_items": "line_item",
    "quotes": "quote",
}
#: Upper-case names HubSpot uses in some messages ("Could not get some CONTACT objects").
MESSAGE_NAME = {
    "contacts": "CONTACT",
    "companies": "COMPANY",
    "deals": "DEAL",
    "tickets": "TICKET",
    "feedback_submissions": "FEEDBACK_SUBMISSION",
    "tasks": "TASK",
    "notes": "NOTE",
    "meetings": "MEETING",
    "calls": "CALL",
    "emails": "EMAIL",
    "products": "PRODUCT",
    "line_items": "LINE_ITEM",
    "quotes": "QUOTE",
}

#: Id base per object: ids are 11-digit numeric strings, so text order equals numeric order
#: (list cursors and search tie-breaks use the (vendor, object, id) index).
ID_BASE = {
    "contacts": 10_000_000_000,
    "companies": 20_000_000_000,
    "deals": 30_000_000_000,
    "tickets": 50_000_000_000,
    "feedback_submissions": 70_000_000_000,
    "tasks": 80_000_000_000,
    "notes": 81_000_000_000,
    "meetings": 82_000_000_000,
    "calls": 83_000_000_000,
    "emails": 84_000_000_000,
    "products": 85_000_000_000,
    "line_items": 86_000_000_000,
    "quotes": 87_000_000_000,
}
ID_WIDTH = 11


def record_id(obj: str, key: int) -> str:
    return str(ID_BASE[obj] + key)


def id_counter(obj: str) -> str:
    return f"hubspot:ids:{obj}"


#: Default unlabeled association type ids, HUBSPOT_DEFINED [HubSpot associations v4 docs].
ASSOCIATION_TYPE_IDS: dict[tuple[str, str], int] = {
    ("contacts", "companies"): 279,
    ("companies", "contacts"): 280,
    ("deals", "companies"): 341,
    ("companies", "deals"): 342,
    ("tickets", "companies"): 339,
    ("companies", "tickets"): 340,
    ("contacts", "tickets"): 15,
    ("tickets", "contacts"): 16,
    ("deals", "contacts"): 3,
    ("contacts", "deals"): 4,
    ("deals", "tickets"): 27,
    ("tickets", "deals"): 28,
    ("tasks", "companies"): 192,
    ("companies", "tasks"): 191,
    ("tasks", "contacts"): 204,
    ("contacts", "tasks"): 203,
    ("tasks", "deals"): 216,
    ("deals", "tasks"): 215,
    ("tasks", "tickets"): 230,
    ("tickets", "tasks"): 229,
}
#: Primary-company association type ids (also HUBSPOT_DEFINED).
PRIMARY_TYPE_IDS: dict[tuple[str, str], int] = {
    ("contacts", "companies"): 1,
    ("companies", "contacts"): 2,
    ("deals", "companies"): 5,
    ("companies", "deals"): 6,
    ("tickets", "companies"): 26,
    ("companies", "tickets"): 25,
}
TYPE_ID_PAIRS: dict[int, tuple[str, str]] = {
    **{v: k for k, v in ASSOCIATION_TYPE_IDS.items()},
    **{v: k for k, v in PRIMARY_TYPE_IDS.items()},
}
ASSOCIABLE = frozenset({"contacts", "companies", "deals", "tickets", "tasks"})


def association_name(from_obj: str, to_obj: str) -> str:
    return f"{SINGULAR[from_obj]}_to_{SINGULAR[to_obj]}"


# -- value formats ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16_384)
def _day_text(day: int) -> str:
    t = time.gmtime(day * 86_400)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"


def iso_ms(ms: int) -> str:
    """HubSpot's datetime format: ``2019-10-30T03:30:17.883Z`` [API.md §1.2 examples]."""
    day, rest = divmod(ms, 86_400_000)  # the date part is cached: the seeder formats millions
    hour, rest = divmod(rest, 3_600_000)
    minute, rest = divmod(rest, 60_000)
    second, millis = divmod(rest, 1000)
    return f"{_day_text(day)}T{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}Z"


def date_of_ms(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d")


def parse_time_ms(value: str) -> int | None:
    """Epoch ms from ``"1732665600000"``, ``"2024-11-27"`` or an ISO datetime; None if invalid."""
    text = value.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        if len(text) == 10:
            d = dt.date.fromisoformat(text)
            return (
                int(dt.datetime(d.year, d.month, d.day, tzinfo=dt.timezone.utc).timestamp()) * 1000
            )
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return round(t.timestamp() * 1000)


# -- property definitions ----------------------------------------------------------------------

#: ISO time of the built-in definitions' createdAt / updatedAt.
BUILTIN_TIME = "2019-08-06T02:43:01.000Z"

_FIELD_TYPES = {
    "string": "text",
    "number": "number",
    "date": "date",
    "datetime": "date",
    "enumeration": "select",
    "bool": "booleancheckbox",
    "phone_number": "phonenumber",
}


def prop(
    name: str,
    label: str,
    type_: str = "string",
    group: str = "",
    *,
    field_type: str | None = None,
    options: tuple[tuple[str, str], ...] = (),
    unique: bool = False,
    read_only: bool = False,
    hubspot_defined: bool = True,
    calculated: bool = False,
    description: str = "",
    order: int = -1,
) -> dict[str, Any]:
    """A property definition in the shape of the ``Property`` model."""
    out: dict[str, Any] = {
        "updatedAt": BUILTIN_TIME,
        "createdAt": BUILTIN_TIME,
        "name": name,
        "label": label,
        "type": type_,
        "fieldType": field_type or _FIELD_TYPES[type_],
        "description": description,
        "groupName": group,
        "options": [
            {"label": lab, "value": val, "displayOrder": i, "hidden": False}
            for i, (val, lab) in enumerate(options)
        ],
        "displayOrder": order,
        "calculated": calculated,
        "externalOptions": False,
        "hasUniqueValue": unique,
        "hidden": False,
        "modificationMetadata": {
            "archivable": not hubspot_defined,
            "readOnlyDefinition": hubspot_defined,
            "readOnlyValue": read_only,
        },
        "formField": not read_only,
        "dataSensitivity": "non_sensitive",
        "archived": False,
    }
    if hubspot_defined:
        out["hubspotDefined"] = True
    return out


_LIFECYCLE = (
    ("subscriber", "Subscriber"),
    ("lead", "Lead"),
    ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"),
    ("opportunity", "Opportunity"),
    ("customer", "Customer"),
    ("evangelist", "Evangelist"),
    ("other", "Other"),
)
_INDUSTRY = tuple(
    (v, v.replace("_", " ").title())
    for v in (
        "COMPUTER_SOFTWARE",
        "FINANCIAL_SERVICES",
        "HOSPITAL_HEALTH_CARE",
        "RETAIL",
        "LOGISTICS_AND_SUPPLY_CHAIN",
        "MARKETING_AND_ADVERTISING",
        "EDUCATION_MANAGEMENT",
        "MANUFACTURING",
        "TELECOMMUNICATIONS",
    )
)
#: Default sales pipeline stages [HubSpot "Set up and customize pipelines"].
DEAL_STAGES = (
    ("appointmentscheduled", "Appointment Scheduled"),
    ("qualifiedtobuy", "Qualified To Buy"),
    ("presentationscheduled", "Presentation Scheduled"),
    ("decisionmakerboughtin", "Decision Maker Bought-In"),
    ("contractsent", "Contract Sent"),
    ("closedwon", "Closed Won"),
    ("closedlost", "Closed Lost"),
)
#: Default support pipeline "0" stages: 1 New, 2 Waiting on contact, 3 Waiting on us, 4 Closed.
TICKET_STAGES = (("1", "New"), ("2", "Waiting on contact"), ("3", "Waiting on us"), ("4", "Closed"))
#: The default sales pipeline's win probabilities; 1.0 is won, 0.0 with isClosed is lost.
_DEAL_PROBABILITY = ("0.2", "0.4", "0.6", "0.8", "0.9", "1.0", "0.0")


def pipeline(
    pid: str, label: str, stages: list[tuple[str, str, dict[str, str]]], order: int = 0
) -> dict[str, Any]:
    """A pipeline in the shape of the pipelines API's ``Pipeline`` [API.md §1.13]: stages as
    ``(id, label, metadata)``, metadata values strings as HubSpot sends them."""
    return {
        "id": pid,
        "label": label,
        "displayOrder": order,
        "archived": False,
        "createdAt": BUILTIN_TIME,
        "updatedAt": BUILTIN_TIME,
        "stages": [
            {"id": sid, "label": slabel, "displayOrder": i, "metadata": dict(meta),
             "archived": False, "createdAt": BUILTIN_TIME, "updatedAt": BUILTIN_TIME,
             "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT"}
            for i, (sid, slabel, meta) in enumerate(stages)
        ],
    }  # fmt: skip


def default_pipelines() -> dict[str, list[dict[str, Any]]]:
    """The pipelines every portal starts with: deals' ``default``, tickets' ``0``."""
    deal_stages = [
        (sid, label, {"isClosed": str(sid.startswith("closed")).lower(), "probability": p})
        for (sid, label), p in zip(DEAL_STAGES, _DEAL_PROBABILITY, strict=True)
    ]
    ticket_stages = [
        (sid, label, {"ticketState": "CLOSED" if sid == "4" else "OPEN"})
        for sid, label in TICKET_STAGES
    ]
    return {
        "deals": [pipeline("default", "Sales Pipeline", deal_stages)],
        "tickets": [pipeline("0", "Support Pipeline", ticket_stages)],
    }


PRIORITIES = (("LOW", "Low"), ("MEDIUM", "Medium"), ("HIGH", "High"), ("URGENT", "Urgent"))


def _common(group: str) -> list[dict[str, Any]]:
    return [
        prop("hs_object_id", "Record ID", "number", group, read_only=True),
        prop("createdate", "Create Date", "datetime", group),
        prop("hs_lastmodifieddate", "Last Modified Date", "datetime", group, read_only=True),
        prop("hubspot_owner_id", "Owner", "enumeration", group, field_type="select"),
        prop("hs_merged_object_ids", "Merged Record IDs", "enumeration", group,
             field_type="checkbox", read_only=True),
    ]  # fmt: skip


def builtin_properties() -> dict[str, list[dict[str, Any]]]:
    """HubSpot-defined properties per object (a representative subset of the real ones)."""
    companies = [
        *_common("companyinformation"),
        prop("name", "Company name", "string", "companyinformation"),
        prop("domain", "Company Domain Name", "string", "companyinformation"),
        prop("industry", "Industry", "enumeration", "companyinformation", options=_INDUSTRY),
        prop("country", "Country/Region", "string", "companyinformation"),
        prop("city", "City", "string", "companyinformation"),
        prop("phone", "Phone Number", "string", "companyinformation", field_type="phonenumber"),
        prop("numberofemployees", "Number of Employees", "number", "companyinformation"),
        prop("annualrevenue", "Annual Revenue", "number", "companyinformation"),
        prop("description", "Description", "string", "companyinformation",
             field_type="textarea"),
        prop("lifecyclestage", "Lifecycle Stage", "enumeration", "companyinformation",
             field_type="radio", options=_LIFECYCLE),
    ]  # fmt: skip
    contacts = [
        prop("hs_object_id", "Record ID", "number", "contactinformation", read_only=True),
        prop("createdate", "Create Date", "datetime", "contactinformation"),
        prop("lastmodifieddate", "Last Modified Date", "datetime", "contactinformation",
             read_only=True),
        prop("hubspot_owner_id", "Contact owner", "enumeration", "contactinformation"),
        prop("hs_merged_object_ids", "Merged Contact IDs", "enumeration", "contactinformation",
             field_type="checkbox", read_only=True),
        prop("firstname", "First Name", "string", "contactinformation"),
        prop("lastname", "Last Name", "string", "contactinformation"),
        prop("email", "Email", "string", "contactinformation"),
        prop("phone", "Phone Number", "string", "contactinformation", field_type="phonenumber"),
        prop("jobtitle", "Job Title", "string", "contactinformation"),
        prop("company", "Company Name", "string", "contactinformation"),
        prop("associatedcompanyid", "Primary Associated Company ID", "number",
             "contactinformation"),
        prop("lifecyclestage", "Lifecycle Stage", "enumeration", "contactinformation",
             field_type="radio", options=_LIFECYCLE),
    ]  # fmt: skip
    deals = [
        *_common("dealinformation"),
        prop("dealname", "Deal Name", "string", "dealinformation"),
        prop("amount", "Amount", "number", "dealinformation"),
        prop("dealstage", "Deal Stage", "enumeration", "dealinformation", field_type="radio",
             options=DEAL_STAGES),
        prop("pipeline", "Pipeline", "enumeration", "dealinformation",
             options=(("default", "Sales Pipeline"),)),
        prop("closedate", "Close Date", "datetime", "dealinformation"),
        # calculated from the stage's pipeline metadata [API.md §1.13]
        prop("hs_is_closed", "Is Deal Closed?", "bool", "dealinformation", read_only=True,
             calculated=True),
        prop("hs_is_closed_won", "Is Closed Won", "bool", "dealinformation", read_only=True,
             calculated=True),
        prop("dealtype", "Deal Type", "enumeration", "dealinformation", field_type="radio",
             options=(("newbusiness", "New Business"), ("existingbusiness", "Existing Business"))),
        prop("description", "Deal Description", "string", "dealinformation",
             field_type="textarea"),
    ]  # fmt: skip
    tickets = [
        *_common("ticketinformation"),
        prop("subject", "Ticket name", "string", "ticketinformation"),
        prop("content", "Ticket description", "string", "ticketinformation",
             field_type="textarea"),
        prop("hs_pipeline", "Pipeline", "enumeration", "ticketinformation",
             options=(("0", "Support Pipeline"),)),
        prop("hs_pipeline_stage", "Ticket status", "enumeration", "ticketinformation",
             options=TICKET_STAGES),
        prop("hs_ticket_priority", "Priority", "enumeration", "ticketinformation",
             options=PRIORITIES),
        prop("hs_ticket_category", "Category", "enumeration", "ticketinformation",
             field_type="checkbox", options=(("PRODUCT_ISSUE", "Product issue"),
                                             ("BILLING_ISSUE", "Billing issue"),
                                             ("FEATURE_REQUEST", "Feature request"),
                                             ("GENERAL_INQUIRY", "General inquiry"))),
        prop("closed_date", "Close date", "datetime", "ticketinformation"),
    ]  # fmt: skip
    feedback = [
        prop("hs_object_id", "Record ID", "number", "feedback_submission_information",
             read_only=True),
        prop("createdate", "Create Date", "datetime", "feedback_submission_information",
             read_only=True),
        prop("hs_lastmodifieddate", "Last Modified Date", "datetime",
             "feedback_submission_information", read_only=True),
        prop("hs_survey_type", "Survey type", "enumeration", "feedback_submission_information",
             options=(("NPS", "NPS"), ("CES", "CES"), ("CSAT", "CSAT"), ("CUSTOM", "Custom")),
             read_only=True),
        prop("hs_survey_name", "Survey name", "string", "feedback_submission_information",
             read_only=True),
        prop("hs_response_value", "Response value", "number", "feedback_submission_information",
             read_only=True),
        prop("hs_content", "Response content", "string", "feedback_submission_information",
             read_only=True),
        prop("hs_sentiment", "Sentiment", "enumeration", "feedback_submission_information",
             options=(("Promoter", "Promoter"), ("Passive", "Passive"),
                      ("Detractor", "Detractor")), read_only=True),
        prop("hs_submission_timestamp", "Submitted at", "datetime",
             "feedback_submission_information", read_only=True),
        prop("hs_contact_id", "Contact ID", "number", "feedback_submission_information",
             read_only=True),
        prop("hs_contact_email_address", "Contact email", "string",
             "feedback_submission_information", read_only=True),
    ]  # fmt: skip
    tasks = [
        *_common("task"),
        prop("hs_timestamp", "Due date", "datetime", "task"),
        prop("hs_task_subject", "Task Title", "string", "task"),
        prop("hs_task_body", "Notes", "string", "task", field_type="textarea"),
        prop("hs_task_status", "Task Status", "enumeration", "task",
             options=(("NOT_STARTED", "Not started"), ("IN_PROGRESS", "In progress"),
                      ("WAITING", "Waiting"), ("COMPLETED", "Completed"),
                      ("DEFERRED", "Deferred"))),
        prop("hs_task_priority", "Priority", "enumeration", "task",
             options=(("NONE", "None"), ("LOW", "Low"), ("MEDIUM", "Medium"),
                      ("HIGH", "High"))),
        prop("hs_task_type", "Task Type", "enumeration", "task",
             options=(("CALL", "Call"), ("EMAIL", "Email"), ("TODO", "To-do"))),
    ]  # fmt: skip
    return {
        "companies": companies,
        "contacts": contacts,
        "deals": deals,
        "tickets": tickets,
        "feedback_submissions": feedback,
        "tasks": tasks,
        **_more_objects(),
    }


def _more_objects() -> dict[str, list[dict[str, Any]]]:
    """A few of the standard properties of HubSpot's other standard objects [API.md §1.2]."""

    def engagement(obj: str, *props: tuple[str, str, str]) -> list[dict[str, Any]]:
        # an activity: when it happened is hs_timestamp
        return [prop("hs_timestamp", "Activity date", "datetime", f"{obj}_information"),
                *commerce(obj, *props)]  # fmt: skip

    def commerce(obj: str, *props: tuple[str, str, str]) -> list[dict[str, Any]]:
        group = f"{obj}_information"
        return [*_common(group), *(prop(n, label, kind, group) for n, label, kind in props)]

    return {
        "notes": engagement("note", ("hs_note_body", "Note body", "string")),
        "meetings": engagement(
            "meeting", ("hs_meeting_title", "Meeting name", "string"),
            ("hs_meeting_body", "Meeting description", "string"),
            ("hs_meeting_start_time", "Start time", "datetime"),
            ("hs_meeting_end_time", "End time", "datetime"),
            ("hs_meeting_outcome", "Meeting outcome", "enumeration")),
        "calls": engagement(
            "call", ("hs_call_title", "Call title", "string"),
            ("hs_call_body", "Call notes", "string"),
            ("hs_call_direction", "Call direction", "enumeration"),
            ("hs_call_duration", "Call duration", "number"),
            ("hs_call_status", "Call status", "enumeration")),
        "emails": engagement(
            "email", ("hs_email_subject", "Email subject", "string"),
            ("hs_email_text", "Email body", "string"),
            ("hs_email_direction", "Email direction", "enumeration"),
            ("hs_email_status", "Email send status", "enumeration")),
        "products": commerce(
            "product", ("name", "Name", "string"), ("price", "Unit price", "number"),
            ("hs_sku", "SKU", "string"), ("description", "Description", "string"),
            ("recurringbillingfrequency", "Billing frequency", "enumeration")),
        "line_items": commerce(
            "line_item", ("name", "Name", "string"), ("quantity", "Quantity", "number"),
            ("price", "Unit price", "number"), ("amount", "Net price", "number"),
            ("hs_product_id", "Product ID", "number"),
            ("recurringbillingfrequency", "Billing frequency", "enumeration")),
        "quotes": commerce(
            "quote", ("hs_title", "Quote name", "string"),
            ("hs_expiration_date", "Expiration date", "datetime"),
            ("hs_status", "Quote approval status", "enumeration")),
    }  # fmt: skip


def seeded_custom_properties() -> dict[str, list[dict[str, Any]]]:
    """The sandbox portal's custom properties (created by the customer, not HubSpot)."""
    g = "companyinformation"
    return {
        "companies": [
            prop("external_account_id", "External account ID", "string", g, unique=True,
                 hubspot_defined=False),
            prop("seats", "Seats", "number", g, hubspot_defined=False),
            prop("renewal_date", "Renewal date", "date", g, hubspot_defined=False),
            prop("plan", "Plan", "enumeration", g, hubspot_defined=False,
                 options=(("starter", "Starter"), ("growth", "Growth"),
                          ("enterprise", "Enterprise"))),
            prop("customer_since", "Customer since", "date", g, hubspot_defined=False),
        ],
        "tickets": [
            prop("csat", "CSAT", "number", "ticketinformation", hubspot_defined=False),
        ],
    }  # fmt: skip


#: More of HubSpot's own properties, as a real portal lists them (the realistic profile): their
#: internal names and types, grouped per object; most records leave them empty.
_MORE_STANDARD: dict[str, tuple[tuple[str, str], ...]] = {
    "companies": (
        ("about_us", "string"), ("address", "string"), ("address2", "string"),
        ("closedate", "datetime"), ("days_to_close", "number"),
        ("facebook_company_page", "string"), ("facebookfans", "number"),
        ("first_contact_createdate", "datetime"), ("first_conversion_date", "datetime"),
        ("first_conversion_event_name", "string"), ("first_deal_created_date", "datetime"),
        ("founded_year", "string"), ("hs_analytics_first_timestamp", "datetime"),
        ("hs_analytics_first_touch_converting_campaign", "string"),
        ("hs_analytics_first_visit_timestamp", "datetime"),
        ("hs_analytics_last_timestamp", "datetime"),
        ("hs_analytics_last_touch_converting_campaign", "string"),
        ("hs_analytics_last_visit_timestamp", "datetime"),
        ("hs_analytics_latest_source", "enumeration"),
        ("hs_analytics_latest_source_data_1", "string"),
        ("hs_analytics_latest_source_data_2", "string"),
        ("hs_analytics_latest_source_timestamp", "datetime"),
        ("hs_analytics_num_page_views", "number"), ("hs_analytics_num_visits", "number"),
        ("hs_analytics_source", "enumeration"), ("hs_analytics_source_data_1", "string"),
        ("hs_analytics_source_data_2", "string"),
        ("hs_annual_revenue_currency_code", "string"), ("hs_created_by_user_id", "number"),
        ("hs_ideal_customer_profile", "enumeration"), ("hs_is_target_account", "bool"),
        ("hs_last_booked_meeting_date", "datetime"), ("hs_last_logged_call_date", "datetime"),
        ("hs_last_open_task_date", "datetime"), ("hs_last_sales_activity_timestamp", "datetime"),
        ("hs_lead_status", "enumeration"), ("hs_num_blockers", "number"),
        ("hs_num_child_companies", "number"), ("hs_num_contacts_with_buying_roles", "number"),
        ("hs_num_decision_makers", "number"), ("hs_num_open_deals", "number"),
        ("hs_parent_company_id", "number"), ("hs_total_deal_value", "number"),
        ("hs_updated_by_user_id", "number"), ("hubspot_owner_assigneddate", "datetime"),
        ("hubspot_team_id", "enumeration"), ("is_public", "bool"),
        ("linkedin_company_page", "string"), ("linkedinbio", "string"),
        ("notes_last_contacted", "datetime"), ("notes_last_updated", "datetime"),
        ("notes_next_activity_date", "datetime"), ("num_associated_contacts", "number"),
        ("num_associated_deals", "number"), ("num_contacted_notes", "number"),
        ("num_conversion_events", "number"), ("recent_conversion_date", "datetime"),
        ("recent_conversion_event_name", "string"), ("recent_deal_amount", "number"),
        ("recent_deal_close_date", "datetime"), ("state", "string"), ("timezone", "string"),
        ("total_money_raised", "string"), ("total_revenue", "number"),
        ("twitterbio", "string"), ("twitterfollowers", "number"), ("twitterhandle", "string"),
        ("type", "enumeration"), ("web_technologies", "enumeration"), ("website", "string"),
        ("zip", "string"),
    ),
    "contacts": (
        ("address", "string"), ("annualrevenue", "string"), ("company_size", "string"),
        ("currentlyinworkflow", "enumeration"), ("date_of_birth", "string"),
        ("degree", "string"), ("fax", "string"), ("field_of_study", "string"),
        ("first_conversion_date", "datetime"), ("first_conversion_event_name", "string"),
        ("first_deal_created_date", "datetime"), ("gender", "string"),
        ("graduation_date", "string"), ("hs_analytics_average_page_views", "number"),
        ("hs_analytics_first_referrer", "string"), ("hs_analytics_first_timestamp", "datetime"),
        ("hs_analytics_first_url", "string"), ("hs_analytics_last_referrer", "string"),
        ("hs_analytics_last_timestamp", "datetime"), ("hs_analytics_last_url", "string"),
        ("hs_analytics_num_event_completions", "number"),
        ("hs_analytics_num_page_views", "number"), ("hs_analytics_num_visits", "number"),
        ("hs_analytics_source", "enumeration"), ("hs_analytics_source_data_1", "string"),
        ("hs_analytics_source_data_2", "string"), ("hs_buying_role", "enumeration"),
        ("hs_content_membership_status", "enumeration"), ("hs_email_bounce", "number"),
        ("hs_email_click", "number"), ("hs_email_delivered", "number"),
        ("hs_email_first_click_date", "datetime"), ("hs_email_first_open_date", "datetime"),
        ("hs_email_first_send_date", "datetime"), ("hs_email_last_click_date", "datetime"),
        ("hs_email_last_email_name", "string"), ("hs_email_last_open_date", "datetime"),
        ("hs_email_last_send_date", "datetime"), ("hs_email_open", "number"),
        ("hs_email_optout", "bool"), ("hs_email_sends_since_last_engagement", "number"),
        ("hs_emailconfirmationstatus", "enumeration"), ("hs_language", "enumeration"),
        ("hs_lead_status", "enumeration"), ("hs_legal_basis", "enumeration"),
        ("hs_persona", "enumeration"), ("hs_sales_email_last_replied", "datetime"),
        ("hs_time_zone", "enumeration"), ("hubspot_owner_assigneddate", "datetime"),
        ("industry", "string"), ("ip_city", "string"), ("ip_country", "string"),
        ("ip_state", "string"), ("job_function", "string"), ("marital_status", "string"),
        ("message", "string"), ("military_status", "string"), ("mobilephone", "string"),
        ("notes_last_contacted", "datetime"), ("notes_last_updated", "datetime"),
        ("num_associated_deals", "number"), ("num_contacted_notes", "number"),
        ("num_conversion_events", "number"), ("num_unique_conversion_events", "number"),
        ("numemployees", "enumeration"), ("recent_conversion_date", "datetime"),
        ("recent_conversion_event_name", "string"), ("recent_deal_amount", "number"),
        ("recent_deal_close_date", "datetime"), ("relationship_status", "string"),
        ("salutation", "string"), ("school", "string"), ("seniority", "string"),
        ("start_date", "string"), ("state", "string"), ("twitterhandle", "string"),
        ("website", "string"), ("work_email", "string"), ("zip", "string"),
    ),
    "deals": (
        ("amount_in_home_currency", "number"), ("closed_lost_reason", "string"),
        ("closed_won_reason", "string"), ("days_to_close", "number"),
        ("description", "string"), ("hs_acv", "number"), ("hs_analytics_source", "enumeration"),
        ("hs_arr", "number"), ("hs_closed_amount", "number"),
        ("hs_closed_amount_in_home_currency", "number"), ("hs_createdate", "datetime"),
        ("hs_deal_stage_probability", "number"), ("hs_forecast_amount", "number"),
        ("hs_forecast_probability", "number"), ("hs_manual_forecast_category", "enumeration"),
        ("hs_mrr", "number"), ("hs_next_step", "string"), ("hs_priority", "enumeration"),
        ("hs_projected_amount", "number"), ("hs_tcv", "number"),
        ("hubspot_owner_assigneddate", "datetime"), ("notes_last_contacted", "datetime"),
        ("notes_last_updated", "datetime"), ("notes_next_activity_date", "datetime"),
        ("num_associated_contacts", "number"), ("num_contacted_notes", "number"),
        ("num_notes", "number"),
    ),
}  # fmt: skip
_MORE_GROUPS = {"companies": "companyinformation", "contacts": "contactinformation",
                "deals": "dealinformation"}  # fmt: skip


def more_standard_properties() -> dict[str, list[dict[str, Any]]]:
    """HubSpot-defined properties a real portal lists beyond :func:`builtin_properties`."""
    return {
        obj: [
            prop(name, name.replace("_", " ").capitalize(), kind, _MORE_GROUPS[obj],
                 read_only=name.startswith(("hs_analytics", "num_", "notes_", "recent_")))
            for name, kind in names
        ]
        for obj, names in _MORE_STANDARD.items()
    }  # fmt: skip


def realistic_custom_properties() -> dict[str, list[dict[str, Any]]]:
    """A real customer's own properties for the facts the seeded portal keeps under other names
    (the realistic profile)."""
    g = "companyinformation"
    return {
        "companies": [
            prop("customer_id", "Customer ID", "string", g, unique=True, hubspot_defined=False),
            prop("arr_usd", "ARR (USD)", "number", g, hubspot_defined=False),
            prop("licensed_seats", "Licensed seats", "number", g, hubspot_defined=False),
            prop("subscription_tier", "Subscription tier", "enumeration", g,
                 hubspot_defined=False, options=(("starter", "Starter"), ("growth", "Growth"),
                                                 ("enterprise", "Enterprise"))),
            prop("contract_renewal_date", "Contract renewal date", "date", g,
                 hubspot_defined=False),
            prop("became_customer_on", "Became customer on", "date", g, hubspot_defined=False),
            prop("account_status", "Account status", "enumeration", g, hubspot_defined=False,
                 options=(("active", "Active"), ("paused", "Paused"), ("churned", "Churned"))),
        ],
        "tickets": [
            prop("satisfaction_score", "Satisfaction score", "number", "ticketinformation",
                 hubspot_defined=False),
        ],
    }  # fmt: skip


#: The realistic portal's renewals pipeline: numeric ids, as a portal's own pipelines have.
RENEWALS_PIPELINE = "31415926"
RENEWAL_STAGES = (
    ("31415927", "Renewal upcoming", {"isClosed": "false", "probability": "0.5"}),
    ("31415928", "Quote sent", {"isClosed": "false", "probability": "0.7"}),
    ("31415929", "Renewed", {"isClosed": "true", "probability": "1.0"}),
    ("31415930", "Not renewed", {"isClosed": "true", "probability": "0.0"}),
)


def builtin_groups() -> dict[str, list[dict[str, Any]]]:
    names = {
        "companies": (("companyinformation", "Company information"),),
        "contacts": (("contactinformation", "Contact information"),),
        "deals": (("dealinformation", "Deal information"),),
        "tickets": (("ticketinformation", "Ticket information"),),
        "feedback_submissions": (("feedback_submission_information", "Feedback information"),),
        "tasks": (("task", "Task information"),),
        **{obj: ((f"{one}_information", f"{one.replace('_', ' ').capitalize()} information"),)
           for obj, one in SINGULAR.items() if obj not in _BASE_OBJECTS},
    }  # fmt: skip
    return {
        obj: [{"name": n, "label": lab, "displayOrder": -1, "archived": False} for n, lab in groups]
        for obj, groups in names.items()
    }


#: Properties each object returns when the request names none [HubSpot CRM v3 object guides].
DEFAULT_PROPERTIES = {
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate",
                 "lastname"),
    "deals": ("amount", "closedate", "createdate", "dealname", "dealstage",
              "hs_lastmodifieddate", "hs_object_id", "pipeline"),
    "tickets": ("content", "createdate", "hs_lastmodifieddate", "hs_object_id", "hs_pipeline",
                "hs_pipeline_stage", "hs_ticket_category", "hs_ticket_priority", "subject"),
    "feedback_submissions": ("createdate", "hs_lastmodifieddate", "hs_object_id"),
    "tasks": ("createdate", "hs_lastmodifieddate", "hs_object_id"),
    **{obj: ("createdate", "hs_lastmodifieddate", "hs_object_id")
       for obj in ("notes", "meetings", "calls", "emails", "products", "line_items", "quotes")},
}  # fmt: skip


def modified_property(obj: str) -> str:
    """Contacts call it ``lastmodifieddate``, everything else ``hs_lastmodifieddate``."""
    return "lastmodifieddate" if obj == "contacts" else "hs_lastmodifieddate"
