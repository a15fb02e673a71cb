"""``flask push worker``: send what the ledger holds; ``flask push outbox``: what the
development stand-in recorded (the other ``push`` commands are in
``app/ops/cli/commands.py``'s group too)."""

import asyncio
import json
import logging

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from app.extensions import db
from app.models import DevPushMessage
from app.observability.metrics import serve_for_push_worker
from app.push.fcm_auth import CredentialsError
from app.push.provider_token import ProviderKeyError
from app.push.settings import PushSettings
from app.push.worker import run_worker
from schemas.fields import format_timestamp

log = logging.getLogger(__name__)


@click.command("worker")
@with_appcontext
@click.option("--burst", is_flag=True, help="Exit once nothing is due.")
@click.option("--chunk-size", type=click.IntRange(min=1),
              help="Deliveries claimed at once (default PUSH_CHUNK_SIZE).")
@click.option("--concurrency", type=click.IntRange(min=1),
              help="Chunks in flight at once (default PUSH_CONCURRENCY).")
@click.option("--metrics-port", type=click.IntRange(min=0, max=65535),
              help="Serve Prometheus metrics on this port (0: any free one).")
@click.option("--metrics-address", default="127.0.0.1", show_default=True,
              help="The address the metrics port listens on (it takes no credential).")
def worker(burst, chunk_size, concurrency, metrics_port, metrics_address):
    """Send due deliveries to APNs and FCM until SIGTERM (or, with --burst, until none is
    due): claimed from the ledger, or run as procrastinate's jobs (PUSH_QUEUE=procrastinate).

    APNs needs APNS_KEY, APNS_KEY_ID, APNS_TEAM_ID and APNS_BUNDLE_ID (or APNS_TOPIC); FCM
    needs FCM_CREDENTIALS_FILE. With PUSH_STANDIN=outbox (the default in development
    without either) the channels without a provider go to the outbox: nothing leaves the
    machine, flask push outbox shows them. With none of these, push is not configured: the
    worker says so and exits 0. A delivery to a channel not configured fails as
    ChannelNotConfigured. Prints what it did as JSON at the end.
    """
    push = PushSettings.from_config(current_app.config)
    if not push.sends:
        log.warning("push is not configured (APNS_KEY, APNS_KEY_ID, APNS_TEAM_ID, "
                    "APNS_BUNDLE_ID, or FCM_CREDENTIALS_FILE; or PUSH_STANDIN=outbox in "
                    "development): the push worker exits without sending")
        return
    if not push.providers_configured:
        log.warning("push worker: no APNs or FCM credentials; the development stand-in "
                    "records every push in the outbox (flask push outbox) and sends nothing")
    if metrics_port is not None:
        serve_for_push_worker(metrics_port, metrics_address, db.engine)
    try:
        totals = asyncio.run(run_worker(current_app.config, db.engine, burst=burst,
                                        chunk_size=chunk_size, concurrency=concurrency))
    except (ProviderKeyError, CredentialsError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(dict(sorted(totals.items()))))


@click.command("outbox")
@with_appcontext
@click.option("--device", "device_id", type=click.UUID, help="Only pushes to this device.")
@click.option("--last", type=click.IntRange(min=1), help="Only the newest N pushes.")
def outbox(device_id, last):
    """Print the pushes the development stand-in recorded instead of sending them
    (PUSH_STANDIN=outbox), oldest first, one JSON object a line."""
    statement = select(DevPushMessage).order_by(DevPushMessage.id.desc())
    if device_id:
        statement = statement.where(DevPushMessage.device_id == str(device_id))
    if last:
        statement = statement.limit(last)
    for message in reversed(list(db.session.scalars(statement))):
        click.echo(json.dumps({
            "apns_id": message.apns_id, "device_id": message.device_id,
            "channel": message.channel, "token_tail": message.token_tail,
            "payload": message.payload, "created_at": format_timestamp(message.created_at),
        }, ensure_ascii=False))
