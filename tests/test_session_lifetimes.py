"""Sessions end: SESSION_IDLE_TIMEOUT after their last use, SESSION_MAX_AGE after they were
made, SESSION_ANONYMOUS_MAX_AGE after if they never logged in. An ended session is refused
exactly like an unknown one, and ``flask prune`` deletes it. Its last use is recorded
without a write on every request."""

import json
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.models import Credential, Device
from app.models.types import utcnow
from app.security.crypto import digest
from tests.factories import (
    bearer,
    create_session,
    log_in,
    register_token,
    stored_credential,
)
from tests.jsonapi_helpers import counted_statements

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)

# (logged in, made this long ago, last used this long ago, still valid) with the defaults:
# 30 days idle, 180 days in all, 1 day for a session that never logged in.
LIFETIMES = {
    "fresh": (True, timedelta(0), timedelta(0), True),
    "used within the idle timeout": (True, 100 * DAY, 29 * DAY, True),
    "idle too long": (True, 40 * DAY, 31 * DAY, False),
    "just under the absolute age, in use": (True, 179 * DAY, HOUR, True),
    "over the absolute age, in use": (True, 181 * DAY, timedelta(0), False),
    "anonymous, younger than a day": (False, 23 * HOUR, 23 * HOUR, True),
    "anonymous, older than a day, in use": (False, 25 * HOUR, timedelta(0), False),
}


def _session(client, app, logged_in):
    return log_in(client, app)[0] if logged_in else create_session(client)


def _age(app, session_id, made, idle):
    now = utcnow()
    with app.app_context():
        db.session.execute(update(Credential)
                           .where(Credential.secret_digest == digest(session_id))
                           .values(created_at=now - made, last_used_at=now - idle))
        db.session.commit()
        db.session.remove()


def _without_id(response):
    [error] = response.get_json()["errors"]
    return {name: value for name, value in error.items() if name not in ("id", "meta")}


@pytest.mark.parametrize("logged_in, made, idle, valid", LIFETIMES.values(), ids=LIFETIMES)
def test_an_ended_session_is_refused_like_an_unknown_one(client, app, logged_in, made, idle,
                                                         valid):
    session_id = _session(client, app, logged_in)
    _age(app, session_id, made, idle)

    response = client.get(f"/api/sessions/{session_id}", headers=bearer(session_id))

    if valid:
        assert response.status_code == 200, response.get_json()
        return
    unknown = str(uuid.uuid4())
    refused_unknown = client.get(f"/api/sessions/{unknown}", headers=bearer(unknown))
    assert response.status_code == refused_unknown.status_code == 401
    assert _without_id(response) == _without_id(refused_unknown)
    assert response.headers["WWW-Authenticate"] == refused_unknown.headers["WWW-Authenticate"]


def test_prune_deletes_ended_sessions_and_keeps_live_ones(client, app):
    sessions = {}
    for name, (logged_in, made, idle, valid) in LIFETIMES.items():
        session_id = _session(client, app, logged_in)
        token = register_token(client, session_id)
        _age(app, session_id, made, idle)
        sessions[name] = (session_id, token, valid)

    result = app.test_cli_runner().invoke(args=["prune"])

    assert result.exit_code == 0, result.output
    ended = [name for name, (_, _, valid) in sessions.items() if not valid]
    assert json.loads(result.output)["sessions"] == len(ended)
    for name, (session_id, token, valid) in sessions.items():
        assert (stored_credential(app, session_id) is not None) == valid, name
        owner = _device_owner(app, token)
        if valid:
            assert owner[1] is not None, name  # still its session's
        else:  # an ended session's devices leave its user too
            assert owner == (None, None), name


def _device_owner(app, token):
    with app.app_context():
        try:
            return tuple(db.session.execute(select(Device.user_id, Device.session_id)
                                            .where(Device.token == token)).one())
        finally:
            db.session.remove()


def _credential_updates(statements):
    return [s for s in statements if s.lstrip().upper().startswith("UPDATE CREDENTIALS")]


@pytest.mark.parametrize("last_used_ago, updates", [
    (timedelta(0), 0),            # used just now: nothing to record
    (timedelta(minutes=50), 0),   # within the resolution (an hour)
    (2 * HOUR, 1),                # stale: one conditional UPDATE, then none
    (29 * DAY, 1),                # about to go idle: the use keeps it alive
])
def test_last_use_is_written_at_most_once_an_hour(client, app, last_used_ago, updates):
    session_id, _ = log_in(client, app)
    _age(app, session_id, made=30 * DAY, idle=last_used_ago)
    before = stored_credential(app, session_id)

    with counted_statements(app) as statements:
        for _ in range(5):
            response = client.get(f"/api/sessions/{session_id}", headers=bearer(session_id))
            assert response.status_code == 200

    assert len(_credential_updates(statements)) == updates
    after = stored_credential(app, session_id)
    assert after.updated_at == before.updated_at  # being used is no change to the session
    if updates:
        assert utcnow() - after.last_used_at < timedelta(minutes=1)
    else:
        assert after.last_used_at == before.last_used_at
