"""delivery schedule: a notification's send_at, local_time and throttle, the earliest
moment its deliveries were written with, each delivery's scheduled_at, and the
deliveries a throttled local-time notification put on each moment (issue 22)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-14 06:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('send_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('local_time', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('throttle', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('first_due_at', sa.DateTime(timezone=True), nullable=True))
    # nullable: on SQLite a NOT NULL column means rebuilding deliveries (and its triggers)
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=True))
    # the deliveries written before were due when they were written
    op.execute("UPDATE deliveries SET scheduled_at = created_at")
    op.create_table('throttle_moments',
    sa.Column('notification_id', sa.Uuid(), nullable=False),
    sa.Column('moment', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deliveries', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'], name=op.f('fk_throttle_moments_notification_id_notifications'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('notification_id', 'moment', name=op.f('pk_throttle_moments'))
    )


def downgrade():
    op.drop_table('throttle_moments')
    # not a batch: on SQLite that rebuilds deliveries, and its triggers would be lost
    op.execute("ALTER TABLE deliveries DROP COLUMN scheduled_at")
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_column('first_due_at')
        batch_op.drop_column('throttle')
        batch_op.drop_column('local_time')
        batch_op.drop_column('send_at')
