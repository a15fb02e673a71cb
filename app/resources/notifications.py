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
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import case, delete, exists, func, literal, or_, select, update

from app.database.results import rows_changed
from app.database.upsert import insert_for
from app.errors import (
    Conflict,
    ErrorList,
    Forbidden,
    InvalidAttribute,
    NotFound,
    ServiceError,
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
    LiveActivity,
    Notification,
    NotificationStatus,
    User,
)
from app.models.types import UTCDateTime, utcnow
from app.observability import metrics
from app.push import message
from app.push.message import PushType
from app.push.queue import queue_for
from app.resources import audiences, live_activities, live_activity_channels
from app.resources.delivery_rows import NOTHING, delivery_values, reachable, write
from app.resources.listing import Filter, list_page
from app.resources.notification_content import ACTIVITY_EVENTS, validated
from app.resources.notification_schedule import Schedule, check_expiration, requested
from app.security import policies

MAX_RECIPIENTS = 1000  # identifiers per list (users, devices) in one request
RECIPIENTS_PER_STATEMENT = 100  # users or devices whose deliveries one INSERT writes
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
BROADCAST_SCOPE = "notifications:broadcast"  # an API key's, to send to every device
PENDING_STATES = (DeliveryState.PENDING, DeliveryState.SENDING)
# The parts of a payload a sender controls in bulk: the largest is named when it is too big.

DELIVERY_FILTERS = {"state": Filter("state", Delivery.state)}
# A canceled notification's: what is still pending is shown canceled (``shown_state``).
CANCELED_DELIVERY_FILTERS = {"state": Filter("state", case(
    (Delivery.state == DeliveryState.PENDING, DeliveryState.CANCELED.value),
    else_=Delivery.state))}
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
    canceled: int = 0
    started: int = 0  # deliveries attempted at least once or being sent now
    by_channel: dict = dataclasses.field(default_factory=dict)
    targeted: int = 0  # deliveries written so far
    expanding: bool = False  # an audience not written whole yet
    first_due_at: datetime | None = None  # the earliest moment a delivery was written with
    was_canceled: bool = False  # its sender canceled it (``cancellation.py``)

    def shown(self):
        return {**_by_state(self), "targeted": self.targeted,
                "by_channel": {channel: _by_state(counts)
                               for channel, counts in sorted(self.by_channel.items())}}


def _by_state(counts):
    return {"pending": counts.pending, "sent": counts.sent, "failed": counts.failed,
            "invalidated": counts.invalidated, "expired": counts.expired,
            "canceled": counts.canceled}


# -- accepting -----------------------------------------------------------------------


def accept(principal, content, *, users=(), devices=(), live_activities=(), channel=None,
           audience=None, idempotency_key=None, environment=None):
    """Accept a notification for ``users`` (all their reachable devices) and ``devices``
    (by id), or for an ``audience`` (the document ``audiences.parse`` takes: the workers
    expand it), or, for a Live Activity update or end, for ``live_activities`` (by id) and
    the running activities its ``live_activity_audience`` matches, or for a broadcast
    ``channel`` (by id: one delivery, one request to APNs): (notification, created).

    ``content`` holds ``message.Notification`` fields by name. ``principal`` is the sending
    service (None: an operator, with no idempotency). ``environment`` limits the devices
    to those registered in it. Retrying with the same ``idempotency_key`` returns the first
    notification (created False); the same key with other content is a 409.
    """
    content = dict(content)
    activity_audience = content.pop("live_activity_audience", None)
    now = utcnow()
    schedule = requested(content, now)
    notification = validated(content)
    check_expiration(schedule, notification.expiration)
    recipients = Recipients(list(users), list(devices), list(live_activities),
                            activity_audience, channel)
    _check_schedule_fits(schedule, recipients)
    if audience is not None:
        if recipients.to_devices or recipients.to_activities:
            raise InvalidAttribute("Send to an audience or to users and devices, not both.",
                                   field=audiences.MEMBER, code="AUDIENCE_WITH_RECIPIENTS")
        check_audience(principal, audience, environment)
        audience = audiences.stored(audience, environment)
    else:
        _check_recipients(notification, recipients)
    stored = message.stored(notification)
    sender_id = None if principal is None else principal.credential_id
    notification_id = _insert(sender_id, idempotency_key, notification, stored, audience,
                              schedule, now)
    if notification_id is None:
        return _earlier(sender_id, idempotency_key, stored, content, audience, schedule), False
    if audience is not None:
        queue_for(current_app.config).enqueue_expansion(db.session.connection(),
                                                        notification_id)
        return db.session.get(Notification, notification_id), True
    _require_existing(User, recipients.users, "users")
    _require_existing(Device, recipients.devices, "devices")
    _require_running(notification, recipients.live_activities)
    broadcast_to = channel and live_activity_channels.require_open(channel)
    _insert_deliveries(notification_id, notification, recipients.users, recipients.devices,
                       environment, schedule, now)
    due = schedule.start(now)  # a running activity's update goes at send_at, unthrottled
    _insert_activity_deliveries(notification_id, recipients.live_activities,
                                activity_audience, environment, now, due)
    if broadcast_to:
        _insert_broadcast(notification_id, broadcast_to, now, due)
    _enqueue(notification_id)
    return db.session.get(Notification, notification_id), True


@dataclass(frozen=True)
class Recipients:
    users: list
    devices: list
    live_activities: list
    audience: dict | None
    channel: uuid.UUID | None = None

    @property
    def to_activities(self):
        return bool(self.live_activities or self.audience or self.channel)

    @property
    def to_devices(self):
        return bool(self.users or self.devices)


def check_audience(principal, audience, environment=None):
    """The audience parsed, if ``principal`` may send to it (everyone takes a scope)."""
    parsed = audiences.parse(audience, environment=environment)
    if parsed.everyone and principal is not None and \
            BROADCAST_SCOPE not in principal.scopes:
        raise Forbidden(f"Sending to every device needs an API key with the scope "
                        f"'{BROADCAST_SCOPE}'.", field=(audiences.MEMBER, "all"),
                        code="INSUFFICIENT_SCOPE")
    return parsed


def _check_schedule_fits(schedule, recipients):
    """local_time and throttle spread deliveries to devices; an update to running
    activities goes to them all at once (send_at alone may delay it)."""
    if schedule.per_device and recipients.to_activities:
        field = "local_time" if schedule.local_time else "throttle"
        raise Unprocessable(f"{field} is for pushes to users and devices (or an audience), "
                            "not to running Live Activities or channels.", field=field,
                            code="SCHEDULE_NOT_FOR_ACTIVITIES")


def _require_running(notification, ids):
    try:
        live_activities.require_running(ids)
    except ServiceError as exc:
        # counted: an update to an activity that ended (not one naming no activity at all)
        if any(error.code == live_activities.ACTIVITY_ENDED for error in exc.errors):
            metrics.LIVE_ACTIVITY_REFUSED.labels(notification.event).inc()
        raise


def _expires_at(notification):
    if not notification.expiration:
        return None
    return datetime.fromtimestamp(notification.expiration, UTC)


def _check_recipients(notification, recipients):
    """update and end go to running activities (named, or an audience); every other push
    to users and devices."""
    to_activities = notification.push_type is PushType.LIVEACTIVITY and \
        notification.event in ACTIVITY_EVENTS
    if to_activities and recipients.to_devices:
        raise Unprocessable("Live Activity updates and ends go to running activities: name "
                            "live_activities or a live_activity_audience, not users or "
                            "devices.", field="users" if recipients.users else "devices",
                            where=Where.RELATIONSHIP, code="WRONG_RECIPIENTS")
    if not to_activities and recipients.to_activities:
        field = "live_activities" if recipients.live_activities else "channel" \
            if recipients.channel else "live_activity_audience"
        raise Unprocessable("Only Live Activity update and end pushes go to running "
                            "activities or channels; the others go to users and devices.",
                            field=field, where=Where.ATTRIBUTE
                            if field == "live_activity_audience" else Where.RELATIONSHIP,
                            code="WRONG_RECIPIENTS")
    if recipients.channel and (recipients.live_activities or recipients.audience):
        raise Unprocessable("A broadcast reaches every activity on its channel: name the "
                            "channel alone, without live_activities or an audience.",
                            field="channel", where=Where.RELATIONSHIP,
                            code="WRONG_RECIPIENTS")
    if not (recipients.to_activities if to_activities else recipients.to_devices):
        names = "live_activities or a live_activity_audience" if to_activities \
            else "users or devices"
        raise Unprocessable(f"Name at least one recipient: {names}.",
                            field="live_activities" if to_activities else "users",
                            where=Where.RELATIONSHIP, code="NO_RECIPIENTS")
    _check_recipient_count(recipients.users, recipients.devices, recipients.live_activities)


def _check_recipient_count(users, devices, live_activities):
    for name, ids in (("users", users), ("devices", devices),
                      ("live_activities", live_activities)):
        if len(ids) > MAX_RECIPIENTS:
            raise Unprocessable(f"At most {MAX_RECIPIENTS} {name} in one notification.",
                                field=name, where=Where.RELATIONSHIP,
                                code="TOO_MANY_RECIPIENTS")


def _insert(sender_id, idempotency_key, notification, stored, audience, schedule, now):
    """The new notification's id, or None when the sender's key was used before (then
    the earlier row stands: racing retries wait on its unique index and find it)."""
    statement = insert_for(db.session.get_bind(), Notification).values(
        id=uuid.uuid4(), sender_id=sender_id, idempotency_key=idempotency_key,
        push_type=notification.push_type.value, content=stored, audience=audience,
        expanding=audience is not None, targeted=0,
        expires_at=_expires_at(notification), created_at=now, updated_at=now,
        **schedule.columns(),
    ).on_conflict_do_nothing(index_elements=["sender_id", "idempotency_key"]
                             ).returning(Notification.id)
    return db.session.execute(statement).scalar_one_or_none()


def _earlier(sender_id, idempotency_key, stored, content, audience, schedule):
    earlier = db.session.scalars(select(Notification).where(
        Notification.sender_id == sender_id,
        Notification.idempotency_key == idempotency_key)).one()
    if "timestamp" not in content:  # stamped when accepted: the retry's own moment differs
        stored = {**stored, "timestamp": earlier.content.get("timestamp")}
    if earlier.content != stored or earlier.audience != audience or \
            Schedule.of(earlier) != schedule:
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


def _insert_deliveries(notification_id, notification, users, devices, environment,
                       schedule, now):
    """One pending delivery per reachable device, at its moment (``delivery_rows``): a
    statement or two per ``RECIPIENTS_PER_STATEMENT`` users or devices, so no statement
    grows without bound (1,000 users of 100 devices take ten ``INSERT … SELECT``, or a
    hundred ``INSERT … VALUES`` of a thousand rows, not 100,000). ``targeted`` counts
    them, in the same transaction."""
    can_take = reachable(notification.push_type, environment)
    # a device named twice (as itself and through its user) gets one delivery
    not_through_users = [or_(Device.user_id.is_(None), Device.user_id.not_in(set(users)))] \
        if users else []
    written = NOTHING
    for chosen, ids in ((Device.user_id.in_, users), (Device.id.in_, devices)):
        extra = not_through_users if ids is devices else []
        for chunk in _chunks(sorted(set(ids))):
            written += write(db.session.connection(), notification_id, schedule,
                             [chosen(chunk), *can_take, *extra], position=len(written.ids),
                             now=now, default_zone=current_app.config["DEFAULT_TIME_ZONE"])
    db.session.execute(update(Notification).where(Notification.id == notification_id)
                       .values(targeted=len(written.ids), first_due_at=written.first_due_at))


def _pending(notification_id, now, due):
    """The columns every new delivery shares, as the values an ``INSERT … SELECT`` writes."""
    values = delivery_values(notification_id, now, db.session.get_bind().dialect.name,
                             literal(due, UTCDateTime()))
    return {column: value for column, value in values.items()
            if column not in ("device_id", "channel")}


def _insert_activity_deliveries(notification_id, ids, audience, environment, now, due):
    """One pending delivery per running activity named or matched by the audience (those
    with a token of their own: a channel's listeners are reached by a broadcast)."""
    if not ids and not audience:
        return
    values = {**_pending(notification_id, now, due), "device_id": LiveActivity.device_id,
              "channel": Device.channel, "live_activity_id": LiveActivity.id}
    reachable = select(*values.values()).join(Device, Device.id == LiveActivity.device_id) \
        .where(*live_activities.running(now, live_activities.max_age()),
               live_activities.with_token(), Device.channel == Channel.IOS_PUSH,
               *([Device.environment == environment] if environment else []))
    for chunk in _chunks(sorted(set(ids))):
        _insert_from(notification_id, values, reachable.where(LiveActivity.id.in_(chunk)))
    if audience:
        named = [LiveActivity.id.not_in(set(ids))] if ids else []
        _insert_from(notification_id, values,
                     reachable.where(live_activities.audience(**audience), *named))


def _insert_broadcast(notification_id, channel, now, due):
    """One delivery for the whole channel, whatever its audience: APNs fans it out."""
    db.session.execute(Delivery.__table__.insert().values(
        notification_id=notification_id, apns_id=uuid.uuid4(), channel=Channel.IOS_PUSH,
        live_activity_channel_id=channel.id, state=DeliveryState.PENDING.value, attempts=0,
        next_attempt_at=due, scheduled_at=due, created_at=now, updated_at=now))
    _count_targeted(notification_id, 1, literal(due, UTCDateTime()))


def _insert_from(notification_id, values, rows):
    """Write the deliveries ``rows`` selects; ``targeted`` counts them."""
    written = len(db.session.execute(Delivery.__table__.insert().from_select(
        list(values), rows).returning(Delivery.id)).all())
    _count_targeted(notification_id, written, values["next_attempt_at"])


def _count_targeted(notification_id, written, due):
    """``written`` more deliveries, all due at ``due``."""
    db.session.execute(update(Notification).where(Notification.id == notification_id)
                       .values(targeted=Notification.targeted + written,
                               first_due_at=func.coalesce(Notification.first_due_at, due)))


def _enqueue(notification_id):
    """The embedded queue is the ledger; procrastinate's jobs are written beside it."""
    queue_for(current_app.config).enqueue_notification(db.session.connection(),
                                                       notification_id)


def _chunks(ids):
    for start in range(0, len(ids), RECIPIENTS_PER_STATEMENT):
        yield ids[start:start + RECIPIENTS_PER_STATEMENT]


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
    database keeps (``DeliveryCount``): its cost does not grow with the deliveries. A
    canceled notification's rows still pending (``cancellation.py``) count as canceled."""
    rows = db.session.execute(
        select(DeliveryCount.channel, DeliveryCount.state, func.sum(DeliveryCount.count),
               func.sum(case((or_(DeliveryCount.attempted,
                                  DeliveryCount.state != DeliveryState.PENDING),
                              DeliveryCount.count), else_=0)))
        .where(DeliveryCount.notification_id == notification.id)
        .group_by(DeliveryCount.channel, DeliveryCount.state)).all()
    rows = [row for row in rows if row[2]]  # keys counted to zero
    canceled = notification.canceled_at is not None
    by_channel = {channel: _counted([row for row in rows if row[0] == channel], canceled)
                  for channel in {row[0] for row in rows}}
    return dataclasses.replace(_counted(rows, canceled), by_channel=by_channel,
                               targeted=notification.targeted,
                               expanding=notification.expanding,
                               first_due_at=notification.first_due_at, was_canceled=canceled)


def _counted(rows, canceled=False):
    by_state: dict[str, int] = {}
    begun = 0
    for _, state, count, state_started in rows:  # sums: PostgreSQL's are numeric
        state = DeliveryState.CANCELED if canceled and state == DeliveryState.PENDING else state
        by_state[state] = by_state.get(state, 0) + int(count)
        begun += int(state_started or 0)
    return Counts(
        pending=sum(by_state.get(state, 0) for state in PENDING_STATES),
        sent=by_state.get(DeliveryState.SENT, 0),
        failed=by_state.get(DeliveryState.FAILED, 0),
        invalidated=by_state.get(DeliveryState.INVALIDATED, 0),
        expired=by_state.get(DeliveryState.EXPIRED, 0),
        canceled=by_state.get(DeliveryState.CANCELED, 0),
        started=begun)


def status_of(counts):
    """expanding (an audience's deliveries are still being written), scheduled (none due
    yet), queued (nothing tried yet), sending, or, once none is left pending, canceled (its
    sender canceled it: that stops an expansion; those in flight then are sending until
    they finish) or done."""
    if counts.expanding:
        return NotificationStatus.EXPANDING
    if counts.pending == 0:
        return NotificationStatus.CANCELED if counts.was_canceled else NotificationStatus.DONE
    if counts.started:
        return NotificationStatus.SENDING
    if counts.first_due_at is not None and counts.first_due_at > utcnow():
        return NotificationStatus.SCHEDULED
    return NotificationStatus.QUEUED


def list_deliveries(principal, notification, listing):
    """A page of the deliveries of one of the caller's notifications."""
    if not policies.is_sender(principal, notification.sender_id):
        raise NotFound(f"There is no notification {notification.id}.", where=Where.URL)
    return list_page(db.session, select(Delivery).where(
        Delivery.notification_id == notification.id), listing,
        filters=DELIVERY_FILTERS if notification.canceled_at is None
        else CANCELED_DELIVERY_FILTERS,
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
    notifications = rows_changed(db.session.execute(
        delete(Notification).where(Notification.id.in_(finished)),
        execution_options={"synchronize_session": False}))
    return notifications, deliveries
