"""When each delivery of a scheduled notification may first be sent: plain datetimes and
zones, no database, no wire format.

- ``local_moment``: the first moment at or after a start when the wall clock in a zone
  reads a given time. A wall time that does not exist that day (inside a spring-forward
  gap) is moved forward by the gap's length (02:30 in a one-hour gap: 03:30); one that
  happens twice (the repeated hour) is the first of the two, unless only the second is
  still ahead.
- ``Throttle``: at most ``per_minute`` deliveries on any one moment, each moment a whole
  number of minutes after the others, so no 60-second window holds more than
  ``per_minute`` of them (see ``docs/api/notifications.md``, "Throttle").

Every datetime given and returned is aware, in UTC.
"""

import functools
import math
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MINUTE = timedelta(minutes=1)
LOOKAHEAD = timedelta(days=1)  # how far past a moment a throttle reads at once
EPSILON = timedelta(microseconds=1)


def zone_named(name: str | None, fallback: ZoneInfo) -> ZoneInfo:
    """The IANA zone ``name``, or ``fallback`` when there is none or it names no zone (a
    stored value the registry's validation never saw must not stop a worker)."""
    return (_zone(name) if name else None) or fallback


@functools.lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def local_moment(start: datetime, wall: time, zone: ZoneInfo) -> datetime:
    """The first moment at or after ``start`` when the wall clock in ``zone`` reads
    ``wall`` (within about a day of ``start``)."""
    first_day = start.astimezone(zone).date()
    for offset in range(-1, 3):  # a day before: a gap may move a wall time past midnight
        for moment in _occurrences(first_day + timedelta(days=offset), wall, zone):
            if moment >= start:
                return moment
    raise AssertionError(f"no {wall} in {zone} within two days of {start}")  # pragma: no cover


def _occurrences(day: date, wall: time, zone: ZoneInfo) -> list[datetime]:
    """The moments the wall clock reads ``wall`` on ``day``: one, or two in a repeated
    hour (earlier first); a time inside a gap, moved forward by the gap (fold 0 reads it
    with the offset before the transition: exactly that)."""
    naive = datetime.combine(day, wall)
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first == second or not _reads(second, naive, zone):
        return [first]
    return [first, second]  # the repeated hour


def _reads(moment: datetime, naive: datetime, zone: ZoneInfo) -> bool:
    return moment.astimezone(zone).replace(tzinfo=None) == naive


def throttled(start: datetime, position: int, per_minute: int) -> datetime:
    """The moment of the ``position``-th (from 0) delivery of a throttled notification
    whose deliveries all start at ``start``: ``per_minute`` of them a minute."""
    return start + MINUTE * (position // per_minute)


class Throttle:
    """Moments spread so that no moment holds more than ``per_minute`` deliveries: each
    delivery goes at its own moment, or at the same second of the first later minute
    with room. ``load(first, last)`` gives the deliveries already placed on the moments
    from ``first`` to ``last`` (inclusive), by moment; ``placed`` is what to write back.
    """

    def __init__(self, per_minute: int,
                 load: Callable[[datetime, datetime], dict[datetime, int]]):
        self.per_minute = per_minute
        self._load = load
        self.placed: dict[datetime, int] = {}  # moment → deliveries on it (all of them)
        self._loaded: tuple[datetime, datetime] | None = None
        self._next: dict[datetime, datetime] = {}  # a full moment → a later one to try

    def place_all(self, moments: Iterable[datetime]) -> list[datetime]:
        moments = list(moments)
        if moments:
            self._window(min(moments), max(moments) + MINUTE * math.ceil(
                len(moments) / self.per_minute))
        return [self.place(moment) for moment in moments]

    def place(self, moment: datetime) -> datetime:
        """The moment this delivery goes at: ``moment`` or a whole minute later."""
        chosen = self._open_from(moment)
        self.placed[chosen] = self.placed.get(chosen, 0) + 1
        if self.placed[chosen] >= self.per_minute:
            self._next[chosen] = chosen + MINUTE
        return chosen

    def _open_from(self, moment: datetime) -> datetime:
        visited = []
        while True:
            if self._loaded is None or not self._loaded[0] <= moment <= self._loaded[1]:
                self._window(moment, moment + LOOKAHEAD)
            later = self._next.get(moment)
            if later is None:
                break
            visited.append(moment)
            moment = later
        for full in visited:  # path compression: the next walk jumps straight here
            self._next[full] = moment
        return moment

    def _window(self, first: datetime, last: datetime) -> None:
        """Make sure what is already placed from ``first`` to ``last`` was read: the range
        read stays one interval, widened on either side as needed."""
        if self._loaded is None:
            self._read(first, last)
            self._loaded = (first, last)
            return
        low, high = self._loaded
        if first < low:
            self._read(first, low - EPSILON)
        if last > high:
            self._read(high + EPSILON, last)
        self._loaded = (min(first, low), max(last, high))

    def _read(self, first: datetime, last: datetime) -> None:
        for moment, count in self._load(first, last).items():
            self.placed[moment] = count
            if count >= self.per_minute:
                self._next[moment] = moment + MINUTE
