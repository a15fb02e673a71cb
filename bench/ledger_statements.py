"""Where PostgreSQL's time and WAL go for one chunk of an audience: the expansion step
(``expansion.step``: the keyset read and the ``INSERT … SELECT``), the claim
(``ledger.claim``) and the outcomes (``ledger.record``, every push sent), each statement
with its triggers (``delivery_counts``), as PostgreSQL's ``auto_explain`` reports them.

Run after ``bench/push_audience.py`` has seeded a database (its devices are reused; the
notification written here is deleted at the end, its deliveries with it):

    .venv/bin/python bench/ledger_statements.py [--database-url URL] [--chunk-size 1000]
        [--chunks 5]

Prints, per statement kind, the milliseconds and WAL bytes (of the statement's own plan,
not its triggers') a chunk (the median over ``--chunks``) and per delivery, and each of
its triggers' milliseconds: the counts' and the foreign keys' checks. Needs a
superuser (``LOAD 'auto_explain'``).
"""

import argparse
import json
import statistics
import sys
import uuid
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from app.config import normalise_database_url  # noqa: E402
from app.models.notification import DeliveryState, Notification  # noqa: E402
from app.models.types import utcnow  # noqa: E402
from app.push import expansion, ledger  # noqa: E402
from bench.push_fanout import ALERT, DEFAULT_DATABASE  # noqa: E402

EXPLAIN = ("LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0",
           "SET auto_explain.log_analyze = on", "SET auto_explain.log_wal = on",
           "SET auto_explain.log_triggers = on", "SET auto_explain.log_timing = on",
           "SET auto_explain.log_format = json", "SET auto_explain.log_level = notice",
           "SET client_min_messages = notice")


def plans(connection):
    """The plans auto_explain sends as notices, collected as they come."""
    seen = []

    def kept(notice):
        text = notice.message_primary or ""
        if "Plan" in text:
            seen.append(json.loads(text[text.index("{"):]))
    connection.connection.driver_connection.add_notice_handler(kept)
    return seen


def kind_of(plan) -> str | None:
    text = plan["Query Text"].lstrip().upper()
    if text.startswith("INSERT INTO DELIVERIES"):
        return "expansion INSERT … SELECT"
    if text.startswith("SELECT DEVICES.ID"):
        return "expansion keyset read"
    if text.startswith("UPDATE DELIVERIES SET STATE") and "LEASE_UNTIL" in text[:200]:
        return "claim" if "RETURNING" in text else "outcomes (sent)"
    return None


def one_chunk(connection, notification_id, chunk_size):
    """A chunk as a worker takes it: three transactions (a foreign key is checked again
    on an update of a row its own transaction inserted, so one transaction would not do)."""
    now = utcnow()
    with connection.begin():
        expansion.step(connection, chunk_size, now, notification_id)
    with connection.begin():
        claimed = ledger.claim(connection, limit=chunk_size, lease=60, now=now)
    with connection.begin():
        ledger.record(connection, [ledger.Result(c.id, DeliveryState.SENT, 200)
                                   for c in claimed], now, {c.id: c.attempts for c in claimed})
    return len(claimed)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    parser.add_argument("--chunk-size", type=int, default=1000)
    parser.add_argument("--chunks", type=int, default=5)
    args = parser.parse_args()
    engine = sa.create_engine(normalise_database_url(args.database_url))
    by_kind = defaultdict(list)
    notification_id = uuid.uuid4()
    with engine.begin() as connection:
        connection.execute(sa.insert(Notification).values(
            id=notification_id, push_type="alert", content=ALERT, audience={"all": True},
            expanding=True))
    try:
        with engine.connect() as connection:
            for statement in EXPLAIN:
                connection.exec_driver_sql(statement)
            connection.commit()
            seen = plans(connection)
            sent = sum(one_chunk(connection, notification_id, args.chunk_size)
                       for _ in range(args.chunks))
    finally:
        with engine.begin() as connection:  # its deliveries go with it
            connection.execute(sa.delete(Notification).where(
                Notification.id == notification_id))
    for plan in seen:
        if kind := kind_of(plan):
            triggers = {trigger["Trigger Name"]: trigger["Time"]
                        for trigger in plan.get("Triggers", [])}
            top = plan["Plan"]
            by_kind[kind].append((top["Actual Total Time"] + sum(triggers.values()),
                                  triggers, top.get("WAL Bytes", 0)))
    per_chunk = sent / args.chunks
    with engine.connect() as connection:  # a foreign key's trigger, by the key's name
        names = dict(connection.execute(sa.text(
            "SELECT tgname, 'foreign key ' || conname FROM pg_trigger"
            " JOIN pg_constraint ON pg_constraint.oid = tgconstraint")).all())
    print(f"{sent} deliveries in {args.chunks} chunks of {args.chunk_size}; median per chunk:")
    for kind, runs in by_kind.items():
        took = statistics.median(run[0] for run in runs)
        wal = statistics.median(run[2] for run in runs)
        print(f"  {kind:28} {took:7.1f} ms ({took * 1000 / per_chunk:5.1f} µs a delivery), "
              f"WAL {wal / per_chunk:5.0f} B a delivery")
        for name in runs[0][1]:
            print(f"    trigger {names.get(name, name)}: "
                  f"{statistics.median(run[1].get(name, 0) for run in runs):.1f} ms")


if __name__ == "__main__":
    main()
