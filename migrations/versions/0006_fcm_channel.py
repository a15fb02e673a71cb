"""fcm channel: device tokens up to 1,024 characters (FCM registration tokens are opaque
and longer than APNs's); the channel itself is a string column, so ``fcm`` needs no change

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 16:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.alter_column('token', existing_type=sa.String(length=200),
                              type_=sa.String(length=1024), existing_nullable=True)


def downgrade():
    # What the earlier schema cannot hold goes: FCM devices lose their push endpoint.
    op.execute("UPDATE devices SET channel = NULL, token = NULL WHERE channel = 'fcm'")
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.alter_column('token', existing_type=sa.String(length=1024),
                              type_=sa.String(length=200), existing_nullable=True)
