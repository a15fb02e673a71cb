"""Cancelling a notification: ``PATCH /api/notifications/<id>`` with ``"canceled": true``
and ``flask push cancel``. What is pending becomes canceled at once, what is being sent is
left to finish, an audience stops expanding, and a canceled notification's deliveries never
go back to pending (a retry, a hand-back). The workers' side, against the fake APNs, is in
tests/test_cancel_workers.py."""

import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.models import Delivery, DeliveryState, Notification
from app.models.types import utcnow
from app.push import expansion, ledger
from app.resources import cancellation, notifications
from tests.factories import bearer
from tests.jsonapi_helpers import body, error_of, insert_users, snapshot
from tests.push_rows import make_devices
from tests.test_audiences import BROADCAST, SEND, connected, post
from tests.test_notifications_api import (
    deliveries_of,
    device_rows,
    document,
    make_key,
    send,
    set_states,
)
from tests.test_push_cli import push


@pytest.fixture
def service(app):
    return bearer(make_key(app)[0])


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def cancel_document(notification_id, **attributes):
    return {"data": {"type": "notifications", "id": notification_id,
                     "attributes": {"canceled": True, **attributes}}}


def patch(client, headers, notification_id, doc=None):
    return client.patch(f"/api/notifications/{notification_id}", headers=headers,
                        json=doc or cancel_document(notification_id))


def sent_to(client, app, headers, count):
    (alice,) = insert_users(app, 1)
    device_rows(app, alice, count)
    return body(send(client, headers, document(users=[alice])), 202)["data"]["id"]


def states_of(app, notification_id):
    return sorted(row.state for row in deliveries_of(app, notification_id))


def delay(app, notification_id, count, hours=1):
    """The first ``count`` pending deliveries wait (a backoff, a moment not come)."""
    with app.app_context():
        waiting = select(Delivery.id).where(
            Delivery.notification_id == uuid.UUID(notification_id),
            Delivery.state == "pending").order_by(Delivery.id).limit(count)
        db.session.execute(update(Delivery).where(Delivery.id.in_(waiting.scalar_subquery()))
                           .values(next_attempt_at=utcnow() + timedelta(hours=hours)))
        db.session.commit()
        db.session.remove()


# -- the API -----------------------------------------------------------------------------


def test_a_cancel_cancels_what_is_pending_and_leaves_what_is_in_flight(client, app, service):
    notification_id = sent_to(client, app, service, 6)
    set_states(app, notification_id, "sent", "sent", "sending")  # then 3 pending
    delay(app, notification_id, 2)  # two of them waiting on a backoff

    shown = body(patch(client, service, notification_id), 200)["data"]

    attributes = shown["attributes"]
    assert shown["id"] == notification_id
    assert attributes["canceled"] is True and attributes["canceled_at"].endswith("Z")
    assert attributes["status"] == "sending"  # the one in flight finishes
    assert (attributes["counts"]["pending"], attributes["counts"]["sent"],
            attributes["counts"]["canceled"]) == (1, 2, 3)
    assert attributes["counts"]["by_channel"]["ios_push"]["canceled"] == 3
    assert states_of(app, notification_id) == ["canceled"] * 3 + ["sending"] + ["sent"] * 2
    listed = body(client.get(f"/api/notifications/{notification_id}/deliveries"
                             "?filter[state]=canceled", headers=service), 200)["data"]
    assert len(listed) == 3
    assert {item["attributes"]["reason"] for item in listed} == {ledger.CANCELED_REASON}

    set_states(app, notification_id, "sent", "sent", "sent")  # the one in flight went out
    shown = body(client.get(f"/api/notifications/{notification_id}", headers=service),
                 200)["data"]["attributes"]
    assert shown["status"] == "canceled"
    assert (shown["counts"]["sent"], shown["counts"]["canceled"]) == (3, 3)


def test_a_notification_not_canceled_shows_so(client, app, service):
    notification_id = sent_to(client, app, service, 1)
    shown = body(client.get(f"/api/notifications/{notification_id}", headers=service),
                 200)["data"]["attributes"]
    assert (shown["canceled"], shown["canceled_at"], shown["counts"]["canceled"]) == \
        (False, None, 0)


def test_cancelling_twice_changes_nothing(client, app, service):
    notification_id = sent_to(client, app, service, 3)
    first = body(patch(client, service, notification_id), 200)["data"]
    before = snapshot(app)

    again = body(patch(client, service, notification_id), 200)["data"]

    assert snapshot(app) == before
    assert again["attributes"] == first["attributes"]
    assert again["attributes"]["status"] == "canceled"


def test_a_done_notification_canceled_shows_canceled_with_nothing_canceled(
        client, app, service):
    notification_id = sent_to(client, app, service, 2)
    set_states(app, notification_id, "sent", "sent")
    shown = body(patch(client, service, notification_id), 200)["data"]["attributes"]
    assert (shown["status"], shown["counts"]["sent"], shown["counts"]["canceled"]) == \
        ("canceled", 2, 0)


@pytest.mark.parametrize("already", [False, True])
def test_uncancelling_is_refused(client, app, service, already):
    notification_id = sent_to(client, app, service, 2)
    if already:
        patch(client, service, notification_id)
    before = snapshot(app)

    error = error_of(patch(client, service, notification_id,
                           cancel_document(notification_id, canceled=False)), 403)

    assert error["source"] == {"pointer": "/data/attributes/canceled"}
    assert error["code"] == "CANNOT_UNCANCEL"
    assert snapshot(app) == before


def test_someone_elses_notification_is_not_found(client, app, service):
    notification_id = sent_to(client, app, service, 2)
    stranger = {"Authorization": f"Bearer {make_key(app)[0]}"}
    before = snapshot(app)

    for doc in (None, cancel_document(notification_id, canceled=False),
                cancel_document(notification_id, alert="Changed")):
        assert error_of(patch(client, stranger, notification_id, doc), 404)
    unknown = str(uuid.uuid4())
    assert error_of(patch(client, service, unknown), 404)
    assert error_of(patch(client, service, "not-a-uuid"), 404)
    assert snapshot(app) == before


def test_a_patch_needs_an_api_key_that_sends(client, app, service):
    notification_id = sent_to(client, app, service, 1)
    assert error_of(patch(client, {}, notification_id), 401)
    reader = {"Authorization": f"Bearer {make_key(app, ('topics:manage',))[0]}"}
    assert error_of(patch(client, reader, notification_id), 403)
    assert states_of(app, notification_id) == ["pending"]


@pytest.mark.parametrize(("change", "status", "pointer", "code"), [
    ({"type": "devices"}, 409, "/data/type", None),
    ({"id": str(uuid.uuid4())}, 409, "/data/id", "ID_MISMATCH"),
    ({"id": None}, 400, "/data", None),  # PATCH names the resource it changes
    ({"attributes": {"canceled": True, "alert": "Other"}}, 403, "/data/attributes/alert",
     "READ_ONLY_ATTRIBUTE"),
    ({"attributes": {"canceled": True, "status": "done"}}, 403, "/data/attributes/status",
     "READ_ONLY_ATTRIBUTE"),
    ({"attributes": {"canceled": True, "canceled_at": "2030-01-01T00:00:00.000Z"}}, 403,
     "/data/attributes/canceled_at", "READ_ONLY_ATTRIBUTE"),
    ({"attributes": {"canceled": True, "colour": "red"}}, 400, "/data/attributes/colour",
     None),
    ({"attributes": {"canceled": True, "live_activity_audience": {}}}, 400,
     "/data/attributes/live_activity_audience", None),
    ({"attributes": {"canceled": "yes"}}, 400, "/data/attributes/canceled", None),
    ({"attributes": {"canceled": 1}}, 400, "/data/attributes/canceled", None),
    ({"attributes": {"canceled": None}}, 400, "/data/attributes/canceled", None),
    ({"relationships": {"users": {"data": []}}}, 403, "/data/relationships/users", None),
])
def test_a_bad_document_is_refused_and_nothing_changes(client, app, service, change,
                                                        status, pointer, code):
    notification_id = sent_to(client, app, service, 2)
    doc = cancel_document(notification_id)
    doc["data"] |= change
    doc["data"] = {name: value for name, value in doc["data"].items() if value is not None}
    before = snapshot(app)

    error = error_of(patch(client, service, notification_id, doc), status)

    assert error["source"] == {"pointer": pointer}
    if code:
        assert error["code"] == code
    assert snapshot(app) == before


def test_members_sent_back_unchanged_pass(client, app, service):
    notification_id = sent_to(client, app, service, 2)
    shown = body(client.get(f"/api/notifications/{notification_id}", headers=service),
                 200)["data"]["attributes"]
    echoed = {name: shown[name] for name in ("alert", "push_type", "status", "counts")}

    after = body(patch(client, service, notification_id,
                       cancel_document(notification_id, **echoed)), 200)["data"]

    assert after["attributes"]["canceled"] is True
    assert states_of(app, notification_id) == ["canceled"] * 2


def test_a_patch_asking_nothing_changes_nothing(client, app, service):
    notification_id = sent_to(client, app, service, 2)
    before = snapshot(app)
    doc = {"data": {"type": "notifications", "id": notification_id, "attributes": {}}}
    shown = body(patch(client, service, notification_id, doc), 200)["data"]["attributes"]
    assert (shown["canceled"], shown["status"]) == (False, "queued")
    assert snapshot(app) == before


def test_a_post_cannot_send_a_notification_canceled(client, app, service):
    (alice,) = insert_users(app, 1)
    device_rows(app, alice, 1)
    error = error_of(send(client, service, document(users=[alice], canceled=True)), 403)
    assert error["source"] == {"pointer": "/data/attributes/canceled"}


# -- status ------------------------------------------------------------------------------


@pytest.mark.parametrize(("counts", "status"), [
    (notifications.Counts(pending=2, started=1, was_canceled=True), "sending"),
    (notifications.Counts(pending=0, canceled=4, was_canceled=True), "canceled"),
    (notifications.Counts(pending=0, sent=4, was_canceled=True), "canceled"),
    (notifications.Counts(pending=0, sent=4), "done"),
    (notifications.Counts(expanding=True, was_canceled=True), "expanding"),
])
def test_the_status_of_a_canceled_notification(counts, status):
    assert notifications.status_of(counts).value == status


# -- the operator's command --------------------------------------------------------------


def test_flask_push_cancel_prints_what_it_canceled(runner, client, app, service):
    notification_id = sent_to(client, app, service, 3)
    set_states(app, notification_id, "sent")

    shown = push(runner, "cancel", notification_id)

    assert (shown["id"], shown["canceled"], shown["already_canceled"], shown["status"]) == \
        (notification_id, 2, False, "canceled")
    assert (shown["counts"]["sent"], shown["counts"]["canceled"]) == (1, 2)
    again = push(runner, "cancel", notification_id)
    assert (again["canceled"], again["already_canceled"]) == (0, True)
    assert "no notification" in push(runner, "cancel", str(uuid.uuid4()), exit_code=1)
    assert "no notification" in push(runner, "cancel", "nope", exit_code=1)


# -- the ledger: nothing of a canceled notification goes back to pending -------------------


def claimed_and_canceled(app, count=3):
    """A notification whose deliveries were all claimed (in flight), then canceled."""
    with connected(app) as connection:
        devices = make_devices(connection, count)
    with app.app_context():
        notification, _ = notifications.accept(None, {"alert": "Hi"},
                                               devices=[device["id"] for device in devices])
        db.session.commit()
        notification_id = notification.id
    with connected(app) as connection:
        claimed = ledger.claim(connection, limit=count, lease=30, now=utcnow())
    with app.app_context():
        assert cancellation.cancel(db.session.get(Notification, notification_id)) == \
            cancellation.Canceled(0, True)
        db.session.commit()
    return notification_id, claimed


def test_a_retry_of_a_canceled_notification_is_written_canceled(app):
    notification_id, claimed = claimed_and_canceled(app)
    now = utcnow()
    results = [ledger.Result(claimed[0].id, DeliveryState.SENT, 200),
               ledger.Result(claimed[1].id, DeliveryState.PENDING, 503, "ServiceUnavailable",
                             next_attempt_at=now),
               ledger.Result(claimed[2].id, DeliveryState.FAILED, 400, "BadTopic")]
    with connected(app) as connection:
        written = ledger.record(connection, results, now, {c.id: c for c in claimed})
    assert [result.state for result in written] == ["sent", "canceled", "failed"]
    assert states_of(app, str(notification_id)) == ["canceled", "failed", "sent"]


def test_a_hand_back_of_a_canceled_notification_is_canceled(app):
    notification_id, claimed = claimed_and_canceled(app)
    with connected(app) as connection:
        assert sorted(ledger.release(connection, claimed, utcnow())) == \
            sorted(c.id for c in claimed)
    assert states_of(app, str(notification_id)) == ["canceled"] * 3


# -- an audience ---------------------------------------------------------------------------


@pytest.fixture
def broadcaster(app):
    return bearer(make_key(app, (SEND, BROADCAST))[0])


def test_an_audience_canceled_mid_expansion_stops_expanding(client, app, broadcaster):
    with connected(app) as connection:
        make_devices(connection, 7)
    notification_id = body(post(client, broadcaster, {"all": True}), 202)["data"]["id"]
    with connected(app) as connection:
        assert expansion.step(connection, 3, utcnow()).delivery_ids  # 3 written

    shown = body(patch(client, broadcaster, notification_id), 200)["data"]["attributes"]

    assert shown["status"] == "canceled"
    assert (shown["counts"]["targeted"], shown["counts"]["canceled"]) == (3, 3)
    with connected(app) as connection:
        assert expansion.step(connection, 3, utcnow()) is None  # nothing more is written
    assert states_of(app, notification_id) == ["canceled"] * 3


@pytest.mark.committed
def test_a_cancel_waits_for_an_expansion_step_in_progress(client, app, broadcaster, request):
    """PostgreSQL: a step holds the notification while it writes a chunk; the cancel waits
    for it, then cancels what it wrote, and no step comes after."""
    if request.config.getoption("--db") != "postgresql":
        pytest.skip("the step's row lock is PostgreSQL's")
    with app.app_context(), db.engine.begin() as connection:
        make_devices(connection, 7)
    notification_id = body(post(client, broadcaster, {"all": True}), 202)["data"]["id"]
    with app.app_context():
        engine = db.engine
    step = engine.connect()
    transaction = step.begin()
    written = expansion.step(step, 3, utcnow())
    assert written is not None and len(written.delivery_ids) == 3
    answers = []
    canceling = threading.Thread(
        target=lambda: answers.append(patch(app.test_client(), broadcaster, notification_id)))
    canceling.start()
    canceling.join(0.5)
    assert canceling.is_alive()  # waiting for the step
    transaction.commit()
    step.close()
    canceling.join(10)

    shown = body(answers[0], 200)["data"]["attributes"]
    assert (shown["status"], shown["counts"]["targeted"], shown["counts"]["canceled"]) == \
        ("canceled", 3, 3)
    with engine.begin() as connection:
        assert expansion.step(connection, 3, utcnow()) is None
    assert states_of(app, notification_id) == ["canceled"] * 3


def test_deliveries_beyond_what_a_cancel_writes_itself_are_shown_canceled(
        client, app, service, monkeypatch):
    """A cancel writes the first ``EAGER_LIMIT`` itself; the rest stay pending in the ledger
    until they come due, and are shown canceled meanwhile, as the counts say."""
    monkeypatch.setattr(cancellation, "EAGER_LIMIT", 2)
    notification_id = sent_to(client, app, service, 6)
    delay(app, notification_id, 6)  # none due yet: the workers have written nothing

    counts = body(patch(client, service, notification_id), 200)["data"]["attributes"]["counts"]
    assert (counts["pending"], counts["canceled"]) == (0, 6)
    assert states_of(app, notification_id) == ["canceled"] * 2 + ["pending"] * 4

    def listed(query=""):
        return body(client.get(f"/api/notifications/{notification_id}/deliveries?{query}",
                               headers=service), 200)["data"]

    assert {(item["attributes"]["state"], item["attributes"]["reason"])
            for item in listed()} == {("canceled", ledger.CANCELED_REASON)}
    assert len(listed("filter[state]=canceled")) == 6
    assert listed("filter[state]=pending") == []
    unwritten = next(row.apns_id for row in deliveries_of(app, notification_id)
                     if row.state == "pending")
    shown = body(client.get(f"/api/deliveries/{unwritten}", headers=service), 200)["data"]
    assert shown["attributes"]["state"] == "canceled"
