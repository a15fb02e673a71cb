"""Helpers for the JSON:API acceptance tests: response checks, documents walked as the
spec describes them, rows inserted straight into the database, SQL statements counted."""

import contextlib
import random
import re
import secrets
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import event, insert, select

from app.extensions import db
from app.models import Credential, CredentialKind, Device, User
from app.security.crypto import digest
from tests.factories import bearer, log_in
from tests.jsonapi_schema import JSONAPI

_ALLOWED = r"A-Za-z0-9\u0080-\U0010ffff"
MEMBER_NAME = re.compile(rf"^@?[{_ALLOWED}](?:[{_ALLOWED}_ -]*[{_ALLOWED}])?$")


def body(response, status):
    """The JSON:API document of ``response``, after checking its status and media type."""
    assert response.status_code == status, (response.status_code, response.get_data(True))
    assert response.headers["Content-Type"] == JSONAPI, response.headers["Content-Type"]
    return response.get_json()


def error_of(response, status=None):
    """The first error object of an error document (checking ``status`` when given)."""
    document = body(response, status or response.status_code)
    assert response.status_code >= 400, document
    assert "data" not in document and "included" not in document
    assert document["errors"], document
    for error in document["errors"]:
        assert error["status"] == str(response.status_code)
    return document["errors"][0]


class Caller:
    """A logged-in user as the API sees them: session id, user id, request headers."""

    def __init__(self, client, app, phone_number=None):
        self.session_id, self.user_id = log_in(client, app, phone_number)
        self.headers = bearer(self.session_id)


def key(resource):
    return resource["type"], resource["id"]


def linkage_keys(resource):
    """Every (type, id) a resource object's relationships link to."""
    keys = set()
    for relationship in resource.get("relationships", {}).values():
        data = relationship.get("data")
        if isinstance(data, dict):
            keys.add(key(data))
        elif isinstance(data, list):
            keys.update(key(item) for item in data)
    return keys


def assert_compound_document(document):
    """Compound-document rules: one object per type and id across data and included, and
    every included object reached through linkage starting at the primary data."""
    primary = document["data"]
    primary = [] if primary is None else primary if isinstance(primary, list) else [primary]
    included = document.get("included", [])
    every = [key(resource) for resource in primary + included]
    assert len(every) == len(set(every)), f"duplicate type/id pairs in {every}"
    by_key = {key(resource): resource for resource in included}
    reached, frontier = set(), [key(resource) for resource in primary]
    resources = {key(resource): resource for resource in primary + included}
    while frontier:
        current = frontier.pop()
        for linked in linkage_keys(resources[current]):
            if linked in by_key and linked not in reached:
                reached.add(linked)
                frontier.append(linked)
    assert reached == set(by_key), f"not reached through linkage: {set(by_key) - reached}"


def member_names(value):
    """Every member name in ``value``, recursively."""
    if isinstance(value, dict):
        for name, child in value.items():
            yield name
            yield from member_names(child)
    elif isinstance(value, list):
        for child in value:
            yield from member_names(child)


# -- rows straight into the database (ties in created_at, hundreds of rows) -----------


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def insert_devices(app, count, *, user_id=None, session_id=None, created_at=None,
                   **attributes):
    """``count`` device tokens; every one with the same ``created_at`` when given."""
    now = datetime.now(UTC)
    rows = [{
        "id": uuid.uuid4(), "channel": "ios_push", "token": secrets.token_hex(32),
        "user_id": None if user_id is None else uuid.UUID(user_id),
        "session_id": session_id, "bundle_id": "TTYL.Inc.Poparazzi",
        "app_version": "3.1.23", "build_number": "839", "environment": "production",
        "is_voip": False, "is_invalidated": False, "last_seen_at": created_at or now,
        "created_at": created_at or now, "updated_at": created_at or now, **attributes,
    } for _ in range(count)]
    with app.app_context():
        db.session.execute(insert(Device), rows)
        db.session.commit()
        db.session.remove()
    return [row["token"] for row in rows]


def insert_users(app, count, *, created_at=None, **attributes):
    now = datetime.now(UTC)
    numbers = random.SystemRandom().sample(range(10**7), count)  # distinct: a unique column
    rows = [{
        "id": uuid.uuid4(), "phone_number": f"+1666{numbers.pop():07d}",
        "badges": [], "is_private": False,
        "created_at": created_at or now, "updated_at": created_at or now, **attributes,
    } for _ in range(count)]
    with app.app_context():
        db.session.execute(insert(User), rows)
        db.session.commit()
        db.session.remove()
    return [str(row["id"]) for row in rows]


def device_id(app, token):
    """The id (as the ``devices`` type shows it) of the device registered with ``token``."""
    return str(device_ids(app, [token])[token])


def device_ids(app, tokens):
    """token → the device row's primary key (the tie-breaker of every default order)."""
    with app.app_context():
        try:
            rows = db.session.execute(select(Device.token, Device.id)
                                      .where(Device.token.in_(list(tokens))))
            return dict(rows.all())
        finally:
            db.session.remove()


def insert_sessions(app, count, *, user_id=None):
    """Sessions nobody holds the secret of: their ids stay hidden from every caller."""
    now = datetime.now(UTC)
    with app.app_context():
        rows = [{"kind": CredentialKind.SESSION, "secret_digest": digest(secrets.token_hex(16)),
                 "user_id": None if user_id is None else uuid.UUID(user_id),
                 "is_cookie_based": False, "created_at": now, "updated_at": now}
                for _ in range(count)]
        ids = list(db.session.scalars(insert(Credential).returning(Credential.id), rows))
        db.session.commit()
        db.session.remove()
    return ids


def session_pk(app, session_id):
    """The database id of a session, from its public id (the bearer secret)."""
    with app.app_context():
        try:
            return db.session.scalar(select(Credential.id)
                                     .where(Credential.secret_digest == digest(session_id)))
        finally:
            db.session.remove()


def snapshot(app):
    """Every row of every table, as comparable text."""
    with app.app_context():
        tables = {table.name: sorted(repr(tuple(row))
                                     for row in db.session.execute(select(table)).all())
                  for table in db.metadata.sorted_tables}
        db.session.remove()
    return tables


@contextlib.contextmanager
def counted_statements(app):
    """The SQL statements run on the app's engine while the block runs."""
    statements = []

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def cut_database_connections(app, *, dispose_pool=True):
    """From a connection outside the app's pool, end every other connection to the test
    database (a live server's too); this process's pool then starts afresh, unless the
    test wants to meet the dead connections it holds (``dispose_pool=False``)."""
    with app.app_context():
        outsider = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)
        with outsider.begin() as connection:
            connection.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        outsider.dispose()
        if dispose_pool:
            db.engine.dispose()
