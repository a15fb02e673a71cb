"""deploy/: the alerting rules under promtool, the systemd units under systemd-analyze, and
the dashboard and rules read against what a live gunicorn and its push worker export,
scraped by a real Prometheus server (Debian's package) on loopback.

Without promtool, prometheus or systemd-analyze those tests skip; under CI=true they fail.
"""

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import _empty_tables, free_port
from tests.factories import last_code, new_token, random_phone
from tests.fake_apns import Answer, FakeApns
from tests.live_server import BIN, ROOT, LiveServer, PoparazziClient
from tests.push_rows import BUNDLE_ID, count_by_state
from tests.test_dispatch import apns_environ, one_notification, rows

DEPLOY = ROOT / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "pushreg.json"
UNITS = sorted((DEPLOY / "systemd").iterdir())
INSTALLED_COMMAND = "/opt/pushreg/venv/bin/pushreg"
METRIC_NAME = re.compile(r"\bpushreg_[a-z0-9_]+")
METRICS_TOKEN = "scrape-" + uuid.uuid4().hex
HEALTH_CHECKS = 30  # requests, spread over the three gunicorn workers


def need(binary):
    """The binary's path; skip without it, or fail under CI=true."""
    path = shutil.which(binary)
    if path is None:
        message = f"{binary} is not installed (make prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def run(*command, cwd=None):
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


# -- the files alone ---------------------------------------------------------------------

def test_promtool_checks_the_alerting_rules():
    result = run(need("promtool"), "check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alerting_rules_pass_their_unit_tests():
    result = run(need("promtool"), "test", "rules", "alerts_test.yml", cwd=ALERTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_systemd_units_verify(tmp_path):
    """systemd-analyze verify checks that each command exists: the installed path is
    replaced by this environment's pushreg. An unknown key is only a warning there: any
    output fails the test."""
    systemd_analyze = need("systemd-analyze")
    command = BIN / "pushreg"
    if not command.exists():
        pytest.skip("pushreg is not installed in this environment (make install)")
    for unit in UNITS:
        (tmp_path / unit.name).write_text(
            unit.read_text().replace(INSTALLED_COMMAND, str(command)))
    result = run(systemd_analyze, "verify", *(f"./{unit.name}" for unit in UNITS),
                 cwd=tmp_path)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_the_timer_prunes_daily():
    timer = (DEPLOY / "systemd" / "pushreg-prune.timer").read_text()
    service = (DEPLOY / "systemd" / "pushreg-prune.service").read_text()
    assert "OnCalendar=daily" in timer
    assert f"ExecStart={INSTALLED_COMMAND} prune" in service


def dashboard_expressions():
    return [target["expr"] for panel in json.loads(DASHBOARD.read_text())["panels"]
            for target in panel["targets"]]


def alert_expressions():
    return re.findall(r"^\s+expr: (?:\|\n)?((?:.|\n)*?)\n\s+(?:for|labels):", ALERTS.read_text(),
                      re.MULTILINE)


def test_every_alert_is_read():
    assert len(alert_expressions()) == ALERTS.read_text().count("- alert:") == 8


# -- the live service, its push worker and Prometheus -------------------------------------

@pytest.fixture(scope="module")
def fake_apns(public_key):
    with FakeApns(public_key=public_key, bundle_id=BUNDLE_ID) as server:
        yield server


@pytest.fixture(scope="module")
def web(service_env, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("deploy-web")
    env = {**service_env, "GUNICORN_THREADS": "2", "METRICS_ENABLED": "true",
           "METRICS_TOKEN": METRICS_TOKEN, "PROMETHEUS_MULTIPROC_DIR": str(log_dir / "metrics")}
    server = LiveServer(free_port(), env, log_dir, workers=3)
    server.start(timeout=90)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def push_worker(app, service_env, fake_apns, key_file, tmp_path_factory):
    """``flask push worker --metrics-port`` against the fake APNs; its metrics URL."""
    port = free_port()
    env = {**service_env, **apns_environ(fake_apns, key_file), "FLASK_APP": "wsgi.py",
           "PUSH_HEARTBEAT_INTERVAL": "1"}
    log = tmp_path_factory.mktemp("deploy-worker") / "worker.log"
    with open(log, "wb") as output:
        process = subprocess.Popen([str(BIN / "flask"), "push", "worker", "--metrics-port",
                                    str(port)], cwd=ROOT, env=env, stdout=output,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    yield f"http://127.0.0.1:{port}/metrics", process, log
    process.terminate()
    process.wait(timeout=60)
    _empty_tables(app)


@pytest.fixture(scope="module")
def traffic(app, web, push_worker, fake_apns):
    """What the service and the worker count: health checks on fresh connections, a phone
    login (a text), a token registered, five pushes (one token invalidated), then one push
    refused for its topic (a pause)."""
    def health_check(_):
        return requests.get(f"{web.url}/healthz", timeout=30).status_code

    with ThreadPoolExecutor(6) as pool:
        assert set(pool.map(health_check, range(HEALTH_CHECKS))) == {200}
    iphone = PoparazziClient(web.url)
    iphone.log_in(random_phone(), lambda phone: last_code(app, phone))
    assert iphone.patch_token(new_token()).status_code in (200, 201)
    iphone.close()

    devices, _ = one_notification(app, 5)
    fake_apns.answer(devices[0]["token"], Answer(400, "BadDeviceToken"))
    wait_for_final(app, push_worker, 5)
    devices, _ = one_notification(app, 1)
    fake_apns.answer(devices[0]["token"], Answer(400, "BadTopic"))
    wait_for_final(app, push_worker, 6)


def wait_for_final(app, push_worker, count, timeout=60):
    _, process, log = push_worker
    deadline = time.monotonic() + timeout
    while True:
        with rows(app) as connection:
            states = count_by_state(connection)
        if sum(states.get(state, 0) for state in ("sent", "failed", "invalidated")) == count:
            return
        assert process.poll() is None, log.read_text()[-4000:]
        assert time.monotonic() < deadline, f"not sent: {states}\n{log.read_text()[-4000:]}"
        time.sleep(0.2)


def exported_names(*texts):
    return {sample.name for text in texts
            for family in text_string_to_metric_families(text) for sample in family.samples}


@pytest.mark.slow
@pytest.mark.committed
def test_every_dashboard_and_alert_metric_is_exported(web, push_worker, traffic):
    web_text = requests.get(f"{web.url}/metrics", timeout=30,
                            headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    worker_text = requests.get(push_worker[0], timeout=30).text
    exported = exported_names(web_text, worker_text)

    named = {name for expression in dashboard_expressions() + alert_expressions()
             for name in METRIC_NAME.findall(expression)}
    assert named - exported == set()
    assert len(named) >= 12


class Prometheus:
    """``prometheus`` on a free loopback port, scraping the web service and the worker every
    second and evaluating deploy/prometheus/alerts.yml."""

    def __init__(self, directory: Path, web_url, worker_url):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / "prometheus.log"
        self.config = directory / "prometheus.yml"
        self.config.write_text(json.dumps({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ALERTS)],
            "scrape_configs": [
                {"job_name": "pushreg-web", "authorization": {"credentials": METRICS_TOKEN},
                 "static_configs": [{"targets": [web_url.removeprefix("http://")]}]},
                {"job_name": "pushreg-push-worker",
                 "static_configs": [{"targets": [worker_url.split("/")[2]]}]},
            ]}))
        self.command = [need("prometheus"), f"--config.file={self.config}",
                        f"--storage.tsdb.path={directory / 'data'}",
                        f"--web.listen-address=127.0.0.1:{self.port}"]
        self.process = None

    def __enter__(self):
        with open(self.log, "wb") as output:
            self.process = subprocess.Popen(self.command, stdout=output,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.until(lambda: requests.get(f"{self.url}/-/ready", timeout=2).ok, "ready")
        return self

    def __exit__(self, *exc_info):
        self.process.terminate()
        self.process.wait(timeout=30)

    def query(self, expression):
        """The instant vector's values, by their labels (without __name__)."""
        answer = requests.get(f"{self.url}/api/v1/query", params={"query": expression},
                              timeout=10).json()
        assert answer["status"] == "success", answer
        return {tuple(sorted(item["metric"].items())): float(item["value"][1])
                for item in answer["data"]["result"]}

    def firing(self):
        alerts = requests.get(f"{self.url}/api/v1/alerts", timeout=10).json()
        return {(alert["labels"]["alertname"], alert["labels"].get("scope"))
                for alert in alerts["data"]["alerts"] if alert["state"] == "firing"}

    def until(self, check, what, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            try:
                if check():
                    return
            except (requests.RequestException, AssertionError, KeyError):
                if time.monotonic() >= deadline:
                    raise
            assert self.process.poll() is None, self.log.read_text()[-4000:]
            assert time.monotonic() < deadline, \
                f"Prometheus: not {what} in {timeout} s\n{self.log.read_text()[-4000:]}"
            time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.committed
def test_prometheus_scrapes_the_service_and_its_worker(web, push_worker, traffic,
                                                       tmp_path):
    with Prometheus(tmp_path, web.url, push_worker[0]) as prometheus:
        prometheus.until(lambda: prometheus.query("sum(up)") == {(): 2.0}, "scraping both")
        # three gunicorn workers counted the health checks; a scrape adds them up
        prometheus.until(lambda: prometheus.query(
            'sum(pushreg_http_requests_total{route="/healthz"})') ==
            {(): float(HEALTH_CHECKS)}, "counting the health checks")
        deliveries = prometheus.query("sum by (outcome, reason) "
                                      '(pushreg_push_deliveries_total{job="pushreg-push-worker"})')
        texts = prometheus.query("sum by (outcome) (pushreg_sms_texts_total)")
        heartbeat = prometheus.query("max(pushreg_push_worker_heartbeat_age_seconds)")
        prometheus.until(lambda: ("PushregPushPaused", BUNDLE_ID) in prometheus.firing(),
                         "firing the pause alert")
        firing = prometheus.firing()

    # Prometheus drops an empty label: a delivery sent has no reason
    assert deliveries == {(("outcome", "sent"),): 4.0,
                          (("outcome", "invalidated"), ("reason", "BadDeviceToken")): 1.0,
                          (("outcome", "failed"), ("reason", "BadTopic")): 1.0}
    assert texts == {(("outcome", "sent"),): 1.0}
    assert heartbeat[()] < 30
    assert firing == {("PushregPushPaused", BUNDLE_ID)}
