"""Every credential kind over HTTP: auth tokens from an identity provider's ID token,
access tokens, API keys; what each may do, how long it lasts, and what is kept of it."""

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import timedelta

import jwt
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask.cli import ScriptInfo
from sqlalchemy import select, update

from app.extensions import db
from app.formats.id_token_providers import FIREBASE_ISSUER_PREFIX
from app.identity import Provider
from app.models import Credential, CredentialKind, Device, User
from app.models.types import utcnow
from app.ops.cli.commands import keys as keys_command
from app.web.auth import signing_keys
from tests.factories import bearer, create_session, last_code, register_token
from tests.identity_provider import KeyServer, jwks
from tests.jsonapi_helpers import Caller, body, error_of

ISSUER = "https://accounts.example.com"
FIREBASE_PROJECT = "pushreg-test"
AUDIENCE = "com.example.pushreg"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
STRANGER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def key_server():
    server = KeyServer()
    server.serve("/jwks", jwks(("key-1", KEY)))
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def provider(app, key_server, monkeypatch):
    """The app trusts the test provider's ID tokens."""
    monkeypatch.setitem(app.config, "ID_TOKEN_PROVIDERS",
                        (Provider(ISSUER, (AUDIENCE,), key_server.url("/jwks")),))
    app.extensions.pop("id_token_verifier", None)
    yield
    app.extensions.pop("id_token_verifier", None)


def id_token(subject="subject-1", key=KEY, kid="key-1", algorithm="RS256", **changes):
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "iat": now, "exp": now + 600,
              **changes}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key,
                      algorithm=algorithm, headers={"kid": kid})


def auth_token_document(token, fingerprint="fingerprint-1"):
    return {"data": {"type": "auth_tokens",
                     "attributes": {"id_token": token, "device_fingerprint": fingerprint}}}


def issue(client, **claims):
    fingerprint = claims.pop("fingerprint", "fingerprint-1")
    response = client.post("/api/auth_tokens", headers={"Authorization": None},
                           json=auth_token_document(id_token(**claims), fingerprint))
    return body(response, 201)["data"]


def test_an_id_token_buys_an_auth_token_shown_once(client, app, provider):
    issued = issue(client)
    value = issued["attributes"]["value"]
    assert value.startswith("pat_") and issued["id"].isdigit()
    me = body(client.get("/api/auth_tokens", headers=bearer(value)), 200)["data"]
    assert [token["id"] for token in me] == [issued["id"]]
    assert "value" not in me[0]["attributes"]
    again = body(client.get(f"/api/auth_tokens/{issued['id']}",
                            headers={"Authentication": value}), 200)["data"]
    assert "value" not in again["attributes"]


def test_the_same_identity_is_the_same_user_and_its_fingerprint_one_device(client, app,
                                                                            provider):
    first, second = issue(client), issue(client)
    other_device = issue(client, fingerprint="fingerprint-2")
    users = {token["relationships"]["user"]["data"]["id"]
             for token in (first, second, other_device)}
    assert len(users) == 1
    with app.app_context():
        devices = db.session.scalars(select(Device.fingerprint).where(
            Device.user_id == uuid.UUID(users.pop()))).all()
    assert sorted(devices) == ["fingerprint-1", "fingerprint-2"]


def test_a_verified_phone_number_links_to_the_user_who_owns_it(client, app, provider):
    caller = Caller(client, app, phone_number="+15555550142")
    issued = issue(client, subject="phone-person", phone_number="+15555550142",
                   phone_number_verified=True)
    assert issued["relationships"]["user"]["data"]["id"] == caller.user_id
    unverified = issue(client, subject="someone-else", phone_number="+15555550142")
    assert unverified["relationships"]["user"]["data"]["id"] != caller.user_id


@pytest.fixture
def firebase(app, key_server, monkeypatch):
    """The app trusts a Firebase project whose tokens the test key signs."""
    provider = Provider(FIREBASE_ISSUER_PREFIX + FIREBASE_PROJECT, (FIREBASE_PROJECT,),
                        key_server.url("/jwks"))
    monkeypatch.setitem(app.config, "ID_TOKEN_PROVIDERS", (provider,))
    app.extensions.pop("id_token_verifier", None)
    yield
    app.extensions.pop("id_token_verifier", None)


def firebase_auth_token(client, subject, phone_number, sign_in_provider):
    return issue(client, subject=subject, iss=FIREBASE_ISSUER_PREFIX + FIREBASE_PROJECT,
                 aud=FIREBASE_PROJECT, phone_number=phone_number,
                 firebase={"identities": {}, "sign_in_provider": sign_in_provider})


def test_a_firebase_phone_sign_in_links_to_the_user_who_owns_the_number(client, app,
                                                                         firebase):
    caller = Caller(client, app, phone_number="+15555550143")
    issued = firebase_auth_token(client, "phone-uid", "+15555550143", "phone")
    assert issued["relationships"]["user"]["data"]["id"] == caller.user_id


@pytest.mark.parametrize("sign_in_provider", ["custom", "anonymous", "password"])
def test_a_firebase_number_not_proven_by_a_texted_code_reads_nobody_elses_profile(
        client, app, firebase, sign_in_provider):
    victim = Caller(client, app, phone_number="+15555550144")
    issued = firebase_auth_token(client, f"{sign_in_provider}-uid", "+15555550144",
                                 sign_in_provider)
    attacker_id = issued["relationships"]["user"]["data"]["id"]
    assert attacker_id != victim.user_id
    victims_profile = client.get(f"/api/users/{victim.user_id}",
                                 headers=bearer(issued["attributes"]["value"]))
    assert "+15555550144" not in victims_profile.get_data(as_text=True)
    assert stored_phone(app, victim.user_id) == "+15555550144"
    assert stored_phone(app, attacker_id) is None


def _public_pem():
    return KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def _hs256_with_public_key():
    def part(value):
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=")

    now = int(time.time())
    signing_input = part({"alg": "HS256", "kid": "key-1"}) + b"." + part(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "iat": now, "exp": now + 600})
    signature = hmac.new(_public_pem(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode()


@pytest.mark.parametrize("token", [
    "not-a-jwt",
    id_token(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
    id_token(iat=int(time.time()) + 3600, exp=int(time.time()) + 7200),
    id_token(iss="https://elsewhere.example.com"),
    id_token(aud="com.example.other"),
    id_token(key=STRANGER),
    id_token(kid="unknown-key"),
    jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "x"}, None, algorithm="none"),
    _hs256_with_public_key(),
], ids=["malformed", "expired", "not-yet-valid", "issuer", "audience", "stranger-key",
        "unknown-kid", "alg-none", "hs256-public-key"])
def test_an_id_token_that_proves_nothing_is_401(client, app, provider, token):
    before = _count_credentials(app)
    response = client.post("/api/auth_tokens", headers={"Authorization": None},
                           json=auth_token_document(token))
    assert error_of(response, 401)["code"] == "NOT_AUTHENTICATED"
    assert token not in response.get_data(as_text=True)
    assert _count_credentials(app) == before


@pytest.mark.parametrize(("attributes", "field"), [
    ({"device_fingerprint": "f"}, "id_token"),
    ({"id_token": "x.y.z"}, "device_fingerprint"),
    ({"id_token": "x.y.z", "device_fingerprint": ""}, "device_fingerprint"),
    ({"id_token": 7, "device_fingerprint": "f"}, "id_token"),
])
def test_a_create_without_what_it_needs_is_400(client, provider, attributes, field):
    response = client.post("/api/auth_tokens", headers={"Authorization": None},
                           json={"data": {"type": "auth_tokens", "attributes": attributes}})
    assert error_of(response, 400)["source"] == {"pointer": f"/data/attributes/{field}"}


def test_auth_tokens_are_their_users_own(client, app, provider):
    mine = issue(client, subject="me")
    theirs = issue(client, subject="them")
    headers = bearer(mine["attributes"]["value"])
    for method in ("GET", "DELETE"):
        response = client.open(f"/api/auth_tokens/{theirs['id']}", method=method,
                               headers=headers)
        error_of(response, 404)
    assert client.get("/api/auth_tokens", headers=bearer(theirs["attributes"]["value"])
                      ).status_code == 200


# Ids Python's int() reads but no client writes, and ids no database column holds: each
# names no token. "\u0661" (Arabic-Indic one) would have read as auth token 1.
NOT_IDS = ("\u00b2", "\u0661", "\u0661\u0660", "2147483648", "9223372036854775808",
           "9" * 30, "9" * 5000, "0", "-1", "+1", "1_0", "%201", "1.0")


@pytest.mark.parametrize("token_id", NOT_IDS)
def test_an_auth_token_id_that_is_not_one_is_404(client, provider, token_id):
    issued = issue(client)
    headers = bearer(issued["attributes"]["value"])
    for method in ("GET", "DELETE"):
        response = client.open(f"/api/auth_tokens/{token_id}", method=method,
                               headers=headers)
        assert error_of(response, 404)["code"] == "NOT_FOUND"
    assert client.get(f"/api/auth_tokens/{issued['id']}", headers=headers).status_code == 200


def test_deleting_an_auth_token_ends_it_and_its_access_tokens(client, provider):
    issued = issue(client)
    value = issued["attributes"]["value"]
    access = _access_token(client, bearer(value))
    assert client.get("/api/auth_tokens", headers=bearer(access)).status_code == 200
    assert client.delete(f"/api/auth_tokens/{issued['id']}",
                         headers=bearer(value)).status_code == 204
    for headers in (bearer(value), bearer(access), {"Authentication": value}):
        error_of(client.get("/api/auth_tokens", headers=headers), 401)


def _access_token(client, headers):
    response = client.post("/api/access_tokens", headers=headers,
                           json={"data": {"type": "access_tokens"}})
    document = body(response, 201)["data"]
    assert document["attributes"]["token_type"] == "Bearer"
    assert response.headers.get("Location") is None
    return document["attributes"]["value"]


def test_an_access_token_works_as_bearer_and_cookie_until_its_session_ends(client, app):
    caller = Caller(client, app)
    access = _access_token(client, caller.headers)
    claims = jwt.decode(access, options={"verify_signature": False})
    assert claims["sub"] == caller.user_id
    me = f"/api/users/{caller.user_id}"
    assert client.get(me, headers=bearer(access)).status_code == 200
    client.set_cookie("access_token", access)
    assert client.get(me, headers={"Authorization": None}).status_code == 200
    client.delete(f"/api/sessions/{caller.session_id}", headers=caller.headers)
    error_of(client.get(me, headers={"Authorization": None}), 401)
    error_of(client.get(me, headers=bearer(access)), 401)


def test_an_access_token_never_reveals_the_session_id(client, app):
    caller = Caller(client, app)
    token = register_token(client, caller.session_id)
    access = _access_token(client, caller.headers)
    response = client.get(f"/api/apple_device_tokens/{token}", headers=bearer(access))
    assert caller.session_id not in response.get_data(as_text=True)
    error_of(client.get(f"/api/sessions/{caller.session_id}", headers=bearer(access)), 404)


def _refused_access_token(client, headers):
    response = client.post("/api/access_tokens", headers=headers,
                           json={"data": {"type": "access_tokens"}})
    assert "access_token" not in response.headers.get("Set-Cookie", "")
    return error_of(response, 403)


def test_an_access_token_does_not_renew_itself(client, app, provider):
    caller = Caller(client, app)
    auth_token = issue(client)["attributes"]["value"]
    for credential in (caller.session_id, auth_token):
        access = _access_token(client, bearer(credential))
        client.delete_cookie("access_token")
        for presented in (bearer(access), {"Authentication": access}):
            error = _refused_access_token(client, presented)
            assert error["code"] == "ACCESS_TOKEN_NOT_RENEWABLE"
            assert "session or auth token" in error["detail"]
        client.set_cookie("access_token", access)
        error = _refused_access_token(client, {"Authorization": None})
        assert error["code"] == "ACCESS_TOKEN_NOT_RENEWABLE"
        client.delete_cookie("access_token")
        _access_token(client, bearer(credential))  # the credential itself still mints


def test_an_anonymous_session_gets_no_access_token(client):
    session_id = create_session(client)
    error = _refused_access_token(client, bearer(session_id))
    assert error["code"] == "ANONYMOUS_SESSION"
    assert "log in" in error["detail"]


def test_an_access_token_names_its_credential_by_an_unguessable_id(client, app):
    caller = Caller(client, app)
    sid = jwt.decode(_access_token(client, caller.headers),
                     options={"verify_signature": False})["sid"]
    with app.app_context():
        credential = db.session.scalar(select(Credential).where(Credential.public_id == sid))
    assert credential.user_id == uuid.UUID(caller.user_id)
    assert sid != str(credential.id) and len(sid) >= 22


def test_a_token_forged_with_the_server_key_and_a_guessed_credential_id_is_refused(
        client, app):
    """Whoever knows SECRET_KEY signs what they like; the credential's id they must guess."""
    victim = Caller(client, app, phone_number="+15555550145")
    with app.app_context():
        keys = signing_keys()
        guessed = db.session.scalar(select(Credential.id).where(
            Credential.user_id == uuid.UUID(victim.user_id)))
    now = int(time.time())
    for sid in (guessed, str(guessed)):
        claims = {"sub": victim.user_id, "sid": sid, "iat": now, "exp": now + 600, "jti": "j"}
        forged = jwt.encode(claims, keys.current.signing, algorithm=keys.current.algorithm,
                            headers={"kid": keys.current.kid})
        response = client.get(f"/api/users/{victim.user_id}", headers=bearer(forged))
        assert "+15555550145" not in response.get_data(as_text=True)
        error_of(response, 401)


def test_access_tokens_cannot_be_had_without_a_user_credential(client):
    error_of(client.post("/api/access_tokens", headers={"Authorization": None},
                         json={"data": {"type": "access_tokens"}}), 401)


def _create_key(app, *options):
    result = CliRunner().invoke(keys_command, ["create", *options], obj=_script_info(app))
    assert result.exit_code == 0, result.output
    return result


def _script_info(app):
    return ScriptInfo(create_app=lambda: app)


def test_api_keys_are_made_listed_and_revoked_by_operators(app):
    made = json.loads(_create_key(app, "--name", "sender",
                                  "--scope", "notifications:send").output)
    assert made["key"].startswith("psk_") and made["scopes"] == ["notifications:send"]
    listed = CliRunner().invoke(keys_command, ["list"], obj=_script_info(app)).output
    assert "sender" in listed and made["key"] not in listed
    again = CliRunner().invoke(keys_command, ["create", "--name", "sender", "--scope",
                                              "notifications:send"], obj=_script_info(app))
    assert again.exit_code != 0 and "exists" in again.output
    revoked = CliRunner().invoke(keys_command, ["revoke", "sender"], obj=_script_info(app))
    assert revoked.exit_code == 0
    assert "sender" not in CliRunner().invoke(keys_command, ["list"],
                                              obj=_script_info(app)).output


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/users"), ("GET", "/api/apple_device_tokens"),
    ("POST", "/api/access_tokens"), ("GET", "/api/auth_tokens"),
    ("PATCH", f"/api/apple_device_tokens/{'ab' * 32}"),
    ("GET", f"/api/users/{uuid.uuid4()}/relationships/devices"),
])
def test_an_api_key_on_a_user_endpoint_is_403(client, app, method, path):
    key = json.loads(_create_key(app, "--name", f"k-{uuid.uuid4()}",
                                 "--scope", "notifications:send").output)["key"]
    response = client.open(path, method=method, headers=bearer(key), json={"data": {}})
    assert error_of(response, 403)["code"] == "FORBIDDEN_FOR_API_KEYS"


def test_an_auth_token_past_its_lifetime_is_401_and_pruned(client, app, provider,
                                                          monkeypatch):
    issued = issue(client)
    headers = bearer(issued["attributes"]["value"])
    assert client.get("/api/auth_tokens", headers=headers).status_code == 200
    with app.app_context():
        db.session.execute(update(Credential).where(Credential.id == int(issued["id"]))
                           .values(last_used_at=utcnow() - timedelta(days=91)))
        db.session.commit()
    error_of(client.get("/api/auth_tokens", headers=headers), 401)
    monkeypatch.setitem(app.config, "AUTH_TOKEN_IDLE_TIMEOUT", 0)  # 0: no idle limit
    assert client.get("/api/auth_tokens", headers=headers).status_code == 200


def test_no_secret_is_kept_in_clear(client, app, provider):
    """Every secret a client was shown is stored only as a digest, and the Live Activity
    token sealed (the push token itself must stay usable for sending). The development
    outbox stands in for the phone, so the code is in its text and nowhere else."""
    caller = Caller(client, app)
    code = last_code(app, stored_phone(app, caller.user_id))
    auth_token = issue(client)["attributes"]["value"]
    access = _access_token(client, caller.headers)
    key = json.loads(_create_key(app, "--name", "at-rest",
                                 "--scope", "notifications:send").output)["key"]
    push_to_start = uuid.uuid4().hex * 2
    client.post("/api/devices", headers=caller.headers, json={"data": {
        "type": "devices", "attributes": {
            "channel": "ios_push", "token": "ab" * 32, "fingerprint": "at-rest",
            "live_activity_push_to_start_token": push_to_start}}})
    with app.app_context():
        dump = "\n".join(str(row) for table in db.metadata.sorted_tables
                         if table.name != "sms_outbox"
                         for row in db.session.execute(table.select()))
    for secret in (caller.session_id, code, auth_token, key, access, push_to_start):
        assert secret not in dump
    assert "ab" * 32 in dump  # the push token is kept usable


def _count_credentials(app):
    with app.app_context():
        return len(db.session.scalars(select(Credential.id).where(
            Credential.kind == CredentialKind.AUTH_TOKEN)).all())


def test_the_jwks_is_published_only_for_asymmetric_keys(client):
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 404  # the test app signs with its secret key


def test_api_keys_and_sessions_share_one_lookup(client, app):
    """A session id is accepted in the Authentication header too (one lookup by digest)."""
    session_id = create_session(client)
    response = client.get("/api/apple_device_tokens",
                          headers={"Authorization": None, "Authentication": session_id})
    assert response.status_code == 200


def stored_phone(app, user_id):
    with app.app_context():
        return db.session.get(User, uuid.UUID(user_id)).phone_number
