"""credential public ids: a random id for each credential, which access tokens carry
(``sid``) in place of the sequential database id a forged token could guess

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 12:00:00.000000

"""
import secrets

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

credentials = sa.table("credentials", sa.column("id", sa.Integer),
                       sa.column("public_id", sa.String))


def upgrade():
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('public_id', sa.String(length=32), nullable=True))
    _give_each_credential_a_public_id()
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.alter_column('public_id', existing_type=sa.String(length=32), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_credentials_public_id'), ['public_id'])


def _give_each_credential_a_public_id():
    """From the CSPRNG, as new credentials get theirs (app.models.credential): SQL's
    random() is not one."""
    connection = op.get_bind()
    ids = connection.scalars(sa.select(credentials.c.id)).all()
    if ids:
        connection.execute(
            credentials.update().where(credentials.c.id == sa.bindparam("credential"))
            .values(public_id=sa.bindparam("public_id")),
            [{"credential": each, "public_id": secrets.token_urlsafe(16)} for each in ids])


def downgrade():
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_credentials_public_id'), type_='unique')
        batch_op.drop_column('public_id')
