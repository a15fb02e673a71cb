"""django-push-notifications with Django REST framework token auth, set up as a production
deployment would be, for ``make bench`` only (bench/dpn_server.py runs it).

Choices that matter to the figures: ``DEBUG`` off (on, Django keeps every query), one
persistent database connection a worker (``CONN_MAX_AGE``; Django's default opens a
connection a request), and ``UNIQUE_REG_ID`` with ``UPDATE_ON_DUPLICATE_REG_ID``: one row
a device token, registering it again moves it, which is what the service does.
"""

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "dpn.urls"
WSGI_APPLICATION = "dpn.wsgi.application"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "rest_framework.authtoken",
    "push_notifications",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "pushreg_bench_dpn",  # bench/dpn_server.py drops and makes it each run
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": "5432",
        "CONN_MAX_AGE": None,
    }
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
}

PUSH_NOTIFICATIONS_SETTINGS = {
    "UNIQUE_REG_ID": True,
    "UPDATE_ON_DUPLICATE_REG_ID": True,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
