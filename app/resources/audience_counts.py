"""How many devices an audience matches now, before sending to it: exact up to
``EXACT_UP_TO``, beyond that an estimate from a random sample, flagged as such. Nothing
is written.

The estimate: device ids are random (UUID v4), so the ``SAMPLE_SIZE`` devices after a
random id are a random sample of the registry. The share of them the audience matches,
times the registry's size (PostgreSQL's own row estimate, or a count on SQLite), is the
estimate; ``at_least`` is what was counted exactly before (a lower bound). Its error is that of a
sample of ten thousand: about ±1 % of the registry at a 95 % confidence.
"""

import json
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select, text

from app.errors import InvalidAttribute, ServiceError, Where
from app.extensions import db
from app.models import Device
from app.push.message import PushType
from app.resources import audiences, notification_content, notifications

EXACT_UP_TO = 10_000
SAMPLE_SIZE = 10_000
# Devices read to count an audience with app_version bounds (compared here, not in SQL)
SCANNED_UP_TO = 100_000


@dataclass(frozen=True)
class AudienceCount:
    audience: dict
    push_type: str
    devices: int
    is_estimate: bool
    at_least: int  # exact: the audience matches at least this many

    @property
    def id(self):
        """The same audience and push type, the same id."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, json.dumps(
            [self.audience, self.push_type], sort_keys=True)))


def count(principal, raw_audience, push_type=PushType.ALERT.value):
    """How many devices ``raw_audience`` (as ``audiences.parse`` takes it) matches now for
    a push of ``push_type``; the caller needs the scopes sending to it would need."""
    if push_type not in notification_content.PUSH_TYPES:
        raise InvalidAttribute(f"push_type is one of {', '.join(notification_content.PUSH_TYPES)}.",
                               field="push_type", where=Where.FILTER)
    audience = _checked(principal, raw_audience)
    matching = select(Device.id, Device.app_version).where(
        *audience.conditions(), *notifications.reachable(push_type))
    exact, complete = _exact(audience, matching)
    if complete:
        return AudienceCount(raw_audience, push_type, exact, False, exact)
    return AudienceCount(raw_audience, push_type, max(exact, _estimate(audience, matching)),
                         True, exact)


def _exact(audience, matching):
    """(devices counted, whether that is all of them): a bounded read either way."""
    if not audience.filters_in_python:
        counted = _matches(audience, matching.limit(EXACT_UP_TO + 1))
        return counted, counted <= EXACT_UP_TO
    rows = db.session.execute(matching.limit(SCANNED_UP_TO + 1)).all()
    return sum(audience.admits(version) for _, version in rows[:SCANNED_UP_TO]), \
        len(rows) <= SCANNED_UP_TO


def _checked(principal, raw_audience):
    """The audience parsed; its errors name the filter (where the audience was sent), and
    the member at fault in their detail."""
    try:
        return notifications.check_audience(principal, raw_audience)
    except ServiceError as exc:
        for error in exc.errors:
            member = "/".join(map(str, error.field)) if isinstance(error.field, tuple) \
                else error.field or audiences.MEMBER
            error.detail = f"{member}: {error.detail}"
            error.field, error.where = audiences.MEMBER, Where.FILTER
        raise


def _matches(audience, statement):
    if not audience.filters_in_python:
        return db.session.scalar(select(func.count()).select_from(statement.subquery()))
    return sum(audience.admits(version) for _, version in db.session.execute(statement))


def _estimate(audience, matching):
    start = uuid.uuid4()
    sample = select(Device.id).where(Device.id > start).order_by(Device.id).limit(SAMPLE_SIZE)
    sampled = list(db.session.scalars(sample).all())
    if len(sampled) < SAMPLE_SIZE:  # past the end: wrap around to the first ids
        sampled += db.session.scalars(select(Device.id).order_by(Device.id)
                                      .limit(SAMPLE_SIZE - len(sampled))).all()
    hits = _matches(audience, matching.where(Device.id.in_(sampled)))
    return round(hits / max(1, len(sampled)) * _registry_size())


def _registry_size():
    if db.session.get_bind().dialect.name == "postgresql":
        estimated = db.session.scalar(text(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = 'devices'::regclass"))
        if estimated and estimated > 0:
            return estimated
    return db.session.scalar(select(func.count()).select_from(Device))
