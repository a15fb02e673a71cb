"""The tokens a push provider refused, applied by the device registry for the dispatcher:
one statement per batch whatever its size, and a device registered again, or moved to
another token, after the provider's answer keeps its token."""

from datetime import timedelta

import pytest
from sqlalchemy import event, select

from app.extensions import db
from app.models import Device
from app.models.types import utcnow
from app.resources import devices
from tests.push_rows import make_devices


def _gone(row, cutoff, *, live_activity=False, token=None):
    return devices.Invalidation(row["id"], token or row["token"], "Unregistered", cutoff,
                                live_activity)


def _sent(connection):
    sent = []
    event.listen(connection, "before_cursor_execute",
                 lambda *args: sent.append(args[2].split()[0]))
    return sent


def _rows(connection, rows):
    found = connection.execute(select(Device.__table__).where(
        Device.id.in_([row["id"] for row in rows]))).all()
    return {row.id: row for row in found}


@pytest.mark.parametrize("policy", [devices.invalidation.MARK, devices.invalidation.DELETE])
def test_a_batch_is_one_statement_and_spares_what_was_registered_again(app_context, policy):
    connection = db.session.connection()
    now = utcnow()
    gone = make_devices(connection, 50)
    again, moved = make_devices(connection, 2)
    connection.execute(Device.__table__.update().where(Device.id == again["id"])
                       .values(last_seen_at=now + timedelta(seconds=1)))
    sent = _sent(connection)
    devices.invalidate(connection, [_gone(row, now) for row in (*gone, again)]
                       + [_gone(moved, now, token="00" * 32)], now, policy)
    assert sent == ["DELETE" if policy == devices.invalidation.DELETE else "UPDATE"]
    rows = _rows(connection, [*gone, again, moved])
    assert not rows[again["id"]].is_invalidated and not rows[moved["id"]].is_invalidated
    if policy == devices.invalidation.DELETE:
        assert set(rows) == {again["id"], moved["id"]}
    else:
        assert all(rows[row["id"]].is_invalidated for row in gone)
        assert {rows[row["id"]].invalidated_reason for row in gone} == {"Unregistered"}


def test_a_live_activity_token_is_forgotten_and_its_device_stays(app_context):
    connection = db.session.connection()
    now = utcnow()
    rows = make_devices(connection, 3, live_activity_token="sealed")
    sent = _sent(connection)
    devices.invalidate(connection, [_gone(row, now, live_activity=True, token="sealed")
                                    for row in rows], now, devices.invalidation.DELETE)
    assert sent == ["UPDATE"]
    kept = _rows(connection, rows)
    assert len(kept) == 3
    assert {row.live_activity_token for row in kept.values()} == {None}
    assert not any(row.is_invalidated for row in kept.values())
