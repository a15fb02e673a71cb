"""The device registry: app installations, their push endpoints, who they belong to, and
every rule about them.

A device row is one app installation, found by its push endpoint (``channel`` + ``token``,
unique per channel) or by the ``fingerprint`` its app chose (unique per user). It is tied to
the credential that registered it (a session, until it ends) and to that credential's user.
Every wire format that shows devices is a view of these functions, and the dispatcher
reports the tokens providers refuse to ``invalidate``. By concern:

- ``tokens``: what a token and the attributes may be, per channel.
- ``registration``: registering a device, by each path a registration arrives.
- ``statements``: the registration's SQL, built once and cached, and the caps' DELETE.
- ``ownership``: who may see and change which devices; reads, updates, deletes, caps.
- ``invalidation``: tokens a push provider said are gone.

One registered row has four shapes (``statements``), easy to confuse:

- ``rewritten_columns``: column → value, what a registration writes on the device it lands
  on, new or not (owner, validity, moments, what the client sent).
- ``new_row``: column → value, every column of a device registered now (the above, with
  its id, endpoint, ``created_at`` and defaults).
- ``insert_parameters``: column → bound parameter (SQL), the INSERT's values inside a CTE,
  each named ``new_`` + column.
- ``insert_arguments``: parameter name → value, a ``new_row`` as the values of those
  parameters (with the caps').

Resources flush; the view, command or job that called them commits.
"""

from app.resources.devices.invalidation import Invalidation, invalidate
from app.resources.devices.ownership import (
    DEFAULT_ORDER,
    FILTERS,
    LATEST_SEEN_FIRST,
    ORDERS,
    attach_session_devices,
    delete_owned,
    delete_owned_by_id,
    detach,
    detach_from_user,
    detach_ids_from_user,
    find,
    find_owned_by_id,
    get_owned,
    get_owned_by_id,
    keep_within_caps,
    list_devices,
    list_of_user,
    list_owned,
    owned_by,
    purge_stale,
    update_owned,
)
from app.resources.devices.registration import (
    authenticate_and_register,
    can_authenticate_and_register,
    installation,
    register,
    register_from_attributes,
    update_installation,
)
from app.resources.devices.signing import issue_signing_secret
from app.resources.devices.tokens import (
    APNS_ONLY,
    CLIENT_REPORTED,
    MAX_APNS_TOKEN_LENGTH,
    MAX_FCM_TOKEN_LENGTH,
    MIN_APNS_TOKEN_LENGTH,
    TOKEN_RULES,
    UPDATABLE,
    apns_token,
    normalise_token,
)

__all__ = [
    "APNS_ONLY", "CLIENT_REPORTED", "DEFAULT_ORDER", "FILTERS", "LATEST_SEEN_FIRST",
    "MAX_APNS_TOKEN_LENGTH", "MAX_FCM_TOKEN_LENGTH", "MIN_APNS_TOKEN_LENGTH", "ORDERS",
    "TOKEN_RULES", "UPDATABLE", "Invalidation", "apns_token", "attach_session_devices",
    "authenticate_and_register", "can_authenticate_and_register", "delete_owned",
    "delete_owned_by_id", "detach", "detach_from_user", "detach_ids_from_user", "find",
    "find_owned_by_id", "get_owned", "get_owned_by_id", "installation", "invalidate",
    "issue_signing_secret", "keep_within_caps", "list_devices", "list_of_user", "list_owned",
    "normalise_token", "owned_by", "purge_stale", "register", "register_from_attributes",
    "update_installation", "update_owned",
]
