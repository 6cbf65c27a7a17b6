"""Which CRM field holds which customer fact: the field mapping a user configures per CRM.

A CRM keeps the facts a health score needs (the account's ARR, seats, plan, renewal date...) in
fields each company names its own way, mostly custom ones. A *role* is one such fact; each
connector declares its roles (its ``canonical.py``'s ``ROLES``): on which object the field lives
and the default, which is a standard field of every portal, org or workspace, or none.

The setting ``<crm>_field_mapping`` (an object, shared by both plugins) names the field of each
role: ``{"seats": "Seats__c", "churned": {"field": "Type", "values": ["Former Customer"]},
"arr": null}``. A name is the field's API name; a nested field is a dotted path
(``custom_attributes.arr`` on Intercom, ``organization_fields.arr`` on Zendesk); ``churned``
names a true/false field, or a field and the values that mean churned; ``deal_kind`` a field
and which of its values mean which deal kind (``{"field": "pipeline", "values": {"renewal":
["31415926"]}}``); ``null`` leaves a default out. Roles not named keep their default.

tap-crm checks the mapping at discovery against the fields the CRM lists (:func:`mark`): a
named field the object lacks is a :class:`~crm_connectors.errors.ConfigError` naming the role,
the field and the setting; a default the CRM lacks leaves the role unmapped. It then marks each
mapped field in the stream's JSON Schema (``"x-canonical": "<role>"``, and
``"x-canonical-values"`` for a picklist's churned values or a deal kind's values), so the
mapping travels with the SCHEMA message and the catalog. target-health maps by those marks
(:func:`marks_of`, then the connector's mapping functions read values with :func:`value`) and
reports the roles no field holds, with the signals they feed: it has no mapping of its own to
keep in step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

#: The schema keywords of a marked field.
MARK, VALUES = "x-canonical", "x-canonical-values"
#: The deal kinds a ``deal_kind`` mapping can name (the canonical deal's ``kind``, but "other").
DEAL_KINDS = ("new_business", "renewal", "expansion")
#: The stream-level mark of a stream a mapping names (Salesforce's NPS object): its entity.
ENTITY = "x-canonical-entity"

#: What each role feeds, for the messages about unmapped ones.
FEEDS = {
    "external_id": "linking one customer across CRMs",
    "arr": "ARR, retention and segments",
    "seats": "seat use",
    "plan": "plan and segments",
    "renewal_date": "renewal timing",
    "customer_since": "tenure and the start of retention",
    "churned": "churn (retention; churned accounts are not scored)",
    "payment_issue": "payment issues",
    "owner": "the account owner",
    "csat": "CSAT",
    "deal_kind": "which deals are renewals and expansions (retention, churn evidence)",
    "nps_object": "NPS",
}


@dataclass(frozen=True, slots=True)
class Role:
    """One fact a connector can map: the object (``<crm>_<object>`` stream) whose field holds
    it, and the standard field that holds it on every account of the CRM (None: none does)."""

    obj: str
    default: str | None = None
    #: The role names an object, not a field (``nps_object``); roles whose ``obj`` is this
    #: role's name are fields of that object.
    names_object: bool = False
    #: A field without which its named object maps nothing (``nps_score``).
    required: bool = False
    #: The role's values say a kind (``deal_kind``): another field than the default must say
    #: which of its values mean which kind, ``{field, values: {kind: [values]}}``.
    kinds: bool = False


@dataclass(frozen=True, slots=True)
class Mark:
    """Where a stream's records hold a role: the property path, for ``churned`` on a picklist
    the values that mean churned, for ``deal_kind`` (value, kind) pairs (values lower case)."""

    path: tuple[str, ...]
    values: tuple[str, ...] = ()
    kinds: tuple[tuple[str, str], ...] = ()


Marks = Mapping[str, Mark]

#: The roles every CRM's account object has (canonical.account_facts reads them).
ACCOUNT_ROLES = (
    "external_id", "arr", "seats", "plan", "renewal_date", "customer_since", "churned",
    "payment_issue",
)  # fmt: skip


def account_roles(obj: str, **defaults: str) -> dict[str, Role]:
    """The account roles on object ``obj``, with the standard fields that hold some."""
    return {name: Role(obj, defaults.get(name)) for name in ACCOUNT_ROLES}


def setting_name(crm: str) -> str:
    return f"{crm}_field_mapping"


def mapping_setting(crm: str, roles: Mapping[str, Role]) -> dict[str, Any]:
    """The JSON Schema of ``<crm>_field_mapping``, its description listing the roles."""
    listed = ", ".join(
        f"{name} ({role.default})" if role.default else name for name, role in roles.items()
    )
    return {
        "type": ["object", "null"],
        "properties": {},
        "additionalProperties": True,
        "description": (
            "Which field holds each customer fact, by its API name (a dotted path for a nested"
            " field; churned: a true/false field or {field, values}; deal_kind: {field, values:"
            " {renewal: [...], expansion: [...], new_business: [...]}}; null: none). Roles, with"
            f" their default: {listed}. See docs/FIELD-MAPPING.md."
        ),
    }


@dataclass(frozen=True, slots=True)
class Wanted:
    """One role's field as configured: the path, churned values or (value, kind) pairs, and
    whether the user named it (a missing named field is an error; a missing default, a role
    left unmapped)."""

    role: str
    obj: str
    path: tuple[str, ...]
    values: tuple[str, ...]
    named: bool
    kinds: tuple[tuple[str, str], ...] = ()


def configured(crm: str, roles: Mapping[str, Role], config: Mapping[str, Any]) -> list[Wanted]:
    """The roles to map, from ``<crm>_field_mapping`` over the defaults. An unknown role, a
    malformed entry, or an object named without its required fields is a ConfigError naming
    the setting."""
    name, given = setting_name(crm), _given(crm, config)
    unknown = sorted(set(given) - set(roles))
    if unknown:
        raise ConfigError(
            f"no role {', '.join(map(repr, unknown))} (roles: {', '.join(roles)})", setting=name
        )
    objects = named_objects(crm, roles, config)
    out: list[Wanted] = []
    for role_name, role in roles.items():
        obj = role.obj
        if role.names_object:
            continue
        if obj in roles:  # a role on an object the mapping names (nps_score on nps_object)
            if obj not in objects:
                continue
            obj = objects[obj]
        entry = given.get(role_name, role.default)
        if entry is None or entry == "":
            if role.required:
                raise ConfigError(f"{role.obj} {obj!r} needs {role_name} too", setting=name)
            continue
        field, values, kinds = _entry(name, role_name, role, entry)
        path = tuple(field.split("."))
        out.append(Wanted(role_name, obj, path, values, role_name in given, kinds))
    return out


def named_objects(crm: str, roles: Mapping[str, Role], config: Mapping[str, Any]) -> dict[str, str]:
    """The objects the mapping names (Salesforce's ``nps_object``), by role: the tap reads
    them too."""
    given = _given(crm, config)
    found: dict[str, str] = {}
    for r, role in roles.items():
        entry = given.get(r, role.default) if role.names_object else None
        if entry is None or entry == "":
            continue
        if not isinstance(entry, str):
            raise ConfigError(
                f"{r} must name an object (got {type(entry).__name__})", setting=setting_name(crm)
            )
        found[r] = entry.strip()
    return found


def mark(
    crm: str,
    roles: Mapping[str, Role],
    config: Mapping[str, Any],
    schemas: Mapping[str, dict[str, Any]],
    label: str,
) -> list[str]:
    """Check the mapping against the discovered ``schemas`` (stream name -> JSON Schema, changed
    in place: each mapped field marked), and return the roles of the discovered objects that no
    field holds. A field the user named that its object lacks is a ConfigError; an object not
    discovered (not selected, not visible) maps nothing."""
    mapped: set[str] = set()
    for r, obj in named_objects(crm, roles, config).items():
        if (stream := schemas.get(f"{crm}_{obj}")) is not None:
            stream[ENTITY] = r.removesuffix("_object")
            mapped.add(r)
    for want in configured(crm, roles, config):
        schema = schemas.get(f"{crm}_{want.obj}")
        if schema is None:
            continue
        node = _property(schema, want.path)
        if node is None:
            if want.named:
                raise ConfigError(
                    f"{want.role} names {'.'.join(want.path)!r}, which {label} {want.obj} has"
                    " not (is it the field's API name, and can the integration see it?)",
                    setting=setting_name(crm),
                )
            continue
        node[MARK] = want.role
        if want.values:
            node[VALUES] = list(want.values)
        if want.kinds:
            node[VALUES] = {k: [v for v, of in want.kinds if of == k] for k in DEAL_KINDS}
        mapped.add(want.role)
    return [
        r
        for r, role in roles.items()
        if r not in mapped
        and role.obj not in roles  # a field of a named object: an error when missing
        and (role.names_object or f"{crm}_{role.obj}" in schemas)
    ]


def marks_of(schema: Mapping[str, Any]) -> dict[str, Mark]:
    """The roles a stream's JSON Schema marks, by role."""
    found: dict[str, Mark] = {}

    def walk(node: Mapping[str, Any], path: tuple[str, ...]) -> None:
        for key, child in (node.get("properties") or {}).items():
            if not isinstance(child, Mapping):
                continue
            here = (*path, str(key))
            role = child.get(MARK)
            if isinstance(role, str):
                values = child.get(VALUES) or ()
                if isinstance(values, Mapping):  # a deal kind's values
                    pairs = tuple((str(v).lower(), str(k)) for k, vs in values.items() for v in vs)
                    found[role] = Mark(here, kinds=pairs)
                else:
                    found[role] = Mark(here, tuple(str(v).lower() for v in values))
            walk(child, here)

    walk(schema, ())
    return found


def value(record: Mapping[str, Any], marks: Marks, role: str) -> Any:
    """The value of ``role`` in ``record`` (None when no field holds it)."""
    where = marks.get(role)
    if where is None:
        return None
    node: Any = record
    for part in where.path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def flag(record: Mapping[str, Any], marks: Marks, role: str) -> bool | None:
    """A true/false role: a checkbox (true, "true"), or a picklist whose marked values mean
    true; None when no field holds it or it holds nothing."""
    where = marks.get(role)
    raw = value(record, marks, role)
    if where is None or raw is None or raw == "":
        return None
    if where.values:
        chosen = {v.strip().lower() for v in str(raw).split(";")}  # multi-select: "a;b"
        return bool(chosen & set(where.values))
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    return True if text in ("true", "1", "yes") else False if text in ("false", "0", "no") else None


def kind(record: Mapping[str, Any], marks: Marks, role: str) -> str | None:
    """The kind the mapping gives ``record``'s value of ``role`` (``deal_kind``), or None when
    its mapping lists no kinds or none lists this value."""
    where = marks.get(role)
    raw = value(record, marks, role)
    if where is None or not where.kinds or raw is None:
        return None
    return dict(where.kinds).get(str(raw).strip().lower())


def _property(schema: dict[str, Any], path: Sequence[str]) -> dict[str, Any] | None:
    """The property at ``path``, or None when the schema has none there. Inside an object whose
    fields the CRM does not list (Intercom's ``plan``), a path cannot be checked: it is taken,
    and the property made, to be marked."""
    node: dict[str, Any] = schema
    for part in path:
        props = node.get("properties")
        child = props.get(part) if isinstance(props, dict) else None
        if child is None and node is not schema and not props and _is_object(node):
            child = node.setdefault("properties", {}).setdefault(part, {})
        if not isinstance(child, dict):
            return None
        node = child
    return node


def _is_object(node: Mapping[str, Any]) -> bool:
    kind = node.get("type")
    return kind == "object" or (isinstance(kind, list) and "object" in kind)


def _given(crm: str, config: Mapping[str, Any]) -> Mapping[str, Any]:
    given = config.get(setting_name(crm)) or {}
    if not isinstance(given, Mapping):
        raise ConfigError(
            f"must be an object of role: field (got {type(given).__name__})",
            setting=setting_name(crm),
        )
    return given


def _entry(
    setting: str, name: str, role: Role, entry: Any
) -> tuple[str, tuple[str, ...], tuple[tuple[str, str], ...]]:
    """A role's entry as (field, values, kinds)."""
    if isinstance(entry, str) and entry.strip():
        if role.kinds and entry.strip() != role.default:
            raise ConfigError(
                f"{name} names {entry.strip()!r} without its values: give {{field, values:"
                f" {{{': [...], '.join(DEAL_KINDS)}: [...]}}}}",
                setting=setting,
            )
        return entry.strip(), (), ()
    if isinstance(entry, Mapping) and isinstance(entry.get("field"), str) and entry["field"]:
        field, values = str(entry["field"]).strip(), entry.get("values") or []
        if role.kinds:
            return field, (), _kinds(setting, name, values)
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ConfigError(f"{name}.values must be a list of texts", setting=setting)
        return field, tuple(v.strip().lower() for v in values), ()
    raise ConfigError(
        f"{name} must be a field name or {{field, values}} (got {type(entry).__name__})",
        setting=setting,
    )


def _kinds(setting: str, name: str, values: Any) -> tuple[tuple[str, str], ...]:
    """A deal kind's ``values``: an object of kind -> the field's values that mean it."""
    shape = f"{name}.values must be an object of kind ({', '.join(DEAL_KINDS)}): [values]"
    if not isinstance(values, Mapping) or not values:
        raise ConfigError(shape, setting=setting)
    pairs: dict[str, str] = {}
    for k, vs in values.items():
        if k not in DEAL_KINDS:
            raise ConfigError(f"{name}.values: no kind {k!r} ({', '.join(DEAL_KINDS)})",
                              setting=setting)  # fmt: skip
        if isinstance(vs, str):
            vs = [vs]
        if not isinstance(vs, list) or not all(isinstance(v, (str, int)) for v in vs):
            raise ConfigError(shape, setting=setting)
        for v in vs:
            text = str(v).strip().lower()
            if pairs.setdefault(text, k) != k:
                raise ConfigError(f"{name}.values: {str(v)!r} is listed for {pairs[text]} and"
                                  f" {k}", setting=setting)  # fmt: skip
    return tuple(pairs.items())
