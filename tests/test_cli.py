"""``flask sms outbox``: the development outbox, one JSON object a line, oldest first."""

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from app.extensions import db
from app.models import SmsMessage
from tests.factories import bearer, create_session, random_phone, session_patch

ISO_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
T0 = datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def outbox(runner, *args):
    result = runner.invoke(args=["sms", "outbox", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


@pytest.fixture
def texts(app):
    """Five texts to two numbers, inserted in order with known times."""
    alice, bob = "+14155550100", "+14155550199"
    with app.app_context():
        for index, to in enumerate([alice, bob, alice, alice, bob]):
            db.session.add(SmsMessage(to=to, body=f"text {index}",
                                      created_at=T0 + timedelta(minutes=index)))
            db.session.flush()
        db.session.commit()
        db.session.remove()
    return alice, bob


def test_all_texts_oldest_first(runner, texts):
    alice, bob = texts
    lines = outbox(runner)
    assert [line["body"] for line in lines] == [f"text {i}" for i in range(5)]
    assert [line["to"] for line in lines] == [alice, bob, alice, alice, bob]
    for line in lines:
        assert list(line) == ["to", "body", "created_at"]
        assert ISO_Z.fullmatch(line["created_at"]), line["created_at"]
    assert lines[0]["created_at"] == "2024-03-01T12:00:00.123Z"
    assert lines[4]["created_at"] == "2024-03-01T12:04:00.123Z"


def test_phone_filter(runner, texts):
    alice, bob = texts
    assert [line["body"] for line in outbox(runner, "--phone", alice)] == [
        "text 0", "text 2", "text 3"]
    assert [line["body"] for line in outbox(runner, "--phone", bob)] == ["text 1", "text 4"]
    assert outbox(runner, "--phone", "+19999999999") == []


def test_last_n_is_the_newest_n_oldest_first(runner, texts):
    alice, _ = texts
    assert [line["body"] for line in outbox(runner, "--last", "2")] == ["text 3", "text 4"]
    assert [line["body"] for line in outbox(runner, "--last", "1")] == ["text 4"]
    assert len(outbox(runner, "--last", "50")) == 5
    assert [line["body"] for line in outbox(runner, "--phone", alice, "--last", "2")] == [
        "text 2", "text 3"]


@pytest.mark.parametrize("last", ["0", "-1", "two"])
def test_last_must_be_a_positive_integer(runner, texts, last):
    result = runner.invoke(args=["sms", "outbox", "--last", last])
    assert result.exit_code == 2
    assert "--last" in result.output


def test_empty_outbox_prints_nothing(runner):
    result = runner.invoke(args=["sms", "outbox"])
    assert result.exit_code == 0
    assert result.output == ""


def test_outbox_shows_codes_texted_through_the_api(runner, client, app):
    phone = random_phone()
    for _ in range(2):
        session_id = create_session(client)
        response = client.patch(f"/api/sessions/{session_id}",
                                json=session_patch(session_id, phone_number=phone),
                                headers=bearer(session_id))
        assert response.status_code == 200
    lines = outbox(runner, "--phone", phone)
    assert len(lines) == 2
    for line in lines:
        assert line["to"] == phone
        assert re.search(r"verification code is: \d{6}\.", line["body"])
        created = datetime.strptime(line["created_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
        assert abs(created.replace(tzinfo=UTC) - datetime.now(UTC)) < timedelta(minutes=1)
    assert lines[0]["created_at"] <= lines[1]["created_at"]
    [newest] = outbox(runner, "--phone", phone, "--last", "1")
    assert newest == lines[1]
