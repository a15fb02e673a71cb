"""Running Live Activities: the push token ActivityKit gives each one (it updates and ends
that activity, and rotates), registered by the app with its user's or session's credential,
read by backend services, and ended when they stop being targets.

An activity is a target while it is running: not ended (an ``end`` sent, APNs refused its
token, its owner deleted it) and younger than ``LIVE_ACTIVITY_MAX_AGE`` (Apple ends an
activity after 8 hours and takes it off the Lock Screen at most 4 hours later).
"""

import dataclasses
import uuid
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, bindparam, delete, or_, select, update

from app.database.results import rows_changed
from app.database.upsert import insert_for
from app.errors import ErrorList, NotFound, Unprocessable, Where
from app.extensions import db
from app.formats.ids import uuid_id
from app.models import Channel, CredentialKind, Device, LiveActivity
from app.models.types import utcnow
from app.resources import devices
from app.resources.listing import Filter, list_page
from app.security.crypto import seal

ENDED_BY_END = "End"  # an ``end`` was sent: the activity is over for good
ENDED_BY_OWNER = "Deleted"
ACTIVITY_ENDED = "ACTIVITY_ENDED"
READ_SCOPE = "notifications:send"


def _user_id(text):
    key = uuid_id(text)
    if key is None:
        raise ValueError("a user id (a UUID)")
    return key


FILTERS = {declared.name: declared for declared in (
    Filter("attributes_type", LiveActivity.attributes_type),
    Filter("activity_id", LiveActivity.activity_id),
    Filter("user", LiveActivity.user_id, _user_id),
)}
ORDERS = {"created_at": LiveActivity.created_at, "updated_at": LiveActivity.updated_at}
DEFAULT_ORDER = (("created_at", False),)
_NO_SUCH_ACTIVITY = "There is no such live activity of yours."


def max_age(config=None):
    return timedelta(seconds=(config or current_app.config)["LIVE_ACTIVITY_MAX_AGE"])


def running(now, age):
    """The conditions a running activity meets (``age``: ``LIVE_ACTIVITY_MAX_AGE``)."""
    return (LiveActivity.ended_at.is_(None), LiveActivity.created_at > now - age)


def is_running(activity, now, age):
    return activity.ended_at is None and activity.created_at > now - age


# -- the app's side ---------------------------------------------------------------------


def register(principal, attributes, raw_device_id):
    """Register a running activity on one of the caller's devices, or rotate the token of
    the one registered with this ``activity_id``: (activity, created). An activity whose
    ``end`` was sent stays ended (422)."""
    device = _callers_device(principal, raw_device_id)
    values = {"token": seal(attributes["token"]) if attributes.get("token") else None,
              "channel_id": attributes.get("channel_id"),
              "attributes_type": attributes["attributes_type"], "user_id": device.user_id,
              "ended_at": None, "ended_reason": None}
    existing = _registered(device.id, attributes["activity_id"])
    if existing is None:
        created = _insert(device.id, attributes["activity_id"], values)
        if created is not None:
            return db.session.get(LiveActivity, created), True
        existing = _registered(device.id, attributes["activity_id"])  # a racing twin won
    if existing.ended_reason == ENDED_BY_END:
        raise _ended(existing.activity_id, field="activity_id", where=Where.BODY)
    db.session.execute(update(LiveActivity).where(LiveActivity.id == existing.id)
                       .values(**values, updated_at=utcnow()))
    db.session.refresh(existing)
    return existing, False


def _callers_device(principal, raw_device_id):
    device = devices.find_owned_by_id(principal, raw_device_id)
    if device is None:
        raise NotFound(f"You have no device {raw_device_id}.", field="device",
                       where=Where.RELATIONSHIP)
    if device.channel != Channel.IOS_PUSH:
        raise Unprocessable("Live Activities run on iOS devices (channel ios_push).",
                            field="device", where=Where.RELATIONSHIP, code="NOT_AN_IOS_DEVICE")
    return device


def _registered(device_id, activity_id):
    return db.session.scalar(select(LiveActivity).where(
        LiveActivity.device_id == device_id, LiveActivity.activity_id == activity_id))


def _insert(device_id, activity_id, values):
    now = utcnow()
    statement = insert_for(db.session.get_bind(), LiveActivity).values(
        id=uuid.uuid4(), device_id=device_id, activity_id=activity_id, created_at=now,
        updated_at=now, **values,
    ).on_conflict_do_nothing(index_elements=["device_id", "activity_id"]
                             ).returning(LiveActivity.id)
    return db.session.execute(statement).scalar_one_or_none()


def get_owned(principal, raw_id):
    activity = db.session.scalar(select(LiveActivity).where(
        LiveActivity.id == _activity_id(raw_id), _owned_by(principal)))
    if activity is None:
        raise NotFound(_NO_SUCH_ACTIVITY)
    return activity


def delete_owned(principal, raw_id):
    """The owner's DELETE: the activity is gone (it stops being a target at once)."""
    deleted = rows_changed(db.session.execute(delete(LiveActivity).where(
        LiveActivity.id == _activity_id(raw_id), _owned_by(principal))))
    if deleted != 1:
        raise NotFound(_NO_SUCH_ACTIVITY)


def _owned_by(principal):
    return LiveActivity.device_id.in_(select(Device.id).where(devices.owned_by(principal)))


def _activity_id(raw):
    key = uuid_id(raw)
    if key is None:
        raise NotFound(_NO_SUCH_ACTIVITY)
    return key


# -- reading: the owner, or a backend service ---------------------------------------------


def get(principal, raw_id):
    """For its owner, or for any API key holding ``notifications:send``."""
    if principal.kind != CredentialKind.API_KEY:
        return get_owned(principal, raw_id)
    activity = db.session.get(LiveActivity, _activity_id(raw_id))
    if activity is None:
        raise NotFound(f"There is no live activity {raw_id}.")
    return activity


def list_activities(principal, listing):
    """The caller's activities (a user), or every activity (an API key), filtered."""
    owned = () if principal.kind == CredentialKind.API_KEY else (_owned_by(principal),)
    return list_page(db.session, select(LiveActivity).where(*owned), listing,
                     filters=FILTERS, orders=ORDERS, default_order=DEFAULT_ORDER,
                     unique=LiveActivity.id)


# -- notifications to activities ------------------------------------------------------------


def require_running(ids):
    """Each named activity exists (404 naming its place) and is running (422
    ``ACTIVITY_ENDED``): updates and ends go to running activities only."""
    if not ids:
        return
    found = {activity.id: activity for activity in db.session.scalars(
        select(LiveActivity).where(LiveActivity.id.in_(set(ids))))}
    now, age = utcnow(), max_age()
    errors = []
    for index, given in enumerate(ids):
        activity = found.get(given)
        if activity is None:
            errors.append(NotFound(f"There is no live activity {given}.",
                                   field=f"live_activities/{index}",
                                   where=Where.RELATIONSHIP))
        elif not is_running(activity, now, age):
            errors.append(_ended(given, field=f"live_activities/{index}",
                                 where=Where.RELATIONSHIP))
    if errors:
        raise ErrorList(errors)


def _ended(name, **where):
    return Unprocessable(f"The live activity {name} has ended: it takes no more updates.",
                         code=ACTIVITY_ENDED, **where)


def audience(attributes_type, activity_id=None):
    """The activities an audience names: every one of an attributes type, or one
    ``activity_id`` of it (on every device that runs it)."""
    conditions = [LiveActivity.attributes_type == attributes_type]
    if activity_id is not None:
        conditions.append(LiveActivity.activity_id == activity_id)
    return and_(*conditions)


def with_token():
    """Activities an APNs request can address one by one (not those on a channel)."""
    return LiveActivity.token.is_not(None)


# -- the dispatcher's side ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Ending:
    """An activity that stops being a target: its ``end`` was sent (``stored_token`` None),
    or APNs refused its token (only that token ends it: a rotated one keeps it)."""

    live_activity_id: uuid.UUID
    reason: str
    stored_token: str | None = None


_activities = LiveActivity.__table__
_END_SENT = update(_activities).where(
    _activities.c.id == bindparam("activity"), _activities.c.ended_at.is_(None),
).values(ended_at=bindparam("now"), ended_reason=bindparam("reason"),
         updated_at=bindparam("now"))
_END_REFUSED = update(_activities).where(
    _activities.c.id == bindparam("activity"), _activities.c.ended_at.is_(None),
    _activities.c.token == bindparam("stored_token"),
).values(ended_at=bindparam("now"), ended_reason=bindparam("reason"),
         updated_at=bindparam("now"))


def end(connection, endings, now):
    """Apply a batch's endings on the dispatcher's ``connection`` (one executemany each)."""
    for statement, chosen in ((_END_SENT, [e for e in endings if e.stored_token is None]),
                              (_END_REFUSED, [e for e in endings if e.stored_token])):
        if chosen:
            connection.execute(statement, [
                {"activity": e.live_activity_id, "reason": e.reason, "now": now,
                 **({"stored_token": e.stored_token} if e.stored_token else {})}
                for e in chosen])


def prune(now: datetime, age: timedelta, cutoff: datetime):
    """Delete activities no longer targets: ended before ``cutoff``, or older than ``age``
    (their deliveries stay, without the activity). How many went."""
    return rows_changed(db.session.execute(delete(LiveActivity).where(or_(
        LiveActivity.ended_at < cutoff, LiveActivity.created_at <= now - age))))
