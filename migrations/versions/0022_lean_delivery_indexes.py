"""leaner delivery indexes (issue 21's measurements): the due index holds only the rows a
claim can take (pending and sending), and the Live Activity indexes only the rows that
name one, so most deliveries' writes touch five indexes instead of eight

Revision ID: 0022
Revises: 0018
Create Date: 2026-12-08 14:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0022'
down_revision = '0018'
branch_labels = None
depends_on = None

OPEN = sa.text("state IN ('pending', 'sending')")
PARTIAL = {
    'ix_deliveries_due': (['state', 'next_attempt_at'], OPEN),
    'ix_deliveries_live_activity_id': (['live_activity_id'],
                                       sa.text('live_activity_id IS NOT NULL')),
    'ix_deliveries_live_activity_channel_id': (
        ['live_activity_channel_id'], sa.text('live_activity_channel_id IS NOT NULL')),
}


def upgrade():
    for name, (columns, where) in PARTIAL.items():
        op.drop_index(name, table_name='deliveries')
        op.create_index(name, 'deliveries', columns, unique=False,
                        postgresql_where=where, sqlite_where=where)


def downgrade():
    for name, (columns, _) in PARTIAL.items():
        op.drop_index(name, table_name='deliveries')
        op.create_index(name, 'deliveries', columns, unique=False)
