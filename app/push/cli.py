"""``flask push worker``: send what the ledger holds (the other ``push`` commands are in
``app/cli.py``'s group too)."""

import asyncio
import json
import logging

import click
from flask import current_app
from flask.cli import with_appcontext

from app.extensions import db
from app.push.fcm_auth import CredentialsError
from app.push.provider_token import ProviderKeyError
from app.push.worker import apns_environment, fcm_configured, run_worker

log = logging.getLogger(__name__)


@click.command("worker")
@with_appcontext
@click.option("--burst", is_flag=True, help="Exit once nothing is due.")
@click.option("--chunk-size", type=click.IntRange(min=1),
              help="Deliveries claimed at once (default PUSH_CHUNK_SIZE).")
@click.option("--concurrency", type=click.IntRange(min=1),
              help="Chunks in flight at once (default PUSH_CONCURRENCY).")
def worker(burst, chunk_size, concurrency):
    """Send due deliveries to APNs and FCM until SIGTERM (or, with --burst, until none is
    due).

    APNs needs APNS_KEY, APNS_KEY_ID, APNS_TEAM_ID and APNS_BUNDLE_ID (or APNS_TOPIC); FCM
    needs FCM_CREDENTIALS_FILE. With neither, push is not configured: the worker says so
    and exits 0. A delivery to a channel not configured fails as ChannelNotConfigured.
    Prints what it did as JSON at the end.
    """
    environ = apns_environment()
    if environ is None and not fcm_configured(current_app.config):
        log.warning("push is not configured (APNS_KEY, APNS_KEY_ID, APNS_TEAM_ID, "
                    "APNS_BUNDLE_ID, or FCM_CREDENTIALS_FILE): the push worker exits "
                    "without sending")
        return
    try:
        totals = asyncio.run(run_worker(current_app.config, db.engine, environ, burst=burst,
                                        chunk_size=chunk_size, concurrency=concurrency))
    except (ProviderKeyError, CredentialsError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(dict(sorted(totals.items()))))
