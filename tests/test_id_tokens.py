"""Identity providers' ID tokens, verified against keys served by a real HTTP server on
127.0.0.1 (a JWKS and Google's certificate document), with a fake clock for time."""

import datetime
import hashlib
import hmac
import json
import math
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from flask import Flask

from app import create_app
from app.config import Config, ConfigurationError
from app.errors import IdentityProviderUnavailable, InvalidIdToken
from app.formats.id_token_providers import FIREBASE_KEYS_URL
from app.identity import Identity, IdTokenVerifier, Provider, verifier, verify_id_token
from app.jsonapi.errors import error_object
from tests.conftest import free_port
from tests.identity_provider import KeyServer, b64, jwk, jwks

ISSUER = "https://issuer.example.com"
AUDIENCE = "com.example.app"
FIREBASE_PROJECT = "pushreg-test"
FIREBASE_ISSUER = f"https://securetoken.google.com/{FIREBASE_PROJECT}"
START = 1_800_000_000.0

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ROTATED_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
STRANGER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Clock:
    def __init__(self):
        self.now = START

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture(scope="module")
def key_server():
    server = KeyServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def server(key_server):
    """The module's key server, reset: the JWKS and certificates of the test keys."""
    key_server.documents.clear()
    key_server.fetches.clear()
    key_server.max_age = 3600
    key_server.serve("/jwks", jwks(("rsa-1", RSA_KEY), ("ec-1", EC_KEY)))
    key_server.serve("/x509", certificates(("cert-1", RSA_KEY)))
    return key_server


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def verify(server, clock):
    """Verifies a token of ISSUER, whose keys are the server's JWKS."""
    return make_verifier(server.url("/jwks"), clock).verify


def make_verifier(keys_url, clock, issuer=ISSUER, audiences=(AUDIENCE,)):
    return IdTokenVerifier([Provider(issuer, audiences, keys_url)], clock=clock)


def certificates(*keys):
    return {kid: certificate_pem(key) for kid, key in keys}


def certificate_pem(private_key):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.system")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(private_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                   .sign(private_key, hashes.SHA256()))
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def claims(clock, **changes):
    """A valid token's claims; a change to None removes the claim."""
    now = int(clock())
    values = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": now, "exp": now + 3600,
              "email": "ada@example.com", "email_verified": True, **changes}
    return {name: value for name, value in values.items() if value is not None}


def token(clock, key=RSA_KEY, kid="rsa-1", algorithm="RS256", **changes):
    return jwt.encode(claims(clock, **changes), key, algorithm=algorithm, headers={"kid": kid})


def hmac_token(clock, secret, kid="rsa-1"):
    """An HS256 token whose HMAC secret is the provider's public key — what a verifier
    that lets the token choose its algorithm would accept."""
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = b64(json.dumps(claims(clock)).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = b64(hmac.new(secret, signing_input, hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"


def refused(verify, token, detail):
    with pytest.raises(InvalidIdToken) as caught:
        verify(token)
    error = caught.value
    assert (error.status, error.code) == (401, "NOT_AUTHENTICATED")
    assert detail in error.detail
    if isinstance(token, str) and len(token) > 12:
        assert token not in error.detail and token.split(".")[0] not in error.detail
    return error


# A valid token

def test_a_valid_token_proves_its_subject(verify, clock):
    assert verify(token(clock)) == Identity(
        issuer=ISSUER, subject="user-1", email="ada@example.com", email_verified=True,
        phone_number=None, phone_number_verified=False)


def test_an_es256_token_is_checked_with_its_ec_key(verify, clock):
    assert verify(token(clock, key=EC_KEY, kid="ec-1", algorithm="ES256")).subject == "user-1"


def test_the_leeway_forgives_a_little_clock_skew(verify, clock):
    assert verify(token(clock, exp=int(clock()) - 30, iat=int(clock()) + 30, nbf=int(clock()) + 30))


def test_any_of_an_issuers_audiences_is_accepted(server, clock):
    verify = make_verifier(server.url("/jwks"), clock, audiences=(AUDIENCE, "web-client")).verify
    assert verify(token(clock, aud="web-client")).subject == "user-1"
    assert verify(token(clock, aud=["other", AUDIENCE])).subject == "user-1"


def firebase_token(clock, sign_in_provider):
    return token(clock, kid="cert-1", iss=FIREBASE_ISSUER, aud=FIREBASE_PROJECT,
                 sub="firebase-uid", email=None, email_verified=None,
                 phone_number="+15555550123",
                 firebase={"identities": {}, "sign_in_provider": sign_in_provider})


def test_firebase_certificates_verify_its_tokens_and_its_phone_numbers(server, clock):
    verify = make_verifier(server.url("/x509"), clock, FIREBASE_ISSUER, (FIREBASE_PROJECT,)).verify
    identity = verify(firebase_token(clock, "phone"))
    assert identity == Identity(FIREBASE_ISSUER, "firebase-uid", None, False,
                                "+15555550123", True)


@pytest.mark.parametrize("sign_in_provider", ["custom", "anonymous", "password", "google.com",
                                              None])
def test_firebase_proves_a_phone_number_only_for_a_phone_sign_in(server, clock,
                                                                 sign_in_provider):
    verify = make_verifier(server.url("/x509"), clock, FIREBASE_ISSUER, (FIREBASE_PROJECT,)).verify
    identity = verify(firebase_token(clock, sign_in_provider))
    assert (identity.phone_number, identity.phone_number_verified) == ("+15555550123", False)


@pytest.mark.parametrize("issuer", ["https://appleid.apple.com", "https://accounts.google.com"])
def test_apple_and_google_never_prove_a_phone_number(server, clock, issuer):
    verify = make_verifier(server.url("/jwks"), clock, issuer).verify
    identity = verify(token(clock, iss=issuer, phone_number="+15555550123",
                            phone_number_verified=True))
    assert (identity.phone_number, identity.phone_number_verified) == ("+15555550123", False)


@pytest.mark.parametrize("extra, verified", [
    ({}, False),
    ({"phone_number_verified": True}, True),
    ({"phone_number_verified": "true"}, True),
    ({"phone_number_verified": "false"}, False),
])
def test_other_providers_phone_numbers_are_verified_only_when_they_say_so(
        verify, clock, extra, verified):
    identity = verify(token(clock, phone_number="+15555550123", **extra))
    assert (identity.phone_number, identity.phone_number_verified) == ("+15555550123", verified)


def test_a_phone_number_not_in_e164_form_is_left_out(verify, clock):
    identity = verify(token(clock, phone_number="(555) 555-0123", phone_number_verified=True))
    assert (identity.phone_number, identity.phone_number_verified) == (None, False)


@pytest.mark.parametrize("flag, verified", [(True, True), ("true", True), (False, False),
                                            ("false", False), (None, False)])
def test_email_verified_as_apple_and_google_send_it(verify, clock, flag, verified):
    assert verify(token(clock, email_verified=flag)).email_verified is verified


# Refused tokens: 401 NOT_AUTHENTICATED, saying why without repeating the token

@pytest.mark.parametrize("malformed", [
    "", "not-a-jwt", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln", "x" * 20000,
])
def test_a_malformed_token_is_refused(verify, malformed):
    refused(verify, malformed, "malformed")


def test_a_token_that_is_not_a_string_is_refused(verify):
    refused(verify, None, "malformed")


def test_an_expired_token_is_refused(verify, clock):
    refused(verify, token(clock, exp=int(clock()) - 61), "expired")


@pytest.mark.parametrize("claim", ["nbf", "iat", "auth_time"])
def test_a_token_from_the_future_is_refused(verify, clock, claim):
    refused(verify, token(clock, **{claim: int(clock()) + 120}), "not valid yet")



@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("claim", ["exp", "iat", "nbf", "auth_time"])
def test_a_time_that_is_no_number_is_refused(verify, clock, claim, value):
    """JSON as PyJWT reads it takes NaN and Infinity: an exp of NaN never expired."""
    refused(verify, token(clock, **{claim: value}), f"{claim} claim is not a time")


def test_a_time_of_400_digits_is_a_number_still(verify, clock):
    assert verify(token(clock, exp=10**400)).subject == "user-1"
    refused(verify, token(clock, iat=10**400), "not valid yet")

def test_another_issuers_token_is_refused(verify, clock):
    refused(verify, token(clock, iss="https://evil.example.com"), "issuer")


def test_a_token_for_another_audience_is_refused(verify, clock):
    refused(verify, token(clock, aud="com.example.other"), "audience")


def test_a_token_signed_by_a_key_the_issuer_does_not_have_is_refused(verify, clock):
    refused(verify, token(clock, key=STRANGER_KEY, kid="stranger"), "key its issuer does not have")


def test_a_token_signed_by_another_key_under_a_known_kid_is_refused(verify, clock):
    refused(verify, token(clock, key=STRANGER_KEY), "signature")


def test_a_tampered_token_is_refused(verify, clock):
    header, _, signature = token(clock).split(".")
    forged = b64(json.dumps(claims(clock, sub="someone-else")).encode())
    refused(verify, f"{header}.{forged}.{signature}", "signature")


def test_an_unsigned_token_is_refused(verify, clock):
    unsigned = jwt.encode(claims(clock), None, algorithm="none", headers={"kid": "rsa-1"})
    refused(verify, unsigned, "algorithm")


def public_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("secret", [
    public_pem(RSA_KEY),
    json.dumps(jwk("rsa-1", RSA_KEY)).encode(),
    json.dumps(jwks(("rsa-1", RSA_KEY))).encode(),
], ids=["pem", "jwk", "jwks"])
def test_an_hs256_token_keyed_with_the_public_key_is_refused(verify, clock, secret):
    refused(verify, hmac_token(clock, secret), "algorithm")


def test_an_algorithm_outside_the_allow_list_is_refused(verify, clock):
    refused(verify, token(clock, algorithm="RS384"), "algorithm")


def test_a_token_naming_an_ec_algorithm_for_an_rsa_key_is_refused(verify, clock):
    refused(verify, token(clock, key=EC_KEY, kid="rsa-1", algorithm="ES256"), "does not fit")


def test_a_key_published_for_one_algorithm_is_not_used_with_another(server, clock):
    server.serve("/jwks", {"keys": [jwk("rsa-1", RSA_KEY, alg="PS256")]})
    verify = make_verifier(server.url("/jwks"), clock).verify
    refused(verify, token(clock), "does not fit")


def test_a_token_without_a_kid_is_refused(verify, clock):
    refused(verify, jwt.encode(claims(clock), RSA_KEY, algorithm="RS256"), "kid")


@pytest.mark.parametrize("claim", ["sub", "exp", "iat", "aud"])
def test_a_token_without_a_required_claim_is_refused(verify, clock, claim):
    refused(verify, token(clock, **{claim: None}), f"no {claim} claim")


@pytest.mark.parametrize("subject", ["", "x" * 256, 42])
def test_a_token_with_an_unusable_subject_is_refused(verify, clock, subject):
    refused(verify, token(clock, sub=subject), "subject")


def test_a_subject_of_255_characters_is_accepted(verify, clock):
    assert verify(token(clock, sub="x" * 255)).subject == "x" * 255


def test_a_refusal_is_a_jsonapi_401_with_a_bearer_challenge(verify, clock):
    error = refused(verify, token(clock, exp=int(clock()) - 3600), "expired")
    assert error.headers["WWW-Authenticate"] == "Bearer"
    document = error_object(error)
    assert (document["status"], document["code"]) == ("401", "NOT_AUTHENTICATED")


def test_only_public_key_algorithms_can_be_allowed(clock):
    for algorithms in (["HS256"], ["RS256", "none"]):
        with pytest.raises(ValueError, match="public-key"):
            IdTokenVerifier([], algorithms=algorithms, clock=clock)


# Fetching and caching keys

def test_forged_kids_refetch_the_keys_at_most_once_a_minute(verify, server, clock):
    verify(token(clock))
    for _ in range(20):
        refused(verify, token(clock, key=STRANGER_KEY, kid="forged"), "key its issuer")
    assert server.fetches["/jwks"] == 1
    clock.advance(60)
    for _ in range(20):
        refused(verify, token(clock, key=STRANGER_KEY, kid="forged"), "key its issuer")
        clock.advance(1)
    assert server.fetches["/jwks"] == 2
    assert verify(token(clock)).subject == "user-1"
    assert server.fetches["/jwks"] == 2


def test_keys_are_kept_for_their_max_age_then_fetched_again(verify, server, clock):
    server.max_age = 300
    verify(token(clock))
    clock.advance(299)
    verify(token(clock))
    assert server.fetches["/jwks"] == 1
    clock.advance(1)
    verify(token(clock))
    assert server.fetches["/jwks"] == 2


def test_keys_that_may_not_be_cached_are_still_kept_for_a_minute(verify, server, clock):
    server.max_age = 0
    verify(token(clock))
    clock.advance(59)
    verify(token(clock))
    assert server.fetches["/jwks"] == 1
    clock.advance(1)
    verify(token(clock))
    assert server.fetches["/jwks"] == 2


def test_a_rotated_in_key_is_picked_up_by_a_refetch(verify, server, clock):
    verify(token(clock))
    server.serve("/jwks", jwks(("rsa-1", RSA_KEY), ("rsa-2", ROTATED_KEY)))
    # Within a minute of the last fetch the new key is not asked for yet.
    refused(verify, token(clock, key=ROTATED_KEY, kid="rsa-2"), "key its issuer")
    clock.advance(60)
    assert verify(token(clock, key=ROTATED_KEY, kid="rsa-2")).subject == "user-1"
    assert server.fetches["/jwks"] == 2


def test_a_rotated_out_key_is_refused_once_the_keys_expire(verify, server, clock):
    verify(token(clock))
    server.serve("/jwks", jwks(("rsa-2", ROTATED_KEY)))
    clock.advance(3600)
    refused(verify, token(clock), "key its issuer")


def test_threads_waiting_for_the_keys_share_one_fetch(verify, server, clock):
    tokens = [token(clock, sub=f"user-{n}") for n in range(40)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        subjects = list(pool.map(lambda t: verify(t).subject, tokens))
    assert subjects == [f"user-{n}" for n in range(40)]
    assert server.fetches["/jwks"] == 1


def test_keys_from_a_local_file_work_offline(tmp_path, clock):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(jwks(("rsa-1", RSA_KEY))))
    verify = make_verifier(path.as_uri(), clock).verify
    assert verify(token(clock)).subject == "user-1"


def test_a_certificate_file_works_offline(tmp_path, clock):
    path = tmp_path / "certs.json"
    path.write_text(json.dumps(certificates(("cert-1", EC_KEY))))
    verify = make_verifier(path.as_uri(), clock).verify
    assert verify(token(clock, key=EC_KEY, kid="cert-1", algorithm="ES256")).subject == "user-1"


# A provider that cannot be reached: 503, naming the provider

def unavailable(verify, token):
    with pytest.raises(IdentityProviderUnavailable) as caught:
        verify(token)
    error = caught.value
    assert (error.status, error.code) == (503, "SERVICE_UNAVAILABLE")
    assert ISSUER in error.detail
    return error


def test_an_unreachable_provider_is_a_503_naming_it(clock):
    verify = make_verifier(f"http://127.0.0.1:{free_port()}/jwks", clock).verify
    unavailable(verify, token(clock))


@pytest.mark.parametrize("status, document", [
    (500, b"{}"), (200, b"<html>down</html>"), (200, b'{"keys": []}'), (200, b"[1, 2]"),
])
def test_a_provider_answering_no_usable_keys_is_a_503(server, clock, status, document):
    server.serve("/jwks", document, status=status)
    unavailable(make_verifier(server.url("/jwks"), clock).verify, token(clock))


def test_a_missing_key_file_is_a_503(tmp_path, clock):
    verify = make_verifier((tmp_path / "absent.json").as_uri(), clock).verify
    unavailable(verify, token(clock))


def test_a_failing_provider_is_asked_again_only_after_a_pause(verify, server, clock):
    server.serve("/jwks", b"{}", status=500)
    for _ in range(10):
        unavailable(verify, token(clock))
    assert server.fetches["/jwks"] == 1
    server.serve("/jwks", jwks(("rsa-1", RSA_KEY)))
    clock.advance(5)
    assert verify(token(clock)).subject == "user-1"
    assert server.fetches["/jwks"] == 2


def test_expired_keys_stay_in_use_while_the_provider_is_down(verify, server, clock):
    verify(token(clock))
    server.serve("/jwks", b"{}", status=500)
    clock.advance(3600)
    assert verify(token(clock)).subject == "user-1"
    unavailable(verify, token(clock, key=ROTATED_KEY, kid="rsa-2"))
    assert server.fetches["/jwks"] == 2


# Configuration

def config(monkeypatch, **environment):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return Config()


def providers_json(*entries):
    return json.dumps([{"issuer": ISSUER, "audience": AUDIENCE,
                        "keys_url": "https://issuer.example.com/jwks", **entry}
                       for entry in entries])


def test_firebase_needs_only_its_project_id(monkeypatch):
    settings = config(monkeypatch, FIREBASE_PROJECT_ID=FIREBASE_PROJECT)
    firebase = Provider(FIREBASE_ISSUER, (FIREBASE_PROJECT,), FIREBASE_KEYS_URL)
    assert (firebase,) == settings.ID_TOKEN_PROVIDERS


def test_no_providers_by_default(monkeypatch):
    monkeypatch.delenv("ID_TOKEN_PROVIDERS", raising=False)
    monkeypatch.delenv("FIREBASE_PROJECT_ID", raising=False)
    settings = Config()
    assert (settings.ID_TOKEN_PROVIDERS, settings.ID_TOKEN_LEEWAY,
            settings.ID_TOKEN_KEYS_TIMEOUT) == ((), 60, 5.0)


def test_entries_of_one_issuer_pool_their_audiences(monkeypatch):
    raw = providers_json({"audience": "a"}, {"audience": ["b", "a"]})
    pooled = Provider(ISSUER, ("a", "b"), "https://issuer.example.com/jwks")
    assert (pooled,) == config(monkeypatch, ID_TOKEN_PROVIDERS=raw).ID_TOKEN_PROVIDERS


@pytest.mark.parametrize("keys_url", [
    "http://127.0.0.1:8080/jwks", "http://[::1]/jwks", "http://localhost/jwks",
    "file:///etc/pushreg/keys.json",
])
def test_loopback_http_and_local_files_are_allowed_for_keys(monkeypatch, keys_url):
    raw = providers_json({"keys_url": keys_url})
    assert config(monkeypatch, ID_TOKEN_PROVIDERS=raw).ID_TOKEN_PROVIDERS[0].keys_url == keys_url


@pytest.mark.parametrize("raw, complaint", [
    ("[{", "not valid JSON"),
    ('{"issuer": "x"}', "JSON list"),
    (providers_json({"keys_url": "http://issuer.example.com/jwks"}), "loopback"),
    (providers_json({"keys_url": "http://10.0.0.1/jwks"}), "loopback"),
    (providers_json({"keys_url": "file:relative/keys.json"}), "keys_url"),
    (providers_json({"keys_url": "ftp://issuer.example.com/keys"}), "keys_url"),
    (providers_json({"keys_url": "https://[::1/keys"}), "keys_url"),
    (providers_json({"audience": []}), "audience"),
    (providers_json({"audience": ""}), "audience"),
    (providers_json({"issuer": ""}), "issuer"),
    (providers_json({"algorithm": "RS256"}), "exactly"),
    (providers_json({}, {"keys_url": "https://elsewhere.example.com/jwks"}), "two different"),
])
def test_malformed_providers_stop_the_start(monkeypatch, raw, complaint):
    with pytest.raises(ConfigurationError, match="ID_TOKEN_PROVIDERS") as caught:
        create_app(config(monkeypatch, ID_TOKEN_PROVIDERS=raw))
    assert complaint in str(caught.value)


@pytest.mark.parametrize("name, value", [
    ("FIREBASE_PROJECT_ID", "My Project"),
    ("ID_TOKEN_LEEWAY", "a minute"),
    ("ID_TOKEN_LEEWAY", "-1"),
    ("ID_TOKEN_KEYS_TIMEOUT", "0"),
    ("ID_TOKEN_KEYS_TIMEOUT", "30"),  # gunicorn would kill the worker first
])
def test_malformed_id_token_settings_stop_the_start(monkeypatch, name, value):
    with pytest.raises(ConfigurationError, match=name):
        create_app(config(monkeypatch, **{name: value}))


def test_the_apps_verifier_is_built_once_from_its_configuration(server):
    app = Flask(__name__)
    app.config.update(ID_TOKEN_PROVIDERS=(Provider(ISSUER, (AUDIENCE,), server.url("/jwks")),),
                      ID_TOKEN_LEEWAY=60, ID_TOKEN_KEYS_TIMEOUT=5.0)
    with app.app_context():
        assert verifier() is verifier(app)
        assert verify_id_token(token(time.time)).subject == "user-1"


def test_the_documented_examples_are_valid_settings(monkeypatch):
    """Each ``export NAME='…'`` of the ID tokens page (docs/operators/id-tokens.md) starts
    the service."""
    section = (Path(__file__).resolve().parent.parent / "docs" / "operators" / "id-tokens.md"
               ).read_text()
    examples = re.findall(r"^export (\w+)='?(.*?)'?$(?=\n\n|\n```)", section, re.S | re.M)
    issuers = set()
    for name, value in examples:
        monkeypatch.delenv("FIREBASE_PROJECT_ID", raising=False)
        monkeypatch.delenv("ID_TOKEN_PROVIDERS", raising=False)
        issuers.update(p.issuer for p in create_app(config(monkeypatch, **{name: value}))
                       .config["ID_TOKEN_PROVIDERS"])
    assert issuers == {"https://securetoken.google.com/my-app-1234", "https://appleid.apple.com",
                       "https://accounts.google.com", "accounts.google.com"}
