"""notification cancel: when its sender canceled a notification (issue 22); its deliveries
not yet handed to a provider are then in the state ``canceled``, which the counting
triggers of 0016 count like any other state

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-09 06:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('canceled_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_column('canceled_at')
