"""The application factory."""


import logging
from pathlib import Path

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider
from flask.sessions import SessionInterface
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import configure_mappers
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from app.config import Config
from app.database.engine import begin_writes_immediately, configure_engine, engine_options
from app.errors import ServiceError
from app.extensions import db, migrate
from app.jsonapi.flask import (
    error_response,
    no_content,
    private_by_default,
    security_headers,
)
from app.observability.logs import RequestFields, json_formatter, text_formatter
from app.observability.request_ids import register_request_ids
from app.web import surfaces
from app.web.request_body import refuse_oversized_chunked_body

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
log = logging.getLogger(__name__)


class Pushreg(Flask):
    def make_default_options_response(self):
        """OPTIONS on any route: 204 with Allow, where Flask answers an empty text/html 200."""
        response = no_content()
        response.allow.update(sorted(super().make_default_options_response().allow))
        return response


class NoCookieSession(SessionInterface):
    """No Flask session: no view keeps state in a signed cookie (a caller is who their
    credential says), so no request parses its cookies for one or signs one back."""

    def open_session(self, app, request):
        return self.make_null_session(app)

    def save_session(self, app, session, response):
        """Nothing to save: the session is always the null one."""


def create_app(config=None):
    config = config or Config()
    config.validate()
    from app.web.access_tokens import check_signing_keys  # after config: see register_metrics

    check_signing_keys(config)
    app = Pushreg(__name__, static_folder=None)
    app.session_interface = NoCookieSession()
    # "//" in a path is a 404 like any other unknown path, not an HTML redirect.
    app.url_map.merge_slashes = False
    app.config.from_object(config)
    assert isinstance(app.json, DefaultJSONProvider)  # Flask's own: Pushreg keeps it
    app.json.sort_keys = False
    register_logging(app)
    warn_of_a_development_key(app)
    register_request_ids(app)
    # Imported here: gunicorn.conf.py imports this package and must first settle
    # PROMETHEUS_MULTIPROC_DIR, which prometheus_client reads once, on import.
    from app.observability.metrics import register_metrics

    register_metrics(app)
    app.before_request(refuse_oversized_chunked_body)
    app.after_request(private_by_default)
    app.after_request(security_headers)
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    if app.config["PROXY_FIX_X_FOR"] or app.config["PROXY_FIX_X_PROTO"]:
        # Flask's documented way to wrap the app in WSGI middleware; its types say method.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
app.wsgi_app, x_for=app.config["PROXY_FIX_X_FOR"],
                                x_proto=app.config["PROXY_FIX_X_PROTO"])
    return app


def register_logging(app):
    handler = logging.StreamHandler()
    handler.setFormatter(json_formatter() if app.config["LOG_FORMAT"] == "json"
                         else text_formatter())
    handler.addFilter(RequestFields())
    logging.basicConfig(level=app.config["LOG_LEVEL"], handlers=[handler])


def warn_of_a_development_key(app):
    key_file = app.config["DEVELOPMENT_KEY_FILE"]
    if key_file is not None:
        log.warning("SECRET_KEY is not set: using the development key kept in %s. Set "
                    "SECRET_KEY wherever more than this machine's own processes serve "
                    "(production refuses to start without it).", key_file)


def register_extensions(app):
    from app import models  # noqa: F401  (the models must be known to Alembic)

    # At start-up, not on whichever request first loads a mapped object (a registration
    # builds its Device from the returned row, which needs the mappers configured).
    configure_mappers()
    _ensure_sqlite_directory(app.config["SQLALCHEMY_DATABASE_URI"])
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(app.config)
    db.init_app(app)
    migrate.init_app(app, db, directory=_migrations_directory())
    with app.app_context():
        configure_engine(db.engine, app.config)

    @app.before_request
    def choose_transaction_mode():
        begin_writes_immediately(request.method not in SAFE_METHODS)


def register_blueprints(app):
    from app import openapi
    from app.api import register_api
    from app.compat import auth_tokens_v1, devices_v1, notifications_device_token_v1
    from app.ops.health import register_health

    register_api(app)
    app.register_blueprint(openapi.blueprint)
    register_health(app, _migrations_directory())
    for compat in (auth_tokens_v1, notifications_device_token_v1, devices_v1):
        app.register_blueprint(compat.blueprint)


def register_errorhandlers(app):
    """Every error leaves in the shape of the surface its path belongs to."""
    surfaces.register_default(error_response)
    app.register_error_handler(ServiceError, surfaces.render)
    app.register_error_handler(HTTPException, surfaces.handle_http_exception)
    app.register_error_handler(OperationalError, surfaces.handle_database_unavailable)
    app.register_error_handler(Exception, surfaces.handle_unexpected)


def register_commands(app):
    from app.ops.cli.commands import register_cli

    register_cli(app)


def _migrations_directory():
    """The wheel ships migrations/ inside the package (setup.py); a checkout has it beside
    app/."""
    package = Path(__file__).resolve().parent
    installed = package / "migrations"
    return str(installed if installed.is_dir() else package.parent / "migrations")


def _ensure_sqlite_directory(url):
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
