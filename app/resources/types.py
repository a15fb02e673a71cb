"""The JSON:API resource types the service exposes, and how each shows its relationships."""

from app.jsonapi.registry import HIDDEN, Relationship, ResourceType, registry
from schemas.apple_device_tokens import AppleDeviceTokenSchema
from schemas.configs import ConfigSchema
from schemas.sessions import SessionSchema
from schemas.users import UserSchema


def _own_session_id(device, principal):
    """A session id is its holder's secret: show it only to the holder."""
    if device.session_id is None:
        return None
    if principal is not None and principal.owns_session(device.session_id):
        return principal.credential.public_id
    return HIDDEN


def _is_self(user, principal):
    return principal is not None and principal.user_id == user.id


APPLE_DEVICE_TOKENS = registry.add(ResourceType(
    type="apple_device_tokens",
    schema=AppleDeviceTokenSchema,
    id_of=lambda device, principal: device.token,
    relationships={
        "session": Relationship("session", "sessions", linkage=_own_session_id),
        "user": Relationship("user", "users", key="user_id"),
    },
))

SESSIONS = registry.add(ResourceType(
    type="sessions",
    schema=SessionSchema,
    id_of=lambda session, principal: session.public_id,
    relationships={"user": Relationship("user", "users", key="user_id")},
))

USERS = registry.add(ResourceType(
    type="users",
    schema=UserSchema,
    relationships={
        "devices": Relationship("devices", "apple_device_tokens", many=True,
                                visible=_is_self),
    },
    private_attributes={"phone_number": _is_self},
))

CONFIGS = registry.add(ResourceType(
    type="configs",
    schema=ConfigSchema,
    id_of=lambda config, principal: config.bundle_version,
))
