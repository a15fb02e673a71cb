"""gunicorn settings for a checkout (`make run`): the package's own, app/ops/gunicorn_config.py."""

from app.ops.gunicorn_config import *  # noqa: F403
