"""audiences: devices' topics, a notification's audience and the state of its expansion
(keyset position, deliveries written so far), one delivery per (notification, device)
(issue 21)

Revision ID: 0014
Revises: 0011
Create Date: 2026-12-07 06:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0011'
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
    op.create_index('uq_deliveries_notification_id_device_id', 'deliveries', ['notification_id', 'device_id'], unique=True)
    op.drop_index('ix_deliveries_notification_id', table_name='deliveries')


def downgrade():
    op.create_index('ix_deliveries_notification_id', 'deliveries', ['notification_id'], unique=False)
    op.drop_index('uq_deliveries_notification_id_device_id', table_name='deliveries')
    op.drop_index('ix_notifications_expanding', table_name='notifications')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_column('targeted')
        batch_op.drop_column('expanded_through')
        batch_op.drop_column('expanding')
        batch_op.drop_column('audience')
    op.drop_index('ix_device_topics_topic_device_id', table_name='device_topics')
    op.drop_table('device_topics')
