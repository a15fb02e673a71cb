"""Configuration, read once from the environment.

Every setting has a safe development default except the secrets, which production
(``APP_ENV=production``) refuses to start without.
"""

import ipaddress
import zoneinfo
from pathlib import Path
from urllib.parse import urlsplit

from app.config.environment import (
    LOG_FORMATS,
    MIN_SECRET_KEY_LENGTH,
    ConfigurationError,
    Environment,
    development_secret_key,
    log_format,
    metrics_enabled,
)
from app.formats import phone_numbers
from app.formats.bundle_ids import is_bundle_id
from app.formats.settings import DEFAULT_CLIENT_CONFIG

CHECKOUT = Path(__file__).resolve().parent.parent.parent
# A checkout keeps its development database and key beside the code; an installed package
# (site-packages is no place to write) keeps them in the working directory.
INSTANCE_DIR = (CHECKOUT if (CHECKOUT / "setup.cfg").is_file() else Path.cwd()) / "instance"
# Once the default, published in this source: whoever reads it can forge access tokens and
# digests, so it is refused everywhere. Unset, SECRET_KEY is a random key kept in instance/.
PUBLISHED_DEVELOPMENT_SECRET = "development-only-secret-key-do-not-use-in-production"
SECRET_KEY_FILE = INSTANCE_DIR / "secret_key"


def _id_token_providers(env, firebase_project_id):
    """``ID_TOKEN_PROVIDERS`` and ``FIREBASE_PROJECT_ID`` → a tuple of Provider."""
    from app.formats.id_token_providers import parse_providers

    try:
        return parse_providers(env.str("ID_TOKEN_PROVIDERS"), firebase_project_id)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc


def default_database_url():
    return f"sqlite:///{INSTANCE_DIR / 'pushreg.db'}"


def normalise_database_url(url):
    """Use psycopg 3 for PostgreSQL whatever spelling the operator gave."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


RATE_SETTINGS = ("SMS_RATE_LIMIT_PER_PHONE", "SMS_RATE_LIMIT_PER_ADDRESS",
                 "SMS_RATE_LIMIT_PER_PHONE_TOTAL", "SMS_GLOBAL_RATE_LIMIT",
                 "VERIFICATION_MAX_WRONG_PER_PHONE", "SESSION_CREATE_RATE_LIMIT",
                 "ANONYMOUS_WRITE_RATE_LIMIT")
LIFETIME_SETTINGS = ("SESSION_IDLE_TIMEOUT", "SESSION_MAX_AGE", "SESSION_ANONYMOUS_MAX_AGE")
# 0 means "no such limit" for these
OPTIONAL_LIFETIME_SETTINGS = ("AUTH_TOKEN_IDLE_TIMEOUT", "AUTH_TOKEN_MAX_AGE",
                              "API_KEY_IDLE_TIMEOUT", "API_KEY_MAX_AGE")
DAY = 86400
PUSH_QUEUES = ("embedded", "procrastinate")


class Config:
    def __init__(self):
        env = Environment()
        self.APP_ENV = env.str("APP_ENV", "development")
        self.SECRET_KEY = self._secret_key(env)
        self.SQLALCHEMY_DATABASE_URI = normalise_database_url(
            env.str("DATABASE_URL", default_database_url())
        )
        # A ping before every checkout costs a round trip on every request; without it a
        # dead connection fails one request with 503 and the pool is rebuilt.
        self.SQLALCHEMY_ENGINE_OPTIONS = {
            "pool_pre_ping": env.bool("DATABASE_POOL_PRE_PING", False),
            "pool_recycle": env.int("DATABASE_POOL_RECYCLE", 1800),
            # A database error's text would carry the statement's values (device tokens,
            # phone numbers) into the traceback a 500 logs.
            "hide_parameters": True,
        }
        # Waits on the database end in a 503 well before gunicorn's worker timeout
        # (GUNICORN_TIMEOUT) kills the worker with every request it holds.
        self.DATABASE_CONNECT_TIMEOUT = env.int("DATABASE_CONNECT_TIMEOUT", 5)
        self.DATABASE_STATEMENT_TIMEOUT = env.float("DATABASE_STATEMENT_TIMEOUT", 10.0)
        self.DATABASE_LOCK_TIMEOUT = env.float("DATABASE_LOCK_TIMEOUT", 3.0)
        self.GUNICORN_TIMEOUT = env.int("GUNICORN_TIMEOUT", 30)
        self.MAX_CONTENT_LENGTH = env.int("MAX_CONTENT_LENGTH", 64 * 1024)
        self.PROXY_FIX_X_FOR = env.int("PROXY_FIX_X_FOR", 0)
        self.PROXY_FIX_X_PROTO = env.int("PROXY_FIX_X_PROTO", 0)
        self.PUBLIC_URL = env.read("public_url", "PUBLIC_URL")
        self.LOG_LEVEL = env.str("LOG_LEVEL", "INFO")

        self.SESSION_IDLE_TIMEOUT = env.int("SESSION_IDLE_TIMEOUT", 30 * DAY)
        self.SESSION_MAX_AGE = env.int("SESSION_MAX_AGE", 180 * DAY)
        self.SESSION_ANONYMOUS_MAX_AGE = env.int("SESSION_ANONYMOUS_MAX_AGE", DAY)
        self.SESSION_CREATE_RATE_LIMIT = env.str("SESSION_CREATE_RATE_LIMIT", "60/hour")
        self.ANONYMOUS_WRITE_RATE_LIMIT = env.str("ANONYMOUS_WRITE_RATE_LIMIT", "60/hour")
        self.AUTH_TOKEN_IDLE_TIMEOUT = env.int("AUTH_TOKEN_IDLE_TIMEOUT", 90 * DAY)
        self.AUTH_TOKEN_MAX_AGE = env.int("AUTH_TOKEN_MAX_AGE", 365 * DAY)
        self.API_KEY_IDLE_TIMEOUT = env.int("API_KEY_IDLE_TIMEOUT", 0)
        self.API_KEY_MAX_AGE = env.int("API_KEY_MAX_AGE", 0)
        self.ACCESS_TOKEN_TTL = env.int("ACCESS_TOKEN_TTL", 900)
        self.ACCESS_TOKEN_SIGNING_KEYS = env.str("ACCESS_TOKEN_SIGNING_KEYS")
        self.ACCESS_TOKEN_KEY_ID = env.str("ACCESS_TOKEN_KEY_ID")

        self.APP_NAME = env.str("APP_NAME", "Pushreg")
        self.VERIFICATION_CODE_TTL = env.int("VERIFICATION_CODE_TTL", 600)
        self.VERIFICATION_MAX_ATTEMPTS = env.int("VERIFICATION_MAX_ATTEMPTS", 5)
        self.SMS_SENDER = env.str("SMS_SENDER", "outbox")
        self.SMS_RATE_LIMIT_PER_PHONE = env.str("SMS_RATE_LIMIT_PER_PHONE", "5/hour")
        self.SMS_RATE_LIMIT_PER_ADDRESS = env.str("SMS_RATE_LIMIT_PER_ADDRESS", "20/hour")
        self.SMS_RATE_LIMIT_PER_PHONE_TOTAL = env.str("SMS_RATE_LIMIT_PER_PHONE_TOTAL", "10/hour")
        self.SMS_GLOBAL_RATE_LIMIT = env.str("SMS_GLOBAL_RATE_LIMIT", "1000/hour")
        self.SMS_ALLOWED_COUNTRY_CODES = env.read("country_codes", "SMS_ALLOWED_COUNTRY_CODES", ())
        self.SMS_ALLOWED_NUMBER_TYPES = env.read("number_types", "SMS_ALLOWED_NUMBER_TYPES",
                                                 phone_numbers.ALLOWED_BY_DEFAULT)
        self.SMS_TEST_NUMBERS = env.read("test_numbers", "SMS_TEST_NUMBERS", ())
        self.VERIFICATION_MAX_WRONG_PER_PHONE = env.str("VERIFICATION_MAX_WRONG_PER_PHONE",
                                                     "10/hour")
        self.SMS_GATEWAY_URL = env.str("SMS_GATEWAY_URL")
        self.SMS_GATEWAY_TOKEN = env.str("SMS_GATEWAY_TOKEN")
        self.SMS_GATEWAY_FROM = env.str("SMS_GATEWAY_FROM")
        self.SMS_GATEWAY_TIMEOUT = env.float("SMS_GATEWAY_TIMEOUT", 5.0)
        self.SMS_GATEWAY_RETRIES = env.int("SMS_GATEWAY_RETRIES", 2)
        self.TWILIO_BASE_URL = env.str("TWILIO_BASE_URL", "https://api.twilio.com")
        self.TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID")
        self.TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN")
        self.TWILIO_API_KEY_SID = env.str("TWILIO_API_KEY_SID")
        self.TWILIO_API_KEY_SECRET = env.str("TWILIO_API_KEY_SECRET")
        self.TWILIO_MESSAGING_SERVICE_SID = env.str("TWILIO_MESSAGING_SERVICE_SID")
        self.TWILIO_FROM_NUMBER = env.str("TWILIO_FROM_NUMBER")
        self.REDIS_URL = env.str("REDIS_URL")

        self.MINIMUM_BUNDLE_VERSION = env.str("MINIMUM_BUNDLE_VERSION", "0")
        self.CLIENT_CONFIG = env.read("client_config", "CLIENT_CONFIG",
                                      dict(DEFAULT_CLIENT_CONFIG))

        # Identity providers whose ID tokens prove who a caller is (app/identity).
        self.FIREBASE_PROJECT_ID = env.str("FIREBASE_PROJECT_ID")
        self.ID_TOKEN_PROVIDERS = _id_token_providers(env, self.FIREBASE_PROJECT_ID)
        self.ID_TOKEN_LEEWAY = env.int("ID_TOKEN_LEEWAY", 60)
        self.ID_TOKEN_KEYS_TIMEOUT = env.float("ID_TOKEN_KEYS_TIMEOUT", 5.0)

        self.PAGE_SIZE_DEFAULT = env.int("PAGE_SIZE_DEFAULT", 20)
        self.PAGE_SIZE_MAX = env.int("PAGE_SIZE_MAX", 100)
        self.INCLUDE_DEPTH_MAX = env.int("INCLUDE_DEPTH_MAX", 3)
        # A registration beyond these deletes the owner's least recently registered devices.
        self.DEVICES_PER_USER_MAX = env.int("DEVICES_PER_USER_MAX", 50)
        self.DEVICES_PER_SESSION_MAX = env.int("DEVICES_PER_SESSION_MAX", 10)

        # The push workers (app/push/worker.py), read through app/push/settings.py.
        self.PUSH_QUEUE = env.str("PUSH_QUEUE", "embedded")
        # "outbox" or "off"; unset: the outbox in development without APNs or FCM
        # credentials (app/push/outbox.py). Production refuses the outbox.
        self.PUSH_STANDIN = env.str("PUSH_STANDIN")
        self.PUSH_CHUNK_SIZE = env.int("PUSH_CHUNK_SIZE", 1000)
        self.PUSH_CONCURRENCY = env.int("PUSH_CONCURRENCY", 2)
        self.PUSH_LEASE = env.float("PUSH_LEASE", 120.0)
        self.PUSH_POLL_INTERVAL = env.float("PUSH_POLL_INTERVAL", 1.0)
        self.PUSH_RETRY_BASE = env.float("PUSH_RETRY_BASE", 5.0)
        self.PUSH_RETRY_MAX = env.float("PUSH_RETRY_MAX", 3600.0)
        self.PUSH_MAX_ATTEMPTS = env.int("PUSH_MAX_ATTEMPTS", 10)
        self.PUSH_CONFIG_ERROR_PAUSE = env.float("PUSH_CONFIG_ERROR_PAUSE", 300.0)
        self.PUSH_QUARANTINE_RATIO = env.float("PUSH_QUARANTINE_RATIO", 0.5)
        self.PUSH_QUARANTINE_MIN = env.int("PUSH_QUARANTINE_MIN", 20)
        self.PUSH_INVALIDATION_POLICY = env.str("PUSH_INVALIDATION_POLICY", "mark")
        self.PUSH_SHUTDOWN_GRACE = env.float("PUSH_SHUTDOWN_GRACE", 15.0)
        # A local-time notification's zone for a device whose user has none (IANA name).
        self.DEFAULT_TIME_ZONE = env.str("DEFAULT_TIME_ZONE", "UTC")
        # A Live Activity older than this is no target (Apple: 8 hours running, then up to
        # 4 on the Lock Screen); `flask prune` deletes it.
        self.LIVE_ACTIVITY_MAX_AGE = env.int("LIVE_ACTIVITY_MAX_AGE", 12 * 3600)

        # Health (app/ops/health.py): what /readyz waits for and how old a worker's beat may be.
        self.READINESS_TIMEOUT = env.float("READINESS_TIMEOUT", 2.0)
        self.PUSH_HEARTBEAT_INTERVAL = env.float("PUSH_HEARTBEAT_INTERVAL", 5.0)
        self.PUSH_HEARTBEAT_MAX_AGE = env.float("PUSH_HEARTBEAT_MAX_AGE", 60.0)
        self._read_observability(env)

        self._read_apns(env)

        # ---- The FCM (Android) channel: app/push/fcm.py, app/push/fcm_auth.py. --------
        # FCM_CREDENTIALS_FILE: a service-account key (JSON). Without it, FCM_PROJECT_ID
        # alone means Application Default Credentials (google-auth finds them:
        # GOOGLE_APPLICATION_CREDENTIALS, workload identity, the metadata server). Neither:
        # the channel is off.
        self.FCM_CREDENTIALS_FILE = env.str("FCM_CREDENTIALS_FILE")
        self.FCM_PROJECT_ID = env.str("FCM_PROJECT_ID")  # default: the key's project_id
        self.FCM_URL = env.str("FCM_URL", "https://fcm.googleapis.com")
        self.FCM_CA_FILE = env.str("FCM_CA_FILE")  # a CA trusted beside the system's (tests)
        self.FCM_CONNECTIONS = env.int("FCM_CONNECTIONS", 2)
        self.FCM_MAX_STREAMS = env.int("FCM_MAX_STREAMS", 100)
        self.FCM_REQUEST_TIMEOUT = env.float("FCM_REQUEST_TIMEOUT", 10.0)
        # ---- end of the FCM block -------------------------------------------------------
        self._read_webhook_and_telegram(env)

    def _read_webhook_and_telegram(self, env):
        """The webhook channel (app/push/webhook.py, its URL rule app/push/endpoints.py)
        and the Telegram channel (app/push/telegram.py: off without TELEGRAM_BOT_TOKEN)."""
        self.WEBHOOK_ALLOW_HTTP = env.bool("WEBHOOK_ALLOW_HTTP", self.APP_ENV == "development")
        # Special addresses (loopback, private …) a webhook URL may reach all the same.
        self.WEBHOOK_ALLOW_NETWORKS = env.read("networks", "WEBHOOK_ALLOW_NETWORKS", ())
        self.WEBHOOK_CONNECT_TIMEOUT = env.float("WEBHOOK_CONNECT_TIMEOUT", 5.0)
        self.WEBHOOK_TIMEOUT = env.float("WEBHOOK_TIMEOUT", 10.0)
        self.WEBHOOK_CONNECTIONS = env.int("WEBHOOK_CONNECTIONS", 100)
        # An endpoint failing without one success for this long is invalidated.
        self.WEBHOOK_FAILING_FOR_MAX = env.float("WEBHOOK_FAILING_FOR_MAX", 72 * 3600.0)
        # Receipts to API keys' callbacks (app/push/receipts.py), sent by the push worker.
        self.RECEIPTS_POLL_INTERVAL = env.float("RECEIPTS_POLL_INTERVAL", 0.5)
        self.RECEIPTS_RETRY_FOR = env.float("RECEIPTS_RETRY_FOR", 24 * 3600.0)
        self.RECEIPTS_RETRY_BASE = env.float("RECEIPTS_RETRY_BASE", 1.0)
        self.RECEIPTS_RETRY_MAX = env.float("RECEIPTS_RETRY_MAX", 600.0)
        self.TELEGRAM_BOT_TOKEN = env.str("TELEGRAM_BOT_TOKEN")
        self.TELEGRAM_API_URL = env.str("TELEGRAM_API_URL", "https://api.telegram.org")
        self.TELEGRAM_TIMEOUT = env.float("TELEGRAM_TIMEOUT", 10.0)
        self.TELEGRAM_MESSAGES_PER_SECOND = env.float("TELEGRAM_MESSAGES_PER_SECOND", 30.0)
        self.TELEGRAM_CHAT_INTERVAL = env.float("TELEGRAM_CHAT_INTERVAL", 1.0)

    def _read_apns(self, env):
        """The APNs (iOS) channel: app/push/apns.py. Without APNS_KEY, APNS_KEY_ID,
        APNS_TEAM_ID and APNS_BUNDLE_ID (or APNS_TOPIC) the channel is off."""
        self.APNS_KEY = env.str("APNS_KEY")  # the .p8 key's PEM text or file path
        self.APNS_KEY_ID = env.str("APNS_KEY_ID")
        self.APNS_TEAM_ID = env.str("APNS_TEAM_ID")
        self.APNS_BUNDLE_ID = env.str("APNS_BUNDLE_ID")
        self.APNS_TOPIC = env.str("APNS_TOPIC")  # for devices without a bundle id
        self.APNS_PRODUCTION_URL = env.str("APNS_PRODUCTION_URL", "https://api.push.apple.com")
        self.APNS_SANDBOX_URL = env.str("APNS_SANDBOX_URL", "https://api.sandbox.push.apple.com")
        self.APNS_CA_FILE = env.str("APNS_CA_FILE")  # a CA trusted beside the system's (tests)
        self.APNS_CONNECTIONS = env.int("APNS_CONNECTIONS", 2)
        self.APNS_MAX_STREAMS = env.int("APNS_MAX_STREAMS", 100)
        self.APNS_REQUEST_TIMEOUT = env.float("APNS_REQUEST_TIMEOUT", 10.0)
        self.APNS_TOKEN_MAX_AGE = env.float("APNS_TOKEN_MAX_AGE", 50 * 60.0)
        self.APNS_PING_INTERVAL = env.float("APNS_PING_INTERVAL", 60.0)
        # broadcast channels are made and deleted on their own hosts and ports
        self.APNS_BROADCAST_MANAGE_PRODUCTION_URL = env.str(
            "APNS_BROADCAST_MANAGE_PRODUCTION_URL",
            "https://api-manage-broadcast.push.apple.com:2196")
        self.APNS_BROADCAST_MANAGE_SANDBOX_URL = env.str(
            "APNS_BROADCAST_MANAGE_SANDBOX_URL",
            "https://api-manage-broadcast.sandbox.push.apple.com:2195")

    def _secret_key(self, env):
        """``SECRET_KEY``; unset outside production, the development key kept in
        ``SECRET_KEY_FILE`` (``DEVELOPMENT_KEY_FILE`` says which, for the start-up warning)."""
        self.DEVELOPMENT_KEY_FILE = None
        configured = env.str("SECRET_KEY")
        if configured is not None or self.APP_ENV == "production":
            return configured
        self.DEVELOPMENT_KEY_FILE = Path(env.str("SECRET_KEY_FILE", str(SECRET_KEY_FILE)))
        return development_secret_key(self.DEVELOPMENT_KEY_FILE)

    def validate(self):
        self._validate_secret_key()
        self._validate_formats()
        if self.APP_ENV != "production":
            return
        if self.SMS_SENDER == "outbox":
            raise ConfigurationError("production needs SMS_SENDER=http or twilio, and an SMS "
                                     "gateway")
        if self.PUSH_STANDIN == "outbox":
            raise ConfigurationError("production refuses PUSH_STANDIN=outbox: the development "
                                     "stand-in would swallow every push; configure APNS_*, "
                                     "FCM_CREDENTIALS_FILE or FCM_PROJECT_ID")
        if self.SQLALCHEMY_DATABASE_URI.startswith("sqlite"):
            raise ConfigurationError("production needs DATABASE_URL pointing at PostgreSQL")
        if not self.PUBLIC_URL:
            raise ConfigurationError("production needs PUBLIC_URL, the service's external URL")
        if self.SMS_SENDER == "http" and not self.SMS_GATEWAY_URL:
            raise ConfigurationError("SMS_SENDER=http needs SMS_GATEWAY_URL")

    def _validate_twilio(self):
        if not self.TWILIO_ACCOUNT_SID:
            raise ConfigurationError("SMS_SENDER=twilio needs TWILIO_ACCOUNT_SID")
        if not (self.TWILIO_AUTH_TOKEN or
                (self.TWILIO_API_KEY_SID and self.TWILIO_API_KEY_SECRET)):
            raise ConfigurationError("SMS_SENDER=twilio needs TWILIO_AUTH_TOKEN, or "
                                     "TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET")
        if not (self.TWILIO_MESSAGING_SERVICE_SID or self.TWILIO_FROM_NUMBER):
            raise ConfigurationError("SMS_SENDER=twilio needs TWILIO_MESSAGING_SERVICE_SID or "
                                     "TWILIO_FROM_NUMBER")

    def _validate_secret_key(self):
        if self.SECRET_KEY == PUBLISHED_DEVELOPMENT_SECRET:
            raise ConfigurationError("SECRET_KEY is the development key published in pushreg's "
                                     "source: anyone can forge tokens with it. Set a random "
                                     "one, or unset it outside production.")
        if self.APP_ENV == "production" and \
                (not self.SECRET_KEY or len(self.SECRET_KEY) < MIN_SECRET_KEY_LENGTH):
            raise ConfigurationError("production needs SECRET_KEY of at least 32 characters")

    def _validate_formats(self):
        """Settings that would otherwise fail only when a request first reads them."""
        from app.formats.rates import Rate
        from app.formats.versions import VERSION

        for name in RATE_SETTINGS:
            try:
                Rate.parse(getattr(self, name))
            except ValueError as exc:
                raise ConfigurationError(f"{name}: {exc}") from exc
        if not VERSION.match(self.MINIMUM_BUNDLE_VERSION):
            raise ConfigurationError("MINIMUM_BUNDLE_VERSION must be dotted numbers, like 3.1")
        if self.SMS_SENDER not in ("outbox", "http", "twilio"):
            raise ConfigurationError("SMS_SENDER is 'outbox', 'http' or 'twilio'")
        if self.SMS_SENDER == "twilio":
            self._validate_twilio()
        self._validate_database_timeouts()
        for name in LIFETIME_SETTINGS:
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"{name} must be a number of seconds above 0")
        for name in OPTIONAL_LIFETIME_SETTINGS:
            if getattr(self, name) < 0:
                raise ConfigurationError(f"{name} must be a number of seconds (0: no limit)")
        if not 60 <= self.ACCESS_TOKEN_TTL <= DAY:
            raise ConfigurationError("ACCESS_TOKEN_TTL must be 60 to 86400 seconds")
        self._validate_device_caps()
        self._validate_id_token_settings()
        self._validate_push_settings()
        self._validate_health_settings()
        self._validate_fcm_settings()
        self._validate_channel_settings()
        self._validate_observability()

    def _validate_database_timeouts(self):
        for name in ("DATABASE_CONNECT_TIMEOUT", "DATABASE_STATEMENT_TIMEOUT",
                     "DATABASE_LOCK_TIMEOUT"):
            seconds = getattr(self, name)
            if not 0 < seconds < self.GUNICORN_TIMEOUT:
                raise ConfigurationError(
                    f"{name} must be more than 0 and less than GUNICORN_TIMEOUT "
                    f"({self.GUNICORN_TIMEOUT} s)")

    def _validate_device_caps(self):
        for name in ("DEVICES_PER_USER_MAX", "DEVICES_PER_SESSION_MAX"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"{name} must be at least 1")

    def _validate_id_token_settings(self):
        if not 0 <= self.ID_TOKEN_LEEWAY <= 300:
            raise ConfigurationError("ID_TOKEN_LEEWAY must be 0 to 300 seconds")
        if not 0 < self.ID_TOKEN_KEYS_TIMEOUT < self.GUNICORN_TIMEOUT:
            raise ConfigurationError(
                "ID_TOKEN_KEYS_TIMEOUT must be more than 0 and less than GUNICORN_TIMEOUT "
                f"({self.GUNICORN_TIMEOUT} s)")

    def _validate_push_settings(self):
        if self.PUSH_QUEUE not in PUSH_QUEUES:
            raise ConfigurationError("PUSH_QUEUE is 'embedded' or 'procrastinate'")
        if self.PUSH_QUEUE == "procrastinate" and \
                not self.SQLALCHEMY_DATABASE_URI.startswith("postgresql"):
            raise ConfigurationError("PUSH_QUEUE=procrastinate needs DATABASE_URL pointing at "
                                     "PostgreSQL")
        for name in ("APNS_BUNDLE_ID", "APNS_TOPIC"):
            if getattr(self, name) and not is_bundle_id(getattr(self, name)):
                raise ConfigurationError(f"{name} must be a bundle id as Apple allows it: up "
                                         "to 155 letters, digits, hyphens and dots")
        if self.PUSH_STANDIN not in (None, "outbox", "off"):
            raise ConfigurationError("PUSH_STANDIN is 'outbox' or 'off'")
        if self.PUSH_INVALIDATION_POLICY not in ("mark", "delete"):
            raise ConfigurationError("PUSH_INVALIDATION_POLICY is 'mark' or 'delete'")
        for name in ("PUSH_CHUNK_SIZE", "PUSH_CONCURRENCY", "PUSH_MAX_ATTEMPTS",
                     "PUSH_QUARANTINE_MIN"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"{name} must be at least 1")
        for name in ("PUSH_LEASE", "PUSH_POLL_INTERVAL", "PUSH_RETRY_BASE", "PUSH_RETRY_MAX"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"{name} must be a number of seconds above 0")
        if not 0 < self.PUSH_QUARANTINE_RATIO <= 1:
            raise ConfigurationError("PUSH_QUARANTINE_RATIO must be above 0 and at most 1")
        try:
            zoneinfo.ZoneInfo(self.DEFAULT_TIME_ZONE)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            raise ConfigurationError("DEFAULT_TIME_ZONE must be an IANA time zone, like UTC "
                                     "or Europe/Paris") from None

    def _validate_fcm_settings(self):
        for name in ("FCM_CONNECTIONS", "FCM_MAX_STREAMS"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"{name} must be at least 1")
        if self.FCM_REQUEST_TIMEOUT <= 0:
            raise ConfigurationError("FCM_REQUEST_TIMEOUT must be a number of seconds above 0")
        if urlsplit(self.FCM_URL).scheme != "https":
            raise ConfigurationError("FCM_URL must be an https URL")

    def _validate_channel_settings(self):
        for name in ("WEBHOOK_CONNECT_TIMEOUT", "WEBHOOK_TIMEOUT", "WEBHOOK_FAILING_FOR_MAX",
                     "RECEIPTS_POLL_INTERVAL", "RECEIPTS_RETRY_FOR", "RECEIPTS_RETRY_BASE",
                     "RECEIPTS_RETRY_MAX",
                     "TELEGRAM_TIMEOUT", "TELEGRAM_MESSAGES_PER_SECOND"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"{name} must be a number above 0")
        if self.WEBHOOK_CONNECTIONS < 1:
            raise ConfigurationError("WEBHOOK_CONNECTIONS must be at least 1")
        if self.TELEGRAM_CHAT_INTERVAL < 0:
            raise ConfigurationError("TELEGRAM_CHAT_INTERVAL must be 0 or more seconds")

    def _validate_health_settings(self):
        if not 0 < self.READINESS_TIMEOUT < self.GUNICORN_TIMEOUT:
            raise ConfigurationError(
                "READINESS_TIMEOUT must be more than 0 and less than GUNICORN_TIMEOUT "
                f"({self.GUNICORN_TIMEOUT} s)")
        if self.PUSH_HEARTBEAT_INTERVAL <= 0:
            raise ConfigurationError("PUSH_HEARTBEAT_INTERVAL must be a number of seconds above 0")
        if self.PUSH_HEARTBEAT_MAX_AGE <= self.PUSH_HEARTBEAT_INTERVAL:
            raise ConfigurationError(
                "PUSH_HEARTBEAT_MAX_AGE must be longer than PUSH_HEARTBEAT_INTERVAL "
                f"({self.PUSH_HEARTBEAT_INTERVAL:g} s)")

    # -- Observability: metrics and logs (issue 13) -----------------------------------------

    def _read_observability(self, env):
        self.METRICS_ENABLED = metrics_enabled(env)
        self.METRICS_TOKEN = env.str("METRICS_TOKEN")
        self.METRICS_ALLOW = env.read("networks", "METRICS_ALLOW", ())
        self.LOG_FORMAT = log_format(env)

    def _validate_observability(self):
        if self.LOG_FORMAT not in LOG_FORMATS:
            raise ConfigurationError("LOG_FORMAT is 'json' or 'text'")
        if self.METRICS_ENABLED and not (self.METRICS_TOKEN or self.METRICS_ALLOW):
            raise ConfigurationError(
                "METRICS_ENABLED needs METRICS_TOKEN (a bearer token for the scraper) or "
                "METRICS_ALLOW (the addresses that may scrape, like 10.0.0.0/8)")


# -- end of observability ------------------------------------------------------------------


GENEROUS_TEST_RATE = "100000/hour"


class TestConfig(Config):
    def __init__(self, database_url):
        super().__init__()
        self.TESTING = True
        self.APP_ENV = "test"
        self.SQLALCHEMY_DATABASE_URI = normalise_database_url(database_url)
        self.SMS_SENDER = "outbox"
        # the number the captured Poparazzi client logs in with (tests/contract)
        self.SMS_TEST_NUMBERS = ("+10000000000",)
        self.REDIS_URL = None
        # Every test client is 127.0.0.1; the limits' own tests set tight ones.
        self.SESSION_CREATE_RATE_LIMIT = self.ANONYMOUS_WRITE_RATE_LIMIT = GENEROUS_TEST_RATE
        # The tests' webhook receivers and fake Bot API listen on this machine, over http.
        self.WEBHOOK_ALLOW_HTTP = True
        self.WEBHOOK_ALLOW_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"),)
