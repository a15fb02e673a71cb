"""``flask`` commands for operators."""

import json
import time
from datetime import timedelta

import click
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import delete, select

from app.errors import ServiceError
from app.extensions import db
from app.models import RateLimitCounter, SmsMessage, VerificationCode
from app.models.types import utcnow
from app.push.cli import worker as push_worker
from app.resources import api_keys, credentials, sessions
from schemas.fields import format_timestamp

sms = AppGroup("sms", help="Verification texts.")
keys = AppGroup("keys", help="API keys for backend services.")
push = AppGroup("push", help="Push notifications: the worker that sends them.")
push.add_command(push_worker)


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
    codes, old outbox texts and expired rate-limit windows. Prints how many rows went, as
    JSON."""
    now = utcnow()
    cutoff = now - timedelta(days=days)
    removed = {
        "sessions": sessions.prune_ended(now),
        "credentials": credentials.prune_ended(now),
        "verification_codes": _delete(VerificationCode, VerificationCode.expires_at < cutoff),
        "sms_outbox": _delete(SmsMessage, SmsMessage.created_at < cutoff),
        "rate_limit_counters": _delete(RateLimitCounter,
                                       RateLimitCounter.expires_at <= int(time.time())),
    }
    db.session.commit()
    click.echo(json.dumps(removed))


def _delete(model, condition):
    return db.session.execute(delete(model).where(condition)).rowcount


@keys.command("create")
@click.option("--name", required=True, help="What the key is for (unique).")
@click.option("--scope", "scopes", multiple=True, required=True,
              type=click.Choice(sorted(api_keys.SCOPES)), help="A scope it grants (repeat).")
def create_key(name, scopes):
    """Make an API key and print it, once: only its digest is kept."""
    key, secret = _or_fail(api_keys.create, name, scopes)
    click.echo(json.dumps({"id": key.id, "name": key.name, "scopes": key.scopes.split(),
                           "key": secret}))


@keys.command("list")
def list_keys():
    """Every API key, one JSON object a line (never the key itself)."""
    for key in api_keys.list_all():
        click.echo(json.dumps({
            "id": key.id, "name": key.name, "scopes": sorted(key.scope_set),
            "created_at": format_timestamp(key.created_at),
            "last_used_at": format_timestamp(key.last_used_at)}))


@keys.command("revoke")
@click.argument("name_or_id")
def revoke_key(name_or_id):
    """Delete an API key (by name or id): it stops working at once."""
    _or_fail(api_keys.revoke, name_or_id)
    click.echo(json.dumps({"revoked": name_or_id}))


def _or_fail(function, *args):
    try:
        return function(*args)
    except ServiceError as exc:
        raise click.ClickException(exc.detail) from exc


def register_cli(app):
    app.cli.add_command(sms)
    app.cli.add_command(keys)
    app.cli.add_command(push)
    app.cli.add_command(prune)
