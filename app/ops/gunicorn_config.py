"""gunicorn settings, shipped in the package (`pushreg serve` loads it as
``python:app.ops.gunicorn_config``; the checkout's gunicorn.conf.py imports it); every one can be
overridden by the environment."""

import logging
from pathlib import Path

from gunicorn.glogging import Logger

from app.config.environment import (
    gunicorn_settings,
    log_format,
    prepare_metrics_directory,
    prometheus_multiproc_dir,
)

# prometheus_client reads PROMETHEUS_MULTIPROC_DIR once, when first imported: this must run
# before the app's modules are (``app/__init__.py`` imports them only inside ``create_app``;
# app.ops.health reaches app.observability.metrics through the push modules).
prepare_metrics_directory()

from app.observability.logs import (  # noqa: E402 (after the metrics directory)
    REDACT_TARGETS,
    EscapingFormatter,
    access_fields,
    format_atoms,
    json_formatter,
    loggable_atoms,
)
from app.ops.health import HEALTH_PATHS  # noqa: E402

_settings = gunicorn_settings()
bind, workers, threads = _settings["bind"], _settings["workers"], _settings["threads"]
timeout, graceful_timeout = _settings["timeout"], _settings["graceful_timeout"]
keepalive, accesslog = _settings["keepalive"], _settings["accesslog"]
max_requests, max_requests_jitter = _settings["max_requests"], _settings["max_requests_jitter"]
errorlog = "-"
JSON_LOGS = log_format() == "json"


def _escaping(formatter: logging.Formatter | None) -> EscapingFormatter:
    assert formatter is not None  # gunicorn gives each of its handlers one
    return EscapingFormatter(formatter._fmt, formatter.datefmt)


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
            handler.setFormatter(json_formatter() if JSON_LOGS else _escaping(handler.formatter))

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
    directory = prometheus_multiproc_dir()
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        for counts in Path(directory).glob("*.db"):  # prometheus_client's files only
            counts.unlink()


def child_exit(server, worker):
    """A dead worker's gauges leave the sum; its counters stay counted."""
    if prometheus_multiproc_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


logger_class = RedactingLogger
# Connections must not be shared across fork: each worker opens its own pool.
preload_app = False
# The control socket's default path is per user, so two instances on one host would fight
# over it; nothing here uses gunicornc.
control_socket_disable = True
