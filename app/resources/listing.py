"""How collections are listed: declared filters and orders, keyset pages, eager loading.

A listing arrives as plain values (``Listing``) whatever the wire format; a page costs the
same on page one and page ten thousand.
"""

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import and_, false, func, inspect, or_, select, union_all
from sqlalchemy.orm import selectinload

from app.errors import InvalidQueryParameter, Where
from app.formats.ids import column_maximum, whole_number

# Also bounds a forged cursor's nesting (under 200 levels) well below the recursion limit.
MAX_CURSOR_LENGTH = 512
UNCOMPARABLE = re.compile("[\x00\ud800-\udfff]")  # NUL, lone surrogates


@dataclass(frozen=True)
class Filter:
    """A filter a collection accepts: its name, the column it compares, how its text value
    becomes the column's value (raising ValueError with a message for a bad one)."""

    name: str
    column: object
    parse: object = str


def boolean(text):
    if text not in ("true", "false"):
        raise ValueError("true or false")
    return text == "true"


@dataclass(frozen=True)
class PageRequest:
    size: int = 20
    after: str | None = None  # opaque cursors from an earlier page
    before: str | None = None
    want_total: bool = False
    # Count at most this many (None: all): the count stays cheap however many there are.
    count_limit: int | None = None


@dataclass(frozen=True)
class Listing:
    """What a client asked of a collection: filters by name, order as (name, descending)
    pairs, one page, and the relationship paths to load with it."""

    filters: dict = field(default_factory=dict)
    order: tuple = ()
    page: PageRequest = PageRequest()
    load: tuple = ()


@dataclass
class Page:
    items: list
    next_cursor: str | None
    prev_cursor: str | None
    total: int | None


def list_page(session, statement, listing, *, filters, orders, default_order, unique,
              any_of=None):
    """One page of ``statement`` as ``listing`` asks, with the declared ``filters`` (by
    name) and ``orders`` (name → column) and ``unique`` as the final tie-breaker.
    ``any_of``: conditions of which a row must meet one (its owners, say), each walked
    on its own (see ``_meeting_any``)."""
    for name, text in listing.filters.items():
        statement = statement.where(_compare(filters[name], text))
    order = [(orders[name], descending) for name, descending in listing.order or default_order]
    model = statement.column_descriptions[0]["entity"]
    loading = eager_loading(model, listing.load)
    return paginate(session, statement, [*order, (unique, False)], listing.page,
                    any_of=any_of, options=loading)


def _compare(declared, text):
    try:
        value = declared.parse(text)
    except ValueError as exc:
        raise InvalidQueryParameter(f"filter[{declared.name}] is {exc}.", field=declared.name,
                                    where=Where.FILTER) from exc
    return declared.column == value


def eager_loading(model, paths):
    """Load the to-one relationships on ``paths`` with the rows, in one query per step.
    To-many relationships are paged on their own and never loaded whole."""
    options = []
    for path in paths:
        current, option = model, None
        for step in path:
            relationship = inspect(current).relationships.get(step)
            if relationship is None or relationship.uselist:
                break
            attribute = getattr(current, step)
            option = selectinload(attribute) if option is None else option.selectinload(attribute)
            current = relationship.mapper.class_
        if option is not None:
            options.append(option)
    return options


def paginate(session, statement, order, page, *, any_of=None, options=()):
    """Run ``statement`` ordered by ``order`` — ``[(column, descending), ...]`` ending in a
    unique column — one page at a time."""
    counted = statement if any_of is None else statement.where(or_(false(), *any_of))
    total = _total(session, counted, page.count_limit) if page.want_total else None
    backwards = page.before is not None
    cursor_text = page.before if backwards else page.after
    if cursor_text is not None:
        name = "before" if backwards else "after"
        values = _decode(cursor_text, order, name)
        statement = statement.where(_beyond(order, values, backwards))
    direction = [(column, descending != backwards) for column, descending in order]
    ordering = [_ordered(column, desc) for column, desc in direction]
    if any_of is not None:
        statement = _meeting_any(statement, any_of, ordering, page.size + 1, order[-1][0])
    statement = statement.order_by(*ordering).options(*options)
    rows = list(session.scalars(statement.limit(page.size + 1)))
    more = len(rows) > page.size
    rows = rows[: page.size]
    if backwards:
        rows.reverse()
    has_next = more if not backwards else True
    has_prev = more if backwards else cursor_text is not None
    return Page(
        items=rows,
        next_cursor=_cursor(order, rows[-1]) if rows and has_next else None,
        prev_cursor=_cursor(order, rows[0]) if rows and has_prev else None,
        total=total,
    )


def _meeting_any(statement, conditions, ordering, limit, unique):
    """``statement`` restricted to rows meeting one of ``conditions``, as the ids of each
    condition's first ``limit`` rows in page order: each of those reads only its first rows
    from an index in that order, where an OR of them makes PostgreSQL read and sort every
    row that meets any (a page of a user who owns a million devices)."""
    if len(conditions) <= 1:
        return statement.where(*conditions) if conditions else statement.where(false())
    firsts = [statement.where(condition).order_by(*ordering).limit(limit)
              .with_only_columns(unique).subquery() for condition in conditions]
    return statement.where(unique.in_(union_all(*(select(first.c[0]) for first in firsts))))


def _total(session, statement, limit=None):
    counted = statement.order_by(None)
    if limit is not None:
        counted = counted.limit(limit)
    return session.scalar(select(func.count()).select_from(counted.subquery()))


def _ordered(column, descending):
    return column.desc() if descending else column.asc()


def _beyond(order, values, backwards):
    """Rows strictly after (or before) the cursor row in the given order."""
    clauses = []
    for index, (column, descending) in enumerate(order):
        equal_so_far = [order[j][0] == values[j] for j in range(index)]
        later = column < values[index] if descending != backwards else column > values[index]
        clauses.append(and_(*equal_so_far, later))
    return or_(false(), *clauses)


def _cursor(order, row):
    values = [_plain(getattr(row, column.key)) for column, _ in order]
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _plain(value):
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _decode(text, order, name):
    """The cursor's values typed as the order's columns; anything this server did not
    issue is a 400 on the parameter."""
    try:
        if len(text) > MAX_CURSOR_LENGTH:
            raise ValueError("too long")
        values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if not isinstance(values, list) or len(values) != len(order):
            raise ValueError("wrong shape")
        return [_typed(column, value)
                for (column, _), value in zip(order, values, strict=True)]
    except (ValueError, TypeError, OverflowError, binascii.Error, RecursionError) as exc:
        raise InvalidQueryParameter("The page cursor is not one this server issued.",
                                    field=name, where=Where.PAGE) from exc


def _typed(column, value):
    python_type = column.type.python_type
    if not isinstance(value, str) or UNCOMPARABLE.search(value):
        raise TypeError("cursor values are strings a database can compare")
    if python_type is datetime:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("naive timestamp")
        return parsed.astimezone(UTC)  # OverflowError past year 9999 in UTC
    if python_type is int:
        return _cursor_integer(column, value)
    return python_type(value)


def _cursor_integer(column, value):
    number = whole_number(value, column_maximum(column))
    if number is None:
        raise ValueError("not an id this server issued")
    return number
