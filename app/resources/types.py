"""The JSON:API resource types the service exposes: how each is found, shown and related."""

from app.jsonapi.errors import NotAuthorized
from app.jsonapi.query import Capabilities
from app.jsonapi.registry import HIDDEN, Relationship, ResourceType, registry
from app.resources import apple_device_tokens, sessions, users
from schemas.apple_device_tokens import AppleDeviceTokenSchema
from schemas.configs import ConfigSchema
from schemas.sessions import SessionSchema
from schemas.users import UserSchema


def _signed_in(load):
    def load_for(principal, resource_id):
        if principal is None:
            raise NotAuthorized()
        return load(principal, resource_id)

    return load_for


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
    load=_signed_in(apple_device_tokens.find_own_token),
    collection=Capabilities(collection=True,
                            sortable=tuple(apple_device_tokens.SORTABLE),
                            filterable=tuple(apple_device_tokens.FILTERABLE)),
    relationships={
        "session": Relationship("session", "sessions", linkage=_own_session_id),
        "user": Relationship("user", "users", key="user_id"),
    },
))

SESSIONS = registry.add(ResourceType(
    type="sessions",
    schema=SessionSchema,
    id_of=lambda session, principal: session.public_id,
    load=_signed_in(sessions.held_session),
    relationships={"user": Relationship("user", "users", key="user_id")},
))

USERS = registry.add(ResourceType(
    type="users",
    schema=UserSchema,
    load=_signed_in(lambda principal, user_id: users.get_user(user_id)),
    collection=Capabilities(collection=True, sortable=tuple(users.SORTABLE),
                            filterable=("username",)),
    relationships={
        "devices": Relationship(
            "devices", "apple_device_tokens", many=True, visible=_is_self,
            related_page=apple_device_tokens.page_of_user,
            remove=apple_device_tokens.detach_from_user),
    },
    private_attributes={"phone_number": _is_self},
))

CONFIGS = registry.add(ResourceType(
    type="configs",
    schema=ConfigSchema,
    id_of=lambda config, principal: config.bundle_version,
))
