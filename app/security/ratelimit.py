"""Sliding-window rate limits whose counts live where every worker sees them.

Each key keeps one counter a fixed window; a hit is judged on the current window's count
plus the previous window's, weighted by how much of the previous window the sliding
window still covers (the approximation Cloudflare and nginx-style limiters use). A burst
across a window boundary is therefore counted as one burst.

The database keeps the counts by default (one upsert a hit); with ``REDIS_URL`` set,
Redis does. Either way the limit holds across gunicorn workers and machines, and a
refused hit is not counted, so hammering a limit does not prolong it.
"""

import hashlib
import ipaddress
import math
import time
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import String, delete, select, update

from app.database.upsert import insert_for
from app.errors import TooManyRequests
from app.extensions import db
from app.formats.rates import Rate
from app.models import RateLimitCounter


def _key_length() -> int:
    column_type = RateLimitCounter.__table__.c.key.type
    assert isinstance(column_type, String) and column_type.length is not None  # String(200)
    return column_type.length


KEY_LENGTH = _key_length()
IPV6_KEY_PREFIX = 64


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int


@dataclass(frozen=True)
class Window:
    """Where ``now`` falls: the current fixed window and the weight of the previous one."""

    start: int
    period: int
    now: float

    @classmethod
    def at(cls, now, period):
        return cls(int(now // period * period), period, now)

    @property
    def previous_start(self):
        return self.start - self.period

    @property
    def previous_weight(self):
        return 1 - (self.now - self.start) / self.period

    def estimate(self, previous, current):
        return previous * self.previous_weight + current

    def retry_after(self, limit, previous, current):
        """Seconds until one more hit fits, had nobody else hit meanwhile."""
        room = limit - 1 - current  # for the previous window's weighted count
        if limit == 0:
            fits_at = self.now + self.period
        elif room >= 0:
            fits_at = self.start + self.period * (1 - room / previous)
        else:  # only once this window is the previous one, weighing less and less
            fits_at = self.start + self.period * (2 - (limit - 1) / current)
        return max(1, math.ceil(fits_at - self.now))


def hit(key, rate, now=None):
    """Count one hit on ``key`` if it is within ``rate``; say whether it was."""
    window = Window.at(time.time() if now is None else now, rate.period)
    previous, current = _backend().hit(bounded_key(key), window, rate.limit)
    allowed = window.estimate(previous, current + 1) <= rate.limit
    return Verdict(allowed, 0 if allowed else window.retry_after(rate.limit, previous, current))


def spend(key, setting, detail):
    """Count one hit on ``key`` against the rate configured as ``setting``, or refuse it
    with 429 ``RATE_LIMITED`` and ``Retry-After``."""
    verdict = hit(key, Rate.parse(current_app.config[setting]))
    if not verdict.allowed:
        raise TooManyRequests(detail, retry_after=verdict.retry_after, code="RATE_LIMITED")


def bounded_key(key):
    """``key``, or when longer than the column a readable prefix and a digest of it all."""
    if len(key) <= KEY_LENGTH:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[:KEY_LENGTH - len(digest) - 1]}#{digest}"


def address_key(address):
    """One key a client: an IPv4 address as it is, an IPv6 address by its /64 (one
    subscriber's network), anything else by a digest of what was given."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return "invalid-" + hashlib.sha256((address or "").encode()).hexdigest()[:32]
    if ip.version == 6 and ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/{IPV6_KEY_PREFIX}", strict=False))
    return str(ip)


def _backend():
    url = current_app.config.get("REDIS_URL")
    return RedisCounters(url) if url else DatabaseCounters()


class DatabaseCounters:
    """Counts in ``rate_limit_counters``, inside the request's transaction.

    A refused hit is taken back at once (and would roll back with its request). Opening a key's new
    window removes that key's windows older than the previous one; windows of keys never
    hit again are left to ``flask prune``, so requests never contend on other callers'
    rows. A window is needed until the end of the window after it, hence ``expires_at``.
    """

    def hit(self, key, window, limit):
        """(previous count, current count before this hit); the hit counted if it fits.
        The upsert counts it first, as that takes the row lock that orders racing hits."""
        statement = insert_for(db.session.get_bind(), RateLimitCounter).values(
            key=key, window_start=window.start, expires_at=window.start + 2 * window.period,
            count=1)
        statement = statement.on_conflict_do_update(
            index_elements=["key", "window_start"],
            set_={"count": RateLimitCounter.count + 1},
        ).returning(RateLimitCounter.count)
        current = db.session.execute(statement).scalar_one()
        if current == 1:
            db.session.execute(delete(RateLimitCounter).where(
                RateLimitCounter.key == key,
                RateLimitCounter.window_start < window.previous_start))
        previous = db.session.scalar(select(RateLimitCounter.count).where(
            RateLimitCounter.key == key,
            RateLimitCounter.window_start == window.previous_start)) or 0
        if window.estimate(previous, current) > limit:
            db.session.execute(update(RateLimitCounter).where(
                RateLimitCounter.key == key, RateLimitCounter.window_start == window.start,
            ).values(count=RateLimitCounter.count - 1))
        return previous, current - 1


# Counts the hit only when it fits, atomically: KEYS current, previous window;
# ARGV limit, previous window's weight, seconds to keep the current window.
SLIDING_HIT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
if previous * tonumber(ARGV[2]) + current + 1 <= tonumber(ARGV[1]) then
  redis.call('INCR', KEYS[1])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return {previous, current}
"""

_redis_clients: dict[str, tuple] = {}  # url → (client, its registered script)


class RedisCounters:
    def __init__(self, url):
        if url not in _redis_clients:
            import redis  # optional: installed with the [redis] extra

            client = redis.Redis.from_url(url)
            _redis_clients[url] = (client, client.register_script(SLIDING_HIT))
        self.client, self.script = _redis_clients[url]

    def hit(self, key, window, limit):
        """(previous count, current count before this hit); the hit counted if it fits."""
        keys = [f"pushreg:rate:{key}:{window.start}", f"pushreg:rate:{key}:{window.previous_start}"]
        previous, current = self.script(
            keys=keys, args=[limit, repr(window.previous_weight), 2 * window.period + 60])
        return int(previous), int(current)
