"""gunicorn settings for a checkout (`make run`): the package's own, app/gunicorn_config.py."""

from app.gunicorn_config import *  # noqa: F403
