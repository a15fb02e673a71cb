"""What an UPDATE or DELETE reports back."""

from typing import cast

from sqlalchemy import CursorResult, Result


def rows_changed(result: Result) -> int:
    """How many rows the UPDATE or DELETE that gave ``result`` changed.

    ``Session.execute`` is typed to return a plain ``Result`` (the session cannot promise
    more for every statement); for an UPDATE or DELETE without RETURNING it is a
    ``CursorResult``, which has the count.
    """
    return cast(CursorResult, result).rowcount
