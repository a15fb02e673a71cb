"""delivery receipts: an API key's callback URL, its sealed signing secret and since when
its receipts are off; the receipt events waiting to be sent and the batch each key has on
its way

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08 06:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('callback_url', sa.String(length=2048), nullable=True))
        batch_op.add_column(sa.Column('callback_secret', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('callback_off_since', sa.DateTime(timezone=True),
                                      nullable=True))
    op.create_table('receipt_batches',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('credential_id', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['credential_id'], ['credentials.id'],
                            name=op.f('fk_receipt_batches_credential_id_credentials'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_receipt_batches')),
    sa.UniqueConstraint('credential_id', name=op.f('uq_receipt_batches_credential_id'))
    )
    op.create_index(op.f('ix_receipt_batches_next_attempt_at'), 'receipt_batches',
                    ['next_attempt_at'], unique=False)
    op.create_table('receipt_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('credential_id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Uuid(), nullable=True),
    sa.Column('delivery_id', sa.Uuid(), nullable=False),
    sa.Column('notification_id', sa.Uuid(), nullable=False),
    sa.Column('device_id', sa.Uuid(), nullable=True),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['receipt_batches.id'],
                            name=op.f('fk_receipt_events_batch_id_receipt_batches'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['credential_id'], ['credentials.id'],
                            name=op.f('fk_receipt_events_credential_id_credentials'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_receipt_events'))
    )
    op.create_index(op.f('ix_receipt_events_batch_id'), 'receipt_events', ['batch_id'],
                    unique=False)
    op.create_index(op.f('ix_receipt_events_credential_id'), 'receipt_events',
                    ['credential_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_receipt_events_credential_id'), table_name='receipt_events')
    op.drop_index(op.f('ix_receipt_events_batch_id'), table_name='receipt_events')
    op.drop_table('receipt_events')
    op.drop_index(op.f('ix_receipt_batches_next_attempt_at'), table_name='receipt_batches')
    op.drop_table('receipt_batches')
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.drop_column('callback_off_since')
        batch_op.drop_column('callback_secret')
        batch_op.drop_column('callback_url')
