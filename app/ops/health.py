"""``/healthz`` and ``/readyz``: what a load balancer or an orchestrator asks.

Liveness (``/healthz``) says the process answers and touches nothing else, so a database
outage never gets every web process restarted. Readiness (``/readyz``) says this process
can serve: a fresh database connection answers within ``READINESS_TIMEOUT``, the schema is
at the migrations' head (read from the scripts once, at start-up), and, where push is
configured (the APNS_* settings or FCM_CREDENTIALS_FILE), some push worker has beaten its
heartbeat within ``PUSH_HEARTBEAT_MAX_AGE`` seconds. Neither needs a credential nor counts
against a rate limit; gunicorn leaves them out of its access log while they succeed
(gunicorn.conf.py).
"""

import math
from dataclasses import dataclass, field

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from flask import Blueprint, current_app, jsonify

from app.database.engine import configure_engine, engine_options
from app.models.types import utcnow
from app.push.heartbeat import newest_beat
from app.push.settings import PushSettings

HEALTH_PATHS = ("/healthz", "/readyz")
OK, FAILING, NOT_CHECKED = "ok", "failing", "not checked"
VERSIONS = sa.table("alembic_version", sa.column("version_num"))

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():
    return jsonify(status=OK, checks={"process": {"status": OK}})


@blueprint.get("/readyz")
def readyz():
    checks = current_app.extensions["readiness"].check()
    ready = all(check["status"] != FAILING for check in checks.values())
    return jsonify(status=OK if ready else FAILING, checks=checks), 200 if ready else 503


@dataclass
class Readiness:
    config: dict
    migrations_directory: str
    heads: frozenset = field(init=False)
    push_configured: bool = field(init=False)
    _engine: sa.Engine | None = field(default=None, init=False)

    def __post_init__(self):
        self.heads = frozenset(ScriptDirectory(self.migrations_directory).get_heads())
        self.push_configured = PushSettings.from_config(self.config).providers_configured

    def check(self):
        checks = {"database": {"status": OK}}
        try:
            with self.engine().connect() as connection:
                checks["migrations"] = self.migrations(connection)
                # an older schema may lack the heartbeats' table
                checks["push_workers"] = self.push_workers(connection) \
                    if checks["migrations"]["status"] == OK else {"status": NOT_CHECKED}
        except sa.exc.SQLAlchemyError as exc:
            # the type only: a driver's message can name hosts and users
            checks["database"] = {"status": FAILING, "detail": (
                f"no answer within {self.config['READINESS_TIMEOUT']:g} s "
                f"({type(getattr(exc, 'orig', None) or exc).__name__})")}
            checks.setdefault("migrations", {"status": NOT_CHECKED})
            checks.setdefault("push_workers", {"status": NOT_CHECKED})
        return checks

    def engine(self):
        """An engine of its own, every wait bounded by READINESS_TIMEOUT, opening a fresh
        connection each time: a full pool or a database refusing new connections shows."""
        if self._engine is None:
            timeout = self.config["READINESS_TIMEOUT"]
            config = {**self.config, "DATABASE_CONNECT_TIMEOUT": max(1, math.ceil(timeout)),
                      "DATABASE_STATEMENT_TIMEOUT": timeout, "DATABASE_LOCK_TIMEOUT": timeout}
            options = {name: value for name, value in engine_options(config).items()
                       if not name.startswith("pool_")}
            self._engine = sa.create_engine(config["SQLALCHEMY_DATABASE_URI"],
                                            poolclass=sa.pool.NullPool, **options)
            configure_engine(self._engine, config)
        return self._engine

    def migrations(self, connection):
        current = frozenset(connection.execute(sa.select(VERSIONS.c.version_num)).scalars()
                            if sa.inspect(connection).has_table(VERSIONS.name) else ())
        check = {"status": OK if current == self.heads else FAILING,
                 "current": sorted(current), "head": sorted(self.heads)}
        if current != self.heads:
            check["detail"] = "the database is not at the migrations' head: run flask db upgrade"
        return check

    def push_workers(self, connection):
        if not self.push_configured:
            return {"status": NOT_CHECKED,
                    "detail": "push is not configured (APNS_*, FCM_CREDENTIALS_FILE)"}
        max_age = self.config["PUSH_HEARTBEAT_MAX_AGE"]
        beat = newest_beat(connection)
        if beat is None:
            return {"status": FAILING, "max_age": max_age,
                    "detail": "no push worker is running (flask push worker)"}
        age = round((utcnow() - beat).total_seconds(), 1)
        check = {"status": OK if age <= max_age else FAILING,
                 "newest_heartbeat_age": age, "max_age": max_age}
        if age > max_age:
            check["detail"] = f"the newest push worker heartbeat is {age:g} s old"
        return check


def register_health(app, migrations_directory):
    app.extensions["readiness"] = Readiness(app.config, migrations_directory)
    app.register_blueprint(blueprint)
