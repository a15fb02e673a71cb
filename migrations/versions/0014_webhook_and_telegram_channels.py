"""webhook and telegram channels: tokens up to 2,048 characters (a webhook URL), a webhook
endpoint's sealed signing secret and since when it has been failing, and the send slots
that keep Telegram's rate limits across every worker

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 06:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.alter_column('token', existing_type=sa.String(length=1024),
                              type_=sa.String(length=2048), existing_nullable=True)
        batch_op.add_column(sa.Column('signing_secret', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('failing_since', sa.DateTime(timezone=True),
                                      nullable=True))
    op.create_table('send_slots',
    sa.Column('scope', sa.String(length=64), nullable=False),
    sa.Column('next_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('scope', name=op.f('pk_send_slots'))
    )


def downgrade():
    op.drop_table('send_slots')
    # What the earlier schema cannot hold goes: these channels' devices lose their endpoint.
    op.execute("UPDATE devices SET channel = NULL, token = NULL "
               "WHERE channel IN ('webhook', 'telegram')")
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_column('failing_since')
        batch_op.drop_column('signing_secret')
        batch_op.alter_column('token', existing_type=sa.String(length=2048),
                              type_=sa.String(length=1024), existing_nullable=True)
