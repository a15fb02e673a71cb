"""device registry and credential kinds: devices as app installations, identities,
auth tokens bound to a device, API keys with names and scopes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 14:45:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('identities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('issuer', sa.String(length=255), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_identities_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identities')),
    sa.UniqueConstraint('issuer', 'subject', name=op.f('uq_identities_issuer_subject'))
    )
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identities_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('phone_number', existing_type=sa.String(length=16), nullable=True)

    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.alter_column('bundle_version', new_column_name='app_version',
                              existing_type=sa.String(length=32), existing_nullable=True)
        batch_op.alter_column('channel', existing_type=sa.String(length=32), nullable=True)
        batch_op.alter_column('token', existing_type=sa.String(length=200), nullable=True)
        batch_op.add_column(sa.Column('fingerprint', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('environment', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('device_model', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('os_version', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('time_zone', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('live_activity_token', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_devices_user_id_fingerprint'),
                                          ['user_id', 'fingerprint'])
    op.execute("UPDATE devices SET environment = CASE WHEN is_production "
               "THEN 'production' ELSE 'sandbox' END, last_seen_at = updated_at")
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.alter_column('last_seen_at', existing_type=sa.DateTime(timezone=True),
                              nullable=False)
        batch_op.drop_column('is_production')

    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('device_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('name', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('scopes', sa.String(length=255), nullable=True))
        batch_op.create_index(batch_op.f('ix_credentials_device_id'), ['device_id'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_credentials_name'), ['name'])
        batch_op.create_foreign_key(batch_op.f('fk_credentials_device_id_devices'), 'devices',
                                    ['device_id'], ['id'], ondelete='CASCADE')


def downgrade():
    # What the earlier schema cannot hold goes: auth tokens and API keys, devices without
    # a push endpoint, users without a phone number.
    op.execute("DELETE FROM credentials WHERE kind <> 'session'")
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_credentials_device_id_devices'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_credentials_name'), type_='unique')
        batch_op.drop_index(batch_op.f('ix_credentials_device_id'))
        batch_op.drop_column('scopes')
        batch_op.drop_column('name')
        batch_op.drop_column('device_id')

    op.execute("DELETE FROM devices WHERE channel IS NULL OR token IS NULL")
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_production', sa.Boolean(), nullable=True))
    op.execute("UPDATE devices SET is_production = "
               "(environment IS NULL OR environment <> 'sandbox')")
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.alter_column('is_production', existing_type=sa.Boolean(), nullable=False)
        batch_op.drop_constraint(batch_op.f('uq_devices_user_id_fingerprint'), type_='unique')
        batch_op.drop_column('last_seen_at')
        batch_op.drop_column('live_activity_token')
        batch_op.drop_column('time_zone')
        batch_op.drop_column('os_version')
        batch_op.drop_column('device_model')
        batch_op.drop_column('environment')
        batch_op.drop_column('fingerprint')
        batch_op.alter_column('token', existing_type=sa.String(length=200), nullable=False)
        batch_op.alter_column('channel', existing_type=sa.String(length=32), nullable=False)
        batch_op.alter_column('app_version', new_column_name='bundle_version',
                              existing_type=sa.String(length=32), existing_nullable=True)

    op.execute("DELETE FROM users WHERE phone_number IS NULL")
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('phone_number', existing_type=sa.String(length=16), nullable=False)

    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identities_user_id'))
    op.drop_table('identities')
