"""``INSERT … ON CONFLICT`` for whichever database the session is bound to."""

from sqlalchemy.dialects import postgresql, sqlite


def insert_for(bind_or_dialect_name, model):
    dialect = getattr(bind_or_dialect_name, "dialect", None)
    dialect = bind_or_dialect_name if dialect is None else dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise RuntimeError(f"upserts are not implemented for {dialect}")
