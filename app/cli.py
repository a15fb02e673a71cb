"""``flask`` commands for operators."""

import json
import time
from datetime import timedelta

import click
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import delete, select

from app.extensions import db
from app.models import RateLimitCounter, SmsMessage, VerificationCode
from app.models.types import utcnow
from app.resources import sessions
from schemas.fields import format_timestamp

sms = AppGroup("sms", help="Verification texts.")


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
    """Delete what the service no longer needs: sessions whose lifetime is over (the
    SESSION_* settings), dead verification codes, old outbox texts and expired rate-limit
    windows. Prints how many rows went, as JSON."""
    now = utcnow()
    cutoff = now - timedelta(days=days)
    removed = {
        "sessions": sessions.prune_ended(now),
        "verification_codes": _delete(VerificationCode, VerificationCode.expires_at < cutoff),
        "sms_outbox": _delete(SmsMessage, SmsMessage.created_at < cutoff),
        "rate_limit_counters": _delete(RateLimitCounter,
                                       RateLimitCounter.expires_at <= int(time.time())),
    }
    db.session.commit()
    click.echo(json.dumps(removed))


def _delete(model, condition):
    return db.session.execute(delete(model).where(condition)).rowcount


def register_cli(app):
    app.cli.add_command(sms)
    app.cli.add_command(prune)
