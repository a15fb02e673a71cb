"""device page indexes: a user's devices by creation and by last seen, so a page (and the
included user's `devices`) reads only its rows however many the user owns

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 17:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.create_index('ix_devices_user_id_created_at',
                              ['user_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_devices_user_id_last_seen_at',
                              ['user_id', sa.text('last_seen_at DESC'), 'id'], unique=False)
        # both new indexes start with user_id: the foreign key's lookups use them
        batch_op.drop_index('ix_devices_user_id')


def downgrade():
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.create_index('ix_devices_user_id', ['user_id'], unique=False)
        batch_op.drop_index('ix_devices_user_id_last_seen_at')
        batch_op.drop_index('ix_devices_user_id_created_at')
