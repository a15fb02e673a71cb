"""live activities: running Live Activities with their own push tokens (issue 24), and the
deliveries that go to one

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-09 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('live_activities',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('device_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('activity_id', sa.String(length=128), nullable=False),
    sa.Column('attributes_type', sa.String(length=255), nullable=False),
    sa.Column('token', sa.Text(), nullable=True),
    sa.Column('channel_id', sa.String(length=255), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_reason', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'],
                            name=op.f('fk_live_activities_device_id_devices'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                            name=op.f('fk_live_activities_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_live_activities')),
    sa.UniqueConstraint('device_id', 'activity_id',
                        name=op.f('uq_live_activities_device_id_activity_id'))
    )
    op.create_index('ix_live_activities_audience', 'live_activities',
                    ['attributes_type', 'activity_id'], unique=False)
    op.create_index(op.f('ix_live_activities_user_id'), 'live_activities', ['user_id'],
                    unique=False)
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('live_activity_id', sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f('ix_deliveries_live_activity_id'),
                              ['live_activity_id'], unique=False)
        batch_op.create_foreign_key(
            batch_op.f('fk_deliveries_live_activity_id_live_activities'), 'live_activities',
            ['live_activity_id'], ['id'], ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f('fk_deliveries_live_activity_id_live_activities'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_deliveries_live_activity_id'))
        batch_op.drop_column('live_activity_id')
    op.drop_index(op.f('ix_live_activities_user_id'), table_name='live_activities')
    op.drop_index('ix_live_activities_audience', table_name='live_activities')
    op.drop_table('live_activities')
