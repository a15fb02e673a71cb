"""procrastinate's tables, types and functions in their own PostgreSQL schema (for
PUSH_QUEUE=procrastinate); nothing on SQLite

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 17:00:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

SCHEMA = "procrastinate"  # app.push.procrastinate_queue.SCHEMA, as it was at this revision


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    try:
        from procrastinate.schema import SchemaManager
    except ImportError as exc:
        raise RuntimeError("PostgreSQL needs the procrastinate package: install the "
                           "service with its 'postgres' extras") from exc
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    # A database whose own tables were dropped and rebuilt keeps this schema: made once.
    if bind.exec_driver_sql(f"SELECT to_regclass('{SCHEMA}.procrastinate_jobs')").scalar():
        return
    driver = bind.connection.driver_connection  # the script has % signs and many statements
    search_path = driver.execute("SHOW search_path").fetchone()[0]
    driver.execute(f"SET LOCAL search_path TO {SCHEMA}")
    driver.execute(SchemaManager.get_schema())
    driver.execute(f"SET LOCAL search_path TO {search_path}")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
