"""gunicorn settings; every one can be overridden by the environment."""

import multiprocessing
import os
import tempfile
from pathlib import Path

from gunicorn.glogging import Logger

from app.config import log_format, metrics_enabled

# prometheus_client reads PROMETHEUS_MULTIPROC_DIR once, when first imported: this must run
# before the app's modules are (``app/__init__.py`` imports them only inside ``create_app``;
# app.ops.health reaches app.observability.metrics through the push modules).
if metrics_enabled() and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="pushreg-metrics-")
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # importing the app below writes into it
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

from app.observability.logs import (
    REDACT_TARGETS,
    EscapingFormatter,
    access_fields,
    format_atoms,
    json_formatter,
    loggable_atoms,
)
from app.ops.health import HEALTH_PATHS

bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
# Requests are CPU-bound (the database answers in well under a millisecond): one worker a
# core plus one to cover database waits did best in `make bench` (3 on 2 cores beat 5).
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "10000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "500"))
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
JSON_LOGS = log_format() == "json"


class RedactingLogger(Logger):
    """Secrets digested wherever they appear, query parameters outside an allow-list and
    credential headers left out, control characters escaped (app/observability/logs.py). In text the
    access log keeps gunicorn's default format; with LOG_FORMAT=json every line is one JSON
    object."""

    def setup(self, cfg):
        super().setup(cfg)
        self.shown_atoms = format_atoms(cfg.access_log_format)
        self.error_log.addFilter(REDACT_TARGETS)  # one instance: a reload adds it once
        for handler in (*self.error_log.handlers, *self.access_log.handlers):
            handler.setFormatter(json_formatter() if JSON_LOGS else EscapingFormatter(
                handler.formatter._fmt, handler.formatter.datefmt))

    def atoms(self, resp, req, environ, request_time):
        return loggable_atoms(super().atoms(resp, req, environ, request_time), self.shown_atoms)

    def access(self, resp, req, environ, request_time):
        """With LOG_FORMAT=json: the request's id, route template, status, duration."""
        # a load balancer's probes every few seconds would bury the requests; a failing
        # probe is logged
        if req.path in HEALTH_PATHS and (resp.status_code or 500) < 400:
            return None
        if not JSON_LOGS:
            return super().access(resp, req, environ, request_time)
        if self.access_log_enabled:
            message, fields = access_fields(resp.status_code, environ,
                                            request_time.total_seconds())
            self.access_log.info(message, extra=fields)
        return None


def on_starting(server):
    """Counts of an earlier run are not this run's."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        for counts in Path(directory).glob("*.db"):  # prometheus_client's files only
            counts.unlink()


def child_exit(server, worker):
    """A dead worker's gauges leave the sum; its counters stay counted."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


logger_class = RedactingLogger
# Connections must not be shared across fork: each worker opens its own pool.
preload_app = False
# The control socket's default path is per user, so two instances on one host would fight
# over it; nothing here uses gunicornc.
control_socket_disable = True
