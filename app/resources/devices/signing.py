"""A webhook endpoint's signing secret: issued once, when the endpoint first registers,
registers again after it was deleted, or moves to another owner (who must not sign with a
secret its former owner knows); kept sealed, never shown again."""

from sqlalchemy import literal, update

from app.database.results import rows_changed
from app.extensions import db
from app.models import Channel, Device
from app.push.webhook import new_signing_secret
from app.resources.devices.statements import same_owner
from app.security import crypto


def issue_signing_secret(device) -> str | None:
    """A new ``whsec_…`` secret for a webhook device that has none (shown this once), or
    None: another channel, or the endpoint's secret was issued before. Only to the owner
    that registered ``device``: on PostgreSQL the registration's upsert commits before this
    runs, so another owner may have taken the endpoint meanwhile (then it is theirs to be
    issued). Racing registrations of one URL: one of them issues it."""
    if device.channel != Channel.WEBHOOK:
        return None
    secret = new_signing_secret()
    issued = db.session.execute(
        update(Device).where(
            Device.id == device.id, Device.signing_secret.is_(None),
            same_owner(Device.user_id, Device.session_id,
                       literal(device.user_id, Device.user_id.type),
                       literal(device.session_id, Device.session_id.type)))
        .values(signing_secret=crypto.seal(secret))
        .execution_options(synchronize_session=False))
    return secret if rows_changed(issued) == 1 else None
