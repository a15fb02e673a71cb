"""delivery page index: a notification's deliveries by creation, so a page of them (and
the notification's `deliveries` linkage) reads only its rows however many it has, instead
of sorting all of a million-device audience's on every read

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 15:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_deliveries_notification_id_created_at', 'deliveries',
                    ['notification_id', 'created_at', 'id'], unique=False)
    # the new index starts with notification_id: the foreign key's lookups use it
    op.drop_index('ix_deliveries_notification_id', table_name='deliveries')


def downgrade():
    op.create_index('ix_deliveries_notification_id', 'deliveries', ['notification_id'],
                    unique=False)
    op.drop_index('ix_deliveries_notification_id_created_at', table_name='deliveries')
