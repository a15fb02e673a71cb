"""the development push stand-in's outbox (PUSH_STANDIN=outbox)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('dev_push_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('apns_id', sa.String(length=36), nullable=False),
    sa.Column('device_id', sa.String(length=36), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('token_tail', sa.String(length=8), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dev_push_outbox'))
    )
    op.create_index(op.f('ix_dev_push_outbox_device_id'), 'dev_push_outbox', ['device_id'],
                    unique=False)


def downgrade():
    op.drop_index(op.f('ix_dev_push_outbox_device_id'), table_name='dev_push_outbox')
    op.drop_table('dev_push_outbox')
