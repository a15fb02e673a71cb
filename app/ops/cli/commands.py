"""``flask`` commands for operators."""

import json
import math
import re
import time
from datetime import datetime, timedelta

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import delete, select

from app.api.schemas.fields import format_timestamp
from app.database.results import rows_changed
from app.errors import ServiceError
from app.extensions import db
from app.models import (
    DevPushMessage,
    RateLimitCounter,
    SendSlot,
    SmsMessage,
    VerificationCode,
    WorkerHeartbeat,
)
from app.models.types import utcnow
from app.ops.cli.push import outbox as push_outbox
from app.ops.cli.push import worker as push_worker
from app.push import heartbeat
from app.resources import (
    api_keys,
    cancellation,
    credentials,
    devices,
    live_activities,
    live_activity_channels,
    notifications,
    sessions,
)

sms = AppGroup("sms", help="Verification texts.")
keys = AppGroup("keys", help="API keys for backend services.")
push = AppGroup("push", help="Push notifications: send, follow, clean up, and the worker "
                               "that sends them.")
push.add_command(push_worker)
push.add_command(push_outbox)
DURATION = re.compile(r"(\d+)([smhd])\Z")
DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@sms.command("outbox")
@click.option("--phone", help="Only texts to this E.164 number.")
@click.option("--last", type=click.IntRange(min=1), help="Only the newest N texts.")
def outbox(phone, last):
    """Print texts in the outbox, oldest first, one JSON object a line."""
    statement = select(SmsMessage).order_by(SmsMessage.id.desc())
    if phone:
        statement = statement.where(SmsMessage.to == phone)
    if last:
        statement = statement.limit(last)
    for message in reversed(list(db.session.scalars(statement))):
        click.echo(json.dumps({
            "to": message.to,
            "body": message.body,
            "created_at": format_timestamp(message.created_at),
        }))


@click.command("prune")
@with_appcontext
@click.option("--days", type=click.IntRange(min=0), default=7, show_default=True,
              help="Keep what ended (or was written) less than this many days ago.")
def prune(days):
    """Delete what the service no longer needs: sessions, auth tokens and API keys whose
    lifetime is over (the SESSION_*, AUTH_TOKEN_*, API_KEY_* settings), dead verification
    codes, old outbox texts and pushes of the development stand-in, expired rate-limit
    windows, Live Activities past LIVE_ACTIVITY_MAX_AGE or ended, broadcast channels
    found gone at APNs, and send permits (Telegram's, one per chat) unused for the days
    given. Prints how many rows went, as JSON."""
    now = utcnow()
    cutoff = now - timedelta(days=days)
    removed = {
        "sessions": sessions.prune_ended(now),
        "credentials": credentials.prune_ended(now),
        "verification_codes": _delete(VerificationCode, VerificationCode.expires_at < cutoff),
        "sms_outbox": _delete(SmsMessage, SmsMessage.created_at < cutoff),
        "rate_limit_counters": _delete(RateLimitCounter,
                                       RateLimitCounter.expires_at <= int(time.time())),
        # left by workers that died without removing theirs
        "worker_heartbeats": _delete(WorkerHeartbeat, WorkerHeartbeat.beat_at < cutoff),
        "live_activities": live_activities.prune(now, live_activities.max_age(), cutoff),
        "live_activity_channels": live_activity_channels.prune_ended(cutoff),
        "dev_push_outbox": _delete(DevPushMessage, DevPushMessage.created_at < cutoff),
        # a permit free since then: a missing row is a free permit (app/push/slots.py)
        "send_slots": _delete(SendSlot, SendSlot.next_at < cutoff),
    }
    db.session.commit()
    click.echo(json.dumps(removed))


def _delete(model, condition):
    return rows_changed(db.session.execute(delete(model).where(condition)))


@keys.command("create")
@click.option("--name", required=True, help="What the key is for (unique).")
@click.option("--scope", "scopes", multiple=True, required=True,
              type=click.Choice(sorted(api_keys.SCOPES)), help="A scope it grants (repeat).")
@click.option("--callback-url", help="Where its delivery receipts are POSTed (signed).")
def create_key(name, scopes, callback_url):
    """Make an API key and print it, once: only its digest is kept. With a callback URL,
    its receipts' signing secret too (also once)."""
    key, secret = _or_fail(api_keys.create, name, scopes)
    shown = {"id": key.id, "name": key.name, "scopes": key.scopes.split(), "key": secret}
    if callback_url:
        shown |= _callback_shown(callback_url,
                                 _or_fail(api_keys.set_callback, key.name, callback_url))
    db.session.commit()
    click.echo(json.dumps(shown))


@keys.command("set-callback")
@click.argument("name_or_id")
@click.argument("url", required=False)
@click.option("--clear", is_flag=True, help="Send this key no more receipts.")
@click.option("--keep-secret", is_flag=True,
              help="Keep the key's signing secret (default: a new one, printed once).")
def set_callback(name_or_id, url, clear, keep_secret):
    """Send an API key's delivery receipts to URL (turns them on again after a 410)."""
    if clear == bool(url):
        raise click.UsageError("give a URL, or --clear")
    if clear:
        _or_fail(api_keys.clear_callback, name_or_id)
        shown = {"name": name_or_id, "callback_url": None}
    else:
        shown = {"name": name_or_id} | _callback_shown(
            url, _or_fail(api_keys.set_callback, name_or_id, url, keep_secret))
    db.session.commit()
    click.echo(json.dumps(shown))


def _callback_shown(url, secret):
    return {"callback_url": url} | ({"callback_secret": secret} if secret else {})


@keys.command("list")
def list_keys():
    """Every API key, one JSON object a line (never the key itself)."""
    for key in api_keys.list_all():
        click.echo(json.dumps({
            "id": key.id, "name": key.name, "scopes": sorted(key.scope_set),
            "callback_url": key.callback_url,
            "receipts": "off" if key.callback_url is None or key.callback_off_since else "on",
            "created_at": format_timestamp(key.created_at),
            "last_used_at": format_timestamp(key.last_used_at)}))


@keys.command("revoke")
@click.argument("name_or_id")
def revoke_key(name_or_id):
    """Delete an API key (by name or id): it stops working at once."""
    _or_fail(api_keys.revoke, name_or_id)
    db.session.commit()
    click.echo(json.dumps({"revoked": name_or_id}))


def _or_fail(function, *args):
    try:
        return function(*args)
    except ServiceError as exc:
        details = "; ".join(_located(error) for error in exc.errors)
        raise click.ClickException(details) from exc


def _located(error):
    """An error's detail, after the member it names when that is nested (an audience's)."""
    if isinstance(error.field, tuple):
        return f"{'/'.join(map(str, error.field))}: {error.detail}"
    return error.detail


class Duration(click.ParamType):
    """``30d``, ``12h``, ``90m`` or ``3600s`` as a timedelta."""

    name = "duration"

    def convert(self, value, param, ctx):
        if isinstance(value, timedelta):
            return value
        match = DURATION.match(value)
        if match is None:
            self.fail("give a number and a unit: 30d, 12h, 90m or 3600s", param, ctx)
        return timedelta(**{DURATION_UNITS[match[2]]: int(match[1])})


class Moment(click.ParamType):
    """A moment as UNIX seconds, given as such or as ISO 8601 with a zone."""

    name = "moment"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        if value.isdigit():
            return int(value)
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            self.fail("give ISO 8601 with a zone (2026-12-24T18:00:00+01:00) or UNIX "
                      "seconds", param, ctx)
        return math.floor(moment.timestamp())


class JsonObject(click.ParamType):
    """A JSON object given on the command line."""

    name = "json"

    def convert(self, value, param, ctx):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            self.fail("not a JSON object", param, ctx)
        return parsed


@push.command("send")
@click.option("--user", "users", multiple=True, type=click.UUID,
              help="A user id: all their reachable devices (repeat).")
@click.option("--device", "device_ids", multiple=True, type=click.UUID,
              help="A device id (repeat).")
@click.option("--alert", help="The alert text (needed unless --live-activity-event).")
@click.option("--all", "everyone", is_flag=True,
              help="Every device that can take the push (an audience: the workers expand it).")
@click.option("--topic", "topics", multiple=True,
              help="Devices subscribed to this topic (repeat: to any of them).")
@click.option("--condition", help="FCM's condition, like \"'a' in topics && !('b' in "
              "topics)\".")
@click.option("--where", "where", multiple=True, metavar="MEMBER=VALUE",
              help="Narrow an audience: channel, bundle_id, time_zone take comma-separated "
              "values; app_version a JSON object like {\"gte\": \"2.3\"}; environment, "
              "last_seen_after, last_seen_before one value (repeat for each member).")
@click.option("--sandbox-only", is_flag=True,
              help="Only devices registered in the sandbox environment (development builds).")
@click.option("--live-activity-event", type=click.Choice(("start", "update", "end")),
              help="A Live Activity push: start goes to the push-to-start tokens of --user "
                   "and --device; update and end to --live-activity, an audience "
                   "(--attributes-type, optionally --activity-id) or a --channel.")
@click.option("--live-activity", "activity_ids", multiple=True, type=click.UUID,
              help="A running live activity's id (repeat).")
@click.option("--attributes-type", help="The ActivityAttributes type: a start's, or the "
                                        "audience of an update or end.")
@click.option("--activity-id", help="With --attributes-type: only activities of this id.")
@click.option("--channel", "channel_id", type=click.UUID,
              help="A broadcast channel's id (live_activity_channels): one broadcast.")
@click.option("--content-state", type=JsonObject(), help="aps.content-state, a JSON object.")
@click.option("--attributes", type=JsonObject(), help="A start's aps.attributes (JSON).")
@click.option("--priority", type=click.Choice(("5", "10")), help="apns-priority.")
@click.option("--send-at", type=Moment(), help="Not before this moment: ISO 8601 with a zone, "
              "or UNIX seconds (at most 30 days ahead).")
@click.option("--local-time", metavar="HH:MM[:SS]",
              help="Each device at this time on its own wall clock (from --send-at or now).")
@click.option("--throttle", type=int, metavar="N",
              help="At most N deliveries a minute (60 to 1,000,000).")
def send(users, device_ids, alert, everyone, topics, condition, where, sandbox_only,
         live_activity_event, activity_ids, attributes_type, activity_id, channel_id,
         content_state, attributes, priority, send_at, local_time, throttle):
    """Accept a notification for sending, as an operator (no sender), and print its id, its
    status and how many deliveries it has so far. The push workers send it (and expand an
    audience: --all, --topic, --condition, with --where)."""
    if live_activity_event is None:
        if alert is None:
            raise click.UsageError("Give --alert (or --live-activity-event).")
        content = {"alert": alert}
    else:
        content = _live_activity_content(live_activity_event, alert, attributes_type,
                                         activity_id, content_state, attributes, priority)
    content |= {"send_at": send_at, "local_time": local_time,
                "throttle": None if throttle is None else {"per_minute": throttle}}
    audience = _audience(everyone, topics, condition, where)
    notification, _ = _or_fail(lambda: notifications.accept(
        None, content, users=users, devices=device_ids, live_activities=activity_ids,
        channel=channel_id, audience=audience,
        environment="sandbox" if sandbox_only else None))
    db.session.commit()
    counts = notifications.counts(notification)
    click.echo(json.dumps({"id": str(notification.id),
                           "status": notifications.status_of(counts).value,
                           "deliveries": counts.targeted}))


LIST_MEMBERS = ("channel", "bundle_id", "time_zone")


def _audience(everyone, topics, condition, where):
    """The audience the options describe, as the API's attribute (None: no audience)."""
    audience: dict[str, object] = {}
    if everyone:
        audience["all"] = True
    if topics:
        audience["topics"] = list(topics)
    if condition is not None:
        audience["condition"] = condition
    if where:
        audience["where"] = dict(_where_member(text) for text in where)
    return audience or None


def _where_member(text):
    name, equals, value = text.partition("=")
    if not equals:
        raise click.BadParameter(f"{text!r}: give MEMBER=VALUE.", param_hint="--where")
    if name in LIST_MEMBERS:
        return name, [part for part in value.split(",") if part]
    if name == "app_version":
        try:
            return name, json.loads(value)
        except ValueError:
            raise click.BadParameter('app_version takes JSON, like {"gte": "2.3"}.',
                                     param_hint="--where") from None
    return name, value


def _live_activity_content(event, alert, attributes_type, activity_id, content_state,
                           attributes, priority):
    """A Live Activity notification's attributes: a start names its attributes type, an
    update or end may name its audience with it."""
    content = {"push_type": "liveactivity", "event": event, "alert": alert,
               "content_state": content_state,
               "priority": int(priority) if priority else None}
    if event == "start":  # stamped now, as the API stamps an update or end it accepts
        content |= {"attributes_type": attributes_type, "attributes": attributes,
                    "timestamp": int(time.time())}
    elif attributes_type:
        content["live_activity_audience"] = {"attributes_type": attributes_type,
                                             **({"activity_id": activity_id}
                                                if activity_id else {})}
    return {key: value for key, value in content.items() if value is not None}


@push.command("status")
@click.argument("notification_id", required=False)
def status(notification_id):
    """Print a notification's status and its deliveries' counts, as JSON; without
    NOTIFICATION_ID, the push workers running (their heartbeats), one JSON object a line."""
    if notification_id is None:
        _print_workers()
        return
    notification = notifications.find(notification_id)
    if notification is None:
        raise click.ClickException(f"There is no notification {notification_id}.")
    counts = notifications.counts(notification)
    click.echo(json.dumps({"id": str(notification.id),
                           "status": notifications.status_of(counts).value,
                           "counts": counts.shown()}))


@push.command("cancel")
@click.argument("notification_id")
def cancel(notification_id):
    """Cancel a notification, as an operator (whoever sent it): every delivery not yet
    handed to a provider is canceled, those in flight finish. Prints how many it canceled
    (0 when it was canceled before), its status and counts, as JSON."""
    notification = notifications.find(notification_id)
    if notification is None:
        raise click.ClickException(f"There is no notification {notification_id}.")
    canceled = cancellation.cancel(notification)
    db.session.commit()
    counts = notifications.counts(notification)
    click.echo(json.dumps({"id": str(notification.id), "canceled": canceled.deliveries,
                           "already_canceled": not canceled.first,
                           "status": notifications.status_of(counts).value,
                           "counts": counts.shown()}))


def _print_workers():
    now = utcnow()
    max_age = current_app.config["PUSH_HEARTBEAT_MAX_AGE"]
    beats = heartbeat.workers(db.session.connection())
    if not beats:
        click.echo("No push worker is running (none has a heartbeat).", err=True)
    for beat in beats:
        age = round((now - beat.beat_at).total_seconds(), 1)
        click.echo(json.dumps({
            "worker": beat.worker_id, "started_at": format_timestamp(beat.started_at),
            "last_beat_at": format_timestamp(beat.beat_at), "age": age,
            "stale": age > max_age, "counts": beat.counts}))


@push.command("purge")
@click.option("--older-than", "age", type=Duration(), required=True,
              help="Age past which things go, like 30d.")
def purge(age):
    """Delete devices invalidated, or not seen, for longer than --older-than, and finished
    notifications (no delivery left to send) older than that with their deliveries.
    Prints how many rows went, as JSON."""
    cutoff = utcnow() - age
    purged_devices = devices.purge_stale(cutoff)
    purged_notifications, purged_deliveries = notifications.purge_finished(cutoff)
    db.session.commit()
    click.echo(json.dumps({"devices": purged_devices, "notifications": purged_notifications,
                           "deliveries": purged_deliveries}))


def register_cli(app):
    app.cli.add_command(sms)
    app.cli.add_command(keys)
    app.cli.add_command(push)
    app.cli.add_command(prune)
