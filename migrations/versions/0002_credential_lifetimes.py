"""credential lifetimes: last_used_at, and indexes for pruning by age

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 14:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True))
    # existing sessions were last seen no earlier than their last change
    op.execute('UPDATE credentials SET last_used_at = updated_at')
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.alter_column('last_used_at', existing_type=sa.DateTime(timezone=True),
                              nullable=False)
        batch_op.create_index(batch_op.f('ix_credentials_last_used_at'), ['last_used_at'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_credentials_created_at'), ['created_at'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credentials_created_at'))
        batch_op.drop_index(batch_op.f('ix_credentials_last_used_at'))
        batch_op.drop_column('last_used_at')
