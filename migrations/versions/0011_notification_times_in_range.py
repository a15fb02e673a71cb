"""notification times in range: the UNIX seconds kept in a notification's content
(expiration, timestamp, stale_date, dismissal_date) clamped to 1970..9999 UTC, so every
stored notification can be shown again (issue 19 item 5: they were taken unbounded)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 12:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

MEMBERS = ("expiration", "timestamp", "stale_date", "dismissal_date")
EARLIEST = 0
LATEST = 253402300799  # 9999-12-31T23:59:59Z, schemas.notifications.LATEST_PUSH_TIME

notifications = sa.table("notifications", sa.column("id", sa.Uuid),
                         sa.column("content", sa.JSON))


def upgrade():
    bind = op.get_bind()
    rows = bind.execute(sa.select(notifications.c.id, notifications.c.content)
                        .where(sa.or_(*(_out_of_range(bind, name) for name in MEMBERS)))).all()
    for row in rows:
        bind.execute(notifications.update().where(notifications.c.id == row.id)
                     .values(content=_clamped(row.content)))


def downgrade():
    pass  # the values clamped are not kept: there is nothing to put back


def _out_of_range(bind, member):
    """A member holding a number outside EARLIEST..LATEST (null and absent are not)."""
    if bind.dialect.name == "postgresql":
        value = f"(content->>'{member}')::numeric"  # numeric: any JSON number fits
    else:
        value = f"json_extract(content, '$.{member}')"
    return sa.text(f"{value} NOT BETWEEN {EARLIEST} AND {LATEST}")


def _clamped(content):
    clamped = dict(content)
    for member in MEMBERS:
        value = clamped.get(member)
        if isinstance(value, int | float) and not isinstance(value, bool):
            clamped[member] = min(max(value, EARLIEST), LATEST)
    return clamped
