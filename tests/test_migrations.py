"""The migrations are the only way the schema is made: they run both ways and match the
models."""

import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from app.extensions import db
from app.models import Credential, Device
from app.models.types import UTCDateTime
from app.resources import api_keys
from tests.factories import bearer
from tests.jsonapi_helpers import utc

pytestmark = pytest.mark.committed  # changes the schema under the app


def _tables():
    return set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"}


def test_downgrade_to_base_then_upgrade_from_empty(app_context):
    downgrade(revision="base")
    assert _tables() == set()
    upgrade()
    assert _tables() == {table.name for table in db.metadata.sorted_tables}


def test_models_match_the_migrations(app_context):
    with db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert differences == []


def test_device_tokens_are_unique_per_channel_in_the_database(app_context):
    constraints = sa.inspect(db.engine).get_unique_constraints("devices")
    assert any(set(c["column_names"]) == {"channel", "token"} for c in constraints)


def _old_credentials_table():
    """``credentials`` as revision 0001 made it."""
    return sa.table("credentials", sa.column("id", sa.Integer), sa.column("kind", sa.String),
                    sa.column("secret_digest", sa.String), sa.column("user_id", sa.Uuid),
                    sa.column("is_cookie_based", sa.Boolean),
                    sa.column("created_at", UTCDateTime), sa.column("updated_at", UTCDateTime))


def _old_devices_table():
    """``devices`` as revisions 0001 and 0002 made it."""
    return sa.table("devices", sa.column("id", sa.Uuid), sa.column("channel", sa.String),
                    sa.column("token", sa.String), sa.column("session_id", sa.Integer),
                    sa.column("is_production", sa.Boolean), sa.column("is_voip", sa.Boolean),
                    sa.column("is_invalidated", sa.Boolean),
                    sa.column("bundle_version", sa.String),
                    sa.column("created_at", UTCDateTime), sa.column("updated_at", UTCDateTime))


def test_devices_keep_their_data_as_app_installations(app_context):
    """0003: a token's environment comes from is_production, its app version from its
    bundle version, its last sighting from its last change; and back again."""
    downgrade(revision="0002")
    updated = utc(2026, 3, 1, 12, 30)
    with db.engine.begin() as connection:
        connection.execute(sa.insert(_old_devices_table()), [
            {"id": uuid.uuid4(), "channel": "ios_push", "token": token,
             "is_production": production, "is_voip": False, "is_invalidated": False,
             "bundle_version": "3.1.23", "created_at": updated, "updated_at": updated}
            for token, production in (("ab" * 32, True), ("cd" * 32, False))])
    upgrade()
    with db.engine.connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT token, environment, app_version FROM devices ORDER BY token")).all()
        seen = connection.execute(sa.select(Device.last_seen_at)).scalars().all()
    assert [tuple(row) for row in rows] == [("ab" * 32, "production", "3.1.23"),
                                            ("cd" * 32, "sandbox", "3.1.23")]
    assert seen == [updated, updated]
    downgrade(revision="0002")
    with db.engine.connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT token, is_production, bundle_version FROM devices ORDER BY token")).all()
    assert [tuple(row) for row in rows] == [("ab" * 32, True, "3.1.23"),
                                            ("cd" * 32, False, "3.1.23")]
    upgrade()


def _rows_referring_to_sessions():
    """(device session ids, verification code session ids)."""
    with db.engine.connect() as connection:
        return (connection.execute(sa.text("SELECT session_id FROM devices")).scalars().all(),
                connection.execute(sa.text("SELECT session_id FROM verification_codes"))
                .scalars().all())


def test_sessions_and_what_refers_to_them_survive_the_lifetimes_migration(app_context):
    """0002 rebuilds ``credentials`` on SQLite: no cascade may reach devices or codes, and
    a session's last use starts as its last change."""
    downgrade(revision="0001")
    created, updated = utc(2026, 1, 1), utc(2026, 3, 1, 12, 30)
    with db.engine.begin() as connection:
        connection.execute(sa.insert(_old_credentials_table()).values(
            id=7, kind="session", secret_digest="d" * 64, user_id=None,
            is_cookie_based=False, created_at=created, updated_at=updated))
    with db.engine.begin() as connection:
        connection.execute(sa.insert(_old_devices_table()).values(
            id=uuid.uuid4(), channel="ios_push", token="ab" * 32, session_id=7,
            is_production=False, is_voip=False, is_invalidated=False, bundle_version="3.1",
            created_at=created, updated_at=updated))
        connection.execute(sa.text(
            "INSERT INTO verification_codes (session_id, phone_number, code_digest, attempts,"
            " expires_at, created_at) VALUES (7, '+15555550100', :digest, 0, :at, :at)"),
            {"digest": "c" * 64, "at": updated.replace(tzinfo=None)})

    upgrade()

    with db.engine.connect() as connection:
        row = connection.execute(sa.select(Credential.created_at, Credential.updated_at,
                                           Credential.last_used_at)).one()
    assert tuple(row) == (created, updated, updated)
    assert _rows_referring_to_sessions() == ([7], [7])
    downgrade(revision="0001")
    assert _rows_referring_to_sessions() == ([7], [7])
    upgrade()


def test_existing_credentials_get_distinct_random_public_ids(app_context):
    """0010: what access tokens name a credential by, for the rows that were there."""
    downgrade(revision="0009")
    with db.engine.begin() as connection:
        for number in (1, 2, 3):
            connection.execute(sa.text(
                "INSERT INTO credentials (id, kind, secret_digest, is_cookie_based, created_at,"
                " updated_at, last_used_at) VALUES (:id, 'session', :digest, false, :at, :at,"
                " :at)"), {"id": number, "digest": str(number) * 64,
                           "at": utc(2026, 1, 1).replace(tzinfo=None)})
    upgrade()
    with db.engine.connect() as connection:
        public_ids = connection.execute(sa.select(Credential.public_id)).scalars().all()
    assert len(set(public_ids)) == 3
    assert all(len(public_id) >= 22 and not public_id.isdigit() for public_id in public_ids)


# the notifications table as revision 0010 had it (the model's later columns absent)
NOTIFICATIONS_0010 = sa.table(
    "notifications", sa.column("sender_id"), sa.column("push_type"),
    sa.column("id", sa.Uuid), sa.column("content", sa.JSON),
    sa.column("created_at", UTCDateTime), sa.column("updated_at", UTCDateTime))


def _poisoned_notification(sender_id, **times):
    """A notification as unbounded input stored it, before revision 0011."""
    content = {"push_type": "liveactivity", "alert": None, "event": "start",
               "attributes_type": "A", "attributes": {}, "content_state": {}, **times}
    with db.engine.begin() as connection:
        connection.execute(sa.insert(NOTIFICATIONS_0010).values(
            id=(notification_id := uuid.uuid4()), sender_id=sender_id,
            push_type="liveactivity", content=content, created_at=utc(2026, 12, 1),
            updated_at=utc(2026, 12, 1)))
    return notification_id


def test_notification_times_no_one_could_read_are_clamped(app_context, client):
    """0011: times past 9999 or before 1970 in UTC (a 500 on every read before) become
    the nearest moment that can be shown; times in range are left as they were."""
    key, secret = api_keys.create("migrated-service", ["notifications:send"])
    db.session.commit()
    downgrade(revision="0010")
    poisoned = _poisoned_notification(key.id, timestamp=10**15, stale_date=253402351199,
                                      dismissal_date=-62135647200, expiration=None)
    healthy = _poisoned_notification(key.id, timestamp=1_900_000_000, stale_date=0)
    upgrade()
    shown = [client.get(f"/api/notifications/{notification_id}",
                        headers=bearer(secret)).get_json()["data"]["attributes"]
             for notification_id in (poisoned, healthy)]
    assert [(each["timestamp"], each["stale_date"], each.get("dismissal_date"))
            for each in shown] == [
        ("9999-12-31T23:59:59.000Z", "9999-12-31T23:59:59.000Z", 0),
        ("2030-03-17T17:46:40.000Z", 0, None)]
