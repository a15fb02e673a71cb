"""One commit rule: services (``app/resources/``) flush, the view, command or job that called
them commits. The only commits before that go through ``app.database.engine.commit_early``, each
with one of the reasons ``EarlyCommit`` lists."""

import ast
import logging
from pathlib import Path

import pytest

from app.database.engine import EarlyCommit, commit_early
from app.extensions import db
from app.models import Credential, CredentialKind
from app.security.crypto import digest, new_session_id

RESOURCES = Path(__file__).resolve().parent.parent / "app" / "resources"


def _calls(path):
    return [node for node in ast.walk(ast.parse(path.read_text(), str(path)))
            if isinstance(node, ast.Call)]


def _modules():
    modules = sorted(RESOURCES.rglob("*.py"))
    assert len(modules) > 10, "the services moved: point RESOURCES at them"
    return modules


def _where(path, node):
    return f"{path.relative_to(RESOURCES.parent.parent)}:{node.lineno}"


def test_no_service_commits():
    commits = [_where(path, call) for path in _modules() for call in _calls(path)
               if isinstance(call.func, ast.Attribute) and call.func.attr == "commit"]
    assert commits == [], "a service commits: flush instead, and let its caller commit " \
                          "(or use app.database.engine.commit_early with an EarlyCommit reason)"


def test_every_early_commit_names_a_listed_reason():
    reasons = []
    for path in _modules():
        for call in _calls(path):
            if isinstance(call.func, ast.Name) and call.func.id == "commit_early":
                reasons.append(ast.unparse(call.args[0]) if call.args else "(none)")
    assert reasons, "no early commit found: has commit_early been renamed?"
    named = {f"EarlyCommit.{reason.name}" for reason in EarlyCommit}
    assert set(reasons) <= named


def _pending_session():
    session = Credential(kind=CredentialKind.SESSION, secret_digest=digest(new_session_id()))
    db.session.add(session)
    return session


def test_an_early_commit_without_a_listed_reason_is_refused(app_context):
    session = _pending_session()
    with pytest.raises(TypeError, match="EarlyCommit"):
        commit_early("it felt right")
    assert session in db.session.new  # nothing was committed


def test_an_early_commit_is_logged_by_its_reason(app_context, caplog):
    _pending_session()
    with caplog.at_level(logging.DEBUG, logger="app.database.engine"):
        commit_early(EarlyCommit.WRONG_TRY_COUNTS)
    assert [record.getMessage() for record in caplog.records
            if record.name == "app.database.engine"] == ["early commit: WRONG_TRY_COUNTS"]
    assert not db.session.new
