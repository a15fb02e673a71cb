"""Keyset pagination: a page costs the same on page one and page ten thousand."""

from dataclasses import dataclass

from sqlalchemy import and_, false, func, or_, select

from app.jsonapi.errors import InvalidQueryParameter
from app.jsonapi.query import decode_cursor, encode_cursor


@dataclass
class Page:
    items: list
    next_cursor: str | None
    prev_cursor: str | None
    total: int | None


def paginate(session, statement, order, query):
    """Run ``statement`` ordered by ``order`` — ``[(column, descending), ...]`` ending in a
    unique column — one page at a time as ``query`` asks."""
    total = _total(session, statement) if query.want_total else None
    backwards = query.page_before is not None
    cursor_text = query.page_before if backwards else query.page_after
    if cursor_text is not None:
        parameter = "page[before]" if backwards else "page[after]"
        values = _typed(order, decode_cursor(cursor_text, parameter, len(order)), parameter)
        statement = statement.where(_beyond(order, values, backwards))
    direction = [(column, descending != backwards) for column, descending in order]
    statement = statement.order_by(*(_ordered(column, desc) for column, desc in direction))
    rows = list(session.scalars(statement.limit(query.page_size + 1)))
    more = len(rows) > query.page_size
    rows = rows[: query.page_size]
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


def _total(session, statement):
    return session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))


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
    return encode_cursor([_plain(getattr(row, column.key)) for column, _ in order])


def _plain(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value if isinstance(value, int | float | bool | type(None)) else str(value)


def _typed(order, values, parameter):
    typed = []
    for (column, _), value in zip(order, values, strict=True):
        try:
            typed.append(_from_plain(column.type.python_type, value))
        except (TypeError, ValueError) as exc:
            raise InvalidQueryParameter("The page cursor is not one this server issued.",
                                        parameter=parameter) from exc
    return typed


def _from_plain(python_type, value):
    if isinstance(value, python_type):
        return value
    if hasattr(python_type, "fromisoformat"):
        return python_type.fromisoformat(value)
    return python_type(value)
