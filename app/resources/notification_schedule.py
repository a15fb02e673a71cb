"""When a notification's deliveries may go: its schedule, as a sender asks for it.

- ``send_at``: not before this moment (UNIX seconds); at most ``MAX_AHEAD`` away, a
  moment already past meaning now.
- ``local_time``: each device at the first moment from the start (``send_at``, or when
  accepted) when the wall clock in its own zone reads this time (``app/push/moments.py``).
- ``throttle``: ``{"per_minute": N}``: no more than N of its deliveries on any one
  moment, each moment a whole number of minutes from the others.

Checked before anything is written; errors name the attribute at fault.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from app.errors import ErrorList, InvalidAttribute, ServiceError

MEMBERS = ("send_at", "local_time", "throttle")
MAX_AHEAD = timedelta(days=30)
THROTTLE_MIN, THROTTLE_MAX = 60, 1_000_000
LOCAL_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"
_LOCAL_TIME = re.compile(LOCAL_TIME_PATTERN.removesuffix("$") + r"\Z")


@dataclass(frozen=True)
class Schedule:
    send_at: datetime | None = None
    local_time: time | None = None
    throttle: int | None = None  # deliveries a minute

    @property
    def per_device(self) -> bool:
        """Each delivery's moment is its own (computed as it is written)."""
        return self.local_time is not None or self.throttle is not None

    def start(self, now: datetime) -> datetime:
        """The first moment any delivery may go: ``send_at``, or ``now`` once it passed."""
        return now if self.send_at is None else max(self.send_at, now)

    def columns(self) -> dict:
        """The notification's columns that keep it."""
        return {"send_at": self.send_at, "throttle": self.throttle,
                "local_time": None if self.local_time is None else
                self.local_time.isoformat()}

    @classmethod
    def of(cls, row) -> "Schedule":
        """A notification row's schedule (any row with its three columns)."""
        return cls(row.send_at, None if row.local_time is None
                   else time.fromisoformat(row.local_time), row.throttle)


def requested(content: dict, now: datetime) -> Schedule:
    """The schedule ``content`` asks for, its members taken out of it; every bad member
    named at once."""
    asked = {name: content.pop(name) for name in MEMBERS if name in content}
    asked = {name: value for name, value in asked.items() if value is not None}
    errors: list[ServiceError] = []
    parsed = {}
    for name, parse in (("send_at", _send_at), ("local_time", _local_time),
                        ("throttle", _throttle)):
        if name in asked:
            try:
                parsed[name] = parse(asked[name], now)
            except ServiceError as exc:
                errors.append(exc)
    if errors:
        raise ErrorList(errors)
    return Schedule(**parsed)


def check_expiration(schedule: Schedule, expiration: int | None) -> None:
    """A notification may not expire before it may be sent (0: APNs's "once, now")."""
    if expiration and schedule.send_at is not None and \
            expiration < schedule.send_at.timestamp():
        raise InvalidAttribute("expiration is before send_at: nothing could be sent.",
                               field="expiration", code="EXPIRES_BEFORE_SEND_AT")


def _send_at(value, now):
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidAttribute("send_at is a moment: UNIX seconds.", field="send_at")
    moment = datetime.fromtimestamp(value, UTC)
    if moment > now + MAX_AHEAD:
        raise InvalidAttribute(f"send_at is at most {MAX_AHEAD.days} days ahead.",
                               field="send_at", code="SEND_AT_TOO_FAR")
    return moment


def _local_time(value, _now):
    if not isinstance(value, str) or not _LOCAL_TIME.match(value):
        raise InvalidAttribute('local_time is a wall-clock time "HH:MM" or "HH:MM:SS", '
                               'from "00:00" to "23:59:59".', field="local_time",
                               code="INVALID_LOCAL_TIME")
    return time.fromisoformat(value)


def _throttle(value, _now):
    per_minute = value.get("per_minute") if isinstance(value, dict) else None
    if not isinstance(value, dict) or set(value) != {"per_minute"} or \
            isinstance(per_minute, bool) or not isinstance(per_minute, int) or \
            not THROTTLE_MIN <= per_minute <= THROTTLE_MAX:
        raise InvalidAttribute(f'throttle is {{"per_minute": N}}, N from {THROTTLE_MIN} to '
                               f"{THROTTLE_MAX:,}.", field="throttle", code="INVALID_THROTTLE")
    return per_minute
