"""A cancel against real workers and the fake APNs: the scheduled half of a notification
never reaches it, a retry after the cancel is canceled, a large cancel is finished by the
workers without a request, receipts say ``canceled``, and a cancel racing a worker that is
sending loses and doubles nothing (PostgreSQL, the embedded queue and procrastinate)."""

from datetime import timedelta

import pytest
from sqlalchemy import update

from app.extensions import db
from app.models import Delivery, Notification
from app.models.types import utcnow
from app.resources import cancellation
from tests import test_dispatch, test_receipts
from tests.factories import bearer
from tests.fake_apns import Answer
from tests.jsonapi_helpers import body
from tests.test_dispatch import (  # noqa: F401  (fixtures)
    _no_worker_outlives_its_test,
    apns_environ,
    finished,
    one_notification,
    rows,
    send_due,
    state_of,
    worker_process,
)
from tests.test_notifications_api import make_key
from tests.test_procrastinate_queue import _clear_jobs, delivery_jobs, enqueued
from tests.test_receipts import (
    acknowledged,
    dispatch_all,
    key_with_callback,
    nothing_waits,
    send_receipts,
    sent_by,
)

pytestmark = pytest.mark.committed  # the workers read the ledger on their own connections

fake = test_dispatch.fake  # the fake APNs fixture
receiver = test_receipts.receiver  # a webhook receiver for the receipts


def sender(app, deliveries):
    """An API key that sent the notification of ``deliveries``: its request headers."""
    secret, key_id = make_key(app)
    sent_by(app, key_id, deliveries)
    return bearer(secret)


def cancel(app, headers, deliveries):
    """PATCH the notification canceled: its attributes as the answer shows them."""
    notification_id = str(deliveries[0]["notification_id"])
    response = app.test_client().patch(
        f"/api/notifications/{notification_id}", headers=headers,
        json={"data": {"type": "notifications", "id": notification_id,
                       "attributes": {"canceled": True}}})
    return body(response, 200)["data"]["attributes"]


def shown(app, headers, deliveries):
    notification_id = deliveries[0]["notification_id"]
    return body(app.test_client().get(f"/api/notifications/{notification_id}",
                                      headers=headers), 200)["data"]["attributes"]


def postpone(app, deliveries, hours=1.0):
    with rows(app) as connection:
        connection.execute(update(Delivery.__table__).where(
            Delivery.__table__.c.apns_id.in_([d["apns_id"] for d in deliveries]))
            .values(next_attempt_at=utcnow() + timedelta(hours=hours)))


def states(app, deliveries):
    now = state_of(app)
    return [now[str(d["apns_id"])].state for d in deliveries]


def test_half_sent_half_scheduled_the_scheduled_half_never_reaches_the_fake(
        app, fake, key_file):
    devices, deliveries = one_notification(app, 20)
    headers = sender(app, deliveries)
    postpone(app, deliveries[10:])  # scheduled: not due for an hour
    assert send_due(app, apns_environ(fake, key_file))["sent"] == 10

    attributes = cancel(app, headers, deliveries)
    postpone(app, deliveries[10:], hours=-1)  # their moment comes
    totals = send_due(app, apns_environ(fake, key_file))

    assert totals["sent"] == 0
    assert sorted(entry.token for entry in fake.log) == \
        sorted(device["token"] for device in devices[:10])
    assert states(app, deliveries) == ["sent"] * 10 + ["canceled"] * 10
    assert (attributes["status"], attributes["counts"]["sent"],
            attributes["counts"]["canceled"]) == ("canceled", 10, 10)


def test_a_retry_that_comes_back_after_the_cancel_is_canceled(app, fake, key_file,
                                                              service_env):
    devices, deliveries = one_notification(app, 5)
    headers = sender(app, deliveries)
    for device in devices:
        fake.answer(device["token"], Answer(503, "ServiceUnavailable"), Answer(200))
    fake.hold()
    process = worker_process(service_env, apns_environ(fake, key_file), "--burst",
                             PUSH_RETRY_BASE=0.05)
    assert fake.wait_for_requests(5, timeout=60)

    in_flight = cancel(app, headers, deliveries)
    fake.release()  # the 503s: each would be retried
    totals = finished(process)

    assert in_flight["status"] == "sending" and in_flight["counts"]["pending"] == 5
    assert totals.get("sent", 0) == 0 and totals["canceled"] == 5
    assert [entry.status for entry in fake.log] == [503] * 5
    assert states(app, deliveries) == ["canceled"] * 5
    assert shown(app, headers, deliveries)["status"] == "canceled"


def test_a_large_cancel_is_finished_by_the_workers_sending_nothing(
        app, fake, key_file, monkeypatch):
    monkeypatch.setattr(cancellation, "EAGER_LIMIT", 3)
    _, deliveries = one_notification(app, 10)
    with app.app_context():
        canceled = cancellation.cancel(db.session.get(Notification,
                                                      deliveries[0]["notification_id"]))
        db.session.commit()
        db.session.remove()
    assert canceled == cancellation.Canceled(10, True)
    assert sorted(states(app, deliveries)) == ["canceled"] * 3 + ["pending"] * 7
    headers = sender(app, deliveries)
    attributes = shown(app, headers, deliveries)  # canceled all the same
    assert (attributes["status"], attributes["counts"]["pending"],
            attributes["counts"]["canceled"]) == ("canceled", 0, 10)

    totals = send_due(app, apns_environ(fake, key_file))

    assert (totals.get("sent", 0), totals["canceled"]) == (0, 7)
    assert fake.log == []
    assert states(app, deliveries) == ["canceled"] * 10


def test_receipts_tell_each_canceled_delivery(app, receiver, monkeypatch):
    monkeypatch.setattr(cancellation, "EAGER_LIMIT", 2)  # the rest: the workers' receipts
    key_id = key_with_callback(app, receiver)
    _, deliveries = one_notification(app, 5)
    sent_by(app, key_id, deliveries)
    with app.app_context():
        cancellation.cancel(db.session.get(Notification, deliveries[0]["notification_id"]))
        db.session.commit()
        db.session.remove()
    # no APNs client: the workers cancel the rest without one
    assert dispatch_all(app)["canceled"] == 3

    send_receipts(app, nothing_waits(app))

    events = [event for entry in acknowledged(receiver) for event in entry.body["events"]]
    assert all(entry.verified for entry in acknowledged(receiver))
    assert sorted(event["delivery_id"] for event in events) == \
        sorted(str(d["apns_id"]) for d in deliveries)
    assert {(event["state"], event["reason"]) for event in events} == {("canceled",
                                                                        "Canceled")}


@pytest.mark.parametrize("queue", ["embedded", "procrastinate"])
def test_a_cancel_racing_a_worker_loses_and_doubles_nothing(
        app, fake, key_file, service_env, queue, request):
    if request.config.getoption("--db") != "postgresql":
        pytest.skip("races are decided by PostgreSQL")
    count = 1500
    devices, deliveries = one_notification(app, count)
    headers = sender(app, deliveries)
    for device in devices[::7]:  # some come back as retries, before or after the cancel
        fake.answer(device["token"], Answer(503, "ServiceUnavailable"), Answer(200))
    fake.latency = 0.005
    settings = {"PUSH_CHUNK_SIZE": 50, "PUSH_RETRY_BASE": 0.05, "PUSH_QUEUE": queue}
    if queue == "procrastinate":
        _clear_jobs(app)
        enqueued(app, deliveries, 50)
    environ = apns_environ(fake, key_file)
    process = worker_process(service_env, environ, "--burst", **settings)
    assert fake.wait_for_requests(200, timeout=90)

    attributes = cancel(app, headers, deliveries)
    finished(process)
    finished(worker_process(service_env, environ, "--burst", **settings))  # nothing left

    now = state_of(app)
    sent = sorted(apns_id for apns_id, row in now.items() if row.state == "sent")
    assert {row.state for row in now.values()} == {"sent", "canceled"}
    assert sorted(entry.apns_id for entry in fake.log if entry.status == 200) == sent
    assert fake.twice_accepted() == []
    final = shown(app, headers, deliveries)
    assert final["status"] == "canceled"
    assert final["counts"]["sent"] == len(sent)
    assert final["counts"]["canceled"] == count - len(sent) > 0
    assert attributes["counts"]["canceled"] > 0
    if queue == "procrastinate":
        assert delivery_jobs(app) == []
        _clear_jobs(app)
