"""FCM through Application Default Credentials (FCM_PROJECT_ID without FCM_CREDENTIALS_FILE):
the access token from a fake metadata server (or the key file GOOGLE_APPLICATION_CREDENTIALS
names), shared by every worker through ``provider_tokens``; the metadata server down makes
the deliveries wait; ``flask doctor`` says which kind of credentials is in use."""

import time

import pytest
import requests
from sqlalchemy import select

from app.models.notification import ProviderToken
from app.push.fcm_auth import ACCESS_TOKEN_MAX_AGE, ApplicationDefaultMinter
from app.push.provider_token import SharedTokenCache
from tests.fake_fcm import SCOPE
from tests.fake_metadata import FakeMetadataServer, point_google_auth_at
from tests.test_dispatch import finished, rows, worker_process
from tests.test_doctor import (  # noqa: F401
    NO_APNS,
    examine,
    healthy,
    key_server,
    service_account,
    sms_gateway,
)
from tests.test_fcm_dispatch import (  # noqa: F401
    _retry_now,
    android,
    fake_fcm,
    fcm_config,
    fcm_key,
    invalidated,
    outcome,
    send_due,
)
from tests.test_health import beat

pytestmark = pytest.mark.committed


@pytest.fixture
def metadata(fake_fcm):  # noqa: F811
    with FakeMetadataServer(fake_fcm, project_id=fake_fcm.project_id) as server:
        yield server


@pytest.fixture
def adc_config(fake_fcm):  # noqa: F811
    """FCM configured by its project alone: Application Default Credentials."""
    return {"FCM_CREDENTIALS_FILE": None, "FCM_PROJECT_ID": fake_fcm.project_id,
            "FCM_URL": fake_fcm.url, "FCM_CA_FILE": fake_fcm.ca_file,
            "FCM_REQUEST_TIMEOUT": 5.0, "PUSH_RETRY_BASE": 1.0}


@pytest.fixture
def on_gce(monkeypatch, metadata, tmp_path):
    point_google_auth_at(monkeypatch, metadata, tmp_path)
    return metadata


def stored_token_keys(app):
    with rows(app) as connection:
        return set(connection.scalars(select(ProviderToken.__table__.c.key)))


def test_a_push_goes_through_fcm_with_the_metadata_servers_token(app, fake_fcm, on_gce,  # noqa: F811
                                                                 adc_config):
    _, deliveries = android(app, 3)

    assert send_due(app, adc_config)["sent"] == 3

    assert {outcome(app, d).state for d in deliveries} == {"sent"}
    assert len(fake_fcm.log) == 3 and fake_fcm.token_requests == 0  # no key-file grant
    assert on_gce.token_requests == 1 and on_gce.scopes_asked == [SCOPE]
    assert on_gce.refused == 0  # google-auth sent Metadata-Flavor: Google
    assert "fcm:adc:default" in stored_token_keys(app)


def test_the_fake_metadata_server_refuses_requests_without_its_header(on_gce):
    url = f"http://{on_gce.address}/computeMetadata/v1/instance/service-accounts/default/email"
    assert requests.get(url, timeout=5).status_code == 403
    answer = requests.get(url, headers={"Metadata-Flavor": "Google"}, timeout=5)
    assert answer.text == on_gce.email and answer.headers["Metadata-Flavor"] == "Google"


def test_workers_one_after_another_share_one_adc_token(app, on_gce, adc_config):
    for _ in range(3):
        android(app, 2)
        assert send_due(app, adc_config)["sent"] == 2
    assert on_gce.token_requests == 1


def test_two_worker_processes_share_the_adc_token(app, fake_fcm, metadata, adc_config,  # noqa: F811
                                                  service_env, tmp_path):
    android(app, 100)
    environ = {**{name: str(value) for name, value in adc_config.items() if value is not None},
               **metadata.environ(), "CLOUDSDK_CONFIG": str(tmp_path / "no-gcloud")}
    env = {name: value for name, value in service_env.items()
           if name not in ("GOOGLE_APPLICATION_CREDENTIALS", "FCM_CREDENTIALS_FILE")}

    workers = [worker_process(env, environ, "--burst", PUSH_CHUNK_SIZE=25) for _ in range(2)]
    assert sum(finished(process, timeout=120).get("sent", 0) for process in workers) == 100
    assert fake_fcm.twice_accepted() == [] and metadata.token_requests <= 2
    minted = metadata.token_requests

    android(app, 10)
    again = [worker_process(env, environ, "--burst") for _ in range(2)]
    assert sum(finished(process, timeout=120).get("sent", 0) for process in again) == 10
    assert metadata.token_requests == minted  # the shared token, not a new one


def test_google_application_credentials_naming_a_key_file_is_honoured(
        app, fake_fcm, adc_config, monkeypatch, tmp_path):  # noqa: F811
    point_google_auth_at(monkeypatch, None, tmp_path)  # no metadata server
    key_file = fake_fcm.write_credentials(tmp_path / "sa.json")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    android(app, 2)

    assert send_due(app, adc_config)["sent"] == 2
    assert fake_fcm.tokens_issued == 1 and fake_fcm.assertions_refused == 0


def test_the_metadata_server_down_makes_deliveries_wait_then_they_go(
        app, fake_fcm, metadata, adc_config, monkeypatch, tmp_path):  # noqa: F811
    point_google_auth_at(monkeypatch, None, tmp_path)
    devices, deliveries = android(app, 4)

    send_due(app, adc_config)

    assert {(outcome(app, d).state, outcome(app, d).last_reason) for d in deliveries} == {
        ("pending", "AccessTokenUnavailable")}
    assert fake_fcm.log == [] and not any(invalidated(app, device) for device in devices)

    point_google_auth_at(monkeypatch, metadata, tmp_path)
    _retry_now(app)
    assert send_due(app, adc_config)["sent"] == 4


def test_a_metadata_token_with_little_time_left_is_renewed_before_it_expires(on_gce):
    on_gce.token_lifetime = 600  # a cached token: 10 minutes left, not an hour
    now = [time.time()]
    tokens = SharedTokenCache(ApplicationDefaultMinter(), max_age=ACCESS_TOKEN_MAX_AGE,
                              clock=lambda: now[0])
    first = tokens.current()

    now[0] += 240
    assert tokens.current() == first and on_gce.token_requests == 1
    now[0] += 120  # 6 minutes on: within 5 minutes of its expiry
    assert tokens.current() != first and on_gce.token_requests == 2


# -- flask doctor --------------------------------------------------------------------------


@pytest.fixture
def doctor_env(healthy):  # noqa: F811
    """Healthy, APNs off, FCM by Application Default Credentials."""
    return {**healthy, **NO_APNS, "FCM_CREDENTIALS_FILE": None,
            "FCM_PROJECT_ID": "fake-project"}


def test_doctor_names_application_default_credentials(app, doctor_env, on_gce):
    beat(app)
    output = examine(doctor_env, 0)
    assert f"ok       FCM: application default credentials ({on_gce.email})" in output
    assert "service-account file" not in output


def test_doctor_names_the_service_account_file(app, healthy):  # noqa: F811
    beat(app)
    output = examine({**healthy, **NO_APNS}, 0)
    assert "ok       FCM: service-account file: the key is readable, project my-app-1234" \
        in output


def test_doctor_reports_the_metadata_server_down(app, doctor_env, monkeypatch, tmp_path):
    beat(app)
    point_google_auth_at(monkeypatch, None, tmp_path)
    output = examine(doctor_env, 1)
    assert "PROBLEM  FCM: application default credentials (FCM_PROJECT_ID without " \
           "FCM_CREDENTIALS_FILE): no access token from application default credentials" \
        in output
    assert "Android pushes wait" in output
