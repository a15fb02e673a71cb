"""Fixed-window rate limits whose counts live where every worker sees them.

The database keeps the counts by default (one upsert a hit); with ``REDIS_URL`` set,
Redis does. Either way the limit holds across gunicorn workers and machines.
"""

import re
import time
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import delete

from app.extensions import db
from app.models import RateLimitCounter
from app.upsert import insert_for

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


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int


def hit(key, rate, now=None):
    """Count one hit on ``key``; say whether it is within ``rate``."""
    now = time.time() if now is None else now
    window_start = int(now // rate.period * rate.period)
    retry_after = max(1, int(window_start + rate.period - now + 0.999))
    count = _backend().increment(key, window_start, rate.period)
    return Verdict(count <= rate.limit, retry_after)


def _backend():
    url = current_app.config.get("REDIS_URL")
    return RedisCounters(url) if url else DatabaseCounters()


class DatabaseCounters:
    """Counts in ``rate_limit_counters``, inside the request's transaction.

    A refused hit rolls back with its request, which leaves the count at the limit, so
    the refusal stands. Opening a key's new window removes that key's old ones; windows of
    keys never hit again are left to ``flask prune``, so requests never contend on other
    callers' rows.
    """

    def increment(self, key, window_start, period):
        statement = insert_for(db.session.get_bind(), RateLimitCounter).values(
            key=key, window_start=window_start, expires_at=window_start + period, count=1)
        statement = statement.on_conflict_do_update(
            index_elements=["key", "window_start"],
            set_={"count": RateLimitCounter.count + 1},
        ).returning(RateLimitCounter.count)
        count = db.session.execute(statement).scalar_one()
        if count == 1:
            db.session.execute(delete(RateLimitCounter).where(
                RateLimitCounter.key == key, RateLimitCounter.window_start < window_start))
        return count


_redis_clients = {}


class RedisCounters:
    def __init__(self, url):
        if url not in _redis_clients:
            import redis  # optional: installed with the [redis] extra

            _redis_clients[url] = redis.Redis.from_url(url)
        self.client = _redis_clients[url]

    def increment(self, key, window_start, period):
        redis_key = f"pushreg:rate:{key}:{window_start}"
        pipeline = self.client.pipeline()
        pipeline.incr(redis_key)
        pipeline.expire(redis_key, period + 60)
        count, _ = pipeline.execute()
        return int(count)
