"""Rates like ``5/hour``: the rate-limit settings' format."""

import re
from dataclasses import dataclass

PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(second|minute|hour|day)s?\s*$")


@dataclass(frozen=True)
class Rate:
    limit: int
    period: int

    @classmethod
    def parse(cls, text):
        """``'5/hour'``, ``'10/15 minutes'`` → Rate."""
        match = RATE.match(text or "")
        if not match:
            raise ValueError(f"'{text}' is not a rate like '5/hour'")
        count, multiple, unit = match.groups()
        period = int(multiple or 1) * PERIODS[unit]
        if period == 0:
            raise ValueError(f"'{text}' has a period of zero")
        return cls(int(count), period)
