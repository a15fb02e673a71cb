"""SQLite: a write request takes the write lock up front (``BEGIN IMMEDIATE``) and lets go
of it at its commit; what it reads afterwards to render its answer begins deferred."""

import pytest
from sqlalchemy import event

from app.extensions import db
from tests.factories import (
    bearer,
    create_session,
    log_in,
    random_phone,
    register_token,
    request_code,
)

pytestmark = pytest.mark.committed


@pytest.fixture
def statements(app):
    """The SQL the app sends, in order, with ``COMMIT`` where a transaction commits."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "sqlite":
        pytest.skip("BEGIN IMMEDIATE is SQLite's; PostgreSQL takes row locks")
    sent = []

    def on_execute(_connection, _cursor, statement, *_args):
        # "BEGIN IMMEDIATE" whole, other statements by their verb
        sent.append(statement if statement.startswith("BEGIN") else statement.split()[0])

    def on_commit(_connection):
        sent.append("COMMIT")

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    yield sent
    event.remove(engine, "before_cursor_execute", on_execute)
    event.remove(engine, "commit", on_commit)


def test_rendering_a_write_does_not_hold_the_write_lock(client, app, statements):
    session_id, user_id = log_in(client, app)
    register_token(client, session_id)
    statements.clear()

    response = client.patch(
        f"/api/users/{user_id}?include=devices",
        json={"data": {"type": "users", "id": user_id, "attributes": {"first_name": "Ada"}}},
        headers=bearer(session_id))

    assert response.status_code == 200, response.get_json()
    assert len(response.get_json()["included"]) == 1  # read after the commit
    committed = statements.index("COMMIT")
    write, render = statements[:committed], statements[committed + 1:]
    assert write[0] == "BEGIN IMMEDIATE" and "UPDATE" in write
    assert render[0] == "BEGIN" and "SELECT" in render
    assert "BEGIN IMMEDIATE" not in render


def test_a_write_that_commits_early_goes_on_with_the_write_lock(client, app, statements):
    session_id = create_session(client)
    statements.clear()

    assert request_code(client, session_id, random_phone()).status_code == 200

    # the code is committed before the text goes out; the request then writes again
    assert statements.count("COMMIT") == 2
    begins = [statement for statement in statements if statement.startswith("BEGIN")]
    assert begins == ["BEGIN IMMEDIATE", "BEGIN IMMEDIATE"]
