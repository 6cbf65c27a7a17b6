"""A SOQL subset: parse, check against the object's fields, and evaluate on stored records.

Supported (what a sync sends) [API.md §2.2, §2.11]::

    SELECT field, ... | COUNT() | COUNT(field)
    FROM Object
    [WHERE cond]        cond: AND / OR (not mixed without parentheses, as in SOQL), NOT,
                        ( ), = != <> < > <= >= LIKE IN NOT IN, literals: 'string', numbers,
                        true/false/null, unquoted dates 2026-01-01 and datetimes
                        2026-01-01T00:00:00Z / +00:00 offsets
    [ORDER BY field [ASC|DESC] [NULLS FIRST|LAST], ...]
    [LIMIT n] [OFFSET n]

Errors carry Salesforce's error codes (MALFORMED_QUERY, INVALID_FIELD, INVALID_TYPE) and its
message layout (the query, a caret line and ``ERROR at Row:1:Column:N``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from .model import (
    COMPOUND_TYPES,
    NUMBER_TYPES,
    STRING_TYPES,
    normalize_id,
    parse_date,
    parse_datetime,
)

#: SOQL OFFSET cannot exceed 2,000 rows (NUMBER_OUTSIDE_VALID_RANGE) [Salesforce SOQL docs].
MAX_OFFSET = 2000


class SoqlError(Exception):
    def __init__(self, code: str, message: str, pos: int | None = None, soql: str = "") -> None:
        if pos is not None and soql:
            line = soql.replace("\n", " ")
            message = f"\n{line}\n{' ' * pos}^\nERROR at Row:1:Column:{pos + 1}\n{message}"
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Lit:
    kind: str  # string | number | date | datetime | boolean | null
    value: Any
    pos: int


@dataclass(slots=True)
class Cond:
    op: str  # and | or | not | cmp | in | nin
    items: list[Cond] = dc_field(default_factory=list)
    field: str = ""
    cmp: str = ""
    values: list[Lit] = dc_field(default_factory=list)
    pos: int = 0


@dataclass(slots=True)
class Order:
    field: str
    desc: bool
    nulls_first: bool
    pos: int


@dataclass(slots=True)
class Query:
    soql: str
    obj: str
    obj_pos: int
    fields: list[tuple[str, int]]  # (name, position)
    count: bool = False  # SELECT COUNT()
    count_field: str | None = None  # SELECT COUNT(field)
    where: Cond | None = None
    order: list[Order] = dc_field(default_factory=list)
    limit: int | None = None
    offset: int = 0


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\dT]))
  | (?P<number>[+-]?\d+(?:\.\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
  | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
    """,
    re.VERBOSE,
)
_KEYWORDS = {
    "select", "from", "where", "and", "or", "not", "in", "like", "order", "by", "asc", "desc",
    "nulls", "first", "last", "limit", "offset", "true", "false", "null", "count", "group",
    "having", "includes", "excludes", "with", "for", "using",
}  # fmt: skip
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "'": "'", '"': '"', "\\": "\\"}


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    text: str
    pos: int

    @property
    def kw(self) -> str:
        return self.text.lower() if self.kind == "name" else ""


def _tokenize(soql: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(soql):
        m = _TOKEN.match(soql, pos)
        if m is None:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{soql[pos]}'", pos, soql)
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, soql: str) -> None:
        self.soql = soql
        self.toks = _tokenize(soql)
        self.i = 0

    def peek(self, ahead: int = 0) -> _Tok | None:
        j = self.i + ahead
        return self.toks[j] if j < len(self.toks) else None

    def error(self, tok: _Tok | None = None) -> SoqlError:
        tok = tok if tok is not None else self.peek()
        if tok is None:
            return SoqlError(
                "MALFORMED_QUERY", "unexpected token: <EOF>", len(self.soql), self.soql
            )
        return SoqlError("MALFORMED_QUERY", f"unexpected token: {tok.text}", tok.pos, self.soql)

    def next(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise self.error()
        self.i += 1
        return tok

    def accept(self, *keywords: str) -> bool:
        tok = self.peek()
        if tok is not None and (
            tok.kw in keywords or (tok.kind == "punct" and tok.text in keywords)
        ):
            self.i += 1
            return True
        return False

    def expect(self, keyword: str) -> _Tok:
        tok = self.peek()
        if tok is None or not (tok.kw == keyword or (tok.kind == "punct" and tok.text == keyword)):
            raise self.error(tok)
        self.i += 1
        return tok

    def name(self) -> _Tok:
        tok = self.next()
        if tok.kind != "name" or tok.kw in _KEYWORDS:
            raise self.error(tok)
        return tok

    def parse(self) -> Query:
        self.expect("select")
        fields: list[tuple[str, int]] = []
        count = False
        count_field = None
        tok = self.peek()
        if tok is not None and tok.kw == "count" and (nxt := self.peek(1)) and nxt.text == "(":
            self.i += 2
            if self.accept(")"):
                count = True
            else:
                count_field = self.name().text
                self.expect(")")
        else:
            while True:
                t = self.name()
                fields.append((t.text, t.pos))
                if not self.accept(","):
                    break
        self.expect("from")
        obj = self.name()
        q = Query(self.soql, obj.text, obj.pos, fields, count, count_field)
        if self.accept("where"):
            q.where = self.condition()
        if self.accept("order"):
            self.expect("by")
            while True:
                t = self.name()
                desc = False
                if self.accept("desc"):
                    desc = True
                else:
                    self.accept("asc")
                nulls_first = not desc  # SOQL default: ASC NULLS FIRST, DESC NULLS LAST
                if self.accept("nulls"):
                    if self.accept("first"):
                        nulls_first = True
                    else:
                        self.expect("last")
                        nulls_first = False
                q.order.append(Order(t.text, desc, nulls_first, t.pos))
                if not self.accept(","):
                    break
        if self.accept("limit"):
            q.limit = self.integer()
        if self.accept("offset"):
            tok = self.peek()
            q.offset = self.integer()
            if q.offset > MAX_OFFSET:
                raise SoqlError(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    f"Maximum SOQL offset allowed is {MAX_OFFSET}",
                    tok.pos if tok else None,
                    self.soql,
                )
        if self.peek() is not None:
            raise self.error()
        return q

    def integer(self) -> int:
        tok = self.next()
        if tok.kind != "number" or not tok.text.isdigit():
            raise self.error(tok)
        return int(tok.text)

    def condition(self) -> Cond:
        first = self.term()
        tok = self.peek()
        if tok is None or tok.kw not in ("and", "or"):
            return first
        joiner = tok.kw
        items = [first]
        while (tok := self.peek()) is not None and tok.kw in ("and", "or"):
            if tok.kw != joiner:  # SOQL needs parentheses to mix AND and OR
                raise self.error(tok)
            self.i += 1
            items.append(self.term())
        return Cond(joiner, items)

    def term(self) -> Cond:
        if self.accept("not"):
            return Cond("not", [self.term()])
        if self.accept("("):
            inner = self.condition()
            self.expect(")")
            return inner
        f = self.name()
        tok = self.next()
        if tok.kind == "op":
            op = "!=" if tok.text == "<>" else tok.text
            return Cond("cmp", field=f.text, cmp=op, values=[self.literal()], pos=f.pos)
        if tok.kw == "like":
            return Cond("cmp", field=f.text, cmp="like", values=[self.literal()], pos=f.pos)
        negate = False
        if tok.kw == "not":
            negate = True
            tok = self.next()
        if tok.kw == "in":
            self.expect("(")
            values = [self.literal()]
            while self.accept(","):
                values.append(self.literal())
            self.expect(")")
            return Cond("nin" if negate else "in", field=f.text, values=values, pos=f.pos)
        raise self.error(tok)

    def literal(self) -> Lit:
        tok = self.next()
        if tok.kind == "string":
            body = tok.text[1:-1]
            value = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), body)
            return Lit("string", value, tok.pos)
        if tok.kind == "number":
            return Lit("number", float(tok.text) if "." in tok.text else int(tok.text), tok.pos)
        if tok.kind == "datetime":
            return Lit("datetime", parse_datetime(tok.text), tok.pos)
        if tok.kind == "date":
            day = parse_date(tok.text)
            if day is None:
                raise self.error(tok)
            return Lit("date", day, tok.pos)
        if tok.kw in ("true", "false"):
            return Lit("boolean", tok.kw == "true", tok.pos)
        if tok.kw == "null":
            return Lit("null", None, tok.pos)
        raise self.error(tok)


def parse(soql: str) -> Query:
    if not soql or not soql.strip():
        raise SoqlError("MALFORMED_QUERY", "unexpected token: <EOF>")
    return _Parser(soql).parse()


# -- binding: check names and literal types against the object's fields ----------------------


def no_such_column(name: str, obj: str) -> str:
    return (
        f"No such column '{name}' on entity '{obj}'. If you are attempting to use a custom "
        "field, be sure to append the '__c' after the custom field name. Please reference your "
        "WSDL or the describe call for the appropriate names."
    )


def unsupported_type(obj: str) -> str:
    return (
        f"sObject type '{obj}' is not supported. If you are attempting to use a custom object, "
        "be sure to append the '__c' after the entity name. Please reference your WSDL or the "
        "describe call for the appropriate names."
    )


_TYPE_WORD = {"datetime": "dateTime", "int": "int", "boolean": "boolean", "date": "date"}


def bind(q: Query, canonical_obj: str, fields: dict[str, dict[str, Any]]) -> None:
    """Resolve field names (case-insensitive) to their canonical spelling in place and check
    literal types. ``fields`` maps lower-case name -> describe field."""
    q.obj = canonical_obj

    def resolve(name: str, pos: int) -> dict[str, Any]:
        f = fields.get(name.lower())
        if f is None:
            if "." in name:
                msg = (
                    f"Didn't understand relationship '{name.split('.')[0]}' in field path. "
                    "Relationship queries are not supported by this sandbox."
                )
                raise SoqlError("INVALID_FIELD", msg, pos, q.soql)
            raise SoqlError("INVALID_FIELD", no_such_column(name, canonical_obj), pos, q.soql)
        return f

    seen: set[str] = set()
    resolved = []
    for name, pos in q.fields:
        f = resolve(name, pos)
        if f["name"] in seen:
            raise SoqlError(
                "MALFORMED_QUERY", f"duplicate field selected: {f['name']}", pos, q.soql
            )
        seen.add(f["name"])
        resolved.append((f["name"], pos))
    q.fields = resolved
    if q.count_field is not None:
        q.count_field = resolve(q.count_field, q.obj_pos)["name"]
    for o in q.order:
        f = resolve(o.field, o.pos)
        if f["type"] in COMPOUND_TYPES:
            msg = f"field '{f['name']}' can not be sorted in a query call"
            raise SoqlError("INVALID_FIELD", msg, o.pos, q.soql)
        o.field = f["name"]

    def check(c: Cond) -> None:
        if c.op in ("and", "or", "not"):
            for item in c.items:
                check(item)
            return
        f = resolve(c.field, c.pos)
        c.field = f["name"]
        ftype = f["type"]
        if ftype in COMPOUND_TYPES:  # (a real org filters one only with DISTANCE())
            msg = f"field '{f['name']}' can not be filtered in a query call"
            raise SoqlError("INVALID_FIELD", msg, c.pos, q.soql)
        if c.cmp == "like" and ftype not in STRING_TYPES - {"id", "reference"}:
            raise SoqlError(
                "INVALID_FIELD",
                f"invalid operator on {ftype} field: {f['name']}",
                c.pos,
                q.soql,
            )
        for lit in c.values:
            _check_literal(q, f, lit)

    if q.where is not None:
        check(q.where)


def _check_literal(q: Query, f: dict[str, Any], lit: Lit) -> None:
    ftype, name = f["type"], f["name"]
    if lit.kind == "null":
        return
    ok = (
        (ftype in STRING_TYPES and lit.kind == "string")
        or (ftype in NUMBER_TYPES and lit.kind == "number")
        or (ftype == "boolean" and lit.kind == "boolean")
        or (ftype == "date" and lit.kind == "date")
        or (ftype == "datetime" and lit.kind == "datetime")
    )
    if ok:
        if ftype in ("id", "reference") and normalize_id(lit.value) is None and lit.value:
            raise SoqlError(
                "INVALID_QUERY_FILTER_OPERATOR",
                f"invalid ID field: {lit.value}",
                lit.pos,
                q.soql,
            )
        return
    word = _TYPE_WORD.get(ftype, "double" if ftype in NUMBER_TYPES else "string")
    if ftype in STRING_TYPES:
        msg = (
            f"value of filter criterion for field '{name}' must be of type string and should "
            "be enclosed in quotes"
        )
    else:
        msg = (
            f"value of filter criterion for field '{name}' must be of type {word} and should "
            "not be enclosed in quotes"
        )
    raise SoqlError("INVALID_FIELD", msg, lit.pos, q.soql)


# -- evaluation ---------------------------------------------------------------------------------


def sort_key(value: Any, ftype: str) -> Any:
    """A comparable form of a stored value for ``ftype`` (None stays None)."""
    if value is None:
        return None
    if ftype == "datetime":
        return parse_datetime(value)
    if ftype in ("id", "reference"):
        return value
    if ftype in STRING_TYPES:
        return str(value).lower()
    return value


def _lit_key(lit: Lit, ftype: str) -> Any:
    if lit.kind == "null":
        return None
    if ftype in ("id", "reference"):
        return normalize_id(lit.value) or lit.value
    if ftype in STRING_TYPES:
        return str(lit.value).lower()
    return lit.value


def _like(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out) + r"\Z", re.IGNORECASE | re.DOTALL)


Predicate = Callable[[dict[str, Any]], bool]


def compile_where(c: Cond, types: dict[str, str]) -> Predicate:
    """A predicate over a record's data dict; ``types`` maps canonical field name -> type."""
    if c.op == "and":
        parts = [compile_where(x, types) for x in c.items]
        return lambda r: all(p(r) for p in parts)
    if c.op == "or":
        parts = [compile_where(x, types) for x in c.items]
        return lambda r: any(p(r) for p in parts)
    if c.op == "not":
        inner = compile_where(c.items[0], types)
        return lambda r: not inner(r)
    name, ftype = c.field, types[c.field]
    if c.op in ("in", "nin"):
        keys = {_lit_key(v, ftype) for v in c.values}
        negate = c.op == "nin"
        return lambda r: (sort_key(r.get(name), ftype) in keys) != negate
    lit = c.values[0]
    if c.cmp == "like":
        rx = _like(str(lit.value))
        return lambda r: r.get(name) is not None and rx.match(str(r.get(name))) is not None
    want = _lit_key(lit, ftype)
    op = c.cmp
    if want is None:
        if op == "=":
            return lambda r: r.get(name) is None
        if op == "!=":
            return lambda r: r.get(name) is not None
        return lambda r: False
    if op == "=":
        return lambda r: sort_key(r.get(name), ftype) == want
    if op == "!=":
        return lambda r: sort_key(r.get(name), ftype) != want
    cmp: Callable[[Any, Any], bool] = {
        "<": lambda a, b: a < b,
        ">": lambda a, b: a > b,
        "<=": lambda a, b: a <= b,
        ">=": lambda a, b: a >= b,
    }[op]

    def ordered(r: dict[str, Any]) -> bool:
        value = sort_key(r.get(name), ftype)
        return value is not None and cmp(value, want)

    return ordered


def conjuncts(c: Cond | None) -> list[Cond]:
    if c is None:
        return []
    return list(c.items) if c.op == "and" else [c]
