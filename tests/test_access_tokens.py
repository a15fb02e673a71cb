"""Access-token JWTs: minted with the current key, verified by key id, refused otherwise."""

import base64
import hashlib
import hmac
import json
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from app.errors import NotAuthorized
from app.web import access_tokens

SECRET = "x" * 40


def _pem(private):
    return private.private_bytes(serialization.Encoding.PEM,
                                 serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()


def _config(**keys):
    return {"SECRET_KEY": SECRET, "ACCESS_TOKEN_SIGNING_KEYS": json.dumps(keys) if keys else "",
            "ACCESS_TOKEN_KEY_ID": None}


@pytest.fixture(scope="module")
def ec_pem():
    return _pem(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="module")
def rsa_pem():
    return _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def test_a_symmetric_token_round_trips_and_publishes_no_keys():
    keys = access_tokens.keys_from_config(_config())
    user_id = uuid.uuid4()
    token = access_tokens.mint(keys, user_id, "public-7", 60).value
    claims = access_tokens.verify(keys, token)
    assert (claims["sub"], claims["sid"]) == (str(user_id), "public-7")
    assert keys.jwks() == {"keys": []}


def test_asymmetric_keys_rotate_by_key_id(ec_pem, rsa_pem):
    old = access_tokens.keys_from_config(_config(old=ec_pem))
    token = access_tokens.mint(old, uuid.uuid4(), "public-1", 60).value
    both = access_tokens.keys_from_config({**_config(old=ec_pem, new=rsa_pem),
                                           "ACCESS_TOKEN_KEY_ID": "new"})
    assert access_tokens.verify(both, token)["sid"] == "public-1"  # old tokens still verify
    fresh = access_tokens.mint(both, uuid.uuid4(), "public-2", 60).value
    assert jwt.get_unverified_header(fresh) == {"alg": "RS256", "kid": "new", "typ": "JWT"}
    assert {key["kid"] for key in both.jwks()["keys"]} == {"old", "new"}
    assert all("d" not in key for key in both.jwks()["keys"])  # public halves only
    only_new = access_tokens.keys_from_config(_config(new=rsa_pem))
    with pytest.raises(NotAuthorized):
        access_tokens.verify(only_new, token)  # its key was removed


def test_forged_expired_and_malformed_tokens_are_refused(ec_pem):
    keys = access_tokens.keys_from_config(_config(k=ec_pem))
    token = access_tokens.mint(keys, uuid.uuid4(), "public-3", 60).value
    public_pem = keys.current.verifying.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = [
        jwt.encode(claims, "", algorithm="none", headers={"kid": "k"}),
        _hs256_signed_with(public_pem, claims),
        token[:-4] + "AAAA",
        jwt.encode({**claims, "exp": claims["iat"] - 120}, keys.current.signing,
                   algorithm="ES256", headers={"kid": "k"}),
        jwt.encode({**claims, "sid": 3}, keys.current.signing, algorithm="ES256",
                   headers={"kid": "k"}),
        jwt.encode({**claims, "sid": "x" * 33}, keys.current.signing, algorithm="ES256",
                   headers={"kid": "k"}),
        jwt.encode(claims, keys.current.signing, algorithm="ES256", headers={"kid": "other"}),
        "not.a.token",
    ]
    for candidate in forged:
        with pytest.raises(NotAuthorized):
            access_tokens.verify(keys, candidate)


def test_the_symmetric_key_is_derived_for_access_tokens_alone():
    """Not SECRET_KEY itself, nor the key credentials' digests use, nor a plain HMAC of
    the server key: a token signed with any of those is refused."""
    keys = access_tokens.keys_from_config(_config())
    claims = jwt.decode(access_tokens.mint(keys, uuid.uuid4(), "public-4", 60).value,
                        options={"verify_signature": False})
    others = [SECRET.encode(), f"credential:{SECRET}".encode(),
              hmac.new(SECRET.encode(), b"access-token", hashlib.sha256).digest()]
    for other in others:
        forged = jwt.encode(claims, other, algorithm="HS256", headers={"kid": keys.current.kid})
        with pytest.raises(NotAuthorized):
            access_tokens.verify(keys, forged)


def _hs256_signed_with(secret, claims):
    """HS256 with the public key as the HMAC secret (PyJWT refuses to make one)."""
    def part(value):
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=")

    signing_input = part({"alg": "HS256", "kid": "k"}) + b"." + part(claims)
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode()


@pytest.mark.parametrize("keys", ["[]", "{}", "not json", json.dumps({"k": "not a pem"})])
def test_unusable_key_configuration_is_refused(keys):
    with pytest.raises(access_tokens.KeyConfigurationError):
        access_tokens.keys_from_config({**_config(), "ACCESS_TOKEN_SIGNING_KEYS": keys})


def test_several_keys_need_the_current_one_named(ec_pem, rsa_pem):
    with pytest.raises(access_tokens.KeyConfigurationError, match="ACCESS_TOKEN_KEY_ID"):
        access_tokens.keys_from_config(_config(a=ec_pem, b=rsa_pem))
