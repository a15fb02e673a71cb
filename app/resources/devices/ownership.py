"""Who may see and change which devices, and the reads, updates and deletes that carry that
test in their own statement; the caps on how many devices an owner keeps."""


from sqlalchemy import case, delete, false, literal, or_, select, update

from app.database.results import rows_changed
from app.errors import InvalidAttribute, NotFound, Where
from app.extensions import db
from app.formats.ids import uuid_id
from app.models import Channel, Device, Environment
from app.models.types import utcnow
from app.resources.devices import statements
from app.resources.devices.tokens import APNS_ONLY, UPDATABLE, normalise_token, sealed
from app.resources.listing import Filter, boolean, eager_loading, list_page
from app.security import policies


def environment(text):
    if text not in tuple(Environment):
        raise ValueError("sandbox or production")
    return text


FILTERS = {declared.name: declared for declared in (
    Filter("bundle_id", Device.bundle_id),
    Filter("channel", Device.channel),
    Filter("environment", Device.environment, environment),
    Filter("is_voip", Device.is_voip, boolean),
    Filter("is_invalidated", Device.is_invalidated, boolean),
)}
ORDERS = {"created_at": Device.created_at, "updated_at": Device.updated_at,
          "last_seen_at": Device.last_seen_at}
DEFAULT_ORDER = (("created_at", False),)
LATEST_SEEN_FIRST = (("last_seen_at", True),)


# -- ownership ------------------------------------------------------------------------


def attach_session_devices(session_id, user_id):
    """A session logged in: its devices now belong to its user."""
    db.session.execute(update(Device).where(Device.session_id == session_id)
                       .values(user_id=user_id))
    keep_within_caps(user_id=user_id)


def keep_within_caps(*, user_id=None, session_id=None):
    """Delete, in one statement, a session's devices beyond its newest
    ``DEVICES_PER_SESSION_MAX`` and a user's beyond their newest ``DEVICES_PER_USER_MAX``:
    no caller can make the devices they own (and every page and count of them) grow
    without end."""
    if user_id is None and session_id is None:
        return
    db.session.execute(statements.caps_delete(session_id is not None, user_id is not None),
                       statements.cap_arguments(user_id, session_id))


def detach(*conditions):
    """The matching devices stop belonging to any session or user; they stay registered."""
    db.session.execute(update(Device).where(*conditions)
                       .values(user_id=None, session_id=None, updated_at=utcnow()))


def find(channel, raw_token):
    """The device registered with this token, whoever owns it; None for a malformed token
    or one never registered."""
    try:
        token = normalise_token(channel, raw_token)
    except InvalidAttribute:
        return None
    return db.session.scalar(select(Device).where(Device.channel == channel,
                                                  Device.token == token))


def detach_ids_from_user(principal, user, raw_ids):
    """Stop pushing to some of your devices, named by their ids (a malformed one names its
    item): they stay registered but belong to nobody."""
    policies.require_self(principal, user.id, _ONLY_SELF)
    wanted = [_device_id(raw, field=str(index), where=Where.ITEM)
              for index, raw in enumerate(raw_ids)]
    detach(Device.user_id == user.id, Device.id.in_(wanted))


def detach_from_user(principal, user, channel, raw_tokens):
    """Stop pushing to some of your devices: they stay registered but belong to nobody."""
    policies.require_self(principal, user.id, _ONLY_SELF)
    wanted = [normalise_token(channel, raw, field=str(index), where=Where.ITEM)
              for index, raw in enumerate(raw_tokens)]
    detach(Device.channel == channel, Device.user_id == user.id, Device.token.in_(wanted))


_ONLY_SELF = "Only the user themself may see or change their devices."


def owned_by(principal):
    """The devices the caller may see: their session's, and their user's."""
    return or_(false(), *_owners(principal))


def _owners(principal):
    """``owned_by`` as its alternatives, which a page walks one by one."""
    clauses = [Device.session_id == principal.session_id] if principal.session_id else []
    if principal.user_id is not None:
        clauses.append(Device.user_id == principal.user_id)
    return clauses


# -- reading and deleting -------------------------------------------------------------


def get_owned(principal, channel, raw_token, *, where=Where.URL, load=()):
    token = normalise_token(channel, raw_token, field="id", where=where)
    statement = select(Device).where(Device.channel == channel, Device.token == token,
                                     owned_by(principal))
    device = db.session.scalar(statement.options(*eager_loading(Device, load)))
    if device is None:
        raise NotFound(_NO_SUCH_TOKEN)
    return device


_NO_SUCH_TOKEN = "You have no such device token."
_NO_SUCH_DEVICE = "You have no such device."


def _device_id(raw, *, field="id", where=Where.URL):
    """A device id as a UUID. In a URL a malformed one names no device of the caller's:
    404, like another user's; in a list of ids it names its item."""
    key = uuid_id(raw)
    if key is not None:
        return key
    if where == Where.URL:
        raise NotFound(_NO_SUCH_DEVICE)
    raise InvalidAttribute("Not a device id.", field=field, where=where)


def get_owned_by_id(principal, raw_id, *, load=()):
    statement = select(Device).where(Device.id == _device_id(raw_id), owned_by(principal))
    device = db.session.scalar(statement.options(*eager_loading(Device, load)))
    if device is None:
        raise NotFound(_NO_SUCH_DEVICE)
    return device


def find_owned_by_id(principal, raw_id):
    """The caller's device with this id, or None."""
    try:
        return get_owned_by_id(principal, raw_id)
    except NotFound:
        return None


def update_owned(principal, raw_id, attributes):
    """Change a device's metadata: one statement carrying its ownership test, so a device
    moved or deleted meanwhile is a 404, never another user's row changed."""
    values = {name: _unless_fcm(name, value)
              for name, value in sealed(attributes).items() if name in UPDATABLE}
    statement = (update(Device)
                 .where(Device.id == _device_id(raw_id), owned_by(principal))
                 .values(**values, updated_at=utcnow()).returning(Device)
                 .execution_options(populate_existing=True))
    device = db.session.scalar(statement)
    if device is None:
        raise NotFound(_NO_SUCH_DEVICE)
    return device


def _unless_fcm(name, value):
    """An APNs-only attribute is left as it is on an FCM device (``tokens.for_channel``)."""
    if name not in APNS_ONLY:
        return value
    column = getattr(Device, name)
    return case((Device.channel == Channel.FCM, column), else_=literal(value, column.type))


def delete_owned_by_id(principal, raw_id):
    """Forget a device: one statement carrying its ownership test."""
    deleted = rows_changed(db.session.execute(delete(Device).where(
        Device.id == _device_id(raw_id), owned_by(principal))))
    if deleted != 1:
        raise NotFound(_NO_SUCH_DEVICE)


def list_devices(principal, listing, *, with_endpoint=False):
    """Every device the caller may see, on every channel: the latest seen first
    (``with_endpoint``: only those with a push endpoint)."""
    endpoint = (Device.channel.is_not(None),) if with_endpoint else ()
    return _page(*endpoint, listing=listing, filters=FILTERS,
                 default_order=LATEST_SEEN_FIRST, any_of=_owners(principal))


def list_owned(principal, channel, listing, filters=FILTERS):
    """The caller's devices on one channel; ``filters`` as a view names them."""
    return _page(Device.channel == channel, listing=listing, filters=filters,
                 any_of=_owners(principal))


def list_of_user(principal, user, channel, listing, filters=FILTERS,
                 default_order=DEFAULT_ORDER):
    """A user's devices on one channel (every channel when ``channel`` is None), for the
    user themself only."""
    policies.require_self(principal, user.id, _ONLY_SELF)
    on_channel = () if channel is None else (Device.channel == channel,)
    return _page(*on_channel, Device.user_id == user.id, listing=listing, filters=filters,
                 default_order=default_order)


def _page(*conditions, listing, filters, default_order=DEFAULT_ORDER, any_of=None):
    return list_page(db.session, select(Device).where(*conditions), listing,
                     filters=filters, orders=ORDERS, default_order=default_order,
                     unique=Device.id, any_of=any_of)


def delete_owned(principal, channel, raw_token):
    """One statement that carries its own ownership test: a registration racing the
    delete moves the token first (and nothing is deleted) or comes after it."""
    token = normalise_token(channel, raw_token, field="id", where=Where.URL)
    deleted = rows_changed(db.session.execute(delete(Device).where(
        Device.channel == channel, Device.token == token, owned_by(principal))))
    if deleted != 1:
        raise NotFound(_NO_SUCH_TOKEN)


# -- housekeeping ---------------------------------------------------------------------


def purge_stale(cutoff):
    """Delete devices invalidated before ``cutoff``, or not seen since it: how many went.
    Their deliveries stay in the ledger, without a device."""
    stale = or_(Device.last_seen_at < cutoff,
                Device.is_invalidated.is_(True) & (Device.invalidated_at < cutoff))
    return rows_changed(db.session.execute(
        delete(Device).where(stale), execution_options={"synchronize_session": False}))
