"""iOS 18 broadcast channels: made and deleted at APNs's channel management API by a
backend service whose API key holds ``live_activities:manage``, kept as
``live_activity_channels`` (the ``channel_id`` APNs gave is what the app subscribes its
activities to). A notification naming a channel is one broadcast request to APNs.

A channel belongs to the API key that made it: another key neither sees nor deletes it.
"""

import uuid

from flask import current_app
from sqlalchemy import bindparam, delete, select, update

from app.database.engine import EarlyCommit, commit_early
from app.database.results import rows_changed
from app.errors import BadGateway, NotFound, ServiceUnavailable, Unprocessable, Where
from app.extensions import db
from app.formats.ids import uuid_id
from app.models import LiveActivityChannel
from app.push.channels import ChannelManager
from app.push.settings import PushSettings
from app.resources.listing import Filter, list_page

MANAGE_SCOPE = "live_activities:manage"
STORAGE_POLICIES = {"no_message_stored": 0, "most_recent_message_stored": 1}
CHANNEL_ENDED = "CHANNEL_ENDED"
# APNs says the channel is not there: it is gone already, which is what a delete wants.
GONE_REASONS = frozenset({"ChannelNotRegistered"})

FILTERS = {"environment": Filter("environment", LiveActivityChannel.environment)}
ORDERS = {"created_at": LiveActivityChannel.created_at}
DEFAULT_ORDER = (("created_at", False),)
_NO_SUCH_CHANNEL = "There is no such live activity channel of yours."


def create(principal, attributes):
    """Make a channel at APNs, then keep it. Nothing is kept when APNs refuses."""
    environment = attributes.get("environment") or "production"
    policy = STORAGE_POLICIES[attributes.get("message_storage_policy") or "no_message_stored"]
    answer = _manager().create(environment, policy)
    if not answer.ok or not answer.channel_id:
        raise _refused("create the channel", answer)
    channel = LiveActivityChannel(id=uuid.uuid4(), owner_id=principal.credential_id,
                                  channel_id=answer.channel_id, environment=environment,
                                  message_storage_policy=policy)
    db.session.add(channel)
    db.session.flush()
    return channel


def get_owned(principal, raw_id):
    channel = db.session.scalar(select(LiveActivityChannel).where(
        LiveActivityChannel.id == _channel_key(raw_id),
        LiveActivityChannel.owner_id == principal.credential_id))
    if channel is None:
        raise NotFound(_NO_SUCH_CHANNEL)
    return channel


def list_owned(principal, listing):
    return list_page(db.session, select(LiveActivityChannel).where(
        LiveActivityChannel.owner_id == principal.credential_id), listing, filters=FILTERS,
        orders=ORDERS, default_order=DEFAULT_ORDER, unique=LiveActivityChannel.id)


def delete_owned(principal, raw_id):
    """Delete the channel at APNs (one APNs no longer knows counts as deleted), then here:
    broadcasts to it are refused from then on."""
    channel = get_owned(principal, raw_id)
    if channel.ended_at is None:
        answer = _manager().delete(channel.environment, channel.channel_id)
        if not answer.ok and answer.reason not in GONE_REASONS:
            raise _refused("delete the channel", answer)
    db.session.execute(delete(LiveActivityChannel).where(LiveActivityChannel.id == channel.id))


def _channel_key(raw):
    key = uuid_id(raw)
    if key is None:
        raise NotFound(_NO_SUCH_CHANNEL)
    return key


def _manager():
    """The channel management client; the request's transaction is committed first
    (``EarlyCommit.BEFORE_CHANNEL_MANAGEMENT``)."""
    settings = PushSettings.from_config(current_app.config).apns
    if settings is None:
        # not a 503: no retry succeeds until an operator configures APNs
        raise Unprocessable("This service has no APNs configured (APNS_KEY, APNS_KEY_ID, "
                            "APNS_TEAM_ID, APNS_BUNDLE_ID): channels cannot be made.",
                            code="APNS_NOT_CONFIGURED")
    commit_early(EarlyCommit.BEFORE_CHANNEL_MANAGEMENT)
    return ChannelManager(settings, db.engine)


def _refused(what, answer):
    """APNs did not do it: unreachable or busy (503, try again), or it refused (502, with
    its reason: our key, topic or the channel limit, nothing the caller's body holds)."""
    if answer.status is None or answer.status == 429 or answer.status >= 500:
        return ServiceUnavailable(f"APNs could not {what} now ({answer.reason or answer.status}"
                                  "); try again.")
    return BadGateway(f"APNs refused to {what}: {answer.status} {answer.reason}.",
                      code="APNS_REFUSED")


# -- broadcasts ------------------------------------------------------------------------


def require_open(raw_id):
    """The channel a notification names: 404 when there is none, 422 ``CHANNEL_ENDED`` when
    APNs said it is gone."""
    channel = db.session.get(LiveActivityChannel, raw_id)
    if channel is None:
        raise NotFound(f"There is no live activity channel {raw_id}.", field="channel",
                       where=Where.RELATIONSHIP)
    if channel.ended_at is not None:
        raise Unprocessable(f"The live activity channel {raw_id} is gone at APNs "
                            f"({channel.ended_reason}): it takes no broadcasts.",
                            field="channel", where=Where.RELATIONSHIP, code=CHANNEL_ENDED)
    return channel


_channels = LiveActivityChannel.__table__
_END = update(_channels).where(
    _channels.c.id == bindparam("channel"), _channels.c.ended_at.is_(None),
).values(ended_at=bindparam("now"), ended_reason=bindparam("reason"),
         updated_at=bindparam("now"))


def end(connection, endings, now):
    """The dispatcher's: channels APNs answered are gone (``(channel id, reason)``s)."""
    if endings:
        connection.execute(_END, [{"channel": channel, "reason": reason, "now": now}
                                  for channel, reason in endings])


def load(connection, ids):
    """The dispatcher's: the channel rows a chunk broadcasts to, by id."""
    if not ids:
        return {}
    return {row.id: row for row in connection.execute(
        select(_channels.c.id, _channels.c.channel_id, _channels.c.environment,
               _channels.c.message_storage_policy, _channels.c.ended_at,
               _channels.c.created_at).where(_channels.c.id.in_(ids)))}


def prune_ended(cutoff):
    """``flask prune``: channels found gone at APNs before ``cutoff``."""
    return rows_changed(db.session.execute(delete(LiveActivityChannel).where(
        LiveActivityChannel.ended_at < cutoff)))

