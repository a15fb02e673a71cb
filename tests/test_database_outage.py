"""A lost database connection is a 503 the client may retry, and the next request works."""

import pytest
import sqlalchemy as sa

from app.extensions import db
from tests.factories import create_session

pytestmark = pytest.mark.committed  # cuts the app's connections from outside


@pytest.fixture
def postgresql_only(app):
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("only PostgreSQL connections can be cut from outside")


def _cut_the_apps_connections(app):
    """From a connection outside the app's pool, end every other one to its database."""
    with app.app_context():
        outsider = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)
    with outsider.begin() as connection:
        connection.execute(sa.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    outsider.dispose()


def test_a_dropped_connection_is_503_then_the_service_recovers(client, app, postgresql_only):
    create_session(client)
    _cut_the_apps_connections(app)

    response = client.get("/api/configs/3.1.23")
    assert response.status_code == 200  # no database needed: unaffected

    response = client.post("/api/sessions", json={"data": {"type": "sessions"}})
    assert response.status_code == 503
    error = response.get_json()["errors"][0]
    assert error["code"] == "SERVICE_UNAVAILABLE"
    assert response.headers["Retry-After"] == "1"
    assert "terminat" not in response.get_data(as_text=True).lower()

    create_session(client)
