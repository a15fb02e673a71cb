"""Reading the environment: environs' parsers, the development key kept in instance/, and
the few settings read before any app exists (by gunicorn's configuration, which must set up
the metrics directory before prometheus_client is imported). The only module besides
``app.config`` itself that reads ``os.environ``."""

import contextlib
import multiprocessing
import os
import secrets
import tempfile
from pathlib import Path

from environs import Env, EnvError

from app.formats import phone_numbers
from app.formats.settings import client_config, country_codes, networks, public_url

MIN_SECRET_KEY_LENGTH = 32


class ConfigurationError(RuntimeError):
    """The environment describes a configuration the service must not run with."""


def _number_types(raw):
    try:
        return phone_numbers.number_types(raw)
    except ValueError as exc:
        raise EnvError(str(exc)) from exc


def _test_numbers(raw):
    try:
        return phone_numbers.test_numbers(raw)
    except ValueError as exc:
        raise EnvError(str(exc)) from exc


class Environment:
    """The environment read through environs' parsers.

    A variable set to the empty string counts as unset (env files and container specs
    write ``NAME=`` to mean "the default"), and a value that does not parse raises
    ``ConfigurationError`` naming the variable.
    """

    def __init__(self):
        self._env = Env()
        self._env.add_parser("country_codes", country_codes)
        self._env.add_parser("number_types", _number_types)
        self._env.add_parser("test_numbers", _test_numbers)
        self._env.add_parser("client_config", client_config)
        self._env.add_parser("public_url", public_url)
        self._env.add_parser("networks", networks)

    def read(self, kind, name, default=None):
        if os.environ.get(name, "") == "":
            return default
        try:
            return getattr(self._env, kind)(name)
        except EnvError as exc:
            raise ConfigurationError(str(exc)) from exc

    def str(self, name, default=None):
        return self.read("str", name, default)

    def int(self, name, default):
        return self.read("int", name, default)

    def float(self, name, default):
        return self.read("float", name, default)

    def bool(self, name, default):
        return self.read("bool", name, default)


def development_secret_key(path):
    """The key kept in ``path``: 256 random bits, made by whichever process first needs
    it. It is written to a temporary file and linked into place, so processes starting at
    once (gunicorn's workers, the push worker beside them) all read the one that won, and
    never half of one."""
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            _link_new_key(path)
        key = path.read_text().strip()
    except OSError as exc:
        raise ConfigurationError(f"SECRET_KEY is not set and no development key can be kept "
                                 f"in {path}: {exc}") from exc
    if len(key) < MIN_SECRET_KEY_LENGTH:
        raise ConfigurationError(f"{path} does not hold a key: delete it (a new one is made) "
                                 "or set SECRET_KEY")
    return key


def _link_new_key(path):
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret_key-")  # 0600
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(32) + "\n")
        with contextlib.suppress(FileExistsError):  # another process's came first: the key
            os.link(temporary, path)
    finally:
        os.unlink(temporary)


LOG_FORMATS = ("json", "text")


def metrics_enabled(env=None):
    """Also read by gunicorn.conf.py, before anything imports prometheus_client."""
    return (env or Environment()).bool("METRICS_ENABLED", False)


def prometheus_multiproc_dir():
    """Where prometheus_client's processes share their counts; gunicorn.conf.py sets it
    (after the Config is read), so it is read when asked."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def log_format(env=None):
    """``LOG_FORMAT``: one JSON object a line in production, text elsewhere."""
    env = env or Environment()
    production = env.str("APP_ENV", "development") == "production"
    return env.str("LOG_FORMAT", "json" if production else "text").lower()


def prepare_metrics_directory():
    """With metrics on, prometheus_client's processes share their counts in
    ``PROMETHEUS_MULTIPROC_DIR`` (a new temporary directory unless set); it must exist
    before the app's modules are imported, which write into it."""
    if metrics_enabled() and not prometheus_multiproc_dir():
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="pushreg-metrics-")
    if prometheus_multiproc_dir():
        Path(prometheus_multiproc_dir()).mkdir(parents=True, exist_ok=True)


def gunicorn_settings():
    """gunicorn's settings from the environment (``GUNICORN_*``, ``PORT``,
    ``WEB_CONCURRENCY``)."""
    env = os.environ.get
    return {
        "bind": env("GUNICORN_BIND", f"127.0.0.1:{env('PORT', '8000')}"),
        # Requests are CPU-bound (the database answers in well under a millisecond): one
        # worker a core plus one to cover database waits did best in `make bench`.
        "workers": int(env("WEB_CONCURRENCY", multiprocessing.cpu_count() + 1)),
        "threads": int(env("GUNICORN_THREADS", "1")),
        "timeout": int(env("GUNICORN_TIMEOUT", "30")),
        "graceful_timeout": int(env("GUNICORN_GRACEFUL_TIMEOUT", "20")),
        "keepalive": int(env("GUNICORN_KEEPALIVE", "5")),
        "max_requests": int(env("GUNICORN_MAX_REQUESTS", "10000")),
        "max_requests_jitter": int(env("GUNICORN_MAX_REQUESTS_JITTER", "500")),
        "accesslog": env("GUNICORN_ACCESS_LOG", "-"),
    }
