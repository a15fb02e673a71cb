"""Notifications backend services send: accepted into the delivery ledger, read back with
their deliveries' counts. Sending them is the dispatcher's (``app/push``).

Accepting one for named recipients writes the notification and one delivery per device
(each with its own ``apns_id``) in one transaction, the deliveries with one
``INSERT … SELECT`` per hundred recipients. Accepting one for an audience
(``audiences.py``) writes the notification alone: the workers expand it
(``app/push/expansion.py``), so the request costs the same for ten devices or a million.

An idempotency key makes a retried accept return the first notification: the database
decides, by its unique constraint on (sender, key).
"""

import dataclasses
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import case, delete, exists, func, literal, or_, select, update
from sqlalchemy.types import Uuid

from app.database.upsert import insert_for
from app.errors import (
    Conflict,
    ErrorList,
    Forbidden,
    InvalidAttribute,
    NotFound,
    Unprocessable,
    Where,
)
from app.extensions import db
from app.formats.ids import uuid_id
from app.models import (
    Channel,
    Delivery,
    DeliveryCount,
    DeliveryState,
    Device,
    Notification,
    NotificationStatus,
    User,
)
from app.models.types import UTCDateTime, utcnow
from app.push import apns, fcm, message
from app.push.message import NotificationError, PayloadTooLarge, PushType
from app.push.queue import queue_for
from app.resources import audiences
from app.resources.listing import Filter, list_page
from app.security import policies

# The push types a service may send; the others need tokens the registry does not keep.
PUSH_TYPES = (PushType.ALERT, PushType.BACKGROUND, PushType.VOIP, PushType.LIVEACTIVITY)
PUSH_CHANNELS = (Channel.IOS_PUSH, Channel.FCM)
LIVE_ACTIVITY_START = "start"
MAX_RECIPIENTS = 1000  # identifiers per list (users, devices) in one request
RECIPIENTS_PER_STATEMENT = 100  # users or devices whose deliveries one INSERT writes
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
BROADCAST_SCOPE = "notifications:broadcast"  # an API key's, to send to every device
PENDING_STATES = (DeliveryState.PENDING, DeliveryState.SENDING)
# The parts of a payload a sender controls in bulk: the largest is named when it is too big.
BULKY_FIELDS = {"alert": "alert", "custom": "data", "content_state": "content_state",
                "attributes": "attributes"}

DELIVERY_FILTERS = {"state": Filter("state", Delivery.state)}
DELIVERY_ORDERS = {"created_at": Delivery.created_at}
DELIVERY_DEFAULT_ORDER = (("created_at", False),)


@dataclass(frozen=True)
class Counts:
    """A notification's deliveries by state; ``pending`` includes those being sent.
    ``by_channel``: the same counts for each channel the deliveries go to."""

    pending: int = 0
    sent: int = 0
    failed: int = 0
    invalidated: int = 0
    expired: int = 0
    started: int = 0  # deliveries attempted at least once or being sent now
    by_channel: dict = dataclasses.field(default_factory=dict)
    targeted: int = 0  # deliveries written so far
    expanding: bool = False  # an audience not written whole yet

    def shown(self):
        return {**_by_state(self), "targeted": self.targeted,
                "by_channel": {channel: _by_state(counts)
                               for channel, counts in sorted(self.by_channel.items())}}


def _by_state(counts):
    return {"pending": counts.pending, "sent": counts.sent, "failed": counts.failed,
            "invalidated": counts.invalidated, "expired": counts.expired}


# -- accepting -----------------------------------------------------------------------


def accept(principal, content, *, users=(), devices=(), audience=None, idempotency_key=None,
           environment=None):
    """Accept a notification for ``users`` (all their reachable devices) and ``devices``
    (by id), or for an ``audience`` (the document ``audiences.parse`` takes): (notification,
    created).

    ``content`` holds ``message.Notification`` fields by name. ``principal`` is the sending
    service (None: an operator, with no idempotency). ``environment`` limits the devices
    to those registered in it. Retrying with the same ``idempotency_key`` returns the first
    notification (created False); the same key with other content is a 409.
    """
    notification = validated(content)
    users, devices = list(users), list(devices)
    if audience is not None:
        if users or devices:
            raise InvalidAttribute("Send to an audience or to users and devices, not both.",
                                   field=audiences.MEMBER, code="AUDIENCE_WITH_RECIPIENTS")
        check_audience(principal, audience, environment)
        audience = audiences.stored(audience, environment)
    else:
        _check_recipient_count(users, devices)
    stored = message.stored(notification)
    sender_id = None if principal is None else principal.credential_id
    now = utcnow()
    notification_id = _insert(sender_id, idempotency_key, notification, stored, audience, now)
    if notification_id is None:
        return _earlier(sender_id, idempotency_key, stored, audience), False
    if audience is None:
        _require_existing(User, users, "users")
        _require_existing(Device, devices, "devices")
        _insert_deliveries(notification_id, notification, users, devices, environment, now)
        _enqueue(notification_id)
    else:
        queue_for(current_app.config).enqueue_expansion(db.session.connection(),
                                                        notification_id)
    return db.session.get(Notification, notification_id), True


def check_audience(principal, audience, environment=None):
    """The audience parsed, if ``principal`` may send to it (everyone takes a scope)."""
    parsed = audiences.parse(audience, environment=environment)
    if parsed.everyone and principal is not None and \
            BROADCAST_SCOPE not in principal.scopes:
        raise Forbidden(f"Sending to every device needs an API key with the scope "
                        f"'{BROADCAST_SCOPE}'.", field=(audiences.MEMBER, "all"),
                        code="INSUFFICIENT_SCOPE")
    return parsed


def validated(content):
    """``content`` as a ``message.Notification`` whose payload and headers APNs (and FCM,
    for the pushes it carries) will take; errors name the attribute at fault."""
    push_type = content.get("push_type", PushType.ALERT)
    if push_type not in PUSH_TYPES:
        raise InvalidAttribute(f"push_type must be one of {', '.join(PUSH_TYPES)}.",
                               field="push_type")
    notification = message.Notification(**{**content, "push_type": PushType(push_type)})
    _check_priority(notification)
    _check_live_activity(notification)
    _check_payload(notification)
    _check_fcm_message(notification)
    _check_expiration(notification)
    return notification


def _check_priority(notification):
    if notification.push_type is PushType.BACKGROUND and notification.priority not in (
            None, 5):
        raise InvalidAttribute("Background pushes must have priority 5.", field="priority")


def _check_live_activity(notification):
    live = notification.push_type is PushType.LIVEACTIVITY
    if not live:
        if notification.event is not None:
            raise InvalidAttribute("event is for liveactivity pushes.", field="event")
        return
    if notification.event != LIVE_ACTIVITY_START:
        raise Unprocessable(
            "Only Live Activity start pushes can be sent here (to devices' push-to-start "
            "tokens): update and end go to a running activity's own token, which the "
            "registry does not keep.", field="event", code="UNSUPPORTED_EVENT")
    missing = [name for name in ("timestamp", "attributes_type", "attributes", "content_state")
               if getattr(notification, name) is None]
    if missing:
        raise ErrorList([InvalidAttribute(f"A Live Activity start push needs {name}.",
                                          field=name) for name in missing])


def _check_payload(notification):
    try:
        apns.check(notification)
    except PayloadTooLarge as exc:
        raise Unprocessable(f"The APNs payload is too large: {exc}.", field=_bulkiest(
            notification), code="APNS_PAYLOAD_TOO_LARGE") from exc
    except NotificationError as exc:
        raise Unprocessable(f"APNs would refuse this notification: {exc}.",
                            where=Where.BODY, code="INVALID_NOTIFICATION") from exc


def _check_fcm_message(notification):
    """What FCM would refuse of a push it may carry (alert, background), refused now: a
    reserved data key, too large a payload."""
    if notification.push_type not in fcm.PUSH_TYPES:
        return
    reserved = sorted(key for key in notification.custom if fcm.reserved_data_key(key))
    if reserved:
        raise InvalidAttribute(
            f"FCM reserves the data keys {', '.join(map(repr, reserved))} (from, gcm, "
            "message_type, and any key starting with google or gcm): rename them.",
            field="data", code="FCM_RESERVED_DATA_KEY")
    try:
        fcm.build_message(notification, utcnow().timestamp())
    except PayloadTooLarge as exc:
        raise Unprocessable(f"The FCM payload is too large: {exc}.", field=_bulkiest(
            notification), code="FCM_PAYLOAD_TOO_LARGE") from exc


def _bulkiest(notification):
    sizes = {name: len(json.dumps(getattr(notification, field), ensure_ascii=False).encode())
             for field, name in BULKY_FIELDS.items()}
    return max(sizes, key=sizes.get)


def _check_expiration(notification):
    expiration = notification.expiration
    if expiration and expiration <= utcnow().timestamp():
        raise InvalidAttribute("expiration is in the past (0 means: try once, now).",
                               field="expiration")


def _expires_at(notification):
    if not notification.expiration:
        return None
    return datetime.fromtimestamp(notification.expiration, UTC)


def _check_recipient_count(users, devices):
    if not users and not devices:
        raise Unprocessable("Name at least one recipient: users or devices.", field="users",
                            where=Where.RELATIONSHIP, code="NO_RECIPIENTS")
    for name, ids in (("users", users), ("devices", devices)):
        if len(ids) > MAX_RECIPIENTS:
            raise Unprocessable(f"At most {MAX_RECIPIENTS} {name} in one notification.",
                                field=name, where=Where.RELATIONSHIP,
                                code="TOO_MANY_RECIPIENTS")


def _insert(sender_id, idempotency_key, notification, stored, audience, now):
    """The new notification's id, or None when the sender's key was used before (then
    the earlier row stands: racing retries wait on its unique index and find it)."""
    statement = insert_for(db.session.get_bind(), Notification).values(
        id=uuid.uuid4(), sender_id=sender_id, idempotency_key=idempotency_key,
        push_type=notification.push_type.value, content=stored, audience=audience,
        expanding=audience is not None, targeted=0,
        expires_at=_expires_at(notification), created_at=now, updated_at=now,
    ).on_conflict_do_nothing(index_elements=["sender_id", "idempotency_key"]
                             ).returning(Notification.id)
    return db.session.execute(statement).scalar_one_or_none()


def _earlier(sender_id, idempotency_key, stored, audience):
    earlier = db.session.scalars(select(Notification).where(
        Notification.sender_id == sender_id,
        Notification.idempotency_key == idempotency_key)).one()
    if earlier.content != stored or earlier.audience != audience:
        raise Conflict(f"This {IDEMPOTENCY_KEY_HEADER} was used for another notification "
                       "with other content.", field=IDEMPOTENCY_KEY_HEADER,
                       where=Where.HEADER, code="IDEMPOTENCY_KEY_REUSED")
    return earlier


def _require_existing(model, ids, name):
    """Every id names a row; each unknown one is a 404 naming its place in the list."""
    if not ids:
        return
    found = set(db.session.scalars(select(model.id).where(model.id.in_(set(ids)))))
    missing = [index for index, given in enumerate(ids) if given not in found]
    if missing:
        raise ErrorList([NotFound(f"There is no {name[:-1]} {ids[index]}.",
                                  field=f"{name}/{index}", where=Where.RELATIONSHIP)
                         for index in missing])


def _insert_deliveries(notification_id, notification, users, devices, environment, now):
    """One pending delivery per reachable device: an ``INSERT … SELECT`` per
    ``RECIPIENTS_PER_STATEMENT`` users or devices, so no statement grows without bound
    (1,000 users of 100 devices take ten statements, not 100,000). ``targeted`` counts
    them, in the same transaction."""
    values = delivery_values(notification_id, now, db.session.get_bind().dialect.name)
    can_take = reachable(notification.push_type, environment)
    # a device named twice (as itself and through its user) gets one delivery
    not_through_users = [or_(Device.user_id.is_(None), Device.user_id.not_in(set(users)))] \
        if users else []
    targeted = 0
    for chosen, ids in ((Device.user_id.in_, users), (Device.id.in_, devices)):
        extra = not_through_users if ids is devices else []
        for chunk in _chunks(sorted(set(ids))):
            rows = select(*values.values()).where(chosen(chunk), *can_take, *extra)
            # (rowcount is not reliable across drivers for INSERT … SELECT: the rows say)
            targeted += len(db.session.execute(Delivery.__table__.insert().from_select(
                list(values), rows).returning(Delivery.id)).all())
    db.session.execute(update(Notification).where(Notification.id == notification_id)
                       .values(targeted=targeted))


def delivery_values(notification_id, now, dialect_name, due=None):
    """Column → SQL of a new pending delivery of the notification to each ``Device`` row
    selected, written ``now`` and due at ``due`` (default now; a per-row SQL expression
    over ``Device`` may stand here)."""
    written = literal(now, UTCDateTime())
    return {
        "notification_id": literal(notification_id, Uuid()),
        "device_id": Device.id,
        "channel": Device.channel,
        "apns_id": random_uuid(dialect_name),
        "state": literal(DeliveryState.PENDING.value),
        "attempts": literal(0),
        "next_attempt_at": written if due is None else due,
        "created_at": written,
        "updated_at": written,
    }


def _enqueue(notification_id):
    """The embedded queue is the ledger; procrastinate's jobs are written beside it."""
    queue_for(current_app.config).enqueue_notification(db.session.connection(),
                                                       notification_id)


def _chunks(ids):
    for start in range(0, len(ids), RECIPIENTS_PER_STATEMENT):
        yield ids[start:start + RECIPIENTS_PER_STATEMENT]


def reachable(push_type, environment=None):
    """Devices that can take this push: a live endpoint of the right kind (a VoIP token
    for VoIP pushes, a push-to-start token for Live Activities: APNs only; FCM devices
    take alert and background pushes)."""
    push_type = PushType(push_type)
    conditions = [Device.channel.in_(PUSH_CHANNELS), Device.token.is_not(None),
                  Device.is_invalidated.is_(False),
                  Device.is_voip.is_(push_type is PushType.VOIP)]
    if push_type is PushType.LIVEACTIVITY:
        conditions.append(Device.live_activity_token.is_not(None))
    if environment is not None:
        conditions.append(Device.environment == environment)
    return conditions


def random_uuid(dialect_name):
    """A fresh version-4 UUID per row, made by the database."""
    if dialect_name == "postgresql":
        return func.gen_random_uuid()
    # SQLite: 32 hex digits as the Uuid type stores them, with the version and variant bits
    def hex_digits(count):
        return func.substr(func.lower(func.hex(func.randomblob(8))), 1, count)
    variant = func.substr("89ab", 1 + func.abs(func.random()) % 4, 1)
    return (hex_digits(12) + literal("4") + hex_digits(3) + variant + hex_digits(15))


# -- reading -------------------------------------------------------------------------


def get(principal, notification_id):
    """One of the calling service's own notifications; anyone else's is a 404."""
    notification = find(notification_id)
    if notification is None or not policies.is_sender(principal, notification.sender_id):
        raise NotFound(f"There is no notification {notification_id}.", where=Where.URL)
    return notification


def find(notification_id):
    """Any notification by id, or None (for operators)."""
    key = uuid_id(str(notification_id))
    return None if key is None else db.session.get(Notification, key)


def counts(notification):
    """Its deliveries by state, overall and by channel, in one query of the counts the
    database keeps (``DeliveryCount``): its cost does not grow with the deliveries."""
    rows = db.session.execute(
        select(DeliveryCount.channel, DeliveryCount.state, func.sum(DeliveryCount.count),
               func.sum(case((or_(DeliveryCount.attempted,
                                  DeliveryCount.state != DeliveryState.PENDING),
                              DeliveryCount.count), else_=0)))
        .where(DeliveryCount.notification_id == notification.id)
        .group_by(DeliveryCount.channel, DeliveryCount.state)).all()
    rows = [row for row in rows if row[2]]  # keys counted to zero
    by_channel = {channel: _counted([row for row in rows if row[0] == channel])
                  for channel in {row[0] for row in rows}}
    return dataclasses.replace(_counted(rows), by_channel=by_channel,
                               targeted=notification.targeted,
                               expanding=notification.expanding)


def _counted(rows):
    by_state, begun = {}, 0
    for _, state, count, state_started in rows:  # sums: PostgreSQL's are numeric
        by_state[state] = by_state.get(state, 0) + int(count)
        begun += int(state_started or 0)
    return Counts(
        pending=sum(by_state.get(state, 0) for state in PENDING_STATES),
        **{state.value: by_state.get(state, 0) for state in (
            DeliveryState.SENT, DeliveryState.FAILED, DeliveryState.INVALIDATED,
            DeliveryState.EXPIRED)},
        started=begun)


def status_of(counts):
    """expanding (an audience's deliveries are still being written), queued (nothing
    tried yet), sending, or done (no delivery left pending)."""
    if counts.expanding:
        return NotificationStatus.EXPANDING
    if counts.pending == 0:
        return NotificationStatus.DONE
    return NotificationStatus.SENDING if counts.started else NotificationStatus.QUEUED


def list_deliveries(principal, notification, listing):
    """A page of the deliveries of one of the caller's notifications."""
    if not policies.is_sender(principal, notification.sender_id):
        raise NotFound(f"There is no notification {notification.id}.", where=Where.URL)
    return list_page(db.session, select(Delivery).where(
        Delivery.notification_id == notification.id), listing, filters=DELIVERY_FILTERS,
        orders=DELIVERY_ORDERS, default_order=DELIVERY_DEFAULT_ORDER, unique=Delivery.id)


def get_delivery(principal, apns_id):
    """One delivery of the caller's notifications, by its apns-id."""
    key = uuid_id(str(apns_id))
    delivery = None if key is None else db.session.execute(
        select(Delivery).join(Notification).where(Delivery.apns_id == key)
        .add_columns(Notification.sender_id)).one_or_none()
    if delivery is None or not policies.is_sender(principal, delivery.sender_id):
        raise NotFound(f"There is no delivery {apns_id}.", where=Where.URL)
    return delivery.Delivery


# -- housekeeping --------------------------------------------------------------------


def purge_finished(cutoff):
    """Delete notifications made before ``cutoff`` with no delivery left to send, and
    their deliveries: (notifications, deliveries) removed."""
    unfinished = exists().where(Delivery.notification_id == Notification.id,
                                Delivery.state.in_(PENDING_STATES))
    finished = select(Notification.id).where(Notification.created_at < cutoff, ~unfinished)
    deliveries = db.session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.notification_id.in_(finished)))
    notifications = db.session.execute(
        delete(Notification).where(Notification.id.in_(finished)),
        execution_options={"synchronize_session": False}).rowcount
    return notifications, deliveries
