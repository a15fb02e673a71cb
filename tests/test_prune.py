"""``flask prune``: dead codes, old outbox texts and expired rate-limit windows go; what is
still in use stays."""

import json
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import RateLimitCounter, SmsMessage, VerificationCode
from app.security import ratelimit
from tests.factories import create_session, last_code, log_in, random_phone, request_code


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def _count(app, model):
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(model))
        db.session.remove()
    return count


def _age_everything(app, days):
    """Move every code's expiry and every text back by ``days``."""
    with app.app_context():
        for code in db.session.scalars(select(VerificationCode)):
            code.expires_at -= timedelta(days=days)
        for text in db.session.scalars(select(SmsMessage)):
            text.created_at -= timedelta(days=days)
        db.session.commit()
        db.session.remove()


def _add_windows(app, *expires_in):
    """Rate-limit windows of their own keys, ending ``expires_in`` seconds from now."""
    now = int(time.time())
    with app.app_context():
        for index, seconds in enumerate(expires_in):
            db.session.add(RateLimitCounter(key=f"test:{index}", window_start=now - 3600,
                                            expires_at=now + seconds, count=1))
        db.session.commit()
        db.session.remove()


def test_prune_removes_only_what_has_ended(client, app, runner):
    log_in(client, app)
    _age_everything(app, days=8)
    phone = random_phone()
    session_id = create_session(client)
    assert request_code(client, session_id, phone).status_code == 200
    live_windows = _count(app, RateLimitCounter)
    _add_windows(app, -1, -60, 60)

    result = runner.invoke(args=["prune"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "sessions": 0, "credentials": 0, "verification_codes": 1, "sms_outbox": 1,
        "rate_limit_counters": 2, "worker_heartbeats": 0}
    assert _count(app, VerificationCode) == 1
    assert _count(app, SmsMessage) == 1
    assert _count(app, RateLimitCounter) == live_windows + 1
    assert last_code(app, phone)  # the fresh text and its code are still there


def test_prune_keeps_a_window_that_still_weighs_on_the_next(app, runner):
    """A sliding window counts the previous window's hits until the current one ends."""
    rate = ratelimit.Rate(1, 3600)
    with app.app_context():
        assert ratelimit.hit("test:sliding", rate, now=time.time() - 3600).allowed
        db.session.commit()

    result = runner.invoke(args=["prune"])

    assert json.loads(result.output)["rate_limit_counters"] == 0
    with app.app_context():
        assert not ratelimit.hit("test:sliding", rate).allowed
        db.session.remove()


def test_prune_keeps_everything_younger_than_days(client, app, runner):
    log_in(client, app)
    _age_everything(app, days=3)

    result = runner.invoke(args=["prune", "--days", "7"])

    assert json.loads(result.output)["verification_codes"] == 0
    assert _count(app, VerificationCode) == 1
    assert _count(app, SmsMessage) == 1


def test_prune_refuses_a_negative_age(runner):
    result = runner.invoke(args=["prune", "--days", "-1"])
    assert result.exit_code == 2
