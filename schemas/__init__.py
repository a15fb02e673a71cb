"""The schemas, where the design card looks for them: this package only re-exports them.

They live beside the surface that uses them — the JSON:API types' marshmallow-jsonapi
schemas in ``app/api/schemas/``, the seed formats' plain marshmallow schemas in
``app/compat/schemas/`` — and are imported from there. ``schemas.devices`` and
``schemas.compat.devices_v1`` (also as ``from schemas.devices import …``) name the same
module objects, so a class is never loaded twice.
"""

import sys

from app.api.schemas import (
    apple_device_tokens,
    audience_counts,
    auth_tokens,
    configs,
    devices,
    fields,
    live_activities,
    notifications,
    sessions,
    topics,
    users,
)
from app.compat import schemas as compat
from app.compat.schemas import auth_tokens_v1, devices_v1, notifications_device_token_v1

__all__ = ["apple_device_tokens", "audience_counts", "auth_tokens", "compat", "configs",
           "devices", "fields",
           "live_activities", "notifications", "sessions", "topics", "users"]

for _name, _module in {**{name: globals()[name] for name in __all__},
                       "compat.auth_tokens_v1": auth_tokens_v1,
                       "compat.devices_v1": devices_v1,
                       "compat.notifications_device_token_v1":
                           notifications_device_token_v1}.items():
    sys.modules.setdefault(f"{__name__}.{_name}", _module)
