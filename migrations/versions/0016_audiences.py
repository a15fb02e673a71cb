"""audiences: devices' topics, a notification's audience and the state of its expansion
(keyset position, deliveries written so far), one delivery per (notification, device), and
its deliveries' counts kept by triggers (issue 21)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 06:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('device_topics',
    sa.Column('device_id', sa.Uuid(), nullable=False),
    sa.Column('topic', sa.String(length=256), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_device_topics_device_id_devices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('device_id', 'topic', name=op.f('pk_device_topics'))
    )
    op.create_index('ix_device_topics_topic_device_id', 'device_topics', ['topic', 'device_id'], unique=False)
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('audience', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('expanding', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('expanded_through', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('targeted', sa.Integer(), server_default='0', nullable=False))
    op.create_index('ix_notifications_expanding', 'notifications', ['created_at'], unique=False,
                    postgresql_where=sa.text('expanding'), sqlite_where=sa.text('expanding'))
    # the deliveries written before: counted once, here
    op.execute("UPDATE notifications SET targeted = (SELECT count(*) FROM deliveries"
               " WHERE deliveries.notification_id = notifications.id)")
    # a Live Activity update goes once to each activity, several on one device
    op.create_index('uq_deliveries_notification_id_device_id', 'deliveries',
                    ['notification_id', 'device_id'], unique=True,
                    postgresql_where=sa.text('live_activity_id IS NULL'),
                    sqlite_where=sa.text('live_activity_id IS NULL'))
    op.create_table('delivery_counts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('notification_id', sa.Uuid(), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempted', sa.Boolean(), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'], name=op.f('fk_delivery_counts_notification_id_notifications'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_counts'))
    )
    op.create_index('ix_delivery_counts_notification_id', 'delivery_counts', ['notification_id', 'channel', 'state'], unique=False)
    op.execute("INSERT INTO delivery_counts (notification_id, channel, state, attempted, count)"
               " SELECT notification_id, channel, state, attempts > 0, count(*) FROM deliveries"
               " GROUP BY notification_id, channel, state, attempts > 0")
    for statement in (POSTGRESQL_TRIGGERS if op.get_bind().dialect.name == 'postgresql'
                      else SQLITE_TRIGGERS):
        op.execute(statement)


def downgrade():
    for statement in (POSTGRESQL_DROPS if op.get_bind().dialect.name == 'postgresql'
                      else SQLITE_DROPS):
        op.execute(statement)
    op.drop_index('ix_delivery_counts_notification_id', table_name='delivery_counts')
    op.drop_table('delivery_counts')
    op.drop_index('uq_deliveries_notification_id_device_id', table_name='deliveries')
    op.drop_index('ix_notifications_expanding', table_name='notifications')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_column('targeted')
        batch_op.drop_column('expanded_through')
        batch_op.drop_column('expanding')
        batch_op.drop_column('audience')
    op.drop_index('ix_device_topics_topic_device_id', table_name='device_topics')
    op.drop_table('device_topics')


# PostgreSQL: one statement-level trigger per kind of change, appending the statement's
# changes as signed counts per key (no row is updated: concurrent writers never wait on
# one another). A delete cascading from its notification's adds nothing.
_KEY = "notification_id, channel, state, attempts > 0"
_APPEND = ("INSERT INTO delivery_counts (notification_id, channel, state, attempted, count)"
           " SELECT notification_id, channel, state, attempted, sum(n) FROM ({rows}) AS d"
           " GROUP BY notification_id, channel, state, attempted HAVING sum(n) <> 0")
_NEW = f"SELECT {_KEY} AS attempted, 1 AS n FROM new_rows"
_OLD = (f"SELECT {_KEY} AS attempted, -1 AS n FROM old_rows WHERE EXISTS"
        " (SELECT FROM notifications WHERE notifications.id = old_rows.notification_id)")
_FUNCTIONS = {"inserted": _APPEND.format(rows=_NEW),
              "updated": _APPEND.format(rows=f"{_NEW} UNION ALL {_OLD}"),
              "deleted": _APPEND.format(rows=_OLD)}
_TRANSITIONS = {"inserted": ("INSERT", "NEW TABLE AS new_rows"),
                "updated": ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
                "deleted": ("DELETE", "OLD TABLE AS old_rows")}
POSTGRESQL_TRIGGERS = [
    statement for kind, body in _FUNCTIONS.items() for statement in (
        f"CREATE OR REPLACE FUNCTION deliveries_{kind}_counted() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN {body}; RETURN NULL; END $$",
        f"CREATE TRIGGER deliveries_{kind}_counted AFTER {_TRANSITIONS[kind][0]} ON "
        f"deliveries REFERENCING {_TRANSITIONS[kind][1]} FOR EACH STATEMENT EXECUTE "
        f"FUNCTION deliveries_{kind}_counted()")]
POSTGRESQL_DROPS = [
    statement for kind in _FUNCTIONS for statement in (
        f"DROP TRIGGER deliveries_{kind}_counted ON deliveries",
        f"DROP FUNCTION deliveries_{kind}_counted()")]

# SQLite: row-level triggers keeping one row per key (its writers are serialised).
_MATCH = ("notification_id = {row}.notification_id AND channel = {row}.channel AND state ="
          " {row}.state AND attempted = ({row}.attempts > 0)")
_ADD = ("UPDATE delivery_counts SET count = count + 1 WHERE " + _MATCH.format(row="NEW") +
        "; INSERT INTO delivery_counts (notification_id, channel, state, attempted, count)"
        " SELECT NEW.notification_id, NEW.channel, NEW.state, NEW.attempts > 0, 1"
        " WHERE NOT EXISTS (SELECT 1 FROM delivery_counts WHERE " + _MATCH.format(row="NEW") +
        ");")
_SUBTRACT = ("UPDATE delivery_counts SET count = count - 1 WHERE " +
             _MATCH.format(row="OLD") + ";")
SQLITE_TRIGGERS = [
    f"CREATE TRIGGER deliveries_inserted_counted AFTER INSERT ON deliveries BEGIN {_ADD} END",
    "CREATE TRIGGER deliveries_updated_counted AFTER UPDATE OF state, attempts ON deliveries"
    " WHEN OLD.state IS NOT NEW.state OR (OLD.attempts > 0) IS NOT (NEW.attempts > 0)"
    f" BEGIN {_SUBTRACT} {_ADD} END",
    f"CREATE TRIGGER deliveries_deleted_counted AFTER DELETE ON deliveries BEGIN {_SUBTRACT}"
    " END"]
SQLITE_DROPS = [f"DROP TRIGGER deliveries_{kind}_counted" for kind in _FUNCTIONS]
