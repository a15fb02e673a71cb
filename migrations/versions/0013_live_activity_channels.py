"""live activity channels: iOS 18 broadcast channels made at APNs's channel management
API (issue 24), and the broadcast delivery that goes to one

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-10 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('live_activity_channels',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('channel_id', sa.String(length=255), nullable=False),
    sa.Column('environment', sa.String(length=16), nullable=False),
    sa.Column('message_storage_policy', sa.Integer(), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_reason', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['credentials.id'],
                            name=op.f('fk_live_activity_channels_owner_id_credentials'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_live_activity_channels')),
    sa.UniqueConstraint('environment', 'channel_id',
                        name=op.f('uq_live_activity_channels_environment_channel_id'))
    )
    op.create_index(op.f('ix_live_activity_channels_owner_id'), 'live_activity_channels',
                    ['owner_id'], unique=False)
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('live_activity_channel_id', sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f('ix_deliveries_live_activity_channel_id'),
                              ['live_activity_channel_id'], unique=False)
        batch_op.create_foreign_key(
            batch_op.f('fk_deliveries_live_activity_channel_id_live_activity_channels'),
            'live_activity_channels', ['live_activity_channel_id'], ['id'],
            ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f('fk_deliveries_live_activity_channel_id_live_activity_channels'),
            type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_deliveries_live_activity_channel_id'))
        batch_op.drop_column('live_activity_channel_id')
    op.drop_index(op.f('ix_live_activity_channels_owner_id'),
                  table_name='live_activity_channels')
    op.drop_table('live_activity_channels')
