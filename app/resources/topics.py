"""Topics: names devices subscribe to, so a notification can go to "everyone following X"
(``audience.topics`` and ``audience.condition``, ``audiences.py``).

A device's owner manages its topics (its ``topics`` relationship); a backend service with
``topics:manage`` subscribes anyone's devices by id. A topic exists while a device is
subscribed to it: nothing is created or deleted but subscriptions. Unsubscribing is
idempotent; a deleted device's subscriptions go with it (the foreign key), an invalidated
device stays subscribed but no audience reaches it and no count includes it.
"""

import re

from sqlalchemy import delete, func, select

from app.database.upsert import insert_for
from app.errors import ErrorList, InvalidAttribute, NotFound, Unprocessable, Where
from app.extensions import db
from app.formats.ids import uuid_id
from app.models import Device, DeviceTopic
from app.models.types import utcnow
from app.resources.listing import paginate

MAX_TOPIC_LENGTH = 256
TOPIC_NAME = re.compile(rf"[A-Za-z0-9_.~%-]{{1,{MAX_TOPIC_LENGTH}}}")  # as FCM allows
MAX_TOPICS_PER_DEVICE = 2000
MAX_DEVICES_PER_REQUEST = 1000
_NAME_RULE = f"1 to {MAX_TOPIC_LENGTH} letters, digits and _ . ~ % -"


def is_topic_name(text):
    return isinstance(text, str) and TOPIC_NAME.fullmatch(text) is not None


def topic_name(text, *, field=None, where=Where.URL):
    """``text`` if it is a topic name; in a URL another name is no topic (404)."""
    if is_topic_name(text):
        return text
    if where == Where.URL:
        raise NotFound(f"There is no topic '{text}': a topic name is {_NAME_RULE}.")
    raise InvalidAttribute(f"A topic name is {_NAME_RULE}.", field=field, where=where,
                           code="INVALID_TOPIC")


def _names(raw_names):
    """Topic names from a list of identifiers' ids, each checked (pointing at its item)."""
    _check_length(raw_names, MAX_TOPICS_PER_DEVICE, "topics")
    errors, names = [], []
    for index, raw in enumerate(raw_names):
        try:
            names.append(topic_name(raw, field=str(index), where=Where.ITEM))
        except InvalidAttribute as error:
            errors.append(error)
    if errors:
        raise ErrorList(errors)
    return list(dict.fromkeys(names))


# -- a device's topics, by its owner --------------------------------------------------


def of_device(principal, device, listing):
    """A page of a device's topics (its ``topics`` relationship), by name."""
    statement = select(DeviceTopic).where(DeviceTopic.device_id == device.id)
    return paginate(db.session, statement, [(DeviceTopic.topic, False)], listing.page)


def add_to_device(principal, device, raw_names):
    """Subscribe one of the caller's devices (loaded with its ownership test)."""
    _subscribe([device.id], _names(raw_names))


def replace_on_device(principal, device, raw_names):
    """The device's topics become exactly these."""
    names = _names(raw_names)
    db.session.execute(delete(DeviceTopic).where(DeviceTopic.device_id == device.id,
                                                 DeviceTopic.topic.not_in(names)))
    _subscribe([device.id], names)


def remove_from_device(principal, device, raw_names):
    """Unsubscribe; names the device was not subscribed to are no error."""
    _unsubscribe([device.id], _names(raw_names))


# -- a topic's devices, by a backend service -----------------------------------------------


def subscribe_devices(name, raw_ids):
    """Subscribe devices (anyone's, by id) to a topic; an unknown id is a 404 naming its
    item."""
    _subscribe(_existing_devices(raw_ids), [topic_name(name)])


def unsubscribe_devices(name, raw_ids):
    """Unsubscribe devices by id: idempotent, so a device deleted meanwhile is no error."""
    _unsubscribe(_device_ids(raw_ids), [topic_name(name)])


def subscriber_count(name):
    """How many devices a push to the topic could reach now (invalidated ones are not)."""
    return db.session.scalar(
        select(func.count()).select_from(DeviceTopic).join(Device)
        .where(DeviceTopic.topic == topic_name(name), Device.is_invalidated.is_(False)))


def _check_length(items, limit, name):
    if len(items) > limit:
        raise Unprocessable(f"At most {limit} {name} in one request.", where=Where.BODY,
                            code="TOO_MANY_IDENTIFIERS")


def _device_ids(raw_ids):
    _check_length(raw_ids, MAX_DEVICES_PER_REQUEST, "devices")
    ids, errors = [], []
    for index, raw in enumerate(raw_ids):
        key = uuid_id(raw)
        if key is None:
            errors.append(InvalidAttribute("Not a device id (a UUID).", field=str(index),
                                           where=Where.ITEM, code="INVALID_ID"))
        ids.append(key)
    if errors:
        raise ErrorList(errors)
    return ids


def _existing_devices(raw_ids):
    ids = _device_ids(raw_ids)
    found = set(db.session.scalars(select(Device.id).where(Device.id.in_(set(ids)))))
    missing = [NotFound(f"There is no device {key}.", field=str(index), where=Where.ITEM)
               for index, key in enumerate(ids) if key not in found]
    if missing:
        raise ErrorList(missing)
    return list(dict.fromkeys(ids))


# -- writing ------------------------------------------------------------------------------


def _subscribe(device_ids, names):
    """Add the subscriptions that are missing; a device past ``MAX_TOPICS_PER_DEVICE``
    after it is a 422 and nothing is added (the caller's transaction is rolled back)."""
    if not device_ids or not names:
        return
    # concurrent subscriptions of one device queue here, so the limit holds (PostgreSQL;
    # SQLite's write lock serialises them anyway)
    db.session.execute(select(Device.id).where(Device.id.in_(device_ids)).with_for_update())
    rows = [{"device_id": device_id, "topic": name, "created_at": utcnow()}
            for device_id in device_ids for name in names]
    db.session.execute(insert_for(db.session.get_bind(), DeviceTopic).values(rows)
                       .on_conflict_do_nothing(index_elements=["device_id", "topic"]))
    _check_limit(device_ids)


def _check_limit(device_ids):
    over = db.session.execute(
        select(DeviceTopic.device_id, func.count()).where(DeviceTopic.device_id.in_(device_ids))
        .group_by(DeviceTopic.device_id)
        .having(func.count() > MAX_TOPICS_PER_DEVICE)).first()
    if over is not None:
        raise Unprocessable(
            f"A device subscribes to at most {MAX_TOPICS_PER_DEVICE} topics; device "
            f"{over[0]} would have {over[1]}.", where=Where.BODY, code="TOO_MANY_TOPICS")


def _unsubscribe(device_ids, names):
    if device_ids and names:
        db.session.execute(delete(DeviceTopic).where(DeviceTopic.device_id.in_(device_ids),
                                                     DeviceTopic.topic.in_(names)))
