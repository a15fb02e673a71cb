"""How long GET /api/notifications/<id> takes when the notification has N deliveries.

    python bench/notification_read.py postgresql://127.0.0.1:5432/bench_read 300000

The database must be migrated (``flask db upgrade``); its notifications are emptied first.
Writes one notification with N sent deliveries and reads it seven times through the app:
its counts come from ``delivery_counts``, its ``deliveries`` linkage is the first page of
them, so the read should not grow with N.
"""

import os
import sys
import time
import uuid

NOTIFICATION = (
    "INSERT INTO notifications (id, sender_id, push_type, content, expanding, targeted, "
    "created_at, updated_at) VALUES (:id, :sender, 'alert', '{}', false, :n, now(), now())")
DELIVERIES = (
    "INSERT INTO deliveries (notification_id, channel, apns_id, state, attempts, "
    "next_attempt_at, scheduled_at, created_at, updated_at) "
    "SELECT :id, 'ios_push', gen_random_uuid(), 'sent', 1, now(), now(), "
    "now() - (g || ' ms')::interval, now() FROM generate_series(1, :n) g")
READS = 7


def main(url: str, count: int):
    os.environ["DATABASE_URL"] = url
    from sqlalchemy import text

    from app import create_app
    from app.extensions import db
    from app.resources import api_keys

    app = create_app()
    with app.app_context():
        db.session.execute(text("SET LOCAL statement_timeout = 0"))  # the writing is long
        db.session.execute(text("TRUNCATE notifications CASCADE"))
        key, secret = api_keys.create(f"read-{uuid.uuid4().hex[:8]}", ["notifications:send"])
        notification_id = uuid.uuid4()
        db.session.execute(text(NOTIFICATION), {"id": notification_id, "sender": key.id,
                                                "n": count})
        db.session.execute(text(DELIVERIES), {"id": notification_id, "n": count})
        db.session.commit()
        db.session.execute(text("ANALYZE deliveries"))
        db.session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {secret}", "Accept": "application/vnd.api+json"}
    times = []
    for _ in range(READS):
        started = time.perf_counter()
        answer = client.get(f"/api/notifications/{notification_id}", headers=headers)
        times.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.data[:300]
    times.sort()
    print(f"{count} deliveries: GET p50 {times[READS // 2] * 1000:.1f} ms, "
          f"min {times[0] * 1000:.1f} ms")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
