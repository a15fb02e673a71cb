"""gunicorn settings; every one can be overridden by the environment."""

import multiprocessing
import os

from gunicorn.glogging import Logger

from app.health import HEALTH_PATHS
from app.logs import REDACT_TARGETS, loggable_atoms

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


class RedactingLogger(Logger):
    """Session ids and device tokens in URLs digested, credential headers left out, control
    characters escaped (app/logs.py); the access log keeps gunicorn's default format."""

    def setup(self, cfg):
        super().setup(cfg)
        self.error_log.addFilter(REDACT_TARGETS)  # one instance: a reload adds it once

    def access(self, resp, req, environ, request_time):
        # a load balancer's probes every few seconds would bury the requests; a failing
        # probe is logged
        if req.path in HEALTH_PATHS and (resp.status_code or 500) < 400:
            return
        super().access(resp, req, environ, request_time)

    def atoms(self, resp, req, environ, request_time):
        return loggable_atoms(super().atoms(resp, req, environ, request_time))


logger_class = RedactingLogger
# Connections must not be shared across fork: each worker opens its own pool.
preload_app = False
# The control socket's default path is per user, so two instances on one host would fight
# over it; nothing here uses gunicornc.
control_socket_disable = True
