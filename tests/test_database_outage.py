"""A lost database connection is a 503 the client may retry, and the next request works."""

import pytest

from app.extensions import db
from tests.factories import create_session
from tests.jsonapi_helpers import cut_database_connections

pytestmark = pytest.mark.committed  # cuts the app's connections from outside


@pytest.fixture
def postgresql_only(app):
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("only PostgreSQL connections can be cut from outside")


def test_a_dropped_connection_is_503_then_the_service_recovers(client, app, postgresql_only):
    create_session(client)
    cut_database_connections(app, dispose_pool=False)

    response = client.get("/api/configs/3.1.23")
    assert response.status_code == 200  # no database needed: unaffected

    response = client.post("/api/sessions", json={"data": {"type": "sessions"}})
    assert response.status_code == 503
    error = response.get_json()["errors"][0]
    assert error["code"] == "SERVICE_UNAVAILABLE"
    assert response.headers["Retry-After"] == "1"
    assert "terminat" not in response.get_data(as_text=True).lower()

    create_session(client)
