"""What the seed 002 and 003 tests share: plain JSON requests, the credentials their
clients present, and the devices table as comparable text."""

import json
import uuid

from sqlalchemy import select

from app.extensions import db
from app.models import Device
from tests.test_credentials import _create_key

PLAIN = {"Content-Type": "application/json", "Accept": "application/json",
         "Authorization": None}


def plain(headers=None):
    return {**PLAIN, **(headers or {})}


def send(client, method, path, body=None, headers=None):
    """``body`` as JSON (text as it is, None for no body), with plain-JSON headers."""
    data = body if body is None or isinstance(body, str | bytes) else json.dumps(body)
    return client.open(path, method=method, data=data, headers=plain(headers))


def access_token(client, credential):
    """An access token (JWT) for ``credential``. The response also sets it as a cookie:
    dropped here, so each request says which credential it presents."""
    response = client.post("/api/access_tokens", json={"data": {"type": "access_tokens"}},
                           headers={"Authorization": f"Bearer {credential}"})
    assert response.status_code == 201, response.get_json()
    client.delete_cookie("access_token")
    return response.get_json()["data"]["attributes"]["value"]


def api_key(app):
    return json.loads(_create_key(app, "--name", f"k-{uuid.uuid4()}", "--scope",
                                  "notifications:send").output)["key"]


def devices_table(app):
    """Every device row, as comparable text."""
    with app.app_context():
        rows = sorted(repr(tuple(row)) for row in db.session.execute(
            select(Device.__table__)).all())
        db.session.remove()
    return rows


def device_rows(app, **where):
    with app.app_context():
        rows = list(db.session.scalars(select(Device).filter_by(**where)))
        db.session.expunge_all()
        db.session.remove()
    return rows
