"""Shared Intercom shapes: id schemes and the record builders the seeder and the emulator use."""

from __future__ import annotations

from typing import Any

VENDOR = "intercom"
APP_ID = "sbxapp01"
#: Intercom's contact/company ids are 24-hex ObjectId-like strings; a nibble tells types apart.
CONTACT_KIND = 0x1
COMPANY_KIND = 0x2
#: Admin ids are numeric strings [spec example "991267"]; ours start here.
ADMIN_BASE = 991_200
#: Seeded records use these key spaces; API-created records take counters above them.
COUNTER_CONTACT = "intercom.contact"
COUNTER_COMPANY = "intercom.company"
COUNTER_CONVERSATION = "intercom.conversation"
COUNTER_ATTRIBUTE = "intercom.data_attribute"
COUNTER_TAG = "intercom.tag"
COUNTER_NOTE = "intercom.note"
COUNTER_PART = "intercom.part"


def object_id(kind: int, key: int, created_s: int) -> str:
    """A deterministic 24-hex id: 8 hex of creation time, 2 of type, 14 of key."""
    return f"{created_s & 0xFFFFFFFF:08x}{kind:02x}{key & 0xFFFFFFFFFFFFFF:014x}"


def attached_list(kind: str, owner_url: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """The contact's ``companies`` / ``tags`` / ``notes`` addressable list [spec contact_*]."""
    return {
        "type": "list",
        "data": items,
        "url": f"{owner_url}/{kind}",
        "total_count": len(items),
        "has_more": False,
    }


def company_ref(company_id: str) -> dict[str, Any]:
    return {"id": company_id, "type": "company", "url": f"/companies/{company_id}"}


#: Built-in data attributes per model, ``(name, label, data_type)``. Intercom reports standard
#: timestamps with data_type "date" [spec data_attribute.data_type enum has no "datetime"].
BUILTIN_ATTRIBUTES: dict[str, list[tuple[str, str, str]]] = {
    "contact": [
        ("name", "Name", "string"),
        ("email", "Email", "string"),
        ("phone", "Phone", "string"),
        ("external_id", "User ID", "string"),
        ("role", "Role", "string"),
        ("owner_id", "Owner", "integer"),
        ("created_at", "Signed up", "date"),
        ("signed_up_at", "Signed up", "date"),
        ("updated_at", "Updated", "date"),
        ("last_seen_at", "Last seen", "date"),
        ("last_replied_at", "Last replied", "date"),
        ("last_contacted_at", "Last contacted", "date"),
        ("unsubscribed_from_emails", "Unsubscribed from emails", "boolean"),
    ],
    "company": [
        ("name", "Company name", "string"),
        ("company_id", "Company ID", "string"),
        ("website", "Company website", "string"),
        ("industry", "Company industry", "string"),
        ("size", "Company size", "integer"),
        ("monthly_spend", "Monthly spend", "float"),
        ("session_count", "Company web sessions", "integer"),
        ("user_count", "Company users", "integer"),
        ("created_at", "Company created at", "date"),
        ("remote_created_at", "Company remote created at", "date"),
        ("last_request_at", "Company last seen", "date"),
    ],
    "conversation": [
        ("state", "State", "string"),
        ("priority", "Priority", "string"),
        ("created_at", "Created at", "date"),
        ("updated_at", "Updated at", "date"),
    ],
}
#: Custom attributes the seeder defines (``custom: true``).
SEEDED_CUSTOM: dict[str, list[tuple[str, str, str]]] = {
    "contact": [("job_title", "Job title", "string"), ("account_id", "Account ID", "string")],
    "company": [
        ("seats", "Seats", "integer"),
        ("arr", "ARR", "float"),
        ("renewal_date", "Renewal date", "date"),
        ("customer_since", "Customer since", "date"),
        ("payment_issue", "Payment issue", "boolean"),
    ],
}

#: A real workspace's own attributes (the realistic profile): the facts above under names of its
#: own, and the many more a team adds over the years, most of them empty on most companies.
REALISTIC_CUSTOM: dict[str, list[tuple[str, str, str]]] = {
    "contact": [
        ("role", "Role", "string"), ("crm_id", "CRM ID", "string"),
        ("onboarding_complete", "Onboarding complete", "boolean"),
        ("last_nps_score", "Last NPS score", "integer"), ("beta_tester", "Beta tester", "boolean"),
        ("preferred_language", "Preferred language", "string"),
    ],
    "company": [
        ("annual_contract_value", "Annual contract value", "float"),
        ("seat_count", "Seat count", "integer"),
        ("next_renewal", "Next renewal", "date"),
        ("became_customer", "Became customer", "date"),
        ("billing_overdue", "Billing overdue", "boolean"),
        ("tier", "Tier", "string"), ("region", "Region", "string"),
        ("csm_name", "CSM name", "string"), ("onboarding_stage", "Onboarding stage", "string"),
        ("integration_count", "Integration count", "integer"),
        ("sso_enabled", "SSO enabled", "boolean"),
        ("api_calls_30d", "API calls (30 days)", "integer"),
        ("last_qbr", "Last QBR", "date"), ("expansion_potential", "Expansion potential", "string"),
        ("support_plan", "Support plan", "string"), ("partner", "Partner", "string"),
        ("contract_type", "Contract type", "string"), ("payment_terms", "Payment terms", "string"),
        ("churn_risk_note", "Churn risk note", "string"),
        ("industry_segment", "Industry segment", "string"),
        ("employee_band", "Employee band", "string"), ("trial_end", "Trial end", "date"),
        ("product_edition", "Product edition", "string"), ("data_region", "Data region", "string"),
        ("health_override", "Health override", "string"),
        ("referral_source", "Referral source", "string"),
        ("success_plan_url", "Success plan URL", "string"),
        ("salesforce_account_id", "Salesforce account ID", "string"),
        ("hubspot_company_id", "HubSpot company ID", "string"),
        ("is_strategic", "Strategic account", "boolean"),
    ],
}  # fmt: skip


def data_attribute(
    attr_id: int,
    model: str,
    name: str,
    label: str,
    data_type: str,
    *,
    custom: bool,
    created_s: int,
    description: str = "",
    options: list[str] | None = None,
    messenger_writable: bool = False,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": "data_attribute",
        "id": attr_id,
        "model": model,
        "name": name,
        "full_name": f"custom_attributes.{name}" if custom else name,
        "label": label,
        "description": description,
        "data_type": data_type,
        "api_writable": custom,
        "messenger_writable": messenger_writable,
        "ui_writable": True,
        "custom": custom,
        "archived": False,
        "created_at": created_s,
        "updated_at": created_s,
        "admin_id": str(ADMIN_BASE),
    }
    if options:
        data["options"] = options
    return data
