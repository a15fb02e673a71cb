"""``flask doctor``: every problem in plain words and exit status 1; "all good" and 0."""

import json
import socket
import subprocess

import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from app.ops.doctor import doctor
from tests.conftest import free_port
from tests.identity_provider import KeyServer, jwks
from tests.live_server import BIN, ROOT
from tests.test_health import beat, schema_at

pytestmark = pytest.mark.committed  # the doctor reads on connections of its own

ISSUER = "https://issuer.example.com"
NO_APNS = dict.fromkeys(("APNS_KEY", "APNS_KEY_ID", "APNS_TEAM_ID", "APNS_BUNDLE_ID"))  # unset
NO_PUSH = {**NO_APNS, **dict.fromkeys(("FCM_CREDENTIALS_FILE", "FCM_PROJECT_ID"))}


def pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture(scope="module")
def key_server():
    server = KeyServer()
    server.thread.start()
    server.serve("/keys", jwks(("k1", rsa.generate_private_key(public_exponent=65537,
                                                               key_size=2048))))
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def sms_gateway():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/send"


@pytest.fixture
def service_account(tmp_path):
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "my-app-1234",
        "client_email": "push@my-app-1234.iam.gserviceaccount.com",
        "private_key": pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "token_uri": "https://oauth2.googleapis.com/token"}))
    return path


@pytest.fixture
def healthy(database_url, app, key_file, key_server, sms_gateway, service_account):
    """Everything configured, and right."""
    return {
        "DATABASE_URL": database_url, "SECRET_KEY": app.config["SECRET_KEY"],
        "SMS_SENDER": "http", "SMS_GATEWAY_URL": sms_gateway,
        "ID_TOKEN_PROVIDERS": json.dumps([{"issuer": ISSUER, "audience": "app",
                                           "keys_url": key_server.url("/keys")}]),
        "APNS_KEY": str(key_file), "APNS_KEY_ID": "ABC123DEFG", "APNS_TEAM_ID": "DEF123GHIJ",
        "APNS_BUNDLE_ID": "com.example.app",
        "FCM_CREDENTIALS_FILE": str(service_account), "FCM_PROJECT_ID": "my-app-1234",
    }


def examine(environment, exit_code):
    result = CliRunner().invoke(doctor, ["--timeout", "3"], env=environment)
    assert result.exit_code == exit_code, result.output
    return result.output


def problems(output):
    return [line.split(": ", 1)[1] for line in output.splitlines()
            if line.startswith("PROBLEM")]


def test_all_good_says_so_and_exits_0(app, healthy):
    beat(app)
    output = examine(healthy, 0)
    assert "All good: 8 checks passed." in output
    assert "PROBLEM" not in output
    assert f"identity provider {ISSUER}: 1 keys" in output
    assert "push workers: the newest heartbeat is" in output


def test_a_setting_that_does_not_parse_is_named_even_though_the_app_cannot_load(healthy):
    result = subprocess.run([str(BIN / "flask"), "--app", "wsgi", "doctor"], cwd=ROOT,
                            env={**healthy, "PAGE_SIZE_MAX": "lots", "PATH": str(BIN)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert 'PROBLEM  configuration: Environment variable "PAGE_SIZE_MAX" invalid' in \
        result.stdout
    assert "1 problem found." in result.stderr


def test_an_unreachable_database_is_a_problem(healthy):
    output = examine({**healthy, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:"
                                                 f"{free_port()}/pushreg"}, 1)
    (problem,) = problems(output)
    assert problem.startswith("cannot reach postgresql+psycopg://postgres@127.0.0.1:")


def test_a_database_behind_the_migrations_is_a_problem(app, healthy):
    head = ScriptDirectory(str(ROOT / "migrations")).get_current_head()
    with schema_at(app, "0004"):
        output = examine(healthy, 1)
    assert problems(output) == [
        f"the database is at 0004 but the code needs {head}: run flask db upgrade"]


def test_push_without_a_running_worker_is_a_problem(healthy):
    assert problems(examine(healthy, 1)) == ["no push worker is running (flask push worker)"]


def test_each_wrong_apns_setting_is_named(app, healthy, tmp_path):
    beat(app)
    rsa_key = tmp_path / "AuthKey.p8"
    rsa_key.write_text(pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    output = examine({**healthy, "APNS_KEY": str(rsa_key), "APNS_KEY_ID": "ABC123DEF",
                      "APNS_TEAM_ID": "def123ghij", "APNS_BUNDLE_ID": "app"}, 1)
    assert problems(output) == [
        "APNS_KEY_ID must be the 10 letters and digits Apple shows, like ABC123DEFG",
        "APNS_TEAM_ID must be the 10 letters and digits Apple shows, like ABC123DEFG",
        "APNS_BUNDLE_ID must be an app's bundle id, like com.example.app",
        "the APNs key must be an EC P-256 (.p8) key (APNS_KEY)",
    ]


@pytest.mark.parametrize("curve_key, missing, complaint", [
    (None, {}, "cannot read the APNs key file"),
    (ec.SECP384R1, {}, "EC P-256"),
    (ec.SECP256R1, {"APNS_TEAM_ID"}, "not APNS_TEAM_ID"),
])
def test_an_apns_key_that_cannot_sign_is_a_problem(app, healthy, tmp_path, curve_key, missing,
                                                   complaint):
    beat(app)
    key = tmp_path / "AuthKey.p8"
    if curve_key:
        key.write_text(pem(ec.generate_private_key(curve_key())))
    environment = {**healthy, "APNS_KEY": str(key), **dict.fromkeys(missing, "")}
    (problem,) = problems(examine(environment, 1))
    assert complaint in problem


def test_a_wrong_fcm_service_account_is_a_problem(healthy, service_account, tmp_path):
    account = json.loads(service_account.read_text())
    del account["private_key"]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(account))
    output = examine({**healthy, "FCM_CREDENTIALS_FILE": str(broken),
                      "FCM_PROJECT_ID": "other-project", **NO_APNS}, 1)
    assert problems(output) == [
        "no push worker is running (flask push worker)",  # FCM alone is push configured
        "FCM_CREDENTIALS_FILE has no private_key",
        "FCM_PROJECT_ID is other-project but the service account belongs to my-app-1234"]


def test_an_sms_gateway_nothing_answers_at_is_a_problem(healthy):
    port = free_port()
    output = examine({**healthy, "SMS_GATEWAY_URL": f"http://127.0.0.1:{port}/send",
                      **NO_PUSH}, 1)
    assert problems(output) == [
        f"cannot connect to the SMS gateway at 127.0.0.1:{port}: Connection refused"]


def test_identity_provider_keys_that_cannot_be_fetched_are_a_problem(healthy, key_server):
    providers = [{"issuer": ISSUER, "audience": "app", "keys_url": key_server.url("/gone")},
                 {"issuer": "https://other.example.com", "audience": "app",
                  "keys_url": f"http://127.0.0.1:{free_port()}/keys"}]
    output = examine({**healthy, "ID_TOKEN_PROVIDERS": json.dumps(providers), **NO_PUSH}, 1)
    assert problems(output) == [
        f"its keys at {key_server.url('/gone')}: fetching the keys failed: HTTPError",
        f"its keys at {providers[1]['keys_url']}: fetching the keys failed: ConnectionError"]
