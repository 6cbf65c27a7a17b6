"""The emulated org's object model: 18-character ids, field definitions and value formats.

Shared by the emulator (describe, SOQL, writes) and the seeder (ids, value formats).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from typing import Any

# -- ids ----------------------------------------------------------------------------------------

#: Key prefixes (the first three characters of every record id) [API.md §2.11].
PREFIXES: dict[str, str] = {
    "Account": "001",
    "Contact": "003",
    "Opportunity": "006",
    "Case": "500",
    "Task": "00T",
    "User": "005",
    "NPS_Response__c": "a0X",
    # Both are picklist-value records, 01J in a real org; apart here so an id names its object.
    "OpportunityStage": "01J",
    "CaseStatus": "01K",
}
OBJECT_BY_PREFIX = {prefix: obj for obj, prefix in PREFIXES.items()}
#: Non-record ids: Bulk 2.0 jobs (750), custom field definitions (00N), query locators (01g),
#: the organization (00D).
JOB_PREFIX, CUSTOM_FIELD_PREFIX, LOCATOR_PREFIX, ORG_PREFIX = "750", "00N", "01g", "00D"

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_RE = re.compile(r"\A[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?\Z")
_POD = "5g0"  # two instance characters plus the reserved character


def _suffix(id15: str) -> str:
    """The 3-character case-safe suffix: one character per 5-character chunk, whose bits mark
    the upper-case letters of the chunk (Salesforce's 15 -> 18 character id conversion)."""
    out = []
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        out.append(_SUFFIX[bits])
    return "".join(out)


def _chunk_suffix(chunk: str) -> str:
    bits = 0
    for i, ch in enumerate(chunk):
        if "A" <= ch <= "Z":
            bits |= 1 << i
    return _SUFFIX[bits]


#: Base-62 digit pairs ``00``..``zz`` (index = value) and, per pair, the upper-case bits of its two
#: characters; ids are made by table look-ups (the seeder makes millions).
_PAIRS = [a + b for a in _B62 for b in _B62]
_PAIR_BITS = [("A" <= a <= "Z") | ("A" <= b <= "Z") << 1 for a in _B62 for b in _B62]
_DIGIT_BITS = [int("A" <= ch <= "Z") for ch in _B62]
_TAIL = 62**5  # the last 5-character chunk's range
_HEADS: dict[tuple[str, int], tuple[str, str]] = {}


def _head(prefix: str, high: int) -> tuple[str, str]:
    """The first 10 characters (prefix, pod, 4 high digits) and their two suffix characters."""
    digits = []
    for _ in range(4):
        high, r = divmod(high, 62)
        digits.append(_B62[r])
    head = prefix + _POD + "".join(reversed(digits))
    return head, _chunk_suffix(head[:5]) + _chunk_suffix(head[5:10])


def make_id(prefix: str, number: int) -> str:
    """An 18-character id for ``number`` (deterministic; base-62 digits sort like numbers)."""
    high, low = divmod(number, _TAIL)
    cached = _HEADS.get((prefix, high))
    if cached is None:
        cached = _HEADS[(prefix, high)] = _head(prefix, high)
    top, rest = divmod(low, 14_776_336)  # 62**4: the first digit of the last chunk, then 2 pairs
    mid, last = divmod(rest, 3844)
    bits = _DIGIT_BITS[top] | _PAIR_BITS[mid] << 1 | _PAIR_BITS[last] << 3
    return cached[0] + _B62[top] + _PAIRS[mid] + _PAIRS[last] + cached[1] + _SUFFIX[bits]


def normalize_id(value: str) -> str | None:
    """The canonical 18-character form of a 15- or 18-character id, or None if malformed.

    An 18-character id is case-insensitive: the suffix restores the case of the first 15.
    """
    if not isinstance(value, str) or not _ID_RE.match(value):
        return None
    if len(value) == 15:
        return value + _suffix(value)
    head, suffix = value[:15], value[15:].upper()
    chars = list(head)
    for chunk in range(3):
        pos = _SUFFIX.find(suffix[chunk])
        if pos < 0:
            return None
        for i in range(5):
            j = chunk * 5 + i
            chars[j] = chars[j].upper() if pos & (1 << i) else chars[j].lower()
    fixed = "".join(chars)
    return fixed + _suffix(fixed)


# -- time formats -------------------------------------------------------------------------------

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


@functools.lru_cache(maxsize=16_384)
def _day_text(day: int) -> str:
    d = _EPOCH + dt.timedelta(days=day)
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


def fmt_datetime(ms: int) -> str:
    """Salesforce's datetime format in JSON: ``2026-01-01T00:00:00.000+0000``."""
    day, rest = divmod(ms, 86_400_000)
    hour, rest = divmod(rest, 3_600_000)
    minute, rest = divmod(rest, 60_000)
    second, milli = divmod(rest, 1000)
    return f"{_day_text(day)}T{hour:02d}:{minute:02d}:{second:02d}.{milli:03d}+0000"


def fmt_date(ms: int) -> str:
    return _day_text(ms // 86_400_000)


_DT_RE = re.compile(
    r"\A(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?\Z"
)


def parse_datetime(text: str) -> int | None:
    """Epoch ms of an ISO 8601 datetime (``Z``, ``+0000`` or ``+00:00`` offsets), else None."""
    m = _DT_RE.match(text.strip()) if isinstance(text, str) else None
    if m is None:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        base = dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=dt.timezone.utc)
    except ValueError:
        return None
    ms = int(base.timestamp() * 1000) + (int((frac or "0")[:3].ljust(3, "0")))
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        ms -= sign * (int(digits[:2]) * 60 + int(digits[2:])) * 60_000
    return ms


def parse_date(text: str) -> str | None:
    try:
        return dt.date.fromisoformat(text).isoformat() if len(text) == 10 else None
    except (TypeError, ValueError):
        return None


# -- fields -------------------------------------------------------------------------------------

STRING_TYPES = {"id", "string", "textarea", "picklist", "reference", "email", "phone", "url"}
NUMBER_TYPES = {"double", "currency", "int", "percent"}
#: Fields the system maintains; never createable or updateable.
SYSTEM_FIELDS = (
    "Id",
    "IsDeleted",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
    "SystemModstamp",
)


def field(
    name: str,
    ftype: str,
    label: str | None = None,
    *,
    length: int = 0,
    precision: int = 0,
    scale: int = 0,
    external_id: bool = False,
    unique: bool = False,
    nillable: bool = True,
    createable: bool = True,
    updateable: bool = True,
    custom: bool | None = None,
    defaulted: bool = False,
    picklist: tuple[str, ...] = (),
    reference_to: tuple[str, ...] = (),
    relationship: str | None = None,
) -> dict[str, Any]:
    """One field as ``describe`` returns it (the subset of properties a sync reads)."""
    if ftype in ("string", "email", "phone", "url", "picklist") and not length:
        length = 255 if ftype != "phone" else 40
    if ftype == "textarea" and not length:
        length = 32_000
    if ftype in ("id", "reference"):
        length = 18
    if ftype in ("currency", "double", "percent") and not precision:
        precision, scale = 18, 2
    if ftype == "int" and not precision:
        precision = 9
    is_custom = name.endswith("__c") if custom is None else custom
    return {
        "name": name,
        "label": label or name.removesuffix("__c").replace("_", " "),
        "type": ftype,
        "soapType": _SOAP.get(ftype, "xsd:string"),
        "length": length,
        "byteLength": length * 3,
        "precision": precision,
        "scale": scale,
        "digits": precision if ftype == "int" else 0,
        "externalId": external_id,
        "idLookup": ftype == "id" or external_id or name in ("Email", "Name", "Username"),
        "unique": unique,
        "nillable": nillable,
        "createable": createable,
        "updateable": updateable,
        "custom": is_custom,
        "defaultedOnCreate": defaulted,
        "calculated": False,
        "autoNumber": False,
        "filterable": ftype != "textarea" or length <= 255,
        "sortable": ftype != "textarea" or length <= 255,
        "caseSensitive": False,
        "picklistValues": [
            {"active": True, "defaultValue": False, "label": v, "validFor": None, "value": v}
            for v in picklist
        ],
        "referenceTo": list(reference_to),
        "relationshipName": relationship,
        "deprecatedAndHidden": False,
    }


_SOAP = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
}


def _system(name_field: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    ro: dict[str, Any] = {"createable": False, "updateable": False}
    fields = [
        field("Id", "id", "Record ID", nillable=False, defaulted=True, **ro),
        field("IsDeleted", "boolean", "Deleted", nillable=False, defaulted=True, **ro),
        field("MasterRecordId", "reference", "Master Record ID", reference_to=(), **ro),
    ]
    if name_field is not None:
        fields.append(name_field)
    fields += [
        field("CreatedDate", "datetime", "Created Date", nillable=False, defaulted=True, **ro),
        field("CreatedById", "reference", "Created By ID", reference_to=("User",),
              relationship="CreatedBy", nillable=False, defaulted=True, **ro),
        field("LastModifiedDate", "datetime", "Last Modified Date", nillable=False,
              defaulted=True, **ro),
        field("LastModifiedById", "reference", "Last Modified By ID", reference_to=("User",),
              relationship="LastModifiedBy", nillable=False, defaulted=True, **ro),
        field("SystemModstamp", "datetime", "System Modstamp", nillable=False, defaulted=True,
              **ro),
    ]  # fmt: skip
    return fields


def _owner() -> dict[str, Any]:
    return field("OwnerId", "reference", "Owner ID", reference_to=("User",),
                 relationship="Owner", nillable=False, defaulted=True)  # fmt: skip


def _ref(name: str, target: str, label: str) -> dict[str, Any]:
    rel = name[:-2] if name.endswith("Id") else name.replace("__c", "__r")
    return field(name, "reference", label, reference_to=(target,), relationship=rel)


INDUSTRIES = (
    "Technology", "Finance", "Healthcare", "Retail", "Transportation", "Media", "Education",
    "Manufacturing", "Telecommunications", "Other",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Stage:
    """One OpportunityStage record [API.md §2.13]: the stage's label (StageName's value), its
    default probability, whether it closes and wins, its forecast category (API value, label)."""

    label: str
    probability: int
    closed: bool = False
    won: bool = False
    forecast: tuple[str, str] = ("Pipeline", "Pipeline")


_CLOSED = ("Closed", "Closed")
_OMITTED = ("Omitted", "Omitted")
#: The stages every org starts with [API.md §2.13].
DEFAULT_STAGES = (
    Stage("Prospecting", 10), Stage("Qualification", 10), Stage("Needs Analysis", 20),
    Stage("Value Proposition", 50), Stage("Id. Decision Makers", 60),
    Stage("Perception Analysis", 70), Stage("Proposal/Price Quote", 75),
    Stage("Negotiation/Review", 90), Stage("Closed Won", 100, True, True, _CLOSED),
    Stage("Closed Lost", 0, True, False, _OMITTED),
)  # fmt: skip
#: A real customer's own sales process: no stage named "Closed ...", two ways to lose.
REALISTIC_STAGES = (
    Stage("Discovery", 10), Stage("Solution Fit", 25), Stage("Proposal", 50),
    Stage("Negotiation", 75, forecast=("BestCase", "Best Case")),
    Stage("Verbal Commit", 90, forecast=("Forecast", "Commit")),
    Stage("Signed", 100, True, True, _CLOSED), Stage("Lost", 0, True, False, _OMITTED),
    Stage("No Decision", 0, True, False, _OMITTED),
)  # fmt: skip
#: CaseStatus records: (label, closed) [API.md §2.13].
DEFAULT_CASE_STATUSES = (("New", False), ("Working", False), ("Escalated", False),
                         ("Closed", True))  # fmt: skip
REALISTIC_CASE_STATUSES = (
    ("New", False), ("In Progress", False), ("Waiting on Customer", False),
    ("Escalated", False), ("Resolved", True), ("Closed", True),
)  # fmt: skip


FORECAST_CATEGORIES = ("Omitted", "Pipeline", "BestCase", "Forecast", "Closed")
FORECAST_CATEGORY_NAMES = ("Omitted", "Pipeline", "Best Case", "Commit", "Closed")


def org_stages(profile: str | None) -> tuple[Stage, ...]:
    return REALISTIC_STAGES if profile == "realistic" else DEFAULT_STAGES


def org_case_statuses(profile: str | None) -> tuple[tuple[str, bool], ...]:
    return REALISTIC_CASE_STATUSES if profile == "realistic" else DEFAULT_CASE_STATUSES


OPP_STAGES = tuple(s.label for s in DEFAULT_STAGES)
#: Opportunity Type: a plain org's four values [API.md §2.13]; the seeded org added two.
DEFAULT_OPP_TYPES = (
    "Existing Customer - Upgrade", "Existing Customer - Replacement",
    "Existing Customer - Downgrade", "New Customer",
)  # fmt: skip
OPP_TYPES = ("New Business", "Renewal", "Existing Customer - Upgrade")
CASE_STATUSES = tuple(label for label, _ in DEFAULT_CASE_STATUSES)
CASE_PRIORITIES = ("Critical", "High", "Medium", "Low")
CASE_ORIGINS = ("Email", "Web", "Phone")
TASK_STATUSES = ("Not Started", "In Progress", "Completed")


def plain_org(objects: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``objects`` as a plain org has them (a vanilla world): no custom object, no custom
    field, and the standard picklists without the values the seeded org added."""
    out: dict[str, dict[str, Any]] = {}
    for name, info in objects.items():
        if name.endswith("__c"):
            continue
        fields = []
        for f in info["fields"]:
            if f.get("custom"):
                continue
            if name == "Account" and f["name"] == "Type":
                values = [v for v in f["picklistValues"] if v["value"] != "Former Customer"]
                f = {**f, "picklistValues": values}
            if name == "Opportunity" and f["name"] == "Type":
                f = with_picklist(f, DEFAULT_OPP_TYPES)
            fields.append(f)
        out[name] = {**info, "fields": fields}
    return out


#: Compound field types: selectable in a REST query (an object built from the components), never
#: in a Bulk query, and never filtered, sorted, created or updated themselves.
COMPOUND_TYPES = frozenset({"address", "location"})
#: An address's components: field suffix -> key in the compound value.
ADDRESS_PARTS = (
    ("Street", "street"), ("City", "city"), ("State", "state"), ("PostalCode", "postalCode"),
    ("Country", "country"), ("Latitude", "latitude"), ("Longitude", "longitude"),
    ("GeocodeAccuracy", "geocodeAccuracy"),
)  # fmt: skip
GEOCODE_ACCURACY = (
    "Address", "NearAddress", "Block", "Street", "ExtendedZip", "Zip", "Neighborhood", "City",
    "County", "State", "Unknown",
)  # fmt: skip
CLEAN_STATUS = (
    "Matched", "Different", "Acknowledged", "NotFound", "Inactive", "Pending", "SelectMatch",
    "Skipped",
)  # fmt: skip
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
#: ForecastCategory (API value) and ForecastCategoryName (label) per stage, as a new org maps them.
PLANS = ("starter", "growth", "enterprise")


def _address(prefix: str, label: str) -> list[dict[str, Any]]:
    """An address's components and the compound field over them (``compoundFieldName`` marks
    the components)."""
    parts = [
        field(f"{prefix}Street", "textarea", f"{label} Street", length=255),
        field(f"{prefix}City", "string", f"{label} City", length=40),
        field(f"{prefix}State", "string", f"{label} State/Province", length=80),
        field(f"{prefix}PostalCode", "string", f"{label} Zip/Postal Code", length=20),
        field(f"{prefix}Country", "string", f"{label} Country", length=80),
        field(f"{prefix}Latitude", "double", f"{label} Latitude", precision=18, scale=15),
        field(f"{prefix}Longitude", "double", f"{label} Longitude", precision=18, scale=15),
        field(f"{prefix}GeocodeAccuracy", "picklist", f"{label} Geocode Accuracy",
              length=40, picklist=GEOCODE_ACCURACY),
    ]  # fmt: skip
    compound = field(f"{prefix}Address", "address", f"{label} Address", createable=False,
                     updateable=False)  # fmt: skip
    compound.update(filterable=False, sortable=False, soapType="urn:address")
    for f in parts:
        f["compoundFieldName"] = compound["name"]
    return [*parts, compound]


def compound_parts(f: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The (component field, key) pairs of the compound address field ``f``."""
    prefix = f["name"].removesuffix("Address")
    return tuple((prefix + suffix, key) for suffix, key in ADDRESS_PARTS)


def _ro(name: str, ftype: str, label: str | None = None, **kw: Any) -> dict[str, Any]:
    return field(name, ftype, label, createable=False, updateable=False, **kw)


def _flag(name: str, label: str, *, writable: bool = True) -> dict[str, Any]:
    return field(name, "boolean", label, nillable=False, defaulted=True, createable=writable,
                 updateable=writable)  # fmt: skip


def _realistic_standard() -> dict[str, list[dict[str, Any]]]:
    """The standard fields a real org's describe lists beyond the seeded ones, in describe order
    (names and types from Salesforce's object reference; the labels are the usual English ones).
    A name the seeded org already has keeps its seeded definition (``None`` here)."""
    account: list[Any] = [
        "Id", "IsDeleted", "MasterRecordId", "Name", "Type",
        _ref("ParentId", "Account", "Parent Account ID"),
        *_address("Billing", "Billing"),
        *_address("Shipping", "Shipping"),
        "Phone",
        field("Fax", "phone", "Account Fax"),
        field("AccountNumber", "string", "Account Number", length=40),
        "Website",
        _ro("PhotoUrl", "url", "Photo URL"),
        field("Sic", "string", "SIC Code", length=20),
        "Industry", "AnnualRevenue", "NumberOfEmployees",
        field("Ownership", "picklist", picklist=("Public", "Private", "Subsidiary", "Other")),
        field("TickerSymbol", "string", "Ticker Symbol", length=20),
        "Description",
        field("Rating", "picklist", "Account Rating", picklist=("Hot", "Warm", "Cold")),
        field("Site", "string", "Account Site", length=80),
        "OwnerId", "CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById",
        "SystemModstamp",
        _ro("LastActivityDate", "date", "Last Activity"),
        _ro("LastViewedDate", "datetime", "Last Viewed Date"),
        _ro("LastReferencedDate", "datetime", "Last Referenced Date"),
        field("Jigsaw", "string", "Data.com Key", length=20),
        _ro("JigsawCompanyId", "string", "Jigsaw Company ID", length=20),
        field("CleanStatus", "picklist", "Clean Status", length=40, picklist=CLEAN_STATUS),
        field("AccountSource", "picklist", "Account Source", picklist=LEAD_SOURCES),
        field("DunsNumber", "string", "D-U-N-S Number", length=9),
        field("Tradestyle", "string", length=255),
        field("NaicsCode", "string", "NAICS Code", length=8),
        field("NaicsDesc", "string", "NAICS Description", length=120),
        field("YearStarted", "string", "Year Started", length=4),
        field("SicDesc", "string", "SIC Description", length=80),
    ]  # fmt: skip
    contact: list[Any] = [
        "Id", "IsDeleted", "MasterRecordId", "AccountId", "LastName", "FirstName",
        field("Salutation", "picklist", length=40, picklist=("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.")),
        field("MiddleName", "string", "Middle Name", length=40),
        field("Suffix", "string", length=40),
        "Name",
        *_address("Other", "Other"),
        *_address("Mailing", "Mailing"),
        "Phone",
        field("Fax", "phone", "Business Fax"),
        field("MobilePhone", "phone", "Mobile Phone"),
        field("HomePhone", "phone", "Home Phone"),
        field("OtherPhone", "phone", "Other Phone"),
        field("AssistantPhone", "phone", "Asst. Phone"),
        _ref("ReportsToId", "Contact", "Reports To ID"),
        "Email", "Title",
        field("Department", "string", length=80),
        field("AssistantName", "string", "Assistant's Name", length=40),
        field("LeadSource", "picklist", "Lead Source", picklist=LEAD_SOURCES),
        field("Birthdate", "date"),
        field("Description", "textarea", "Contact Description"),
        "OwnerId", "CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById",
        "SystemModstamp",
        _ro("LastActivityDate", "date", "Last Activity"),
        _ro("LastCURequestDate", "datetime", "Last Stay-in-Touch Request Date"),
        _ro("LastCUUpdateDate", "datetime", "Last Stay-in-Touch Save Date"),
        _ro("LastViewedDate", "datetime", "Last Viewed Date"),
        _ro("LastReferencedDate", "datetime", "Last Referenced Date"),
        field("EmailBouncedReason", "string", "Email Bounced Reason", length=255),
        field("EmailBouncedDate", "datetime", "Email Bounced Date"),
        _ro("IsEmailBounced", "boolean", "Is Email Bounced", nillable=False, defaulted=True),
        _ro("PhotoUrl", "url", "Photo URL"),
        field("Jigsaw", "string", "Data.com Key", length=20),
        _ro("JigsawContactId", "string", "Jigsaw Contact ID", length=20),
        field("CleanStatus", "picklist", "Clean Status", length=40, picklist=CLEAN_STATUS),
    ]  # fmt: skip
    opportunity: list[Any] = [
        "Id", "IsDeleted", "AccountId",
        _flag("IsPrivate", "Private"),
        "Name",
        field("Description", "textarea"),
        "StageName", "Amount", "Probability",
        _ro("ExpectedRevenue", "currency", "Expected Amount"),
        field("TotalOpportunityQuantity", "double", "Quantity", precision=18, scale=2),
        "CloseDate", "Type",
        field("NextStep", "string", "Next Step", length=255),
        field("LeadSource", "picklist", "Lead Source", picklist=LEAD_SOURCES),
        "IsClosed", "IsWon",
        _ro("ForecastCategory", "picklist", "Forecast Category", length=40, nillable=False,
            picklist=("Omitted", "Pipeline", "BestCase", "Forecast", "Closed")),
        field("ForecastCategoryName", "picklist", "Forecast Category", length=40,
              picklist=("Omitted", "Pipeline", "Best Case", "Commit", "Closed")),
        _ref("CampaignId", "Campaign", "Campaign ID"),
        _ro("HasOpportunityLineItem", "boolean", "Has Line Item", nillable=False,
            defaulted=True),
        _ref("Pricebook2Id", "Pricebook2", "Price Book ID"),
        "OwnerId", "CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById",
        "SystemModstamp",
        _ro("LastActivityDate", "date", "Last Activity"),
        _ro("FiscalQuarter", "int", "Fiscal Quarter", precision=11),
        _ro("FiscalYear", "int", "Fiscal Year", precision=4),
        _ro("Fiscal", "string", "Fiscal Period", length=6),
        _ro("LastViewedDate", "datetime", "Last Viewed Date"),
        _ro("LastReferencedDate", "datetime", "Last Referenced Date"),
        _ro("HasOpenActivity", "boolean", "Has Open Activity", nillable=False, defaulted=True),
        _ro("HasOverdueTask", "boolean", "Has Overdue Task", nillable=False, defaulted=True),
    ]  # fmt: skip
    case: list[Any] = [
        "Id", "IsDeleted", "MasterRecordId", "CaseNumber", "ContactId", "AccountId",
        _ref("ParentId", "Case", "Parent Case ID"),
        field("SuppliedName", "string", "Name", length=80),
        field("SuppliedEmail", "email", "Email Address", length=80),
        field("SuppliedPhone", "string", "Phone", length=40),
        field("SuppliedCompany", "string", "Company", length=80),
        field("Type", "picklist", "Case Type",
              picklist=("Mechanical", "Electrical", "Electronic", "Structural", "Other")),
        "Status",
        field("Reason", "picklist", "Case Reason",
              picklist=("Installation", "Equipment Complexity", "Performance", "Breakdown",
                        "Equipment Design", "Feedback", "Other")),
        "Origin", "Subject", "Priority", "Description", "IsClosed", "ClosedDate",
        _flag("IsEscalated", "Escalated"),
        "OwnerId", "CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById",
        "SystemModstamp",
        _ro("ContactPhone", "phone", "Contact Phone"),
        _ro("ContactMobile", "phone", "Contact Mobile"),
        _ro("ContactEmail", "email", "Contact Email"),
        _ro("ContactFax", "phone", "Contact Fax"),
        field("Comments", "textarea", "Internal Comments", length=4000),
        _ro("LastViewedDate", "datetime", "Last Viewed Date"),
        _ro("LastReferencedDate", "datetime", "Last Referenced Date"),
    ]  # fmt: skip
    return {"Account": account, "Contact": contact, "Opportunity": opportunity, "Case": case}


def _realistic_custom() -> dict[str, list[dict[str, Any]]]:
    """The custom fields a customer-success team might have added, under its own names."""
    return {
        "Account": [
            field("Customer_Number__c", "string", "Customer Number", length=32,
                  external_id=True, unique=True),
            field("ARR__c", "currency", "ARR"),
            field("Licenses_Purchased__c", "double", "Licenses Purchased", precision=18,
                  scale=0),
            field("Subscription_Tier__c", "picklist", "Subscription Tier", picklist=PLANS),
            field("Contract_End_Date__c", "date", "Contract End Date"),
            field("Customer_Since__c", "date", "Customer Since"),
            _flag("Churned__c", "Churned"),
        ],
        "Case": [field("Satisfaction_Score__c", "double", "Satisfaction Score", precision=2,
                       scale=0)],
    }  # fmt: skip


def realistic_restricted() -> dict[str, list[dict[str, Any]]]:
    """Fields a realistic org has that field-level security hides from the integration user:
    its records hold values in them, but describe, queries and reads show them only once a
    FieldPermissions grant gives the user Read [API.md §2.3, §2.10]."""
    return {
        "Account": [
            field("Credit_Limit__c", "currency", "Credit Limit"),
            _flag("Legal_Hold__c", "Legal Hold"),
        ]
    }


#: Fields of the seeded org a real one lacks (an Opportunity cannot be merged).
_DROPPED = {"Opportunity": ("MasterRecordId",)}


def realistic_org(objects: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``objects`` as a real customer's org has them (a realistic world): the plain org, with
    the long standard field lists of Account, Contact, Opportunity and Case (compound addresses
    included) and the custom fields of :func:`_realistic_custom`. Every field carries
    ``compoundFieldName`` (null but on an address's components), as a real describe does."""
    plain = plain_org(objects)
    custom = _realistic_custom()
    for name, order in _realistic_standard().items():
        known = {f["name"]: f for f in plain[name]["fields"]}
        fields = [known[item] if isinstance(item, str) else item for item in order]
        listed = {f["name"] for f in fields}
        missing = [n for n in known if n not in listed and n not in _DROPPED.get(name, ())]
        if missing:  # a seeded standard field left out of the list above
            raise AssertionError(f"{name}: {missing}")
        fields += custom.get(name, [])
        plain[name] = {**plain[name], "fields": fields}
    if "Account" in plain:
        for f in plain["Account"]["fields"]:
            if f["name"] == "Type":
                extra = ("Channel Partner / Reseller", "Installation Partner",
                         "Technology Partner", "Other")  # fmt: skip
                f["picklistValues"] = f["picklistValues"] + [
                    {"active": True, "defaultValue": False, "label": v, "validFor": None,
                     "value": v}
                    for v in extra
                ]  # fmt: skip
    # The org's own sales process and case statuses, and a Renewal type beside the default four.
    values = {
        ("Opportunity", "StageName"): tuple(s.label for s in REALISTIC_STAGES),
        ("Opportunity", "Type"): (*DEFAULT_OPP_TYPES, "Renewal"),
        ("Case", "Status"): tuple(label for label, _ in REALISTIC_CASE_STATUSES),
    }
    for name, info in plain.items():
        info["fields"] = [with_picklist(f, values[name, f["name"]])
                          if (name, f["name"]) in values else f
                          for f in info["fields"]]  # fmt: skip
    for info in plain.values():
        info["fields"] = [{**f, "compoundFieldName": f.get("compoundFieldName")}
                          for f in info["fields"]]  # fmt: skip
    return plain


def with_picklist(f: dict[str, Any], values: tuple[str, ...]) -> dict[str, Any]:
    """Field ``f`` with the picklist ``values``."""
    listed = field(f["name"], "picklist", picklist=values)["picklistValues"]
    return {**f, "picklistValues": listed}


def _setup_fields(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    """A setup object's fields (OpportunityStage, CaseStatus): read-only, no owner, never
    deleted or merged."""
    ro: dict[str, Any] = {"createable": False, "updateable": False}
    fields = [f for f in _system() if f["name"] not in ("IsDeleted", "MasterRecordId")]
    fields[1:1] = [
        field("MasterLabel", "string", "Master Label", nillable=False, **ro),
        field("ApiName", "string", "API Name", nillable=False, **ro),
        field("IsActive", "boolean", "Is Active", nillable=False, **ro),
        field("SortOrder", "int", "Sort Order", **ro),
        *({**f, **ro} for f in extra),
    ]
    return fields


def standard_objects() -> dict[str, dict[str, Any]]:
    """The emulated org's objects: ``{name: {label, labelPlural, custom, fields: [...]}}``.

    ``custom`` fields of the standard objects (External_Account_Id__c, Seats__c, ...) are part
    of the org as seeded; fields added through the Tooling API are kept apart (store meta).
    """
    account = [
        *_system(field("Name", "string", "Account Name", nillable=False)),
        field("Type", "picklist", "Account Type",
              picklist=("Prospect", "Customer - Direct", "Customer - Channel", "Former Customer")),
        field("Website", "url"),
        field("Industry", "picklist", picklist=INDUSTRIES),
        field("AnnualRevenue", "currency", "Annual Revenue"),
        field("NumberOfEmployees", "int", "Employees", precision=8),
        field("BillingCity", "string", "Billing City", length=40),
        field("BillingCountry", "string", "Billing Country", length=80),
        field("Phone", "phone", "Account Phone"),
        field("Description", "textarea", "Account Description"),
        _owner(),
        field("External_Account_Id__c", "string", "External Account Id", length=32,
              external_id=True, unique=True),
        field("Seats__c", "double", "Seats", precision=18, scale=0),
        field("Renewal_Date__c", "date", "Renewal Date"),
        field("Plan__c", "picklist", "Plan", picklist=("starter", "growth", "enterprise")),
    ]  # fmt: skip
    contact = [
        *_system(),
        _ref("AccountId", "Account", "Account ID"),
        field("LastName", "string", "Last Name", length=80, nillable=False),
        field("FirstName", "string", "First Name", length=40),
        field("Name", "string", "Full Name", length=121, createable=False, updateable=False),
        field("Email", "email"),
        field("Phone", "phone", "Business Phone"),
        field("Title", "string", length=128),
        _owner(),
    ]
    opportunity = [
        *_system(field("Name", "string", "Name", length=120, nillable=False)),
        _ref("AccountId", "Account", "Account ID"),
        field("Amount", "currency"),
        field("StageName", "picklist", "Stage", length=255, nillable=False, picklist=OPP_STAGES),
        field("Probability", "percent", "Probability (%)", precision=3, scale=0),
        field("CloseDate", "date", "Close Date", nillable=False),
        field("Type", "picklist", "Opportunity Type", picklist=OPP_TYPES),
        field("IsClosed", "boolean", "Closed", createable=False, updateable=False,
              nillable=False, defaulted=True),
        field("IsWon", "boolean", "Won", createable=False, updateable=False, nillable=False,
              defaulted=True),
        _owner(),
    ]  # fmt: skip
    case = [
        *_system(),
        field("CaseNumber", "string", "Case Number", length=30, createable=False,
              updateable=False, nillable=False, defaulted=True),
        _ref("AccountId", "Account", "Account ID"),
        _ref("ContactId", "Contact", "Contact ID"),
        field("Subject", "string"),
        field("Description", "textarea"),
        field("Priority", "picklist", picklist=CASE_PRIORITIES),
        field("Status", "picklist", picklist=CASE_STATUSES, defaulted=True),
        field("Origin", "picklist", "Case Origin", picklist=CASE_ORIGINS),
        field("IsClosed", "boolean", "Closed", createable=False, updateable=False,
              nillable=False, defaulted=True),
        field("ClosedDate", "datetime", "Closed Date", createable=False, updateable=False),
        _owner(),
        field("CSAT__c", "double", "CSAT", precision=1, scale=0),
    ]  # fmt: skip
    task = [
        *_system(),
        field("Subject", "string", length=255),
        field("Description", "textarea", "Comments", length=32000),
        _ref("WhatId", "Account", "Related To ID"),
        _ref("WhoId", "Contact", "Name ID"),
        field("Status", "picklist", picklist=TASK_STATUSES, nillable=False, defaulted=True),
        field("Priority", "picklist", picklist=("High", "Normal", "Low"), defaulted=True),
        field("ActivityDate", "date", "Due Date Only"),
        field("IsClosed", "boolean", "Closed", createable=False, updateable=False,
              nillable=False, defaulted=True),
        _owner(),
    ]  # fmt: skip
    task[[f["name"] for f in task].index("WhatId")]["referenceTo"] = ["Account", "Opportunity",
                                                                      "Case"]  # fmt: skip
    user = [
        *_system(),
        field("Username", "string", length=80, nillable=False, unique=True),
        field("LastName", "string", "Last Name", length=80, nillable=False),
        field("FirstName", "string", "First Name", length=40),
        field("Name", "string", "Full Name", length=121, createable=False, updateable=False),
        field("Email", "email", nillable=False),
        field("Alias", "string", length=8, nillable=False),
        field("IsActive", "boolean", "Active", nillable=False, defaulted=True),
    ]
    nps_name = field("Name", "string", "NPS Response Name", length=80, createable=False,
                     updateable=False, defaulted=True)  # fmt: skip
    nps = [
        *_system(nps_name),
        _owner(),
        _ref("Account__c", "Account", "Account"),
        _ref("Contact__c", "Contact", "Contact"),
        field("Score__c", "double", "Score", precision=2, scale=0),
        field("Comment__c", "textarea", "Comment", length=1000),
        field("Submitted_At__c", "datetime", "Submitted At"),
    ]  # fmt: skip
    for f in nps:
        if f["name"] == "MasterRecordId":
            nps.remove(f)
            break
    return {
        "Account": {"label": "Account", "labelPlural": "Accounts", "fields": account},
        "Contact": {"label": "Contact", "labelPlural": "Contacts", "fields": contact},
        "Opportunity": {"label": "Opportunity", "labelPlural": "Opportunities",
                        "fields": opportunity},
        "Case": {"label": "Case", "labelPlural": "Cases", "fields": case},
        "Task": {"label": "Task", "labelPlural": "Tasks", "fields": task},
        "User": {"label": "User", "labelPlural": "Users", "fields": user},
        "NPS_Response__c": {"label": "NPS Response", "labelPlural": "NPS Responses",
                            "fields": nps},
        "OpportunityStage": {"label": "Opportunity Stage", "labelPlural": "Opportunity Stages",
                             "setup": True, "fields": _setup_fields(
            field("DefaultProbability", "percent", "Probability (%)", precision=3, scale=0),
            field("IsClosed", "boolean", "Closed", nillable=False),
            field("IsWon", "boolean", "Won", nillable=False),
            field("ForecastCategory", "picklist", "Forecast Category", length=40,
                  picklist=FORECAST_CATEGORIES),
            field("ForecastCategoryName", "picklist", "Forecast Category Name",
                  picklist=FORECAST_CATEGORY_NAMES),
            field("Description", "string", "Description"),
        )},
        "CaseStatus": {"label": "Case Status Value", "labelPlural": "Case Status Values",
                       "setup": True, "fields": _setup_fields(
            field("IsClosed", "boolean", "Closed", nillable=False),
            field("IsDefault", "boolean", "Is Default", nillable=False),
        )},
    }  # fmt: skip


#: Metadata ``type`` of a Tooling API CustomField -> describe type.
TOOLING_TYPES = {
    "Text": "string",
    "TextArea": "textarea",
    "LongTextArea": "textarea",
    "Number": "double",
    "Currency": "currency",
    "Percent": "percent",
    "Checkbox": "boolean",
    "Date": "date",
    "DateTime": "datetime",
    "Email": "email",
    "Phone": "phone",
    "Url": "url",
    "Picklist": "picklist",
}
