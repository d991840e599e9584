"""IoTDA's SQL-like device search (SearchDevices, ``POST /v5/iot/{project_id}/search/query-devices``).

The grammar, as IoTDA's API reference describes it::

    SELECT * | field[, field...] | count(*) | count(1) FROM device
        [WHERE condition [AND|OR condition]...]      -- at most 5 conditions, no parentheses; AND binds tighter
        [ORDER BY marker [ASC|DESC]]
        [LIMIT [offset,] rows]                       -- offset <= 500, rows <= 50, default LIMIT 10

Keywords are case-insensitive, values case-sensitive, the whole statement at most 400 characters. A condition
is ``field op value`` with op one of ``= != > < >= <= like in not in``; values are single-quoted strings or
numbers, ``in`` takes a parenthesised list. ``like`` matches ``%`` (any run) and ``_`` (one character).

Where IoTDA's page is silent the emulator chooses (doc/emulator.md): without ORDER BY the order is the
creation order (IoTDA: unspecified); ``tag_key``/``tag_value``/``group_id`` conditions match devices through
the tags and groups the emulator keeps, when it keeps any (none today: they match nothing).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

MAX_LENGTH = 400
MAX_CONDITIONS = 5
MAX_OFFSET = 500
MAX_ROWS = 50
DEFAULT_ROWS = 10

#: Fields a condition may name (IoTDA's "search condition fields").
SEARCHABLE = frozenset({"app_id", "device_id", "gateway_id", "product_id", "device_name", "node_id", "status",
                        "node_type", "sw_version", "fw_version", "create_time", "marker", "tag_key", "tag_value",
                        "group_id"})

_TOKEN = re.compile(r"""\s*(?:
    (?P<string>'(?:[^']|'')*')
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<op>!=|<>|>=|<=|=|>|<|,|\(|\)|\*)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
)""", re.VERBOSE)


class SearchSyntaxError(ValueError):
    """The statement is not valid IoTDA search SQL; the message says where."""


@dataclass
class Condition:
    field: str
    op: str
    value: Any   # a str/float, or a list of them for in / not in


@dataclass
class Query:
    """A parsed statement: ``select`` is ``["*"]``, a list of fields, or ``["count"]``."""

    select: List[str]
    groups: List[List[Condition]] = field(default_factory=list)   # OR of AND groups; empty = every device
    descending: bool = False
    offset: int = 0
    rows: int = DEFAULT_ROWS

    @property
    def is_count(self) -> bool:
        return self.select == ["count"]


def _tokens(sql: str) -> List[Tuple[str, str]]:
    out, pos = [], 0
    sql = sql.rstrip()
    while pos < len(sql):
        m = _TOKEN.match(sql, pos)
        if m is None or m.end() == pos:
            raise SearchSyntaxError(f"unexpected character at position {pos}: {sql[pos:pos + 10]!r}")
        kind = m.lastgroup or ""
        text = m.group(kind)
        if kind == "string":
            text = text[1:-1].replace("''", "'")
        out.append((kind, text))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, sql: str) -> None:
        self.toks = _tokens(sql)
        self.i = 0

    def peek(self, offset: int = 0) -> Tuple[str, str]:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else ("end", "")

    def take(self) -> Tuple[str, str]:
        tok = self.peek()
        self.i += 1
        return tok

    def keyword(self, *words: str) -> bool:
        """Consume the keywords ``words`` (case-insensitive) if they come next."""
        for n, w in enumerate(words):
            kind, text = self.peek(n)
            if kind != "word" or text.lower() != w:
                return False
        self.i += len(words)
        return True

    def expect_keyword(self, *words: str) -> None:
        if not self.keyword(*words):
            raise SearchSyntaxError(f"expected {' '.join(words).upper()} near {self.peek()[1]!r}")

    def expect_op(self, op: str) -> None:
        kind, text = self.take()
        if kind != "op" or text != op:
            raise SearchSyntaxError(f"expected {op!r} near {text!r}")

    def integer(self, what: str) -> int:
        kind, text = self.take()
        if kind != "number" or not text.isdigit():
            raise SearchSyntaxError(f"{what} must be a non-negative integer, got {text!r}")
        return int(text)

    def value(self) -> Any:
        kind, text = self.take()
        if kind == "string":
            return text
        if kind == "number":
            return float(text)
        raise SearchSyntaxError(f"expected a quoted value or a number, got {text!r}")

    def parse(self) -> Query:
        self.expect_keyword("select")
        query = Query(select=self.select_list())
        self.expect_keyword("from")
        kind, text = self.take()
        if kind != "word" or text != "device":
            raise SearchSyntaxError(f"only 'device' can be searched, not {text!r}")
        if self.keyword("where"):
            query.groups = self.where()
        if self.keyword("order", "by"):
            kind, text = self.take()
            if text != "marker":
                raise SearchSyntaxError("only ORDER BY marker is supported")
            if self.keyword("desc"):
                query.descending = True
            else:
                self.keyword("asc")
        if self.keyword("limit"):
            first = self.integer("LIMIT")
            if self.peek() == ("op", ","):
                self.take()
                query.offset, query.rows = first, self.integer("LIMIT rows")
            else:
                query.rows = first
            if query.offset > MAX_OFFSET or not 1 <= query.rows <= MAX_ROWS:
                raise SearchSyntaxError(f"LIMIT offset is at most {MAX_OFFSET} and rows 1 to {MAX_ROWS}")
        if self.peek()[0] != "end":
            raise SearchSyntaxError(f"unexpected {self.peek()[1]!r} after the statement")
        return query

    def select_list(self) -> List[str]:
        kind, text = self.peek()
        if (kind, text) == ("op", "*"):
            self.take()
            return ["*"]
        if kind == "word" and text.lower() == "count" and self.peek(1) == ("op", "("):
            self.i += 2
            kind, text = self.take()
            if text not in ("*", "1"):
                raise SearchSyntaxError("use count(*) or count(1)")
            self.expect_op(")")
            return ["count"]
        fields = []
        while True:
            kind, text = self.take()
            if kind != "word":
                raise SearchSyntaxError(f"expected a field name, got {text!r}")
            fields.append(text)
            if self.peek() != ("op", ","):
                return fields
            self.take()

    def where(self) -> List[List[Condition]]:
        groups: List[List[Condition]] = [[self.condition()]]
        count = 1
        while True:
            if self.keyword("and"):
                groups[-1].append(self.condition())
            elif self.keyword("or"):
                groups.append([self.condition()])
            else:
                return groups
            count += 1
            if count > MAX_CONDITIONS:
                raise SearchSyntaxError(f"at most {MAX_CONDITIONS} conditions")

    def condition(self) -> Condition:
        kind, name = self.take()
        if kind != "word" or name not in SEARCHABLE:
            raise SearchSyntaxError(f"{name!r} cannot be searched; fields: {', '.join(sorted(SEARCHABLE))}")
        if self.keyword("not", "in"):
            return Condition(name, "not in", self.value_list())
        if self.keyword("in"):
            return Condition(name, "in", self.value_list())
        if self.keyword("like"):
            value = self.value()
            if not isinstance(value, str):
                raise SearchSyntaxError("LIKE takes a quoted pattern")
            return Condition(name, "like", value)
        kind, op = self.take()
        if kind != "op" or op not in ("=", "!=", "<>", ">", "<", ">=", "<="):
            raise SearchSyntaxError(f"expected an operator after {name}, got {op!r}")
        return Condition(name, "!=" if op == "<>" else op, self.value())

    def value_list(self) -> List[Any]:
        self.expect_op("(")
        values = [self.value()]
        while self.peek() == ("op", ","):
            self.take()
            values.append(self.value())
        self.expect_op(")")
        return values


def parse(sql: Any) -> Query:
    """Parse a search statement; raises :class:`SearchSyntaxError` with the reason."""
    if not isinstance(sql, str) or not sql.strip():
        raise SearchSyntaxError("the statement is empty")
    if len(sql) > MAX_LENGTH:
        raise SearchSyntaxError(f"the statement exceeds {MAX_LENGTH} characters")
    return _Parser(sql).parse()


def _like(pattern: str, text: str) -> bool:
    """``text`` LIKE ``pattern`` (``%`` any run, ``_`` one character), in O(len(pattern) * len(text)) steps.

    Not a regex: ``%a%a%a...%b`` compiled to ``.*a.*a...`` backtracks exponentially, and one such
    statement (or dynamic group rule) froze the HTTP server for minutes (tests/reliability/test_hostile_rest.py).
    """
    p = t = 0
    star, resume = -1, 0
    while t < len(text):
        if p < len(pattern) and pattern[p] != "%" and (pattern[p] == "_" or pattern[p] == text[t]):
            p, t = p + 1, t + 1
        elif p < len(pattern) and pattern[p] == "%":
            star, resume = p, t   # remember the last %: on a mismatch it absorbs one more character
            p += 1
        elif star >= 0:
            resume += 1
            p, t = star + 1, resume
        else:
            return False
    while p < len(pattern) and pattern[p] == "%":
        p += 1
    return p == len(pattern)


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if actual is None:
        return op in ("!=", "not in")
    if isinstance(expected, float) and not isinstance(actual, (int, float)):
        try:
            actual = float(actual)
        except (TypeError, ValueError):
            return False
    elif isinstance(expected, str):
        actual = str(actual)
    try:
        if op == "=":
            return bool(actual == expected)
        if op == "!=":
            return bool(actual != expected)
        if op == ">":
            return bool(actual > expected)
        if op == "<":
            return bool(actual < expected)
        if op == ">=":
            return bool(actual >= expected)
        if op == "<=":
            return bool(actual <= expected)
    except TypeError:
        return False
    raise SearchSyntaxError(f"unknown operator {op}")


def row_values(device: Dict[str, Any], field: str) -> List[Any]:
    """The values of a many-valued field of a search row: ``tag_key``/``tag_value`` from its ``tags``
    (``[{tag_key, tag_value}]``), ``group_id`` from its ``groups`` (static group ids)."""
    if field in ("tag_key", "tag_value"):
        return [t.get(field) for t in device.get("tags") or []]
    if field == "group_id":
        return list(device.get("groups") or [])
    return []


def matches(query: Query, device: Dict[str, Any]) -> bool:
    """True when ``device`` (a flat dict of the searchable fields) satisfies the WHERE clause.

    A condition on a many-valued field (``tag_key``, ``tag_value``, ``group_id``; see :func:`row_values`) holds
    when it holds for one of its values (``!=``/``not in``: for none of them).
    """
    def holds(cond: Condition) -> bool:
        if cond.field in ("tag_key", "tag_value", "group_id"):
            values = row_values(device, cond.field)
            if cond.op in ("!=", "not in"):
                positive = Condition(cond.field, "=" if cond.op == "!=" else "in", cond.value)
                return not any(_one(positive, v) for v in values)
            return any(_one(cond, v) for v in values)
        return _one(cond, device.get(cond.field))

    return not query.groups or any(all(holds(c) for c in group) for group in query.groups)


def _one(cond: Condition, actual: Any) -> bool:
    if cond.op == "in":
        return any(_compare(actual, "=", v) for v in cond.value)
    if cond.op == "not in":
        return all(_compare(actual, "!=", v) for v in cond.value)
    if cond.op == "like":
        return actual is not None and _like(cond.value, str(actual))
    return _compare(actual, cond.op, cond.value)


def run(query: Query, devices: List[Dict[str, Any]]) -> Tuple[List[Dict[str, Any]], int]:
    """Apply ``query`` to ``devices`` (flat dicts with a ``marker``, ``tags`` and ``groups``, in creation order):
    the page of matching devices (projected onto the selected fields, empty for count) and the number of matches."""
    hits = [d for d in devices if matches(query, d)]
    if query.descending:
        hits.reverse()
    if query.is_count:
        return [], len(hits)
    page = hits[query.offset:query.offset + query.rows]
    if query.select != ["*"]:
        page = [{k: d.get(k) for k in query.select} for d in page]
    return page, len(hits)
