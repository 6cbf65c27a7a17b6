"""A deterministic, vendor-neutral customer base for the sandbox to serve.

:func:`generate` yields one :class:`Bundle` per account (the account, its contacts, deals,
tickets, NPS responses and monthly product usage), streaming, so a million accounts never sit in
memory. Each vendor's ``seed.py`` maps bundles into that CRM's records; the same account can live
in several CRMs (``Account.crms``), linked by ``domain`` and by ``external_id``.

Every account carries a ground-truth ``label`` (healthy, declining, at_risk, churned) and its
signals are drawn to match it: usage trend, seat utilisation, ticket load and severity, CSAT, NPS,
payment issues. Tests and the backtest read the labels from the export this module writes.

Edge cases are made on purpose and are reproducible: non-ASCII and very long names, null fields,
archived / deleted / merged records, and a "bulk import" block of contacts that share one
modification millisecond (``WorldSpec.tie_block``), larger than HubSpot's 10,000-result search cap.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import itertools
import math
import random
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class CrmProfile:
    """One CRM's part of the world (its emulator declares it): the share of accounts that live
    there, what of theirs it holds, and how it shows a removed record."""

    name: str
    share: float
    #: What it holds of an account besides the account and its contacts: "deals", "tickets",
    #: "nps" (deals and NPS go to the first CRM of an account that holds them).
    holds: frozenset[str] = frozenset({"tickets"})
    #: What a removed record becomes there: "archived" or "deleted" (a recycle bin).
    removal: str = "archived"
    #: Whether the bulk-import block of contacts sharing one millisecond lives here.
    ties: bool = False
    #: One of the world's first CRMs, drawn from each account's main random stream. Any other
    #: CRM draws everything of its own from a stream of its own (which accounts and contacts
    #: live there, their lifecycle, and its own tickets), so adding a CRM to the world changes
    #: no record of the others, and the same seed gives the same world in them.
    core: bool = False


_HOLDS = ("deals", "tickets", "nps")


def registered_profiles() -> tuple[CrmProfile, ...]:
    """The profiles of every installed emulator, in port order."""
    from .emulators import emulators

    return tuple(e.world for e in emulators().values())


DAY_MS = 86_400_000
#: The world's "now": fixed so that the same seed gives the same data on any day.
DEFAULT_ANCHOR = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
LABELS = ("healthy", "declining", "at_risk", "churned")
#: Share of accounts per label, before the edge-case accounts.
LABEL_WEIGHTS = (0.62, 0.18, 0.13, 0.07)
PLANS = (
    ("starter", 5, 40, 3_000),
    ("growth", 20, 250, 24_000),
    ("enterprise", 150, 3_000, 180_000),
)
PLAN_WEIGHTS = (0.55, 0.35, 0.10)
USAGE_MONTHS = 12
#: Every MERGE_EVERY-th account is a merge target: live in every CRM.
MERGE_EVERY = 97
#: Share of an account's tickets that a CRM added to the world (CrmProfile.core False) takes,
#: when the account lives there and that CRM holds tickets.
TAKEN_TICKETS = 0.6
#: Contact keys are account key * 1000 + index, so an account holds at most 999 contacts.
TIE_STRIDE_MAX = 950


#: The ways the sandbox's CRMs can be set up (WorldSpec.profile).
PROFILES = ("seeded", "vanilla", "realistic")


@dataclass(frozen=True, slots=True)
class WorldSpec:
    size: int = 100  # number of accounts
    seed: int = 1
    anchor: dt.datetime = DEFAULT_ANCHOR
    #: Contacts sharing one modification millisecond; 0 for none. ``None``: 10,050 when the
    #: world is big enough to carry them (size >= 2,000), else 0.
    tie_block: int | None = None
    #: The CRMs of the world and each one's share of the accounts (an account is in at least
    #: one). Default: every installed emulator's profile.
    crms: tuple[CrmProfile, ...] = field(default_factory=registered_profiles)
    #: How the CRMs are set up (the same accounts, people and history either way):
    #: "seeded", with the custom fields and objects a customer-success team adds (ARR, seats,
    #: plan, renewal and customer-since dates, CSAT, a churned marker, Salesforce's NPS object:
    #: the sandbox's usual world, small schemas); "vanilla", a plain portal, org, workspace and
    #: account with no custom field or object at all, nor values only those would hold;
    #: "realistic", shaped like a real customer's: the vendors' long standard field lists,
    #: custom fields of other names than the seeded world's, no NPS object.
    profile: str = "seeded"

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}")

    @property
    def custom_fields(self) -> bool:
        """Whether the CRMs have custom fields for the customer facts (seeded, realistic)."""
        return self.profile != "vanilla"

    @property
    def realistic(self) -> bool:
        """Whether the CRMs are shaped like a real customer's (long schemas, their own names)."""
        return self.profile == "realistic"

    def serving(self, vendors: Sequence[str]) -> WorldSpec:
        """This world as a sandbox of ``vendors`` holds it: the first CRMs (``core``) stay, as
        they shape every account; an added CRM that is not served takes nothing."""
        return replace(self, crms=tuple(p for p in self.crms if p.core or p.name in vendors))

    @property
    def anchor_ms(self) -> int:
        return int(self.anchor.timestamp() * 1000)

    @property
    def ties(self) -> int:
        if self.tie_block is not None:
            return self.tie_block
        return 10_050 if self.size >= 2_000 else 0

    @property
    def tie_ms(self) -> int:
        """The millisecond the bulk-import block shares (30 days before the anchor, plus 123 ms)."""
        return self.anchor_ms - 30 * DAY_MS + 123


@dataclass(slots=True)
class Account:
    key: int
    external_id: str  # "ACC-0000001": the id every CRM stores, the cross-CRM link
    name: str
    domain: str | None
    industry: str | None
    country: str | None
    city: str | None
    phone: str | None
    employees: int | None
    plan: str
    arr: float  # annual recurring revenue, USD
    seats: int
    customer_since: str  # YYYY-MM-DD
    renewal_date: str  # YYYY-MM-DD, the next renewal (or the one that was lost)
    created_ms: int
    updated_ms: int
    label: str  # ground truth: healthy | declining | at_risk | churned
    churned_on: str | None
    payment_issue: bool
    owner: int  # index into OWNERS
    crms: tuple[str, ...]
    description: str | None = None
    #: Per-CRM lifecycle: "live" (default when absent), "archived", "deleted", "merged".
    lifecycle: dict[str, str] = field(default_factory=dict)
    merged_into: int | None = None  # key of the surviving account when merged
    edge: str | None = None  # which edge case this account is, if any


@dataclass(slots=True)
class Contact:
    key: int
    account_key: int
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    title: str | None
    created_ms: int
    updated_ms: int
    crms: tuple[str, ...]
    lifecycle: dict[str, str] = field(default_factory=dict)
    merged_into: int | None = None
    last_seen_ms: int | None = None  # last product / messenger activity


@dataclass(slots=True)
class Deal:
    key: int
    account_key: int
    name: str
    kind: str  # new_business | renewal | expansion
    amount: float
    stage: str  # open | won | lost
    close_date: str  # YYYY-MM-DD
    created_ms: int
    updated_ms: int
    crm: str  # hubspot | salesforce (Intercom has no deals)


@dataclass(slots=True)
class Ticket:
    key: int
    account_key: int
    contact_key: int | None
    subject: str
    description: str | None
    priority: str  # low | medium | high | urgent
    status: str  # open | pending | closed
    created_ms: int
    updated_ms: int
    closed_ms: int | None
    csat: int | None  # 1..5 when rated
    crm: str  # hubspot ticket | salesforce Case | intercom conversation


@dataclass(slots=True)
class NpsResponse:
    key: int
    account_key: int
    contact_key: int | None
    score: int  # 0..10
    comment: str | None
    submitted_ms: int
    crm: str  # hubspot feedback_submissions | salesforce NPS_Response__c | intercom (none: CSAT)


@dataclass(slots=True)
class Usage:
    account_key: int
    external_id: str
    month: str  # YYYY-MM-01
    active_users: int
    logins: int
    features_adopted: int  # 0..20
    seats: int


@dataclass(slots=True)
class Bundle:
    account: Account
    contacts: list[Contact]
    deals: list[Deal]
    tickets: list[Ticket]
    nps: list[NpsResponse]
    usage: list[Usage]


OWNERS = (
    ("Ava", "Martin", "ava.martin@sandbox-vendor.example"),
    ("Noah", "Schmidt", "noah.schmidt@sandbox-vendor.example"),
    ("Mia", "Rossi", "mia.rossi@sandbox-vendor.example"),
    ("Liam", "Dubois", "liam.dubois@sandbox-vendor.example"),
    ("Zoë", "Okafor", "zoe.okafor@sandbox-vendor.example"),
    ("Kenji", "Sato", "kenji.sato@sandbox-vendor.example"),
    ("Sofía", "García", "sofia.garcia@sandbox-vendor.example"),
    ("Oskar", "Lindqvist", "oskar.lindqvist@sandbox-vendor.example"),
)

_PREFIX = (
    "Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Soylent",
    "Tyrell", "Cyberdyne", "Aperture", "Black Mesa", "Wonka", "Gringotts", "Monarch", "Oscorp",
    "Pied Piper", "Massive", "Dunder", "Bluth", "Prestige", "Sirius", "Nakatomi", "Virtucon",
    "Blue Sun", "Zorg", "Octan", "Nordic", "Alpine", "Harbor", "Summit", "Pioneer", "Atlas",
    "Beacon", "Cobalt", "Delta", "Evergreen", "Falcon", "Granite",
)  # fmt: skip
_SUFFIX = (
    "Labs", "Systems", "Analytics", "Logistics", "Health", "Foods", "Robotics", "Media",
    "Capital", "Energy", "Software", "Networks", "Retail", "Bio", "Studios", "Partners",
)  # fmt: skip
_LEGAL = ("Inc.", "LLC", "Ltd", "GmbH", "SAS", "BV", "AB", "Pty Ltd", "")
_NON_ASCII_NAMES = (
    "Müller & Söhne GmbH", "Ørsted Façades ApS", "株式会社サンドボックス",
    "Łódź Żurawie Sp. z o.o.",
    "Café Crème SARL", "Ärzte-Überweisung AG", "Şeker Kimya A.Ş.", "ΑΘΗΝΑ Λογισμικό ΑΕ",
    "Москва Технологии", "北京沙盒科技有限公司", "Ñandú Estudio S.L.", "Emoji Corp 🚀",
)  # fmt: skip
_INDUSTRIES = (
    "COMPUTER_SOFTWARE", "FINANCIAL_SERVICES", "HOSPITAL_HEALTH_CARE", "RETAIL",
    "LOGISTICS_AND_SUPPLY_CHAIN",
    "MARKETING_AND_ADVERTISING", "EDUCATION_MANAGEMENT", "MANUFACTURING", "TELECOMMUNICATIONS",
)  # fmt: skip
_PLACES = (
    ("US", "New York"), ("US", "Austin"), ("US", "San Francisco"), ("GB", "London"),
    ("DE", "Berlin"), ("FR", "Paris"), ("NL", "Amsterdam"), ("SE", "Stockholm"),
    ("JP", "Tokyo"), ("AU", "Sydney"), ("BR", "São Paulo"), ("IN", "Bengaluru"),
)  # fmt: skip
_FIRST = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas",
    "Sarah", "Charles", "Karen", "Amélie", "José", "Björn", "Chloé", "Søren", "Renée", "Jürgen",
    "Yuki", "Wei", "Priya", "Olumide", "Fatima", "Mateo", "Siobhán", "Zoë", "Łukasz",
)  # fmt: skip
_LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Wilson",
    "Anderson", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris",
    "Müller", "Núñez", "O'Brien", "Nguyen", "Kowalski", "Öztürk", "Dubois", "Tanaka", "Ivanova",
    "Okonkwo", "Van der Berg", "Håkansson",
)  # fmt: skip
_TITLES = (
    "CEO", "CTO", "VP Operations", "Head of Customer Success", "Product Manager", "Engineer",
    "Analyst", "Office Manager", "Director of IT", None,
)  # fmt: skip
_TICKET_SUBJECTS = (
    "Cannot log in", "Export fails with timeout", "Billing question", "SSO setup help",
    "Data looks out of date", "Feature request: bulk edit", "API returns 500", "Slow dashboard",
    "Invoice incorrect", "User cannot be invited", "Integration disconnected", "Password reset",
)  # fmt: skip
_NPS_COMMENTS = {
    "promoter": ("Love it, the team relies on it daily.", "Great support!", "Saves us hours."),
    "passive": ("Fine, does the job.", "Good but pricey.", None),
    "detractor": ("Too many outages lately.", "Support takes days to answer.", "Hard to use."),
}

# Per-label shape of the signals: (usage trend per month, seat utilisation range, tickets per
# account range, share of high/urgent tickets, CSAT range, NPS score range, payment issue rate)
_PROFILE = {
    "healthy": (0.02, (0.65, 0.98), (0, 3), 0.05, (4, 5), (8, 10), 0.01),
    "declining": (-0.06, (0.35, 0.65), (2, 6), 0.25, (3, 4), (5, 8), 0.08),
    "at_risk": (-0.14, (0.08, 0.35), (5, 12), 0.55, (1, 3), (0, 6), 0.35),
    "churned": (-0.25, (0.0, 0.15), (3, 9), 0.45, (1, 2), (0, 4), 0.5),
}


# -- fast draws ---------------------------------------------------------------------------------
# The generator makes ~150 draws per account; going through ``Random.randint`` / ``choice`` costs
# three Python calls per draw. These helpers make the very same ``getrandbits`` / ``random`` calls
# as CPython's ``Random`` (so the data is unchanged) with one call. ``_fast_draws_match`` checks
# that at import; if a Python version draws differently, ``generate`` keeps ``Random``'s methods.


def _below(grb: Callable[[int], int], n: int) -> int:
    """``Random._randbelow_with_getrandbits``: uniform in ``[0, n)``, n > 0."""
    k = n.bit_length()
    r = grb(k)
    while r >= n:
        r = grb(k)
    return r


def _randint(grb: Callable[[int], int], a: int, b: int) -> int:
    """``Random.randint(a, b)``."""
    n = b - a + 1
    k = n.bit_length()
    r = grb(k)
    while r >= n:
        r = grb(k)
    return a + r


def _choice(grb: Callable[[int], int], seq: Sequence[_T]) -> _T:
    """``Random.choice(seq)`` for a non-empty sequence."""
    n = len(seq)
    k = n.bit_length()
    r = grb(k)
    while r >= n:
        r = grb(k)
    return seq[r]


class _Weighted(Generic[_T]):
    """``Random.choices(population, weights)[0]`` with the cumulative weights computed once."""

    __slots__ = ("cum", "hi", "population", "total")

    def __init__(self, population: Sequence[_T], weights: Sequence[float]) -> None:
        self.population = population
        self.cum = list(itertools.accumulate(weights))
        self.total = self.cum[-1] + 0.0
        self.hi = len(population) - 1

    def pick(self, rand: Callable[[], float]) -> _T:
        return self.population[bisect.bisect(self.cum, rand() * self.total, 0, self.hi)]


def _fast_draws_match() -> bool:
    fast, slow = random.Random(12345), random.Random(12345)
    grb, rand = fast.getrandbits, fast.random
    weighted = _Weighted(LABELS, LABEL_WEIGHTS)
    for n in (1, 2, 3, 5, 7, 12, 40, 62, 100, 1000, 86_400_000, 180 * 86_400_000) * 20:
        if _randint(grb, -3, n) != slow.randint(-3, n) or _below(grb, n) != slow.randrange(n):
            return False
        seq = range(n)
        if _choice(grb, seq) != slow.choice(seq):
            return False
        if weighted.pick(rand) != slow.choices(LABELS, LABEL_WEIGHTS)[0]:
            return False
        if _uniform(rand, 0.1, 0.5) != slow.uniform(0.1, 0.5):
            return False
        if _expovariate(rand, 0.25) != slow.expovariate(0.25):
            return False
    return fast.getstate() == slow.getstate()


def _uniform(rand: Callable[[], float], a: float, b: float) -> float:
    """``Random.uniform(a, b)``."""
    return a + (b - a) * rand()


def _expovariate(rand: Callable[[], float], lambd: float) -> float:
    """``Random.expovariate(lambd)``."""
    return -math.log(1.0 - rand()) / lambd


_FAST_DRAWS = _fast_draws_match()
if not _FAST_DRAWS:  # pragma: no cover - another Python draws differently: use its own methods

    def _below(grb: Callable[[int], int], n: int) -> int:
        return int(grb.__self__.randrange(n))  # type: ignore[attr-defined]

    def _randint(grb: Callable[[int], int], a: int, b: int) -> int:
        return int(grb.__self__.randint(a, b))  # type: ignore[attr-defined]

    def _choice(grb: Callable[[int], int], seq: Sequence[_T]) -> _T:
        return grb.__self__.choice(seq)  # type: ignore[attr-defined]

    def _uniform(rand: Callable[[], float], a: float, b: float) -> float:
        return float(rand.__self__.uniform(a, b))  # type: ignore[attr-defined]

    def _expovariate(rand: Callable[[], float], lambd: float) -> float:
        return float(rand.__self__.expovariate(lambd))  # type: ignore[attr-defined]

    def _pick(self: _Weighted[_T], rand: Callable[[], float]) -> _T:
        return rand.__self__.choices(self.population, cum_weights=self.cum)[0]  # type: ignore[attr-defined]

    _Weighted.pick = _pick  # type: ignore[method-assign]


_LABEL_PICK = _Weighted(LABELS, LABEL_WEIGHTS)
_PLAN_PICK = _Weighted(PLANS, PLAN_WEIGHTS)


@functools.lru_cache(maxsize=8192)
def _day(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


def _date(ms: int) -> str:
    return _day(ms // DAY_MS)


def _month_start(anchor: dt.datetime, back: int) -> str:
    year, month = anchor.year, anchor.month - back
    while month <= 0:
        month += 12
        year -= 1
    return f"{year:04d}-{month:02d}-01"


def external_id(key: int) -> str:
    return f"ACC-{key:07d}"


def ties_per_account(spec: WorldSpec) -> int:
    """How many tie-block contacts each of the first accounts carries (0 without a block)."""
    if not spec.ties:
        return 0
    per = -(-spec.ties // max(1, spec.size // 2))
    if per > TIE_STRIDE_MAX:
        raise ValueError(
            f"a tie block of {spec.ties:,} contacts needs at least"
            f" {2 * -(-spec.ties // TIE_STRIDE_MAX):,} accounts; got {spec.size:,}"
        )
    return per


def generate(spec: WorldSpec, start: int = 1, stop: int | None = None) -> Iterator[Bundle]:
    """Yield one bundle per account with key in ``[start, stop)`` (default: all of 1..size).

    Every account draws from its own random stream (seeded by ``spec.seed`` and its key) and
    every child key is derived from the account key, so account k is the same whichever range
    it is generated in: ranges can be generated in parallel and concatenated.
    """
    now = spec.anchor_ms
    months = [_month_start(spec.anchor, USAGE_MONTHS - 1 - i) for i in range(USAGE_MONTHS)]
    months_ms = [
        int(dt.datetime.fromisoformat(m).replace(tzinfo=dt.timezone.utc).timestamp() * 1000)
        for m in months
    ]
    per_tie = ties_per_account(spec)
    profiles = spec.crms
    if not profiles:
        raise ValueError("a world needs at least one CRM")
    core = [p for p in profiles if p.core] or list(profiles)
    added = [p for p in profiles if p not in core]
    core_crms = tuple(p.name for p in core)
    removal = {p.name: p.removal for p in profiles}
    holds = {what: {p.name for p in profiles if what in p.holds} for what in _HOLDS}
    tie_crm = next((p.name for p in profiles if p.ties), "")
    if per_tie and not tie_crm:
        raise ValueError("no CRM of the world holds the tie block (CrmProfile.ties)")
    below, randint, choice = _below, _randint, _choice
    uniform, expovariate = _uniform, _expovariate
    stop = spec.size + 1 if stop is None else min(stop, spec.size + 1)

    for key in range(max(start, 1), stop):
        rng = random.Random(spec.seed * 1_000_003 + key)
        grb, rand = rng.getrandbits, rng.random
        # Child keys: account key times a stride, plus a running index.
        ids = {"contact": key * 1000, "deal": key * 100, "ticket": key * 100, "nps": key * 100}
        # The first accounts carry the tie block, `per_tie` contacts each, in HubSpot.
        extra_ties = max(0, min(per_tie, spec.ties - (key - 1) * per_tie)) if per_tie else 0
        label = _LABEL_PICK.pick(rand)
        trend, util_range, tix_range, severe_share, csat_range, nps_range, pay_rate = _PROFILE[
            label
        ]
        plan_name, seat_lo, seat_hi, base_arr = _PLAN_PICK.pick(rand)
        seats = randint(grb, seat_lo, seat_hi)
        arr = round(
            base_arr * uniform(rand, 0.6, 1.8) * (seats / ((seat_lo + seat_hi) / 2)) ** 0.5, 2
        )
        created = now - randint(grb, 120, 2_400) * DAY_MS - randint(grb, 0, DAY_MS - 1)
        updated = created + int((now - created) * rand() ** 0.3)
        country, city = choice(grb, _PLACES)
        name = f"{choice(grb, _PREFIX)} {choice(grb, _SUFFIX)}"
        legal = choice(grb, _LEGAL)
        base = name.lower().replace(" ", "")
        domain: str | None = f"{base}{key}.example.com"
        edge = None
        roll = rand()
        if roll < 0.01:
            edge, name = "non_ascii", choice(grb, _NON_ASCII_NAMES)
        elif roll < 0.015:
            edge = "nulls"
            domain = None
        elif roll < 0.018:
            edge = "long"
            name = (name + " ") * 20 + "International Holdings"
        full_name = f"{name} {legal}".strip() if edge != "non_ascii" else name
        crms = tuple(p.name for p in core if rand() < p.share)
        if not crms:
            crms = (core_crms[key % len(core_crms)],)
        if key % MERGE_EVERY == 0:
            crms = core_crms  # merge targets live everywhere, so duplicates can merge into them
        elif extra_ties and tie_crm not in crms:
            crms = (tie_crm, *crms)
        # Each added CRM: its own stream per account (see CrmProfile.core).
        own = {
            p.name: random.Random(f"{spec.seed}/{key}/{p.name}")
            for p in added
            if key % MERGE_EVERY == 0
            or random.Random(f"{spec.seed}/{key}/{p.name}/in").random() < p.share
        }
        renewal_ms = now + randint(grb, -30, 365) * DAY_MS
        churned_on = None
        if label == "churned":
            renewal_ms = now - randint(grb, 1, 120) * DAY_MS
            churned_on = _date(renewal_ms)
        account = Account(
            key=key,
            external_id=external_id(key),
            name=full_name,
            domain=domain,
            industry=None if edge == "nulls" else choice(grb, _INDUSTRIES),
            country=None if edge == "nulls" else country,
            city=None if edge == "nulls" else city,
            phone=None if edge == "nulls" else f"+1-555-{randint(grb, 0, 9999):04d}",
            employees=None if edge == "nulls" else seats * randint(grb, 2, 20),
            plan=plan_name,
            arr=arr,
            seats=seats,
            customer_since=_date(created),
            renewal_date=_date(renewal_ms),
            created_ms=created,
            updated_ms=updated,
            label=label,
            churned_on=churned_on,
            payment_issue=rand() < pay_rate,
            owner=below(grb, len(OWNERS)),
            crms=(*crms, *own),
            description=("Long description. " * 600).strip() if edge == "long" else None,
            edge=edge,
        )
        # Lifecycle edge cases, per CRM: ~0.5% archived/deleted, ~0.3% merged into the
        # previous merge target (a live account present in every CRM).
        lifecycle_draws = [(crm, rand) for crm in crms] + [(c, r.random) for c, r in own.items()]
        for crm, draw in lifecycle_draws if key % MERGE_EVERY else ():
            r = draw()
            if r < 0.005:
                account.lifecycle[crm] = removal[crm]
            elif r < 0.008 and key > MERGE_EVERY:
                account.lifecycle[crm] = "merged"
                account.merged_into = key - key % MERGE_EVERY

        # Contacts: 1-8, more for bigger plans.
        contacts: list[Contact] = []
        n_contacts = min(1 + int(expovariate(rand, 1 / (2 if plan_name == "starter" else 4))), 40)
        for i in range(n_contacts + extra_ties):
            ids["contact"] += 1
            ckey = ids["contact"]
            first, last = choice(grb, _FIRST), choice(grb, _LAST)
            c_created = created + randint(grb, 0, max(1, now - created))
            c_updated = c_created + int((now - c_created) * rand() ** 0.5)
            tie = i >= n_contacts
            if tie:
                c_created = min(c_created, spec.tie_ms)
                c_updated = spec.tie_ms
            email_domain = domain or "mail.example.net"
            email = f"{_ascii(first)}.{_ascii(last)}.{ckey}@{email_domain}".lower()
            contact = Contact(
                key=ckey,
                account_key=key,
                first_name=first,
                last_name=None if edge == "nulls" and i == 0 else last,
                email=None if edge == "nulls" and i == 1 else email,
                phone=f"+1-555-{randint(grb, 0, 9999):04d}" if rand() < 0.6 else None,
                title=choice(grb, _TITLES),
                created_ms=c_created,
                updated_ms=c_updated,
                crms=(tie_crm,) if tie else tuple(c for c in crms if rand() < 0.9) or crms[:1],
                last_seen_ms=now
                - int(expovariate(rand, 1 / (5 if label == "healthy" else 40))) * DAY_MS,
            )
            for crm in () if tie else contact.crms:  # the tie block stays live, whole
                r = rand()
                if r < 0.01:
                    contact.lifecycle[crm] = removal[crm]
                elif r < 0.015 and contacts:
                    contact.lifecycle[crm] = "merged"
                    contact.merged_into = contacts[0].key
            for crm, stream in () if tie else own.items():  # added CRMs: their own draws
                if stream.random() >= 0.9:
                    continue
                contact.crms = (*contact.crms, crm)
                r = stream.random()
                if r < 0.01:
                    contact.lifecycle[crm] = removal[crm]
                elif r < 0.015 and contacts:
                    contact.lifecycle[crm] = "merged"
                    contact.merged_into = contacts[0].key
            contacts.append(contact)

        # Deals: the first sale, renewals, expansions, some lost.
        deals: list[Deal] = []
        deal_crms = [c for c in crms if c in holds["deals"]]
        if deal_crms:
            crm = deal_crms[0]
            ids["deal"] += 1
            deals.append(
                Deal(ids["deal"], key, f"{full_name[:60]} - New Business", "new_business",
                     round(arr, 2), "won", _date(created), created, created + DAY_MS, crm)
            )  # fmt: skip
            years = max(0, (now - created) // (365 * DAY_MS))
            for year in range(1, int(years) + 1):
                close = created + year * 365 * DAY_MS
                if churned_on and close >= renewal_ms:
                    break  # a churned account renews nothing on or after the day it churned
                ids["deal"] += 1
                deals.append(
                    Deal(ids["deal"], key, f"{full_name[:60]} - Renewal {year}", "renewal",
                         round(arr, 2), "won", _date(close), close - 60 * DAY_MS, close, crm)
                )  # fmt: skip
            ids["deal"] += 1
            if label == "churned":
                deals.append(
                    Deal(ids["deal"], key, f"{full_name[:60]} - Renewal", "renewal", round(arr, 2),
                         "lost", _date(renewal_ms), renewal_ms - 60 * DAY_MS, renewal_ms, crm)
                )  # fmt: skip
            else:
                stage = "open" if renewal_ms > now else "won"
                deals.append(
                    Deal(ids["deal"], key, f"{full_name[:60]} - Renewal", "renewal", round(arr, 2),
                         stage, _date(renewal_ms), renewal_ms - 90 * DAY_MS,
                         min(now, renewal_ms - 80 * DAY_MS + randint(grb, 0, 60) * DAY_MS), crm)
                )  # fmt: skip
            if label == "healthy" and rand() < 0.3:
                ids["deal"] += 1
                won = rand() < 0.6
                close = (
                    now - randint(grb, 0, 200) * DAY_MS
                    if won
                    else now + randint(grb, 10, 120) * DAY_MS
                )
                deals.append(
                    Deal(ids["deal"], key, f"{full_name[:60]} - Expansion", "expansion",
                         round(arr * uniform(rand, 0.1, 0.5), 2), "won" if won else "open",
                         _date(close), close - 45 * DAY_MS, min(now, close), crm)
                )  # fmt: skip

        # Tickets over the last 180 days, each in one of the account's CRMs that hold tickets.
        # An added CRM that holds tickets takes some of them, by its own draws (the tickets
        # themselves, and the other CRMs' draws, stay what they are without it).
        ticket_crms = [c for c in crms if c in holds["tickets"]] or list(crms)
        takers = [(c, r.random) for c, r in own.items() if c in holds["tickets"]]
        tickets: list[Ticket] = []
        for _ in range(randint(grb, *tix_range)):
            ids["ticket"] += 1
            t_created = now - randint(grb, 0, 180 * DAY_MS)
            severe = rand() < severe_share
            priority = choice(grb, ("high", "urgent")) if severe else choice(grb, ("low", "medium"))
            open_ = rand() < (0.5 if label in ("at_risk", "churned") else 0.15)
            closed_ms = None if open_ else t_created + randint(grb, 1, 20 * DAY_MS)
            if closed_ms is not None and closed_ms > now:
                closed_ms = now
            rated = closed_ms is not None and rand() < 0.6
            tickets.append(
                Ticket(
                    key=ids["ticket"],
                    account_key=key,
                    contact_key=choice(grb, contacts).key if contacts else None,
                    subject=choice(grb, _TICKET_SUBJECTS),
                    description=None if rand() < 0.2 else "Customer reported the issue.",
                    priority=priority,
                    status=("open" if rand() < 0.7 else "pending") if open_ else "closed",
                    created_ms=t_created,
                    updated_ms=closed_ms or t_created + randint(grb, 0, DAY_MS),
                    closed_ms=closed_ms,
                    csat=randint(grb, *csat_range) if rated else None,
                    crm=choice(grb, ticket_crms),
                )
            )
            for crm, draw in takers:
                if draw() < TAKEN_TICKETS:
                    tickets[-1].crm = crm
                    break

        # NPS: one or two survey waves answered by a few contacts.
        nps: list[NpsResponse] = []
        nps_crms = [c for c in crms if c in holds["nps"]]
        if nps_crms and contacts:
            for wave in (90, 270):
                if rand() < 0.6:
                    continue
                for contact in rng.sample(contacts, k=min(len(contacts), randint(grb, 1, 3))):
                    ids["nps"] += 1
                    score = randint(grb, *nps_range)
                    kind = "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"
                    nps.append(
                        NpsResponse(ids["nps"], key, contact.key, score,
                                    choice(grb, _NPS_COMMENTS[kind]),
                                    now - wave * DAY_MS + randint(grb, 0, 20 * DAY_MS), nps_crms[0])
                    )  # fmt: skip

        # Monthly product usage; a churned account stops using the product after churning.
        usage: list[Usage] = []
        util = uniform(rand, *util_range)
        start_util = min(1.0, util / max(0.2, (1 + trend) ** (USAGE_MONTHS - 1)))
        for i, (month, month_ms) in enumerate(zip(months, months_ms, strict=True)):
            if month_ms < created - 31 * DAY_MS:
                continue
            level = max(0.0, min(1.0, start_util * (1 + trend) ** i * uniform(rand, 0.9, 1.1)))
            if churned_on and month > churned_on:
                level = 0.0
            active = round(seats * level)
            usage.append(
                Usage(key, account.external_id, month, active, int(active * uniform(rand, 8, 22)),
                      min(20, int(20 * level ** 0.7 + uniform(rand, 0, 2))), seats)
            )  # fmt: skip

        yield Bundle(account, contacts, deals, tickets, nps, usage)


@functools.lru_cache(maxsize=4096)
def _ascii(text: str) -> str:
    out = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in out if ch.isalnum()) or "x"
