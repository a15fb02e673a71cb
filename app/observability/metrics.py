"""Prometheus metrics: what the service and the push workers count, and ``GET /metrics``.

Under gunicorn every worker counts in its own files in ``PROMETHEUS_MULTIPROC_DIR``
(gunicorn.conf.py empties it at start and marks dead workers), and a scrape of any worker
adds them all up. A push worker serves its own on ``flask push worker --metrics-port``.
Labels never hold a path, a token or an id: requests are labelled by route template.
"""

import collections
import hmac
import ipaddress
import logging
import time
from datetime import UTC, datetime

from flask import Response, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import event, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import Pool

from app.config import prometheus_multiproc_dir
from app.errors import Forbidden, NotAuthorized
from app.observability.request_ids import route_template

log = logging.getLogger(__name__)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
STARTED = "pushreg.started"
# Requests take milliseconds; the top buckets catch database waits and timeouts.
REQUEST_BUCKETS = (.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30)

REQUESTS = Counter("pushreg_http_requests", "HTTP requests answered",
                   ["method", "route", "status"])
REQUEST_SECONDS = Histogram("pushreg_http_request_duration_seconds",
                            "Time from routing to response, by route template", ["route"],
                            buckets=REQUEST_BUCKETS)
POOL_IN_USE = Gauge("pushreg_db_pool_connections_in_use",
                    "Database connections checked out of the pools", multiprocess_mode="livesum")
REGISTRATIONS = Counter("pushreg_device_registrations",
                        "Device tokens registered or refreshed, by API surface", ["surface"])
DELIVERIES = Counter("pushreg_push_deliveries",
                     "Push delivery attempts judged, by outcome and APNs (or our) reason",
                     ["outcome", "reason"])
APNS_SECONDS = Histogram("pushreg_apns_request_duration_seconds",
                         "Time for APNs to answer one push (or the transport to fail)")
PROVIDER_TOKENS = Counter("pushreg_apns_provider_tokens_minted",
                          "APNs provider tokens (JWT) this process signed")
TEXTS = Counter("pushreg_sms_texts", "Verification texts handed to the SMS sender",
                ["outcome"])

# Registration surfaces, the label values of REGISTRATIONS
APPLE_DEVICE_TOKENS, JSONAPI_DEVICES = "jsonapi_apple_device_tokens", "jsonapi_devices"
ALLMINE, DEVICES_V1 = "allmine_v1", "devices_v1"


def registered(surface):
    REGISTRATIONS.labels(surface).inc()


def count_deliveries(results):
    """Each attempt's outcome: its new ledger state (``pending`` again: ``retry``). Counted
    a chunk at once: a fan-out judges thousands of attempts in one go."""
    outcomes = collections.Counter(
        ("retry" if result.state == "pending" else str(result.state), result.reason or "")
        for result in results)
    for labels, count in outcomes.items():
        DELIVERIES.labels(*labels).inc(count)


# -- the web service ---------------------------------------------------------------------

def register_metrics(app):
    """Count every request and serve ``GET /metrics``, when ``METRICS_ENABLED``."""
    if not app.config["METRICS_ENABLED"]:
        return
    app.before_request(_start_clock)
    app.after_request(_count_request)
    app.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])
    watch_pools()


def _start_clock():
    request.environ[STARTED] = time.perf_counter()


def _count_request(response):
    route = route_template()
    method = request.method if request.method in METHODS else "other"
    REQUESTS.labels(method, route, str(response.status_code)).inc()
    started = request.environ.get(STARTED)
    if started is not None:
        REQUEST_SECONDS.labels(route).observe(time.perf_counter() - started)
    return response


def metrics_view():
    from app.extensions import db

    _guard(current_app.config)
    return Response(generate_latest(scrape_registry(db.engine)), mimetype=CONTENT_TYPE_LATEST)


def _guard(config):
    """A bearer ``METRICS_TOKEN``, or an address within ``METRICS_ALLOW``."""
    token = config["METRICS_TOKEN"]
    given = request.headers.get("Authorization", "")
    scheme, _, credential = given.partition(" ")
    if token and scheme.lower() == "bearer" and \
            hmac.compare_digest(credential.strip().encode(), token.encode()):
        return
    if _allowed(request.remote_addr, config["METRICS_ALLOW"]):
        return
    if token and not given:
        error = NotAuthorized("GET /metrics needs the metrics bearer token.")
        error.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        raise error
    raise Forbidden("This address may not read the metrics.")


def _allowed(address, networks):
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def watch_pools():
    """Every connection pool of this process, the web app's and a push worker's alike."""
    if not event.contains(Pool, "checkout", _checked_out):
        event.listen(Pool, "checkout", _checked_out)
        event.listen(Pool, "checkin", _checked_in)


def _checked_out(*_):
    POOL_IN_USE.inc()


def _checked_in(*_):
    POOL_IN_USE.dec()


# -- a scrape ----------------------------------------------------------------------------

def scrape_registry(engine):
    """Every process's counts (or this process's alone), and the ledger read now."""
    registry = CollectorRegistry()
    if prometheus_multiproc_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(LedgerCollector(engine))
    return registry


class _ThisProcess:
    def collect(self):
        return REGISTRY.collect()


class LedgerCollector:
    """Deliveries not yet final, by state, and how long the oldest has waited."""

    def __init__(self, engine):
        self._engine = engine

    def collect(self):
        from app.models.notification import Delivery, DeliveryState

        waiting = (DeliveryState.PENDING, DeliveryState.SENDING)
        try:
            with self._engine.connect() as connection:
                rows = connection.execute(
                    select(Delivery.state, func.count(), func.min(Delivery.created_at))
                    .where(Delivery.state.in_(waiting)).group_by(Delivery.state)).all()
        except SQLAlchemyError as exc:
            log.warning("metrics: the delivery ledger could not be read: %s",
                        type(exc).__name__)
            return
        counts = GaugeMetricFamily("pushreg_push_deliveries_waiting",
                                   "Deliveries not yet final: pending (due or backing off) "
                                   "or sending (leased to a worker)", labels=["state"])
        for state in waiting:
            counts.add_metric([state.value], sum(row[1] for row in rows if row[0] == state))
        yield counts
        oldest = min((row[2] for row in rows if row[2] is not None), default=None)
        yield GaugeMetricFamily("pushreg_push_oldest_waiting_delivery_age_seconds",
                                "Age of the oldest delivery not yet final (0: none waits)",
                                value=_age(oldest))


def _age(moment):
    if moment is None:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (datetime.now(UTC) - moment).total_seconds())


def serve_for_push_worker(port, address, engine):
    """The push worker's exporter: an HTTP server thread answering scrapes on ``port``."""
    watch_pools()
    server, _ = start_http_server(port, addr=address, registry=scrape_registry(engine))
    log.info("push worker: metrics on http://%s:%d/metrics", address, server.server_port)
    return server
