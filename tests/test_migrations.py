"""The migrations are the only way the schema is made: they run both ways and match the
models."""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from app.extensions import db

pytestmark = pytest.mark.committed  # changes the schema under the app


def _tables():
    return set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"}


def test_downgrade_to_base_then_upgrade_from_empty(app_context):
    downgrade(revision="base")
    assert _tables() == set()
    upgrade()
    assert _tables() == {table.name for table in db.metadata.sorted_tables}


def test_models_match_the_migrations(app_context):
    with db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert differences == []


def test_device_tokens_are_unique_per_channel_in_the_database(app_context):
    constraints = sa.inspect(db.engine).get_unique_constraints("devices")
    assert any(set(c["column_names"]) == {"channel", "token"} for c in constraints)
