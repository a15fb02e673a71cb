"""Metrics and JSON logs of the real thing: gunicorn with three workers counting into one
multiprocess directory, and a push worker's own exporter after a fan-out through the fake
APNs. Every count adds up; no label or log line holds a secret."""

import json
import os
import re
import signal
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port
from tests.factories import new_token
from tests.live_server import LiveServer, PoparazziClient
from tests.test_dispatch import (  # noqa: F401  (fixtures)
    _no_worker_outlives_its_test,
    apns_environ,
    fake,
    finished,
    one_notification,
    state_of,
    worker_process,
)

pytestmark = pytest.mark.slow

METRICS_TOKEN = "scrape-" + uuid.uuid4().hex
CLIENTS = 6
WORKERS = 3


@pytest.fixture(scope="module")
def observed(service_env, tmp_path_factory):
    """gunicorn, three workers, metrics on (token-guarded) and JSON logs."""
    log_dir = tmp_path_factory.mktemp("observed")
    env = {**service_env, "GUNICORN_THREADS": "2",
           "GUNICORN_ACCESS_LOG": str(log_dir / "access.log"), "LOG_FORMAT": "json",
           "METRICS_ENABLED": "true", "METRICS_TOKEN": METRICS_TOKEN,
           "PROMETHEUS_MULTIPROC_DIR": str(log_dir / "metrics")}
    server = LiveServer(free_port(), env, log_dir, workers=WORKERS)
    server.start(timeout=90)
    yield server
    server.stop()


def scrape(url, token=METRICS_TOKEN):
    response = requests.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"},
                            timeout=30)
    assert response.status_code == 200, response.text
    return response.text


def samples(text, name):
    """``{labels as a sorted tuple: value}`` of one sample name."""
    return {tuple(sorted(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == name}


def requests_by(text, label):
    """Requests counted (scrapes aside) by one label's value."""
    counts = Counter()
    for labels, value in samples(text, "pushreg_http_requests_total").items():
        labels = dict(labels)
        if labels["route"] != "/metrics":
            counts[labels[label]] += int(value)
    return counts


def one_iphone(url):
    """A mix of what a client does, successes and errors: (status of each request,
    secrets it used, request ids sent → answered)."""
    iphone = PoparazziClient(url)
    statuses, ids = [], {}
    try:
        statuses.append(iphone.create_session().status_code)
        tokens = [new_token(), new_token()]
        statuses += [iphone.patch_token(token).status_code for token in tokens]
        for method, path in [("GET", f"/api/sessions/{iphone.session_id}"),
                             ("GET", f"/api/sessions/{uuid.uuid4()}"),
                             ("GET", f"/nothing/{iphone.session_id}"),
                             ("DELETE", "/api/configs/3.1.23")]:
            statuses.append(iphone.request(method, path).status_code)
        for sent in (f"trace-{uuid.uuid4().hex[:8]}", "not well formed!"):
            response = iphone.request("GET", "/api/configs/3.1.23",
                                      extra_headers={"X-Request-ID": sent})
            statuses.append(response.status_code)
            ids[sent] = response.headers["X-Request-ID"]
        return statuses, [iphone.session_id, *tokens], ids
    finally:
        iphone.close()


def read_lines(path):
    return [line for line in path.read_text(errors="replace").splitlines() if line.strip()]


def wait_for_access_lines(server, request_ids, timeout=30.0):
    """gunicorn writes a request's access line once it has sent the response."""
    path = server.stdout_path.parent / "access.log"
    deadline = time.monotonic() + timeout
    while True:
        lines = [json.loads(line) for line in read_lines(path)]
        missing = set(request_ids) - {line["request_id"] for line in lines}
        if not missing:
            return lines
        assert time.monotonic() < deadline, f"no access line for {sorted(missing)}"
        time.sleep(0.1)


def test_counts_from_three_workers_add_up_and_no_secret_is_logged_or_labelled(observed):
    before = scrape(observed.url)
    with ThreadPoolExecutor(CLIENTS) as pool:
        runs = list(pool.map(one_iphone, [observed.url] * CLIENTS * 2))
    after = scrape(observed.url)

    sent = Counter(str(status) for statuses, _, _ in runs for status in statuses)
    counted = requests_by(after, "status")
    counted.subtract(requests_by(before, "status"))
    assert +counted == sent  # every worker's counts, none lost
    assert sent["200"] and sent["201"] and sent["404"] and sent["405"]
    registrations = samples(after, "pushreg_device_registrations_total")
    assert registrations[(("surface", "jsonapi_apple_device_tokens"),)] >= 2 * len(runs)
    routes = {dict(labels)["route"] for labels in samples(after, "pushreg_http_requests_total")}
    assert {"/api/sessions", "/api/apple_device_tokens/<token>", "/api/sessions/<session_id>",
            "/api/configs/<bundle_version>", "unmatched"} <= routes

    access = wait_for_access_lines(observed, [request_id for _, _, ids in runs
                                              for request_id in ids.values()])
    error_log = [json.loads(line) for line in read_lines(observed.stderr_path)]
    for line in access + error_log:
        assert {"time", "level", "logger", "message"} <= set(line)
    unmatched = [line for line in access if line["route"] == "unmatched"]
    assert unmatched and not [line for line in unmatched if "path" in line]
    by_id = {line["request_id"]: line for line in access}
    for _, _, ids in runs:
        [(kept, answered), (malformed, replaced)] = ids.items()
        assert answered == kept and re.fullmatch(r"[0-9a-f]{32}", replaced)
        for request_id in (kept, replaced):
            line = by_id[request_id]
            assert (line["method"], line["route"], line["status"]) == (
                "GET", "/api/configs/<bundle_version>", 200)
            assert line["client"] == "127.0.0.1" and line["duration"] >= 0
            assert line["path"] == "/api/configs/3.1.23"
        assert malformed not in json.dumps(access)

    everything = "\n".join([after, *read_lines(observed.stderr_path),
                            *read_lines(observed.stdout_path.parent / "access.log")])
    for _, secrets, _ in runs:
        for secret in secrets:
            assert secret not in everything and secret.upper() not in everything


def test_a_killed_workers_counts_stay_counted(observed):
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(one_iphone, [observed.url] * CLIENTS))
    before = scrape(observed.url)
    children = Path(f"/proc/{observed.process.pid}/task/{observed.process.pid}/children")
    booted = observed.logs(limit=10**7).count("Booting worker")
    os.kill(int(children.read_text().split()[0]), signal.SIGKILL)
    deadline = time.monotonic() + 60
    while observed.logs(limit=10**7).count("Booting worker") == booted:
        assert time.monotonic() < deadline, "gunicorn did not replace the killed worker"
        time.sleep(0.1)
    after = scrape(observed.url)
    assert requests_by(after, "route") == requests_by(before, "route")
    assert samples(after, "pushreg_db_pool_connections_in_use") == {(): 0.0}


def test_metrics_need_the_token(observed):
    assert requests.get(f"{observed.url}/metrics", timeout=30).status_code == 401
    wrong = requests.get(f"{observed.url}/metrics", timeout=30,
                         headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    assert wrong.json()["errors"][0]["meta"]["request_id"] == wrong.headers["X-Request-ID"]


@pytest.mark.committed
def test_a_push_workers_metrics_after_a_fan_out(app, fake, key_file, service_env):  # noqa: F811
    _, deliveries = one_notification(app, 5)
    port = free_port()
    process = worker_process(service_env, apns_environ(fake, key_file),
                             "--metrics-port", str(port))
    deadline = time.monotonic() + 60
    while {state_of(app)[str(d["apns_id"])].state for d in deliveries} != {"sent"}:
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "the worker never sent the fan-out"
        time.sleep(0.2)
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    process.send_signal(signal.SIGTERM)
    finished(process)

    assert samples(text, "pushreg_push_deliveries_total") == {
        (("outcome", "sent"), ("reason", "")): 5.0}
    assert samples(text, "pushreg_apns_request_duration_seconds_count") == {(): 5.0}
    assert samples(text, "pushreg_apns_provider_tokens_minted_total") == {(): 1.0}
    assert samples(text, "pushreg_push_deliveries_waiting") == {
        (("state", "pending"),): 0.0, (("state", "sending"),): 0.0}
    assert samples(text, "pushreg_push_oldest_waiting_delivery_age_seconds") == {(): 0.0}
