"""POST /api/notifications: backend services (API keys with ``notifications:send``) hand
notifications to the delivery ledger, one delivery per reachable device; GET shows their
status and counts, and pages their deliveries."""

import base64
import json
import secrets
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
from sqlalchemy import delete, func, insert, select, update

from app.extensions import db
from app.models import CredentialKind, Delivery, DeliveryCount, Device, Notification
from app.models.types import utcnow
from app.resources import api_keys, notifications
from app.web.auth import principal_of
from tests.factories import bearer, log_in
from tests.jsonapi_helpers import (
    Caller,
    body,
    counted_statements,
    error_of,
    insert_devices,
    insert_users,
)
from tests.jsonapi_schema import JSONAPI

SCOPE = "notifications:send"


def make_key(app, scopes=(SCOPE,)):
    """An API key's secret, and the database id of its credential."""
    with app.app_context():
        key, secret = api_keys.create(f"service-{uuid.uuid4()}", scopes)
        db.session.commit()  # as `flask keys create` does
        key_id = key.id
        db.session.remove()
    return secret, key_id


@pytest.fixture
def service(app):
    return bearer(make_key(app)[0])


def identifiers(type_name, ids):
    return {"data": [{"type": type_name, "id": str(item)} for item in ids]}


def document(users=(), devices=(), **attributes):
    relationships = {}
    if users:
        relationships["users"] = identifiers("users", users)
    if devices:
        relationships["devices"] = identifiers("devices", devices)
    return {"data": {"type": "notifications",
                     "attributes": {"alert": "Hello", **attributes},
                     "relationships": relationships}}


def device_rows(app, user_id=None, count=1, **attributes):
    """``count`` devices (of ``user_id``): their ids."""
    tokens = insert_devices(app, count, user_id=user_id, **attributes)
    with app.app_context():
        ids = db.session.scalars(select(Device.id).where(Device.token.in_(tokens))).all()
        db.session.remove()
    return set(ids)


def deliveries_of(app, notification_id):
    with app.app_context():
        rows = db.session.scalars(select(Delivery).where(
            Delivery.notification_id == uuid.UUID(notification_id))).all()
        db.session.remove()
    return rows


def row_count(app, model):
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(model))
        db.session.remove()
    return count


def send(client, headers, doc, key=None):
    extra = {"Idempotency-Key": key} if key else {}
    return client.post("/api/notifications", json=doc, headers={**headers, **extra})


# -- accepting -------------------------------------------------------------------------


def test_a_notification_is_accepted_with_one_delivery_per_device(client, app, service):
    (alice, bob) = insert_users(app, 2)
    alices = device_rows(app, alice, 3)
    bobs = device_rows(app, bob, 1)
    response = send(client, service, document(users=[alice], devices=bobs,
                                              data={"post": "p1"}, badge=2))
    sent = body(response, 202)["data"]
    url = f"http://localhost/api/notifications/{sent['id']}"
    assert sent["links"]["self"] == url and response.headers["Content-Location"] == url
    assert sent["attributes"]["status"] == "queued"
    by_state = {"pending": 4, "sent": 0, "failed": 0, "invalidated": 0, "expired": 0,
                "canceled": 0}
    assert sent["attributes"]["counts"] == {**by_state, "targeted": 4,
                                            "by_channel": {"ios_push": by_state}}
    assert sent["attributes"]["data"] == {"post": "p1"} and sent["attributes"]["badge"] == 2
    rows = deliveries_of(app, sent["id"])
    assert {row.device_id for row in rows} == alices | bobs
    assert len({row.apns_id for row in rows}) == 4
    assert all(row.apns_id.version == 4 for row in rows)
    assert {row.state for row in rows} == {"pending"}
    listed = body(client.get(f"/api/notifications/{sent['id']}/deliveries",
                             headers=service), 200)["data"]
    assert {item["id"] for item in listed} == {str(row.apns_id) for row in rows}
    with app.app_context():
        stored = db.session.get(Notification, uuid.UUID(sent["id"]))
        assert stored.content["custom"] == {"post": "p1"} and stored.push_type == "alert"
        db.session.remove()


def test_users_expand_to_their_reachable_devices_only(client, app, service):
    (alice, bob) = insert_users(app, 2)
    reachable = device_rows(app, alice, 2)
    device_rows(app, alice, is_invalidated=True)
    device_rows(app, alice, is_voip=True)
    device_rows(app, alice, channel=None, token=None)  # an installation without a token
    bobs = device_rows(app, bob)
    named_twice = next(iter(reachable))  # also named as a device: still one delivery
    sent = body(send(client, service, document(users=[alice], devices=[named_twice])), 202)
    rows = deliveries_of(app, sent["data"]["id"])
    assert sorted(row.device_id for row in rows) == sorted(reachable)
    assert not bobs & {row.device_id for row in rows}


def test_voip_pushes_go_to_voip_tokens_only(client, app, service):
    (alice,) = insert_users(app, 1)
    device_rows(app, alice, 2)
    voip = device_rows(app, alice, is_voip=True)
    sent = body(send(client, service, document(users=[alice], push_type="voip")), 202)
    assert {row.device_id for row in deliveries_of(app, sent["data"]["id"])} == voip


def test_live_activity_starts_go_to_push_to_start_tokens_only(client, app, service):
    (alice,) = insert_users(app, 1)
    device_rows(app, alice, 2)
    starters = device_rows(app, alice, live_activity_token="sealed")
    sent = body(send(client, service, document(
        users=[alice], alert=None, push_type="liveactivity", event="start",
        timestamp="2030-01-01T00:00:00Z", attributes_type="Score", attributes={"a": 1},
        content_state={"score": 0})), 202)
    assert {row.device_id for row in deliveries_of(app, sent["data"]["id"])} == starters
    assert sent["data"]["attributes"]["timestamp"] == "2030-01-01T00:00:00.000Z"


def test_recipients_without_devices_make_a_notification_that_is_done(client, app, service):
    (alice,) = insert_users(app, 1)
    sent = body(send(client, service, document(users=[alice])), 202)["data"]
    assert sent["attributes"]["status"] == "done"
    counts = sent["attributes"]["counts"]
    assert counts.pop("by_channel") == {} and set(counts.values()) == {0}


def test_the_deliveries_are_written_set_based_for_any_number_of_devices(app):
    """1,000 users with 20 devices each: ten INSERT … SELECTs, not a loop per device."""
    users = insert_users(app, 1000, phone_number=None)
    with app.app_context():
        db.session.execute(insert(Device), [
            {"id": uuid.uuid4(), "channel": "ios_push", "token": secrets.token_hex(32),
             "user_id": uuid.UUID(user), "environment": "production", "is_voip": False,
             "is_invalidated": False, "last_seen_at": utcnow(), "created_at": utcnow(),
             "updated_at": utcnow()} for user in users for _ in range(20)])
        key, secret = api_keys.create("bulk", [SCOPE])
        principal = principal_of(key.id, CredentialKind.API_KEY, None, secret, [SCOPE])
        with counted_statements(app) as statements:
            notification, created = notifications.accept(
                principal, {"alert": "All"}, users=[uuid.UUID(user) for user in users])
        assert created and notifications.counts(notification).pending == 20_000
        statements = [s for s in statements if "SAVEPOINT" not in s]
        inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT")]
        assert len(inserts) == 1 + 1000 // notifications.RECIPIENTS_PER_STATEMENT
        # beside the inserts: the users looked up, the targeted count written once, the
        # notification read back, and on PostgreSQL the idle workers woken (NOTIFY)
        others = [s.split()[0:2] for s in statements if s not in inserts]
        assert len(statements) <= len(inserts) + 4, others
        db.session.remove()


# -- idempotency -----------------------------------------------------------------------


def test_a_retry_with_the_same_key_returns_the_first_notification(client, app, service):
    (alice,) = insert_users(app, 1)
    device_rows(app, alice, 2)
    first = body(send(client, service, document(users=[alice]), key="k-1"), 202)["data"]
    again = body(send(client, service, document(users=[alice]), key="k-1"), 202)["data"]
    assert again["id"] == first["id"]
    assert row_count(app, Notification) == 1 and row_count(app, Delivery) == 2
    other = body(send(client, service, document(users=[alice]), key="k-2"), 202)["data"]
    assert other["id"] != first["id"]


def test_a_key_is_per_sender(client, app, service):
    (alice,) = insert_users(app, 1)
    mine = body(send(client, service, document(users=[alice]), key="k"), 202)["data"]
    theirs = body(send(client, bearer(make_key(app)[0]), document(users=[alice]), key="k"),
                  202)["data"]
    assert mine["id"] != theirs["id"]


def test_the_same_key_with_other_content_is_a_conflict(client, app, service):
    (alice,) = insert_users(app, 1)
    body(send(client, service, document(users=[alice]), key="k"), 202)
    error = error_of(send(client, service, document(users=[alice], alert="Other"), key="k"),
                     409)
    assert error["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert error["source"] == {"header": "Idempotency-Key"}
    assert row_count(app, Notification) == 1


@pytest.mark.committed
@pytest.mark.slow
def test_concurrent_retries_make_one_notification(app, live):
    """Eight retries of one request at once, over gunicorn's workers: one notification,
    one set of deliveries, and every retry is answered with it."""
    secret, _ = make_key(app)
    (alice,) = insert_users(app, 1)
    device_rows(app, alice, 3)
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": JSONAPI,
               "Accept": JSONAPI, "Idempotency-Key": "retry-1"}
    barrier = threading.Barrier(8, timeout=30)

    def post(_):
        barrier.wait()
        return requests.post(f"{live.url}/api/notifications", json=document(users=[alice]),
                             headers=headers, timeout=30)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(post, range(8)))
    assert {response.status_code for response in responses} == {202}, \
        [response.text[:300] for response in responses]
    assert len({response.json()["data"]["id"] for response in responses}) == 1
    assert row_count(app, Notification) == 1 and row_count(app, Delivery) == 3


# -- who may send ------------------------------------------------------------------------


def test_user_credentials_get_403(client, app):
    caller = Caller(client, app)
    error = error_of(send(client, caller.headers, document(users=[caller.user_id])), 403)
    assert error["code"] == "FORBIDDEN_FOR_USERS"
    assert row_count(app, Notification) == 0


def test_an_api_key_without_the_scope_gets_403(client, app):
    (alice,) = insert_users(app, 1)
    headers = bearer(make_key(app, scopes=())[0])
    assert error_of(send(client, headers, document(users=[alice])), 403)["code"] == \
        "INSUFFICIENT_SCOPE"
    assert error_of(client.post("/api/notifications", json=document(users=[alice])),
                    401)["code"] == "NOT_AUTHORIZED"


# -- bad input -----------------------------------------------------------------------------

UNKNOWN = str(uuid.uuid4())
LIVE_START = {"alert": None, "push_type": "liveactivity", "event": "start",
              "timestamp": 1_900_000_000, "attributes_type": "A", "attributes": {},
              "content_state": {}}


def relationships(**linkage):
    return lambda user: {name: {"data": value(user) if callable(value) else value}
                         for name, value in linkage.items()}


BAD_INPUT = {
    "unknown push type": ({"push_type": "location"}, None, 400,
                          "/data/attributes/push_type"),
    "bad priority": ({"priority": 3}, None, 400, "/data/attributes/priority"),
    "background at priority 10": ({"push_type": "background", "priority": 10}, None, 400,
                                  "/data/attributes/priority"),
    "payload too large": ({"data": {"blob": "x" * 5000}}, None, 422,
                          "/data/attributes/data"),
    "alert too large": ({"alert": {"body": "é" * 3000}}, None, 422,
                        "/data/attributes/alert"),
    "aps among the custom keys": ({"data": {"aps": {}}}, None, 400, "/data/attributes/data"),
    "unknown alert key": ({"alert": {"text": "hi"}}, None, 400, "/data/attributes/alert"),
    "expiration in the past": ({"expiration": "2001-01-01T00:00:00Z"}, None, 400,
                               "/data/attributes/expiration"),
    "expiration not a time": ({"expiration": "tomorrow"}, None, 400,
                              "/data/attributes/expiration"),
    # item 19.5: times no datetime can show (a stored one was never readable again)
    "expiration of 10**15 seconds": ({"expiration": 10**15}, None, 400,
                                     "/data/attributes/expiration"),
    "expiration past 9999 in UTC": ({"expiration": "9999-12-31T23:59:59-14:00"}, None, 400,
                                    "/data/attributes/expiration"),
    "badge past a 32-bit integer": ({"badge": 10**30}, None, 400, "/data/attributes/badge"),
    "huge timestamp": ({**LIVE_START, "timestamp": 10**15}, None, 400,
                       "/data/attributes/timestamp"),
    "timestamp before 1970": ({**LIVE_START, "timestamp": "1969-12-31T23:59:59.5Z"}, None,
                              400, "/data/attributes/timestamp"),
    "stale date past 9999 in UTC": ({**LIVE_START, "stale_date": "9999-12-31T23:59:59-14:00"},
                                    None, 400, "/data/attributes/stale_date"),
    "huge dismissal date": ({**LIVE_START, "dismissal_date": 2**63}, None, 400,
                            "/data/attributes/dismissal_date"),
    "live activity update with start's attributes": (
        {**LIVE_START, "event": "update"}, None, 400, "/data/attributes/attributes_type"),
    "live activity update to users": (
        {"push_type": "liveactivity", "event": "update", "content_state": {"eta": 5}}, None,
        422, "/data/relationships/users"),
    "live activity update without content state": (
        {"push_type": "liveactivity", "event": "update"}, None, 400,
        "/data/attributes/content_state"),
    "dismissal date on an update": (
        {"push_type": "liveactivity", "event": "update", "content_state": {},
         "dismissal_date": 1}, None, 400, "/data/attributes/dismissal_date"),
    "live activity audience on an alert": ({"live_activity_audience": {
        "attributes_type": "Match"}}, None, 422, "/data/attributes/live_activity_audience"),
    "malformed live activity audience": ({"live_activity_audience": {"activity_id": "x"}},
                                         None, 400, "/data/attributes/live_activity_audience"),
    "live activity start without timestamp": ({**LIVE_START, "timestamp": None}, None, 400,
                                               "/data/attributes/timestamp"),
    "read-only status": ({"status": "done"}, None, 403, "/data/attributes/status"),
    "no recipients": ({}, relationships(), 422, "/data/relationships/users"),
    "users not a list": ({}, relationships(users=lambda user: {"type": "users", "id": user}),
                         400, "/data/relationships/users/data"),
    "identifier without id": ({}, relationships(users=[{"type": "users"}]), 400,
                              "/data/relationships/users/data/0"),
    "identifier of another type": ({}, relationships(
        users=lambda user: [{"type": "users", "id": user}, {"type": "devices", "id": user}]),
        409, "/data/relationships/users/data/1/type"),
    "id not a UUID": ({}, relationships(users=[{"type": "users", "id": "alice"}]), 400,
                      "/data/relationships/users/data/0/id"),
    "unknown user": ({}, relationships(
        users=lambda user: [{"type": "users", "id": user}, {"type": "users", "id": UNKNOWN}]),
        404, "/data/relationships/users/data/1"),
    "unknown device": ({}, relationships(devices=[{"type": "devices", "id": UNKNOWN}]), 404,
                       "/data/relationships/devices/data/0"),
    "deliveries sent": ({}, relationships(users=lambda user: [{"type": "users", "id": user}],
                                          deliveries=[]), 403,
                        "/data/relationships/deliveries"),
}


@pytest.mark.parametrize(("attributes", "linkage", "status", "pointer"), BAD_INPUT.values(),
                         ids=BAD_INPUT.keys())
def test_bad_input_is_refused_with_a_pointer_and_nothing_is_written(
        client, app, service, attributes, linkage, status, pointer):
    (alice,) = insert_users(app, 1)
    device_rows(app, alice, 2, live_activity_token="sealed")
    doc = document(users=[alice], **attributes)
    if linkage is not None:
        doc["data"]["relationships"] = linkage(alice)
    response = send(client, service, doc)
    error = error_of(response, status)
    assert error["source"] == {"pointer": pointer}, error
    assert row_count(app, Notification) == 0 and row_count(app, Delivery) == 0


def test_a_retry_of_a_refused_time_is_refused_again_and_nothing_is_kept(client, app,
                                                                          service):
    (alice,) = insert_users(app, 1)
    device_rows(app, alice, 1, live_activity_token="sealed")
    huge = document(users=[alice], **{**LIVE_START, "timestamp": 10**15})
    for _ in range(2):
        error = error_of(send(client, service, huge, key="k-huge"), 400)
        assert error["source"] == {"pointer": "/data/attributes/timestamp"}
    assert row_count(app, Notification) == 0
    latest = document(users=[alice], **{**LIVE_START, "timestamp": "9999-12-31T23:59:59Z",
                                        "stale_date": 0})
    sent = body(send(client, service, latest, key="k-huge"), 202)["data"]
    assert sent["attributes"]["timestamp"] == "9999-12-31T23:59:59.000Z"
    shown = body(client.get(f"/api/notifications/{sent['id']}", headers=service), 200)
    assert shown["data"]["attributes"] == sent["attributes"]


def test_a_bad_idempotency_key_names_the_header(client, app, service):
    (alice,) = insert_users(app, 1)
    error = error_of(send(client, service, document(users=[alice]), key="k" * 256), 400)
    assert error["source"] == {"header": "Idempotency-Key"}


# -- reading back ---------------------------------------------------------------------------


def set_states(app, notification_id, *states):
    """Give the notification's deliveries these states, in order (as workers would)."""
    with app.app_context():
        ids = db.session.scalars(select(Delivery.id).where(
            Delivery.notification_id == uuid.UUID(notification_id)).order_by(Delivery.id))
        for delivery_id, state in zip(list(ids), states, strict=False):
            db.session.execute(update(Delivery).where(Delivery.id == delivery_id).values(
                state=state, attempts=0 if state == "pending" else 1))
        db.session.commit()
        db.session.remove()


@pytest.mark.parametrize(("states", "status", "counts"), [
    (("pending",) * 6, "queued", {"pending": 6}),
    (("sending", "pending", "pending", "pending", "pending", "pending"), "sending",
     {"pending": 6}),
    (("sent", "failed", "pending", "pending", "pending", "pending"), "sending",
     {"pending": 4, "sent": 1, "failed": 1}),
    (("sent", "sent", "failed", "invalidated", "expired", "sent"), "done",
     {"sent": 3, "failed": 1, "invalidated": 1, "expired": 1}),
])
def test_status_and_counts_are_read_from_the_deliveries(client, app, service, states, status,
                                                        counts):
    (alice,) = insert_users(app, 1)
    device_rows(app, alice, 6)
    sent = body(send(client, service, document(users=[alice])), 202)["data"]
    set_states(app, sent["id"], *states)
    shown = body(client.get(f"/api/notifications/{sent['id']}", headers=service),
                 200)["data"]["attributes"]
    assert shown["status"] == status
    by_state = {"pending": 0, "sent": 0, "failed": 0, "invalidated": 0, "expired": 0,
                "canceled": 0, **counts}
    assert shown["counts"] == {**by_state, "targeted": 6,
                               "by_channel": {"ios_push": by_state}}


def test_deliveries_are_paged_and_filtered(client, app, service):
    (alice,) = insert_users(app, 1)
    device_rows(app, alice, 25)
    sent = body(send(client, service, document(users=[alice])), 202)["data"]
    assert sent["relationships"]["deliveries"]["meta"]["count"] == 25
    url, seen = f"/api/notifications/{sent['id']}/deliveries?page[size]=10", []
    while url:
        page = body(client.get(url, headers=service), 200)
        seen += [item["id"] for item in page["data"]]
        url = page["links"]["next"]
    assert len(seen) == 25 == len(set(seen))
    set_states(app, sent["id"], "sent", "sent", "failed")
    sent_only = body(client.get(f"/api/notifications/{sent['id']}/deliveries"
                                "?filter[state]=sent", headers=service), 200)["data"]
    assert [item["attributes"]["state"] for item in sent_only] == ["sent", "sent"]
    one = body(client.get(f"/api/deliveries/{seen[0]}", headers=service), 200)["data"]
    assert one["attributes"]["apns_id"] == seen[0] and one["attributes"]["attempts"] in (0, 1)
    linkage = body(client.get(f"/api/notifications/{sent['id']}/relationships/deliveries",
                              headers=service), 200)["data"]
    assert len(linkage) == 20 and all(item["type"] == "deliveries" for item in linkage)


def test_another_services_notification_is_404(client, app, service):
    (alice,) = insert_users(app, 1)
    device_rows(app, alice)
    sent = body(send(client, service, document(users=[alice])), 202)["data"]
    apns_id = deliveries_of(app, sent["id"])[0].apns_id
    stranger = bearer(make_key(app)[0])
    for path in (f"/api/notifications/{sent['id']}",
                 f"/api/notifications/{sent['id']}/deliveries",
                 f"/api/notifications/{sent['id']}/relationships/deliveries",
                 f"/api/deliveries/{apns_id}", "/api/notifications/not-a-uuid"):
        assert error_of(client.get(path, headers=stranger), 404)["code"] == "NOT_FOUND", path
    assert client.get(f"/api/notifications/{sent['id']}", headers=service).status_code == 200


def test_ids_and_cursors_that_are_not_ascii_or_too_large_name_nothing(client, app, service):
    (alice,) = insert_users(app, 1)
    device_rows(app, alice)
    sent = body(send(client, service, document(users=[alice])), 202)["data"]
    apns_id = str(deliveries_of(app, sent["id"])[0].apns_id)
    arabic_indic = str.maketrans("0123456789", "".join(chr(0x660 + d) for d in range(10)))
    for path in (f"/api/notifications/{sent['id'].translate(arabic_indic)}",
                 f"/api/deliveries/{apns_id.translate(arabic_indic)}"):
        assert error_of(client.get(path, headers=service), 404)["code"] == "NOT_FOUND", path
    huge_id = base64.urlsafe_b64encode(json.dumps(
        ["2024-01-01T00:00:00+00:00", str(2**63)]).encode()).decode().rstrip("=")
    error = error_of(client.get(f"/api/notifications/{sent['id']}/deliveries"
                                f"?page[after]={huge_id}", headers=service), 400)
    assert error["source"] == {"parameter": "page[after]"}


def test_expiration_sets_when_the_notification_expires(client, app, service):
    (alice,) = insert_users(app, 1)
    at = (utcnow() + timedelta(hours=1)).replace(microsecond=0)
    sent = body(send(client, service, document(users=[alice], expiration=int(at.timestamp()))),
                202)["data"]
    with app.app_context():
        assert db.session.get(Notification, uuid.UUID(sent["id"])).expires_at == at
        db.session.remove()
    once = body(send(client, service, document(users=[alice], expiration=0)), 202)["data"]
    assert once["attributes"]["expiration"] == 0


@pytest.mark.parametrize("method", ["DELETE", "PATCH", "POST"])
@pytest.mark.parametrize("caller", ["user", "service"])
def test_deliveries_linkage_is_read_only_for_every_caller(client, app, service, method,
                                                          caller):
    """Found by schemathesis: writing a notification's deliveries linkage was a 500."""
    headers = service if caller == "service" else bearer(log_in(client, app)[0])
    response = client.open(f"/api/notifications/{uuid.uuid4()}/relationships/deliveries",
                           method=method, headers={**headers, "Content-Type": JSONAPI},
                           json={"data": []})
    assert error_of(response, 405)["code"] == "METHOD_NOT_ALLOWED"
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS"


def test_counts_are_kept_by_the_database_not_counted_on_read(client, app, service):
    """GET reads the counts the triggers keep: one query on a few rows, whatever the
    number of deliveries; every insert, state change and delete keeps them exact."""
    (alice,) = insert_users(app, 1)
    device_rows(app, alice, 30)
    sent = body(send(client, service, document(users=[alice])), 202)["data"]
    with app.app_context():
        ids = db.session.scalars(select(Delivery.id).order_by(Delivery.id)).all()
        for state, chosen in (("sent", ids[:10]), ("failed", ids[10:15]),
                              ("sending", ids[15:20])):
            db.session.execute(update(Delivery).where(Delivery.id.in_(chosen))
                               .values(state=state, attempts=1))
        stored = db.session.scalar(select(func.count()).select_from(DeliveryCount).where(
            DeliveryCount.notification_id == uuid.UUID(sent["id"])))
        db.session.execute(delete(Delivery).where(Delivery.state == "failed"))
        db.session.commit()
    assert stored < 10  # a few rows per statement, not one per delivery
    with counted_statements(app) as statements:
        shown = body(client.get(f"/api/notifications/{sent['id']}", headers=service),
                     200)["data"]["attributes"]
    # (the deliveries relationship's linkage reads a bounded first page, as before)
    assert not any("GROUP BY deliveries" in statement for statement in statements)
    assert (shown["status"], shown["counts"]["pending"], shown["counts"]["sent"],
            shown["counts"]["failed"], shown["counts"]["targeted"]) == \
        ("sending", 15, 10, 0, 30)
