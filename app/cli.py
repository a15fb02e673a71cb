"""``flask`` commands for operators."""

import json

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.extensions import db
from app.models import SmsMessage
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


def register_cli(app):
    app.cli.add_command(sms)
