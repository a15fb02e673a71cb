"""``INSERT … ON CONFLICT`` for whichever database the session is bound to."""

from sqlalchemy.dialects import postgresql, sqlite


def insert_for(bind, model):
    dialect = bind.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise RuntimeError(f"upserts are not implemented for {dialect}")
